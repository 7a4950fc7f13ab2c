"""Side estimates of chosen levels' true success: the settings, the sample of levels, the learnable share.

Every ``side_every`` training steps the run plays the learner's current policy, on a separate
env of the training split, for ``side_episodes`` episodes on each of a sample of
``side_levels`` recently chosen levels (:func:`sample_levels`: drawn without replacement from
the last :data:`~shiftgrid.envs.teacher.curriculum.base.RECENT` resets, so a level chosen often
is more likely drawn; one drawn twice is played once and counted twice). The share of the sample
whose success rate is in :data:`~shiftgrid.envs.teacher.curriculum.base.LEARNABLE` is
``teacher/learnable_share_side`` (:func:`~shiftgrid.envs.teacher.curriculum.base.learnable_share`); the steps these episodes take are
the teacher's ``side_steps`` and count in the run's step clock. The episodes are a diagnostic:
neither the learner nor the teacher learns from them. ``side_every=0`` turns them off.

The settings are teacher options (``--teacher-set side_every=20000``) of every teacher; the
defaults cost at most ``4 x 4`` episodes every 50,000 training steps.

Example:
    >>> side, rest = split_options({"side_every": 1000, "temperature": 0.1})
    >>> side.every, side.levels, rest
    (1000, 4, {'temperature': 0.1})
    >>> try:
    ...     split_options({"side_levels": 0})
    ... except CurriculumError as e:
    ...     print(e)
    teacher option side_levels must be an integer >= 1, got 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from shiftgrid.envs.teacher.curriculum.levels import CurriculumError

#: Option name -> (field of :class:`SideSettings`, smallest valid value).
SIDE_OPTIONS: dict[str, tuple[str, int]] = {
    "side_every": ("every", 0),
    "side_levels": ("levels", 1),
    "side_episodes": ("episodes", 1),
}


@dataclass(frozen=True)
class SideSettings:
    """How often and how much to estimate on the side (see the module docstring)."""

    every: int = 50_000
    """Training steps between side estimates (0: none)."""
    levels: int = 4
    """Recently chosen levels sampled per estimate."""
    episodes: int = 4
    """Episodes of the learner's policy on each sampled level."""


def split_options(options: Mapping[str, Any] | None) -> tuple[SideSettings, dict[str, Any]]:
    """The side settings among a teacher's ``options`` (checked), and the options left for the teacher itself."""
    given, rest = {}, {}
    for key, value in dict(options or {}).items():
        if key not in SIDE_OPTIONS:
            rest[key] = value
            continue
        name, low = SIDE_OPTIONS[key]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise CurriculumError(f"teacher option {key} must be an integer >= {low}, got {value!r}")
        given[name] = int(value)
    return SideSettings(**given), rest


def sample_levels(recent: Sequence[tuple[int, str]], k: int, rng: np.random.Generator) -> list[tuple[int, str]]:
    """``k`` of the ``recent`` resets' ``(level_seed, level_hash)``, drawn without replacement (all of them if fewer).

    Example:
        >>> sample_levels([(1, "a"), (2, "b"), (1, "a")], 5, np.random.default_rng(0))
        [(1, 'a'), (2, 'b'), (1, 'a')]
    """
    if len(recent) <= k:
        return list(recent)
    return [recent[int(i)] for i in sorted(rng.choice(len(recent), size=k, replace=False))]

