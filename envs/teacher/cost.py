"""A teacher's cost, counted the same way for every teacher: named counts per step, summed.

Every teacher reports what it cost in ``info["teacher_cost"]``, a mapping of named counts
for that step (advice: ``utterances``, ``advice_tokens``; demonstrations and labels name
theirs). The run services sum them next to the learner's environment steps and log them as
``teacher/<name>``.

Example:
    >>> add_costs({"utterances": 2}, [{"teacher_cost": {"utterances": 1, "advice_tokens": 3}}, {}])
    {'utterances': 3, 'advice_tokens': 3}
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

#: The ``info`` key every teacher puts its per-step cost under.
COST_KEY = "teacher_cost"


def add_costs(total: Mapping[str, float], infos: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """``total`` plus the per-step costs found in ``infos`` (infos without any are skipped)."""
    out = dict(total)
    for info in infos:
        for name, value in (info.get(COST_KEY) or {}).items():
            out[name] = out.get(name, 0) + value
    return out
