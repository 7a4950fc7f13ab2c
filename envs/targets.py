"""Objects named by ``"package.module:attribute"`` strings, imported only when asked for.

Registries across shiftgrid (learners, world-model families) name their entries this way, so
that listing the names imports nothing heavy.

Example:
    >>> import_target("shiftgrid.envs.targets:import_target.__name__")
    'import_target'
"""

from __future__ import annotations

import importlib
from typing import Any


def import_target(target: str) -> Any:
    """The object at ``"package.module:attribute"`` (dotted attributes allowed), importing the module.

    Raises:
        ImportError, AttributeError: as the import or the attribute lookup does.
    """
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
