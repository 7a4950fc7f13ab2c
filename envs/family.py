"""A family of levels: declared factors plus a generator from (factors, rng) to a level.

Adding a family is one module that builds a :class:`Family`; splits (YAML beside it, or
passed at registration), the oracle, registration and the generic tests then apply to it.

Example:
    >>> from shiftgrid.envs.families.goto import FAMILY
    >>> FAMILY.name, FAMILY.version
    ('GoTo', 1)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Mapping, TypeVar

import numpy as np

from shiftgrid.envs.factors import Factors
from shiftgrid.envs.level import Level

F = TypeVar("F", bound=Factors)


def default_max_steps(factors: Factors) -> int:
    """Episode limit used unless a family sets its own: ``4 * size**2`` (minigrid's habit)."""
    return 4 * factors.size**2


def square_grid(factors: Factors) -> tuple[int, int]:
    """Grid ``(width, height)`` unless a family sets its own: ``size`` x ``size``."""
    return factors.size, factors.size


@dataclass(frozen=True)
class Family(Generic[F]):
    """A named generator of levels.

    Attributes:
        name: CamelCase name; the environment id is ``<namespace>/<name>-v<version>``.
        factors: frozen dataclass type (a :class:`Factors` subclass) with each factor's range.
        generate: ``generate(factors, rng) -> Level``; raise ``LevelError`` to ask for another seed.
        version: bumped whenever dynamics, reward or observations change.
        max_steps: episode limit as a function of the factors.
        description: one line for tables and ``--help``.
        exposure: factor values that make a training level a held-out combination
            (used by the ``exposure`` keyword); None if the family has no composition axis.
        grid_size: ``(width, height)`` of the levels ``generate`` makes from given factors
            (observation spaces are sized for the largest a split can produce).
    """

    name: str
    factors: type[F]
    generate: Callable[[F, np.random.Generator], Level]
    version: int = 0
    max_steps: Callable[[F], int] = default_max_steps
    description: str = ""
    exposure: dict | None = field(default=None, compare=False)
    grid_size: Callable[[F], tuple[int, int]] = square_grid

    def env_id(self, namespace: str = "shiftgrid") -> str:
        return f"{namespace}/{self.name}-v{self.version}"

    def largest_grid(self, values: Mapping[str, Any]) -> tuple[int, int]:
        """The largest ``(width, height)`` of levels whose factors come from ``values``.

        ``values`` maps factor names to a value or a list of values, as a split declares them;
        factors it does not name take their defaults.

        Example:
            >>> from shiftgrid.envs.families.goto import FAMILY
            >>> FAMILY.largest_grid({"size": [6, 14], "num_distractors": [1, 2]})
            (14, 14)
        """
        names = list(values)
        options = [v if isinstance(v, (list, tuple)) else [v] for v in values.values()]
        sizes = [self.grid_size(self.factors(**dict(zip(names, combo)))) for combo in itertools.product(*options)]
        return max(w for w, _ in sizes), max(h for _, h in sizes)
