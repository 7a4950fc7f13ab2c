"""``tscl``: a learning-progress bandit over groups of levels (Matiisen et al.'s teacher-student curriculum).

Levels are grouped by the values of some factors (default: every factor the training split
varies, e.g. DoorKey's ``size`` and ``num_distractors``). A group's progress is the absolute
slope of success over its last ``window`` episodes (least squares against the episode index);
with probability ``epsilon`` a group is drawn uniformly, otherwise the one with the largest
progress (ties: the group chosen longest ago, so a group whose estimate is stale, e.g. stuck at
a zero slope, is tried again soon). Groups with fewer than two episodes are tried first. The chosen group's new level is
a seed whose factors fall in it; the env may settle on a later seed of another group (a seed
whose level is inadmissible is skipped), and the outcome is filed under the group of the level
actually played.

Example:
    >>> slope([0, 0, 1, 1]), slope([1, 1, 1])
    (0.4, 0.0)
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping, Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.base import Curriculum, LevelChoice, Outcome
from shiftgrid.envs.teacher.curriculum.levels import CurriculumError, LevelSpace
from shiftgrid.envs.teacher.knowledge import Tier


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against 0, 1, 2, ... (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    x = np.arange(len(values), dtype=float)
    return round(float(np.polyfit(x, np.asarray(values, dtype=float), 1)[0]), 12)


class TSCL(Curriculum):
    """Learning-progress bandit over factor groups (see the module docstring).

    Args:
        group_by: factor names to group levels by (default: the factors the split varies).
        window: episodes per group the slope is taken over.
        epsilon: probability of a uniformly drawn group.
    """

    tier = Tier.OUTCOMES
    needs = ("success",)

    def __init__(self, levels: LevelSpace, seed: int = 0, *, group_by: list | None = None, window: int = 20,
                 epsilon: float = 0.1, tier: str | None = None):
        super().__init__(levels, seed, tier)
        by = tuple(group_by) if group_by is not None else tuple(levels.varied)
        unknown = [n for n in by if n not in levels.split.factors]
        if unknown or not by:
            raise CurriculumError(f"tscl group_by={list(by)!r}: valid factor names are {', '.join(levels.split.factors)}"
                                  + ("" if by else " (this split varies none; name some)"))
        if window < 2 or not 0.0 <= epsilon <= 1.0:
            raise CurriculumError(f"tscl needs window >= 2 and epsilon in [0, 1]; got window={window}, epsilon={epsilon}")
        self.by, self.epsilon = by, float(epsilon)
        self.history: dict[tuple, deque] = {g: deque(maxlen=window) for g in levels.groups(by)}
        self.last = {g: -1 for g in self.history}  # when each group was last chosen

    def state_dict(self) -> dict[str, Any]:
        groups = list(self.history)
        return {**super().state_dict(), "groups": [list(g) for g in groups],
                "history": [list(self.history[g]) for g in groups], "last": [self.last[g] for g in groups]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        for g, h, last in zip(state["groups"], state["history"], state["last"]):
            key = tuple(g)
            self.history.setdefault(key, deque(maxlen=next(iter(self.history.values())).maxlen)).extend(h)
            self.last[key] = int(last)

    def progress(self) -> dict[tuple, float]:
        """Group -> absolute slope of its recent success."""
        return {g: abs(slope(list(h))) for g, h in self.history.items()}

    def next_level(self, sub_env: int) -> LevelChoice:
        groups = list(self.history)
        untried = [g for g in groups if len(self.history[g]) < 2]
        progress = self.progress()
        if untried:
            group = untried[int(self.rng.integers(len(untried)))]
        elif self.rng.random() < self.epsilon:
            group = groups[int(self.rng.integers(len(groups)))]
        else:
            best = max(progress.values())
            group = min((g for g in groups if progress[g] == best), key=lambda g: self.last[g])
        self.last[group] = self.chosen
        return LevelChoice(self.levels.seed_in_group(group, self.by, self.rng), False, progress[group])

    def observe(self, outcome: Outcome) -> None:
        super().observe(outcome)
        group = self.levels.group_of(outcome.level_seed, self.by)
        self.history.setdefault(group, deque(maxlen=next(iter(self.history.values())).maxlen)).append(
            float(bool(self.read("success", outcome.knowledge))))
