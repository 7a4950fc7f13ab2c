"""``bc``: behavioural cloning of PPO's policy from a demonstrations dataset (``--demos DIR``).

The dataset must be of the run's environment and training split (demonstrations from a
held-out split would leak the test levels into training) and env keyword arguments.
``hyperparams.max_demos`` clones only the dataset's first demonstrations (curves of success against
demonstrations read one dataset: the first 1,000 of a 50,000-episode dataset are the 1,000 of a
dataset recorded with the same ``--seed``).

The step clock: ``num_timesteps`` counts the demonstration transitions learned from, one per
transition per pass (``--steps 200000`` on 20,000 transitions is 10 passes); checkpoints,
evaluations (``eval.freq``) and resume follow it. Cloning takes no environment steps of its
own: the environment steps it cost are the teacher's, ``teacher/demo_steps`` (and
``teacher/demo_episodes``), reported in TensorBoard, ``teacher/cost.json`` and ``target.json``.
A resumed run continues the same pass at the same position, with the same minibatches as an
uninterrupted run wherever the interruption fell on a minibatch boundary.

Example:
    >>> import tempfile
    >>> from shiftgrid.agents.run.config import EvalConfig, TrainConfig
    >>> from shiftgrid.agents.imitation.datasets import write_demos
    >>> from shiftgrid.agents.run.train import train
    >>> demos = write_demos(tempfile.mkdtemp() + "/demos", "shiftgrid/GoTo-v1", episodes=4)
    >>> result = train(TrainConfig(algo="bc", demos=str(demos), steps=64, device="cpu", progress=False,
    ...                            run_dir=tempfile.mkdtemp() + "/run", eval=EvalConfig(freq=0)))
    >>> result.num_timesteps >= 64
    True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from shiftgrid.agents.imitation.cloning import CloningConfig, CloningLearner
from shiftgrid.agents.imitation.datasets import read_episodes
from shiftgrid.agents.run.config import ConfigError, TrainConfig
from shiftgrid.agents.run.services import RunServices
from shiftgrid.envs.learner_env import has_splits


@dataclass
class BCConfig(CloningConfig):
    """bc's settings (``hyperparams``), besides the supervised update's."""

    max_demos: int | None = None
    """Clone the dataset's first ``max_demos`` demonstrations (None: all of them)."""
    memory: bool = False
    """Clone into a policy with memory (recurrent-ppo's network: the extractor, then an LSTM), learned from whole
    demonstrations: minibatches of episodes of about ``batch_size`` steps, each read from a blank memory."""


class BCLearner(CloningLearner):
    """Behavioural cloning (see the module docstring)."""

    settings_class = BCConfig
    settings: BCConfig  # built from settings_class
    saves_data = False  # the dataset is read again on resume

    def __init__(self, config: TrainConfig, *, training: bool):
        super().__init__(config, training=training)
        if not training:
            return
        if config.demos is None:
            raise ConfigError("bc learns from demonstrations: give --demos DIR (written by: shiftgrid demos --out DIR)")
        if self.settings.max_demos is not None and self.settings.max_demos < 1:
            raise ConfigError(f"hyperparams.max_demos must be >= 1 (or None: the whole dataset), got {self.settings.max_demos}")
        split = (config.split or "train") if has_splits(config.env) else None
        episodes = list(itertools.islice(read_episodes(config.demos, env_id=config.env, split=split,
                                                       env_kwargs=config.env_kwargs), self.settings.max_demos))
        if self.settings.max_demos is not None and len(episodes) < self.settings.max_demos:
            raise ConfigError(f"hyperparams.max_demos is {self.settings.max_demos}, but the dataset {config.demos} holds "
                              f"{len(episodes)} demonstrations")
        for episode in episodes:
            self.data.add_episode(episode, self.settings.gamma)
        self.lengths = np.array([len(e.actions) for e in episodes], dtype=np.int64)
        self.demo_episodes, self.demo_steps = len(episodes), len(self.data)
        if not self.demo_steps:
            raise ConfigError(f"the dataset {config.demos} holds no transitions")

    @property
    def memory(self) -> bool:
        return bool(self.settings.memory)

    def episode_batches(self, epoch: int, start: int = 0) -> Iterator[tuple[np.ndarray, int, np.ndarray]]:
        """Pass ``epoch`` over the episodes in a seeded order, as ``(indices, episodes, mask)`` minibatches of whole
        episodes (about ``batch_size`` steps each; indices episode by episode, each padded to the longest with its
        last step, ``mask`` False on the padding), from the first minibatch that ends past step ``start`` of the pass.

        Example:
            >>> learner = BCLearner.__new__(BCLearner)
            >>> learner.lengths, learner.settings = np.array([2, 3, 1]), BCConfig(batch_size=4)
            >>> learner.config = type("C", (), {"seed": 0})()
            >>> [(i.tolist(), n, m.tolist()) for i, n, m in learner.episode_batches(0)]
            [([5, 5, 0, 1], 2, [True, False, True, True]), ([2, 3, 4], 1, [True, True, True])]
        """
        offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.lengths))
        done = 0
        while len(order):
            take = max(1, int(np.searchsorted(np.cumsum(self.lengths[order]), self.settings.batch_size, side="right")))
            chosen, order = order[:take], order[take:]
            done += int(self.lengths[chosen].sum())
            if done <= start:
                continue
            width = int(self.lengths[chosen].max())
            steps = np.minimum(np.arange(width), self.lengths[chosen, None] - 1)  # past its end: its last step again
            mask = np.arange(width) < self.lengths[chosen, None]
            yield (offsets[chosen, None] + steps).reshape(-1), len(chosen), mask.reshape(-1)

    def learn(self, steps: int, run: RunServices) -> None:
        """Clone for ``steps`` transitions: minibatches of transitions, or of whole episodes with memory
        (:meth:`episode_batches`); the run's last minibatch keeps as many of its steps as the count allows (with
        memory: whole episodes in order, then the first steps of one)."""
        self.teacher = {}
        self.report_teacher(run, demo_episodes=self.demo_episodes, demo_steps=self.demo_steps)
        end = self.num_timesteps + steps
        epoch, done = divmod(self.num_timesteps, self.demo_steps)  # resume where the pass stood
        while self.num_timesteps < end:
            batches = (self.episode_batches(epoch, done) if self.memory else
                       ((indices, None, np.ones(len(indices), dtype=bool)) for indices in self.minibatches(epoch, done)))
            for indices, episodes, mask in batches:
                mask = mask & (np.cumsum(mask) <= end - self.num_timesteps)  # exactly ``steps`` in all
                if episodes is None:  # transitions: the steps kept; episodes: padded, the mask leaves steps out
                    metrics = self.update(indices[mask])
                else:
                    metrics = self.update(indices, episodes, mask)
                self.num_timesteps += int(mask.sum())
                log = self.updates % self.settings.log_every == 0
                if not run.on_step(self.num_timesteps) or not run.on_update(self.num_timesteps, {**metrics, "train/epoch": epoch}, log=log):
                    return
                if self.num_timesteps >= end:
                    return
            epoch, done = epoch + 1, 0


def BC(config: TrainConfig, *, training: bool) -> Any:
    """The registry entry of ``bc``."""
    return BCLearner(config, training=training)
