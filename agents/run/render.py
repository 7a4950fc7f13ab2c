"""Pictures of an agent's episode: rendered frames tiled into one image (for TensorBoard's ``add_image``).

Example:
    >>> from gymnasium import spaces
    >>> from shiftgrid.agents.evaluation.baselines import RandomAgent
    >>> frames = episode_frames(RandomAgent(spaces.Discrete(7), seed=0), "shiftgrid/GoTo-v1", "id", seed=0)
    >>> grid = frame_grid(frames)
    >>> grid.ndim, grid.dtype, grid.shape[2]
    (3, dtype('uint8'), 3)
"""

from __future__ import annotations

import math
from typing import Any, Mapping, cast

import numpy as np

from shiftgrid.agents.evaluation.episodes import first_reset_seed
from shiftgrid.envs.learner_env import expects_advice, has_splits, make_env


def episode_frames(agent: Any, env_id: str, split: str | None, seed: int = 0, tile_size: int = 8,
                   env_kwargs: Mapping[str, Any] | None = None) -> list[np.ndarray]:
    """RGB frames (the reset state, then one per step) of one deterministic episode of ``agent``.

    ``split`` is ignored on ids without splits; the episode resets with the first evaluation
    seed of :func:`~shiftgrid.agents.evaluation.episodes.first_reset_seed`, so it is a held-out level.
    ``env_kwargs`` (the run's factor keywords) reach the env as in training and evaluation; an
    agent trained with advice plays without it, as in evaluation.
    """
    env = make_env(env_id, split if has_splits(env_id) else None, render_mode="rgb_array", tile_size=tile_size,
                   silent_advice=expects_advice(agent), **dict(env_kwargs or {}))
    try:
        obs, _ = env.reset(seed=first_reset_seed(env_id, seed))
        frames, state, start, done = [cast(np.ndarray, env.render())], None, np.ones(1, dtype=bool), False
        while not done:
            batch = {k: np.asarray(v)[None] for k, v in obs.items()}
            action, state = agent.predict(batch, state=state, episode_start=start, deterministic=True)
            obs, _, terminated, truncated, _ = env.step(int(np.asarray(action).reshape(-1)[0]))
            frames.append(cast(np.ndarray, env.render()))  # rgb_array frames
            start, done = np.zeros(1, dtype=bool), terminated or truncated
        return frames
    finally:
        env.close()


def frame_grid(frames: list[np.ndarray], max_frames: int = 16, pad: int = 2) -> np.ndarray:
    """Up to ``max_frames`` frames (evenly spaced, first and last kept) tiled row by row, HxWx3 uint8."""
    if not frames:
        raise ValueError("no frames to tile")
    keep = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    picked = [frames[i] for i in keep]
    h, w, _ = picked[0].shape
    cols = math.ceil(math.sqrt(len(picked)))
    rows = math.ceil(len(picked) / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, frame in enumerate(picked):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = frame
    return grid
