"""Oracle-tier scored curricula: exact ``regret`` and ``learnability``.

In a grid world the optimal return of every level is computed exactly (the oracle's plan), so
these teachers are upper bounds for approximate ones:

- ``regret``: a level's score is its exact regret, the oracle's optimal return minus the
  learner's mean return over its recent episodes there;
- ``learnability``: a level's score is p(1 - p), p the level's estimated success (posterior
  mean over its recent episodes, uniform prior): highest where the learner succeeds half the time.

Both sample as :class:`~shiftgrid.envs.teacher.curriculum.replay.ScoredReplay` does (rank and
staleness). Their estimates come from the learner's training episodes on each level, at no extra
environment steps. (The side estimates of :mod:`.side`, every teacher's diagnostic, are the only
rollouts a curriculum run plays beside training; their steps are counted.)

Example:
    >>> regret(0.9, [0.2, 0.4]), round(learnability(0.5), 2)
    (0.6, 0.25)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.base import Outcome
from shiftgrid.envs.teacher.curriculum.replay import ScoredReplay
from shiftgrid.envs.teacher.knowledge import Tier


def regret(optimal_return: float, returns: Sequence[float]) -> float:
    """Optimal return minus the mean of the learner's ``returns``."""
    return round(float(optimal_return) - float(np.mean(returns)), 12)


def learnability(p: float) -> float:
    """p (1 - p): the variance of success, largest at p = 0.5."""
    return float(p) * (1.0 - float(p))


class Regret(ScoredReplay):
    """Replay levels by exact regret (optimal return from the oracle minus the learner's return)."""

    tier = Tier.ORACLE
    needs = ("optimal_return", "return")

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        s = self.stats[outcome.level_seed]
        s.optimal_return = float(self.read("optimal_return", outcome.knowledge))
        self.set_score(outcome.level_seed, outcome.level_hash, regret(s.optimal_return, list(s.returns)))


class Learnability(ScoredReplay):
    """Replay levels by learnability p(1 - p) of their estimated success."""

    tier = Tier.ORACLE
    needs = ("success",)

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        s = self.stats[outcome.level_seed]
        self.set_score(outcome.level_seed, outcome.level_hash, learnability(s.success_estimate()))
