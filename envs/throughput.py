"""Reset+step throughput of an environment under a uniformly random policy.

Used by ``shiftgrid benchmark envs`` to compare each family with a comparable minigrid
environment measured in the same run (interleaved, median of repeats), and a family's
held-out resets with its training resets.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> r = measure(lambda: gym.make("shiftgrid/GoTo-v1"), steps=200)
    >>> r.steps
    200
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence, cast

import gymnasium as gym
import numpy as np

#: The minigrid/BabyAI environment each built-in family is compared with.
REFERENCES: dict[str, str] = {
    "GoTo": "BabyAI-GoToLocal-v0",
    "Pickup": "BabyAI-PickupDist-v0",
    "PutNext": "BabyAI-PutNextLocal-v0",
    "DoorKey": "MiniGrid-DoorKey-8x8-v0",
    "Maze": "MiniGrid-SimpleCrossingS9N2-v0",
    "Sequence": "BabyAI-GoToSeqS5R2-v0",
}


@dataclass(frozen=True)
class Throughput:
    """Steps (resets included in the time) and resets measured over ``seconds``."""

    steps: int
    resets: int
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    @property
    def resets_per_second(self) -> float:
        return self.resets / self.seconds


def measure(make: Callable[[], gym.Env], steps: int, seed: int = 0) -> Throughput:
    """Time ``steps`` random-action steps of a fresh env, resets included; returns the counts."""
    env = make()
    rng = np.random.default_rng(seed)
    actions = rng.integers(cast(gym.spaces.Discrete, env.action_space).n, size=steps)
    env.reset(seed=seed)
    resets = 0
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
            resets += 1
    seconds = time.perf_counter() - start
    env.close()
    return Throughput(int(steps), resets, seconds)


def measure_resets(
    make: Callable[[], gym.Env], resets: int, seed: int = 0, repeat_seeds: Sequence[int] | None = None
) -> Throughput:
    """Time ``resets`` consecutive resets (level generation, and the oracle where on).

    Each reset draws a fresh level; with ``repeat_seeds``, resets cycle through
    ``reset(seed=s)`` for those seeds instead (after one untimed pass), as evaluation does
    when it scores the same levels again.

    Example:
        >>> import gymnasium as gym, shiftgrid.envs
        >>> measure_resets(lambda: gym.make("shiftgrid/GoTo-v1", split="id"), 4, repeat_seeds=[0, 1]).resets
        4
    """
    env = make()
    env.reset(seed=seed)
    seeds = list(repeat_seeds or [])
    for s in seeds:
        env.reset(seed=s)
    start = time.perf_counter()
    for i in range(resets):
        if seeds:
            env.reset(seed=seeds[i % len(seeds)])
        else:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return Throughput(0, resets, seconds)


def measure_resets_over(makes: Sequence[Callable[[], gym.Env]], resets_each: int, seed: int = 0) -> Throughput:
    """Time ``resets_each`` fresh resets of each env in ``makes`` (e.g. every held-out split); summed.

    Example:
        >>> import gymnasium as gym, shiftgrid.envs
        >>> makes = [lambda: gym.make("shiftgrid/GoTo-v1", split=s) for s in ("id", "size/far")]
        >>> measure_resets_over(makes, 2).resets
        4
    """
    parts = [measure_resets(make, resets_each, seed=seed) for make in makes]
    return Throughput(0, sum(p.resets for p in parts), sum(p.seconds for p in parts))
