"""The levels a curriculum may choose: the training split's seed range and the factors of each seed.

A level is named by its level seed. ``reset(options={"level_seed": s})`` plays the first
admissible level at or after ``s`` in the split's seed range; the level it plays is reported
back (``info["level_seed"]``), and replaying that seed plays that same level again. A
curriculum asks :class:`LevelSpace` for new seeds and for the factors of a seed (drawn from
the seed alone, without generating the level), and never sees a held-out split: a space is
built only from a training split.

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> space = LevelSpace.of_env(gym.make("shiftgrid/DoorKey-v1"))
    >>> seed = space.new_seed(np.random.default_rng(0))
    >>> space.contains(seed), sorted(space.varied)
    (True, ['num_distractors', 'size'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from shiftgrid.envs.family import Family
from shiftgrid.envs.shift.split import Split, is_exposed


class CurriculumError(ValueError):
    """A curriculum used outside what it allows: a held-out split, an env without splits, a reset with no level chosen."""


@dataclass(frozen=True)
class LevelSpace:
    """The training split of one family, as a curriculum sees it."""

    family: Family
    split: Split
    exposure: float = 0.0

    def __post_init__(self) -> None:
        if self.split.held_out:
            raise CurriculumError(f"a curriculum chooses inside the training split only; got split {self.split.name!r} "
                                  f"(train with split 'train', so held-out splits stay held out)")

    @classmethod
    def of_env(cls, env: Any) -> "LevelSpace":
        """The level space of a shiftgrid env (any wrapper around one); other envs raise :class:`CurriculumError`."""
        base = getattr(env, "unwrapped", env)
        if not hasattr(base, "split") or not hasattr(base, "family"):
            raise CurriculumError(f"curricula need a shiftgrid environment (levels from a split); got {type(base).__name__}")
        return cls(base.family, base.split, float(getattr(base, "exposure", 0.0)))

    @property
    def seed_range(self) -> tuple[int, int]:
        """First and one-past-last level seed of the split."""
        return self.split.seed_start, self.split.seed_start + self.split.seed_count

    @property
    def varied(self) -> dict[str, tuple]:
        """Factors the split draws from several values: name -> values."""
        return {k: tuple(v) for k, v in self.split.factors.items() if isinstance(v, (list, tuple)) and len(v) > 1}

    def contains(self, seed: int) -> bool:
        lo, hi = self.seed_range
        return lo <= int(seed) < hi

    def new_seed(self, rng: np.random.Generator) -> int:
        """A level seed drawn uniformly from the split's range (domain randomisation)."""
        return self.split.seed_start + int(rng.integers(self.split.seed_count))

    def factors_of(self, seed: int) -> dict[str, Any]:
        """The factor values of the level drawn at ``seed`` (exactly those of the level an env plays at that seed)."""
        exposed = bool(self.family.exposure) and is_exposed(int(seed), self.exposure)
        drawn = self.split.draw_factors(self.family.factors, np.random.default_rng(int(seed)),
                                        self.family.exposure if exposed else None)
        return dataclasses.asdict(drawn)

    def group_of(self, seed: int, by: tuple[str, ...]) -> tuple:
        """The values of factors ``by`` at ``seed``: the group a bandit teacher files the level under."""
        f = self.factors_of(seed)
        return tuple(f[name] for name in by)

    def seed_in_group(self, group: tuple, by: tuple[str, ...], rng: np.random.Generator, tries: int = 1000) -> int:
        """A new seed whose factors ``by`` take the values ``group`` (rejection sampling over the range)."""
        for _ in range(tries):
            seed = self.new_seed(rng)
            if self.group_of(seed, by) == tuple(group):
                return seed
        raise CurriculumError(f"no seed of split {self.split.name!r} with {dict(zip(by, group))} in {tries} draws")

    def groups(self, by: tuple[str, ...]) -> list[tuple]:
        """Every combination of the values of factors ``by`` in the split (one value for unvaried factors)."""
        values = [tuple(v) if isinstance(v, (list, tuple)) else (v,) for v in (self.split.factors.get(n) for n in by)]
        out: list[tuple] = [()]
        for vs in values:
            out = [g + (v,) for g in out for v in vs]
        return out


def numeric_factors(factors: Mapping[str, Any]) -> dict[str, float]:
    """The numeric factor values (for means over chosen levels); booleans and strings left out.

    Example:
        >>> numeric_factors({"size": 6, "palette": "identity", "slip": 0.0})
        {'size': 6.0, 'slip': 0.0}
    """
    return {k: float(v) for k, v in factors.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
