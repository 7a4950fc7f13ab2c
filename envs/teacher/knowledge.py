"""What a teacher knows: ordered knowledge tiers, the items each tier gives, and the guard on them.

A teacher declares one tier, and may read every item of that tier and of the tiers below it:

- ``outcomes``: what any observer of training sees, per level: ``success``, ``return``,
  ``length``, ``episodes``.
- ``learner``: the learner's internals: ``values``, ``advantages``, ``errors`` (value / TD
  errors), ``policy``.
- ``oracle``: the level itself: ``level``, ``optimal_plan``, ``optimal_action``,
  ``optimal_return``.

What the teacher knows is thus an experimental variable: the same curriculum or advice
strategy can be run at each tier, and a teacher that reads above its tier fails loudly
(:class:`KnowledgeError`) instead of quietly cheating.

Example:
    >>> Tier.OUTCOMES < Tier.LEARNER < Tier.ORACLE
    True
    >>> class Watcher(Teacher):
    ...     tier = Tier.OUTCOMES
    >>> Watcher().read("success", {"success": 0.5})
    0.5
    >>> try:
    ...     Watcher().read("values", {"values": [0.1]})
    ... except KnowledgeError as e:
    ...     print(e)
    Watcher has knowledge tier 'outcomes' but 'values' needs tier 'learner' (tiers, lowest first: outcomes < learner < oracle)
"""

from __future__ import annotations

import enum
from typing import Any, Mapping

from shiftgrid.envs.errors import UserInputError


class Tier(enum.IntEnum):
    """Knowledge tiers, lowest first; a higher tier knows everything a lower one does."""

    OUTCOMES = 1
    LEARNER = 2
    ORACLE = 3

    @property
    def label(self) -> str:
        """The tier's name as written in configs: ``outcomes``, ``learner``, ``oracle``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: "Tier | str") -> "Tier":
        """A tier from itself or its name.

        Example:
            >>> Tier.parse("learner") is Tier.LEARNER
            True
        """
        if isinstance(value, Tier):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(f"unknown knowledge tier {value!r}; valid: {TIER_ORDER}") from None


#: The tiers in order, as the error messages print them.
TIER_ORDER = " < ".join(t.label for t in Tier)

#: Every item of knowledge a teacher may ask for, and the lowest tier that gives it.
KNOWLEDGE: dict[str, Tier] = {
    "success": Tier.OUTCOMES,
    "return": Tier.OUTCOMES,
    "length": Tier.OUTCOMES,
    "episodes": Tier.OUTCOMES,
    "values": Tier.LEARNER,
    "advantages": Tier.LEARNER,
    "errors": Tier.LEARNER,
    "policy": Tier.LEARNER,
    "level": Tier.ORACLE,
    "optimal_plan": Tier.ORACLE,
    "optimal_action": Tier.ORACLE,
    "optimal_return": Tier.ORACLE,
}


class KnowledgeError(UserInputError, ValueError):
    """A teacher asked for knowledge above its tier (or for an item no tier gives)."""


def tier_of(item: str) -> Tier:
    """The lowest tier that knows ``item``.

    Example:
        >>> tier_of("optimal_plan").label
        'oracle'
    """
    try:
        return KNOWLEDGE[item]
    except KeyError:
        raise KnowledgeError(f"unknown knowledge item {item!r}; valid: {', '.join(KNOWLEDGE)}") from None


class Teacher:
    """Base of every teacher: its declared :attr:`tier` and the guarded access to knowledge.

    Subclasses set ``tier``; everything they learn about the environment or the learner goes
    through :meth:`require` (or :meth:`read`), so a teacher cannot use what its tier hides.
    """

    tier: Tier = Tier.OUTCOMES  # a class's default; an instance may replace it (curricula's ``tier`` option)

    @property
    def name(self) -> str:
        return type(self).__name__

    def knows(self, item: str) -> bool:
        """Whether this teacher's tier gives ``item``."""
        return tier_of(item) <= self.tier

    def require(self, item: str) -> None:
        """Raise :class:`KnowledgeError` (naming the tier held and the tier needed) unless the tier gives ``item``."""
        needed = tier_of(item)
        if needed > self.tier:
            raise KnowledgeError(f"{self.name} has knowledge tier {self.tier.label!r} but {item!r} needs tier "
                                 f"{needed.label!r} (tiers, lowest first: {TIER_ORDER})")

    def read(self, item: str, source: Mapping[str, Any]) -> Any:
        """``source[item]``, after :meth:`require`; a missing item is a ``KeyError`` naming what ``source`` has."""
        self.require(item)
        if item not in source:
            raise KeyError(f"{item!r} is not given here; given: {', '.join(map(str, source)) or 'nothing'}")
        return source[item]
