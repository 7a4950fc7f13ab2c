"""Where evaluation episodes run: the tensor engine, the minigrid env, or each split where it can (the names only).

``auto`` plays a split on the tensor engine wherever the engine plays it as the minigrid env would,
else on the minigrid env; ``engine`` and ``minigrid`` force one
(:mod:`~shiftgrid.agents.evaluation.engine_episodes` plays them). This module imports nothing heavy,
so the command line and the run configuration can name the choices.

Example:
    >>> check_backend("auto")
    'auto'
"""

from __future__ import annotations

from shiftgrid.envs.errors import UserInputError

#: Where evaluation episodes run: ``auto`` (the engine where it can, else the minigrid env), ``engine``, ``minigrid``.
BACKENDS = ("auto", "engine", "minigrid")


class EngineRefused(UserInputError, ValueError):
    """``backend="engine"`` was asked for a split the engine cannot play as the minigrid env would (one line, exit 2)."""


def check_backend(backend: str) -> str:
    """``backend`` if it is one of :data:`BACKENDS`, else :class:`EngineRefused` naming them.

    Example:
        >>> try:
        ...     check_backend("gpu")
        ... except EngineRefused as e:
        ...     print(e)
        unknown evaluation backend 'gpu'; valid: auto, engine, minigrid
    """
    if backend not in BACKENDS:
        raise EngineRefused(f"unknown evaluation backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return backend
