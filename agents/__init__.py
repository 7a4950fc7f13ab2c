"""shiftgrid.agents: learners, their runs, and the evaluator.

The evaluator's Python API is exported here (imported on first use, so that importing a
submodule such as :mod:`shiftgrid.agents.run.rundir` stays light):

- :func:`evaluate_policy` — score any policy (SB3 ``predict`` or a batched function) on the
  shift splits, with the report of ``shiftgrid evaluate`` (:mod:`shiftgrid.agents.evaluation.scoring`).
- :func:`evaluate_agents`, :class:`Candidate`, :class:`Evaluation` — the same, for agents with
  what is known of their training (what ``shiftgrid evaluate`` calls).
- :func:`load_agent` — a trained shiftgrid run as an agent; :func:`load_zip` — an SB3 ``.zip``.

Example:
    >>> import shiftgrid.agents as agents
    >>> agents.evaluate_policy.__module__
    'shiftgrid.agents.evaluation.scoring'
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate_policy": "shiftgrid.agents.evaluation.scoring",
    "evaluate_agents": "shiftgrid.agents.evaluation.scoring",
    "Candidate": "shiftgrid.agents.evaluation.scoring",
    "Evaluation": "shiftgrid.agents.evaluation.scoring",
    "EpisodeResult": "shiftgrid.agents.evaluation.episodes",
    "PolicyError": "shiftgrid.agents.evaluation.episodes",
    "FunctionPolicy": "shiftgrid.agents.evaluation.policies",
    "load_agent": "shiftgrid.agents.run.checkpoint",
    "load_zip": "shiftgrid.agents.sb3.zip_model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'shiftgrid.agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
