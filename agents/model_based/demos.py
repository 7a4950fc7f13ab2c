"""Recorded episodes (a Minari dataset, :mod:`shiftgrid.agents.imitation.datasets`) into a world model's replay.

:func:`demo_replay` reads the dataset's episodes (checked to be of the run's environment,
split and ``env_kwargs``) and lays them end to end in a one-stream
:class:`~shiftgrid.world_models.replay.SequenceReplay`, exactly as a collected stream is laid
out (next-step auto-reset: each episode's first observation marked first, its terminal step
keeping its reward and real last observation), so sampling and training do not tell them apart.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.imitation.datasets import write_demos
    >>> out = write_demos(tempfile.mkdtemp() + "/demos", "shiftgrid/GoTo-v1", episodes=2, seed=0)
    >>> replay, episodes = demo_replay(out, "shiftgrid/GoTo-v1", None, {}, capacity=1000)
    >>> episodes, int(replay.stream(0)["is_first"].sum())
    (2, 2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from shiftgrid.agents.run.config import ConfigError
from shiftgrid.world_models.replay import SequenceReplay


def _row(obs: Mapping[str, np.ndarray], t: int, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    return {k: obs[k][t:t + 1] for k in keys}


def demo_replay(path: str | Path, env_id: str, split: str | None, env_kwargs: Mapping[str, Any], capacity: int,
                image_shape: tuple[int, ...] = (7, 7, 3), token_lengths: Mapping[str, int] | None = None,
                device: str | torch.device = "cpu") -> tuple[SequenceReplay, int]:
    """(replay holding the dataset's episodes, number of episodes) for a model of ``env_id``.

    Raises:
        DatasetError: a missing or unreadable dataset, or one of another environment, split or env kwargs.
        ConfigError: observations of another shape, or a dataset without episodes.
    """
    from shiftgrid.agents.imitation.datasets import read_episodes

    tokens = dict(token_lengths if token_lengths is not None else {"mission": 40})
    replay = SequenceReplay(1, capacity, image_shape, tokens, mode="next_step", device=device)
    keys = ("image", "direction", *tokens)
    count, last = 0, None
    for ep in read_episodes(path, env_id, split, env_kwargs):
        obs = ep.observations
        missing = [k for k in keys if k not in obs]
        if missing or tuple(obs["image"].shape[1:]) != tuple(image_shape):
            raise ConfigError(f"dataset {path} holds observations {sorted(obs)} with images {obs['image'].shape[1:]}; "
                              f"the model observes {list(keys)} with images {tuple(image_shape)}")
        if len(ep) == 0:
            continue
        if last is None:
            replay.reset(_row(obs, 0, keys))
        else:  # next-step auto-reset: the step after a done one is the next episode's reset observation
            replay.add(np.zeros(1), _row(obs, 0, keys), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
        truncations = ep.truncations.copy()
        truncations[-1] |= not ep.terminations[-1]  # an episode recorded up to a cut ends there all the same
        for t in range(len(ep)):
            replay.add(ep.actions[t:t + 1], _row(obs, t + 1, keys), ep.rewards[t:t + 1], ep.terminations[t:t + 1],
                       truncations[t:t + 1])
        last, count = obs, count + 1
    if last is None:
        raise ConfigError(f"dataset {path} holds no episodes")
    # write the last episode's final step (it waits for the next step's reset otherwise)
    replay.add(np.zeros(1), _row(last, 0, keys), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    return replay, count
