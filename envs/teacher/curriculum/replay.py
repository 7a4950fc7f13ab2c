"""Prioritised level replay: a scored buffer of levels, rank prioritisation with a temperature, staleness.

The sampling distribution of Jiang et al.'s PLR, over the levels in the buffer:

    P = (1 - rho) * P_S + rho * P_C
    P_S(i) = h_i ** (1 / beta) / sum_j h_j ** (1 / beta),   h_i = 1 / rank(score_i)   (rank 1: highest score)
    P_C(i) = (c - C_i) / sum_j (c - C_j)                     (c: choices so far, C_i: when i was last chosen)

The temperature ``beta`` is an exponent ``1 / beta`` of the rank weight (not a divisor of the
scores: a known bug elsewhere); small ``beta`` sharpens the distribution towards the top level.

:class:`ScoredReplay` is the teacher every scored curriculum shares: with probability
``replay_prob`` (once the buffer holds ``min_levels`` levels) a level is replayed from the
buffer, otherwise a new level is drawn uniformly; a level newly scored enters the buffer if
there is room, or in place of the lowest-scored level if it scores higher. Subclasses only say
where scores come from.

Example:
    >>> rank_weights([0.1, 0.5, 0.3], temperature=1.0).round(4).tolist()  # ranks 3, 1, 2
    [0.1818, 0.5455, 0.2727]
    >>> staleness_weights([5, 9, 10], now=10).tolist()
    [0.8333333333333334, 0.16666666666666666, 0.0]
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.base import Curriculum, LevelChoice
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError, LevelSpace


def rank_weights(scores: Sequence[float], temperature: float) -> np.ndarray:
    """P_S: (1 / rank) ** (1 / temperature), normalised; rank 1 is the highest score (ties by position)."""
    if temperature <= 0:
        raise CurriculumError(f"temperature must be > 0, got {temperature}")
    values = np.asarray(scores, dtype=float)
    ranks = np.empty(len(values))
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    h = (1.0 / ranks) ** (1.0 / temperature)
    return h / h.sum()


def staleness_weights(last_chosen: Sequence[int], now: int) -> np.ndarray:
    """P_C: (now - last_chosen), normalised (uniform when every level was just chosen)."""
    gaps = now - np.asarray(last_chosen, dtype=float)
    if gaps.sum() <= 0:
        return np.full(len(gaps), 1.0 / len(gaps))
    return gaps / gaps.sum()


class ScoredReplay(Curriculum):
    """A replay buffer of scored levels sampled by rank and staleness (see the module docstring).

    Args:
        buffer_size: levels the buffer holds.
        replay_prob: probability that a reset replays a buffered level (once ``min_levels`` are buffered).
        temperature: ``beta`` of the rank prioritisation (an exponent 1 / beta).
        staleness: ``rho``, the weight of the staleness distribution.
        min_levels: buffered levels needed before any replay.
    """

    def __init__(self, levels: LevelSpace, seed: int = 0, *, buffer_size: int = 128, replay_prob: float = 0.5,
                 temperature: float = 0.3, staleness: float = 0.3, min_levels: int = 16, tier: str | None = None):
        super().__init__(levels, seed, tier)
        if buffer_size < 1 or not 0 <= replay_prob <= 1 or temperature <= 0 or not 0 <= staleness <= 1 or min_levels < 1:
            raise CurriculumError(f"{self.name}: needs buffer_size >= 1, replay_prob and staleness in [0, 1], temperature > 0, "
                                  f"min_levels >= 1; got {buffer_size}, {replay_prob}, {staleness}, {temperature}, {min_levels}")
        self.buffer_size, self.replay_prob, self.temperature = buffer_size, float(replay_prob), float(temperature)
        self.staleness, self.min_levels = float(staleness), min(min_levels, buffer_size)
        self.buffer: list[int] = []

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": list(self.buffer)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer = [int(s) for s in state["buffer"]]

    def probabilities(self) -> np.ndarray:
        """P over :attr:`buffer` (in its order)."""
        stats = [self.stats[s] for s in self.buffer]
        p_s = rank_weights([s.score for s in stats], self.temperature)
        p_c = staleness_weights([s.last_chosen for s in stats], self.chosen)
        return (1 - self.staleness) * p_s + self.staleness * p_c

    def next_level(self, sub_env: int) -> LevelChoice:
        if len(self.buffer) >= self.min_levels and self.rng.random() < self.replay_prob:
            seed = self.buffer[int(self.rng.choice(len(self.buffer), p=self.probabilities()))]
            return LevelChoice(seed, replayed=True, score=self.stats[seed].score)
        return self.new_level()

    def set_score(self, seed: int, level_hash: str, score: float) -> None:
        """Give the level at ``seed`` its new ``score`` and let it into the buffer if it earns a place."""
        s = self.level(seed, level_hash)
        s.score = float(score)
        if seed in self.buffer:
            return
        if len(self.buffer) < self.buffer_size:
            self.buffer.append(seed)
            return
        lowest = min(range(len(self.buffer)), key=lambda i: self.stats[self.buffer[i]].score)
        if s.score > self.stats[self.buffer[lowest]].score:
            self.buffer[lowest] = seed
