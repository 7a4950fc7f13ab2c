"""A family of levels: declared factors plus a generator from (factors, rng) to a level.

Adding a family is one module that builds a :class:`Family`; splits (YAML beside it, or
passed at registration), the oracle, registration and the generic tests then apply to it.

Example:
    >>> from shiftgrid.envs.families.goto import FAMILY
    >>> FAMILY.name, FAMILY.version
    ('GoTo', 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from shiftgrid.envs.factors import Factors
from shiftgrid.envs.level import Level


def default_max_steps(factors: Factors) -> int:
    """Episode limit used unless a family sets its own: ``4 * size**2`` (minigrid's habit)."""
    return 4 * factors.size**2


@dataclass(frozen=True)
class Family:
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
    """

    name: str
    factors: type[Factors]
    generate: Callable[[Factors, np.random.Generator], Level]
    version: int = 0
    max_steps: Callable[[Factors], int] = default_max_steps
    description: str = ""
    exposure: dict | None = field(default=None, compare=False)

    def env_id(self, namespace: str = "shiftgrid") -> str:
        return f"{namespace}/{self.name}-v{self.version}"
