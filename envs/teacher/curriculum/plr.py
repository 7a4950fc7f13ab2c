"""``plr`` and ``plr-robust``: prioritised level replay scored by the learner's value errors.

A level's score is the mean, over the steps the learner last played on it (one rollout's
segment), of the positive part of its GAE advantages (``positive_value_loss``, PLR's default)
or of their magnitude (``gae``). The scores come from the learner (tier ``learner``): the SB3
glue reads them from the rollout buffer after each rollout. ``plr-robust`` (PLR⊥) samples the
same way, but the learner is updated only on transitions of replayed levels: new levels are
played to be scored, not learned from.

Example:
    >>> level_score([0.5, -1.0, 0.25], "positive_value_loss"), level_score([0.5, -1.0, 0.25], "gae")
    (0.25, 0.5833333333333334)
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.levels import CurriculumError, LevelSpace
from shiftgrid.envs.teacher.curriculum.replay import ScoredReplay
from shiftgrid.envs.teacher.knowledge import Tier

SCORES = ("positive_value_loss", "gae")


def level_score(advantages: Sequence[float], kind: str) -> float:
    """A level's score from the GAE advantages of its steps: mean of ``max(A, 0)`` or of ``|A|``."""
    a = np.asarray(advantages, dtype=float)
    if kind == "positive_value_loss":
        return float(np.clip(a, 0, None).mean())
    if kind == "gae":
        return float(np.abs(a).mean())
    raise CurriculumError(f"unknown PLR score {kind!r}; valid: {', '.join(SCORES)}")


class PLR(ScoredReplay):
    """Prioritised level replay (see the module and :class:`ScoredReplay` docstrings); ``score``: one of :data:`SCORES`."""

    tier = Tier.LEARNER
    needs = ("advantages",)

    def __init__(self, levels: LevelSpace, seed: int = 0, *, score: str = "positive_value_loss", **options: Any):
        if score not in SCORES:
            raise CurriculumError(f"unknown PLR score {score!r}; valid: {', '.join(SCORES)}")
        super().__init__(levels, seed, **options)
        self.score_kind = score

    def observe_scores(self, scores: Iterable[tuple[int, str, Mapping[str, Any]]]) -> None:
        """``(level_seed, level_hash, {"advantages": [...]})`` per level segment of the latest rollout."""
        for seed, level_hash, knowledge in scores:
            self.set_score(seed, level_hash, level_score(self.read("advantages", knowledge), self.score_kind))


class RobustPLR(PLR):
    """PLR⊥: PLR whose learner is updated only on replayed levels."""

    robust = True
