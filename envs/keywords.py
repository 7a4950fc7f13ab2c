"""Keyword arguments of a shiftgrid env: factor values over the split's, minigrid's options, ``max_steps``.

``gym.make(env_id, size=9, num_distractors=5)`` draws every level of the split with those
factor values (a list is drawn from uniformly, as in split YAML); they are validated as split
YAML is. Any other keyword must be one of minigrid's rendering options.

Example:
    >>> from shiftgrid.envs import family_splits
    >>> splits = family_splits("GoTo")
    >>> split, rest = split_with_factors(splits.family, splits["size/far"], {"size": 9, "render_mode": "rgb_array"})
    >>> split.factors["size"], split.seed_start == splits["size/far"].seed_start, rest
    (9, True, {'render_mode': 'rgb_array'})
    >>> split_with_factors(splits.family, splits["train"], {"colour": "red"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shiftgrid.envs.shift.split.SplitError: unknown keyword 'colour' for GoTo; valid: factors size, slip, ...
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping

from shiftgrid.envs.family import Family
from shiftgrid.envs.shift.split import Split, SplitError, _check_factors

#: minigrid's own keywords a shiftgrid env passes on (the grid size, view and limit come from the level).
MINIGRID_OPTIONS = ("render_mode", "screen_size", "highlight", "tile_size", "agent_pov")
#: shiftgrid's own keywords, named in error messages.
ENV_OPTIONS = ("split", "splits", "exposure", "oracle", "max_steps")


def split_with_factors(family: Family, split: Split, kwargs: Mapping[str, Any]) -> tuple[Split, dict[str, Any]]:
    """``split`` with the factor keywords among ``kwargs`` replacing its factor values; the other keywords.

    The split keeps its name, seed range and hash bucket; only its factor distribution changes.
    Raises :class:`SplitError` for an unknown keyword or an invalid factor value.
    """
    names = family.factors.names()
    unknown = [k for k in kwargs if k not in names and k not in MINIGRID_OPTIONS]
    if unknown:
        raise SplitError(
            f"unknown keyword {unknown[0]!r} for {family.name}; valid: factors {', '.join(names)}; "
            f"options {', '.join(ENV_OPTIONS + MINIGRID_OPTIONS)}")
    factors = {k: v for k, v in kwargs.items() if k in names}
    rest = {k: v for k, v in kwargs.items() if k not in names}
    if not factors:
        return split, rest
    _check_factors(family, f"{family.name} keyword arguments", factors)
    return dataclasses.replace(split, factors={**split.factors, **factors}), rest


def check_max_steps(max_steps: Any) -> int | None:
    """``max_steps`` if it is None or a positive integer; otherwise :class:`SplitError` naming it.

    Example:
        >>> check_max_steps(50), check_max_steps(None)
        (50, None)
    """
    if max_steps is None:
        return None
    if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) or max_steps < 1:
        raise SplitError(f"max_steps={max_steps!r} is not valid; valid: a positive integer, "
                         "or None for the family's limit (which depends on the level's factors)")
    return int(max_steps)
