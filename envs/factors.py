"""Declared factors: the named, range-checked knobs a level generator reads.

A family declares its factors as a frozen dataclass that subclasses :class:`Factors`;
every field is made with :func:`factor`, which records its valid values and a docstring.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class RoomFactors(Factors):
    ...     num_balls: int = factor(2, low=0, high=6, doc="balls on the floor")
    >>> RoomFactors(num_balls=3).num_balls
    3
    >>> RoomFactors(num_balls=9)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    shiftgrid.envs.factors.FactorError: RoomFactors.num_balls=9 is out of range; valid: 0..6
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

from shiftgrid.envs.errors import UserInputError


class FactorError(UserInputError, ValueError):
    """A factor value outside its declared range, or an unknown factor name."""


def factor(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[Any] | None = None,
    doc: str = "",
) -> Any:
    """Declare one factor: its default, its valid values (``low..high`` or ``choices``) and a doc."""
    meta = {"low": low, "high": high, "choices": tuple(choices) if choices is not None else None, "doc": doc}
    return field(default=default, metadata=meta)


def describe_range(f: dataclasses.Field) -> str:
    """Human-readable valid values of a factor field, e.g. ``'5..32'`` or ``'one of: a, b'``."""
    m = f.metadata
    if m.get("choices") is not None:
        return "one of: " + ", ".join(str(c) for c in m["choices"])
    lo, hi = m.get("low"), m.get("high")
    if lo is not None or hi is not None:
        return f"{'' if lo is None else lo}..{'' if hi is None else hi}"
    return "any"


def _check_value(cls_name: str, f: dataclasses.Field, value: Any) -> None:
    m = f.metadata
    if m.get("choices") is not None:
        if value not in m["choices"]:
            raise FactorError(f"{cls_name}.{f.name}={value!r} is not valid; valid: {describe_range(f)}")
        return
    lo, hi = m.get("low"), m.get("high")
    if lo is None and hi is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FactorError(f"{cls_name}.{f.name}={value!r} must be a number; valid: {describe_range(f)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise FactorError(f"{cls_name}.{f.name}={value!r} is out of range; valid: {describe_range(f)}")


@dataclass(frozen=True)
class Factors:
    """Base class of every family's factors. Fields here are common to all families.

    Attributes:
        size: side of the square grid, outer walls included.
        slip: probability that a ``forward`` action turns the agent left or right instead (rules axis).
        palette: colour remapping applied to the observed colour codes (observation axis).
        view: how far the agent sees; the image stays 7x7 and cells beyond ``view`` are unseen.
    """

    size: int = factor(8, low=5, high=32, doc="side of the square grid, outer walls included")
    slip: float = factor(0.0, low=0.0, high=0.9, doc="probability that 'forward' turns the agent instead")
    palette: str = factor("identity", choices=("identity", "swap", "rotate"), doc="observed colour remapping")
    view: int = factor(7, choices=(3, 5, 7), doc="observed view size inside the 7x7 image")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_value(type(self).__name__, f, getattr(self, f.name))

    @classmethod
    def names(cls) -> list[str]:
        """Names of all factors, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def field_of(cls, name: str) -> dataclasses.Field:
        """The dataclass field of factor ``name``; raises :class:`FactorError` naming the valid ones."""
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f
        raise FactorError(f"unknown factor {name!r} for {cls.__name__}; valid: {', '.join(cls.names())}")

    @classmethod
    def check(cls, name: str, value: Any) -> None:
        """Raise :class:`FactorError` unless ``value`` is valid for factor ``name``."""
        _check_value(cls.__name__, cls.field_of(name), value)

    def as_dict(self) -> dict[str, Any]:
        """The factor values as a plain dict."""
        return dataclasses.asdict(self)
