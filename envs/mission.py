"""Missions as data: clauses grouped into ordered steps, and the env's side of their one success rule.

A mission is a tuple of *steps* done in order ("then"); a step is a tuple of *clauses* done in
any order ("and"). A clause names objects by their index in the level's object list.

What makes a clause hold after an action, and how a mission advances, are the rules of
:mod:`shiftgrid.envs.rules` (:data:`~shiftgrid.envs.rules.CLAUSE_RULES`,
:func:`~shiftgrid.envs.rules.advance`), read by the tensor engine, the oracle and, through
:class:`MissionProgress`, the minigrid env alike:

    goto     the object in front of the agent is the target
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

from minigrid.core.world_object import Door

from shiftgrid.envs import rules

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


def _bit(index: int) -> int:
    return 0 if index < 0 else 1 << index


class MissionProgress:
    """Tracks which step is current and which of its clauses are done, during one episode of a minigrid env.

    The facts the rules read are taken from the env after each action (the object in front, what
    is carried, where objects last lay on the floor); objects are known by identity in ``objects``.
    """

    def __init__(self, mission: Mission):
        self.mission = mission
        self.step = 0
        self._done = 0  # clause bits over the whole mission
        flat = [c for step in mission.steps for c in step]
        self._verbs = [rules.VERB_CODES[c.verb] for c in flat]
        self._targets = [_bit(c.target) for c in flat]
        self._others = [_bit(c.other) for c in flat]
        self._offsets = [sum(len(st) for st in mission.steps[:k]) for k in range(len(mission.steps) + 1)]
        self._step_masks = [sum(1 << i for i in range(self._offsets[k], self._offsets[k + 1]))
                            for k in range(len(mission.steps))]

    @property
    def complete(self) -> bool:
        return self.step >= len(self.mission.steps)

    @property
    def done(self) -> set[int]:
        """Indices (within the current step) of its clauses already done."""
        if self.complete:
            return set()
        base = self._offsets[self.step]
        return {i - base for i in range(base, self._offsets[self.step + 1]) if self._done >> i & 1}

    @done.setter
    def done(self, indices: set[int]) -> None:
        base = self._offsets[min(self.step, len(self.mission.steps))]
        self._done = sum(1 << (base + i) for i in indices)

    def step_clauses(self, k: int) -> int:
        """The clause bits of step ``k`` (0 past the last)."""
        return self._step_masks[k] if k < len(self._step_masks) else 0

    def update(self, env: "MiniGridEnv", objects: list, action: int, pre_carrying: Any) -> bool:
        """Apply the rules to the action just taken in ``env``; return True once the mission is complete."""
        if self.complete:
            return True
        index = {id(o): i for i, o in enumerate(objects)}
        fx, fy = (int(v) for v in env.front_pos)
        inside = 0 <= fx < env.grid.width and 0 <= fy < env.grid.height
        in_front = env.grid.get(fx, fy) if inside else None

        def fact(name: str) -> Any:
            if name == "front":
                return _bit(index.get(id(in_front), -1)) if in_front is not None else 0
            if name == "carry":
                return _bit(index.get(id(env.carrying), -1)) if env.carrying is not None else 0
            if name == "pre_carry":
                return _bit(index.get(id(pre_carrying), -1)) if pre_carrying is not None else 0
            if name == "dropped":
                return pre_carrying is not None and env.carrying is None and action == rules.DROP
            if name == "front_open":
                return isinstance(in_front, Door) and bool(in_front.is_open)
            if name == "on_goal":
                cell = env.grid.get(*env.agent_pos)
                return cell is not None and cell.type == "goal"
            if name == "ghost_adjacent":  # where each object last lay on the floor (minigrid's cur_pos)
                return sum(1 << i for i, o in enumerate(objects) if o.cur_pos is not None
                           and abs(int(o.cur_pos[0]) - fx) + abs(int(o.cur_pos[1]) - fy) == 1)
            raise KeyError(f"the minigrid env has no fact {name!r} (BabyAI's recorded cells are the engine's)")

        first, last = self._offsets[self.step], self._offsets[-1]
        holds = sum(1 << i for i in range(first, last) if not self._done >> i & 1
                    and rules.clause_holds_lazily(self._verbs[i], self._targets[i], self._others[i], action, fact))
        if holds:
            self.step, self._done = rules.advance(self.step, self._done, holds, self.step_clauses, len(self.mission.steps))
        return self.complete
