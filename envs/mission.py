"""Missions as data: clauses grouped into ordered steps, with one success rule for all.

A mission is a tuple of *steps* done in order ("then"); a step is a tuple of *clauses* done in
any order ("and"). A clause names objects by their index in the level's object list. The same
rules are read by the environment (to verify an episode) and by the oracle (to plan one), so
the two cannot disagree.

Clause rules, checked after every action (as BabyAI's verifier does):
    goto     the cell in front of the agent holds the target
    pickup   the action was ``pickup``, nothing was carried before, the target is carried now
    open     the action was ``toggle`` and the target door in front is open
    putnext  the action was ``drop`` of the target, which now lies next to ``other`` (4-adjacent)
    reach    the agent stands on the goal cell

When a step completes, the next step is checked on the same action.

Example:
    >>> m = Mission(steps=((Clause("goto", 0),), (Clause("pickup", 1),)))
    >>> m.num_clauses
    2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from minigrid.core.actions import Actions
from minigrid.core.world_object import Door

if TYPE_CHECKING:
    from minigrid.minigrid_env import MiniGridEnv

VERBS = ("goto", "pickup", "open", "putnext", "reach")


@dataclass(frozen=True)
class Clause:
    """One thing to do: ``verb`` on object ``target`` (and ``other`` for ``putnext``).

    ``target`` indexes the level's objects; it is ignored by ``reach``.
    """

    verb: str
    target: int = -1
    other: int = -1

    def __post_init__(self) -> None:
        if self.verb not in VERBS:
            raise ValueError(f"unknown clause verb {self.verb!r}; valid: {', '.join(VERBS)}")


@dataclass(frozen=True)
class Mission:
    """Ordered steps of unordered clauses."""

    steps: tuple[tuple[Clause, ...], ...]

    @property
    def num_clauses(self) -> int:
        return sum(len(s) for s in self.steps)


def _adjacent(a: Any, b: Any) -> bool:
    return abs(int(a[0]) - int(b[0])) + abs(int(a[1]) - int(b[1])) == 1


def clause_done(clause: Clause, env: "MiniGridEnv", objects: list, action: int, pre_carrying: Any) -> bool:
    """Whether ``clause`` is satisfied by ``action`` just taken in ``env`` (the env side of the rules)."""
    verb = clause.verb
    if verb == "reach":
        cell = env.grid.get(*env.agent_pos)
        return cell is not None and cell.type == "goal"
    obj = objects[clause.target]
    if verb == "goto":
        fx, fy = env.front_pos
        return 0 <= fx < env.grid.width and 0 <= fy < env.grid.height and env.grid.get(fx, fy) is obj
    if verb == "pickup":
        return action == Actions.pickup and pre_carrying is None and env.carrying is obj
    if verb == "open":
        fx, fy = env.front_pos
        return action == Actions.toggle and env.grid.get(fx, fy) is obj and isinstance(obj, Door) and obj.is_open
    # putnext
    if action != Actions.drop or pre_carrying is not obj or env.carrying is obj:
        return False
    other = objects[clause.other]
    return other.cur_pos is not None and _adjacent(obj.cur_pos, other.cur_pos)


class MissionProgress:
    """Tracks which step is current and which of its clauses are done, during one episode."""

    def __init__(self, mission: Mission):
        self.mission = mission
        self.step = 0
        self.done: set[int] = set()

    @property
    def complete(self) -> bool:
        return self.step >= len(self.mission.steps)

    def update(self, env: "MiniGridEnv", objects: list, action: int, pre_carrying: Any) -> bool:
        """Apply the rules to the action just taken; return True once the mission is complete."""
        while not self.complete:
            clauses = self.mission.steps[self.step]
            for i, clause in enumerate(clauses):
                if i not in self.done and clause_done(clause, env, objects, action, pre_carrying):
                    self.done.add(i)
            if len(self.done) < len(clauses):
                return False
            self.step, self.done = self.step + 1, set()
        return True
