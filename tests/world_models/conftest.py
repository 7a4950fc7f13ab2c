"""A scripted env whose observations name their episode (one torch thread: tests/conftest.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


class Scripted(gym.Env):
    """Episodes of 2-4 steps; ``image[0, 0]`` is (env tag, episode, step), reward ``10 * episode + step``.

    Even episodes end terminated, odd ones truncated, so both kinds of boundary occur.
    """

    observation_space = spaces.Dict({
        "image": spaces.Box(0, 255, (7, 7, 3), np.uint8), "direction": spaces.Discrete(4),
        "mission": spaces.Box(0, 68, (40,), np.int64)})
    action_space = spaces.Discrete(7)

    def __init__(self, tag: int = 0):
        self.tag, self.episode, self.t = tag, -1, 0

    def _obs(self):
        image = np.zeros((7, 7, 3), np.uint8)
        image[0, 0] = (self.tag, self.episode, self.t)
        mission = np.zeros(40, np.int64)
        mission[0] = 1 + self.episode % 60
        return {"image": image, "direction": self.t % 4, "mission": mission}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        length = 2 + self.episode % 3
        done = self.t >= length
        term, trunc = done and self.episode % 2 == 0, done and self.episode % 2 == 1
        return self._obs(), float(10 * self.episode + self.t), term, trunc, {}


@pytest.fixture
def scripted():
    """Factory of :class:`Scripted` envs tagged ``tag``."""
    return Scripted


def _random_batch(b: int = 3, t: int = 6, seed: int = 0) -> dict:
    """A replay-like ``(b, t)`` batch of random codes, with ``is_first`` at ``[0, 3]``."""
    import torch

    from shiftgrid.world_models.interface import NUM_COLORS, NUM_STATES, NUM_TYPES

    g = torch.Generator().manual_seed(seed)
    image = torch.stack([torch.randint(n, (b, t, 7, 7), generator=g) for n in (NUM_TYPES, NUM_COLORS, NUM_STATES)], -1)
    is_first = torch.zeros(b, t, dtype=torch.bool)
    is_first[0, 3] = True
    return {"image": image.to(torch.uint8), "direction": torch.randint(4, (b, t), generator=g),
            "mission": torch.randint(69, (b, t, 40), generator=g), "action": torch.randint(7, (b, t), generator=g),
            "reward": torch.rand(b, t, generator=g), "terminated": torch.rand(b, t, generator=g) < 0.2,
            "truncated": torch.zeros(b, t, dtype=torch.bool), "is_first": is_first}


@pytest.fixture
def random_batch():
    """Factory of random replay-like batches: ``random_batch(b=3, t=6, seed=0)``."""
    return _random_batch
