"""The oracle's state space: a compact, hashable state of a level in play and its exact transitions.

A state is the tuple ``(pose, carry, pos, unlocked, opened, step, done)``:

- ``pose``: ``cell * 4 + direction``, with ``cell = y * width + x``;
- ``carry``: index of the carried object in ``objects``, or -1;
- ``pos``: per object, its cell on the floor; -1 while carried; ``-2 - cell`` for a box
  toggled away at ``cell`` (minigrid keeps its last ``cur_pos``, which ``putnext`` still reads);
- ``unlocked``, ``opened``: bit masks over the doors;
- ``step``, ``done``: the current mission step and a bit mask of its clauses already done.

:class:`Model` is built from a fresh level (:meth:`Model.from_level`) or from a live
environment mid-episode (:meth:`Model.from_env`); its :meth:`~Model.transitions` are the
environment's own rules (every turn, move, pickup, toggle and drop on any free cell), and
:meth:`~Model.lower_bound` is an admissible estimate of the steps still needed, for A*
(:mod:`shiftgrid.envs.oracle_bound`).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/Pickup-v0"); _ = env.reset(seed=0)
    >>> m = Model.from_level(env.unwrapped.level)
    >>> m.start[1], m.lower_bound(m.start) > 0
    (-1, True)
"""

from __future__ import annotations

from typing import Any, Iterator

from minigrid.core.actions import Actions
from minigrid.core.grid import Grid

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs.level import Level
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.oracle_bound import INF, LowerBound

LEFT, RIGHT, FORWARD = int(Actions.left), int(Actions.right), int(Actions.forward)
PICKUP, DROP, TOGGLE, DONE = int(Actions.pickup), int(Actions.drop), int(Actions.toggle), int(Actions.done)
State = tuple


class InvalidLevel(ValueError):
    """A level (or env state) the oracle cannot read: an object off the grid or missing from ``objects``."""


class Model:
    """Deterministic transition model of a level over compact tuple states (see the module docstring).

    Args:
        grid: the grid as it stands (walls, lava and goals are read from it; objects must be in ``objects``).
        objects: every pickable object and door, in the order mission clauses index them.
        agent_pos, agent_dir: the agent's pose.
        mission: the mission as data.
        carrying: the carried object (one of ``objects``) or None.
        progress: ``(step, done)``: the current mission step and the indices of its clauses already done.
        drops: search drops anywhere (exact); False searches only drops that complete a ``putnext``.
    """

    def __init__(self, grid: Grid, objects: list, agent_pos: Any, agent_dir: int, mission: Mission,
                 carrying: Any = None, progress: tuple[int, set[int]] = (0, set()), drops: bool = True):
        self.w, self.h = w, h = grid.width, grid.height
        self.drops = drops
        self.blocked = [False] * (w * h)  # walls and lava: never entered by a plan, never dropped on
        self.goal = [False] * (w * h)
        index = {id(o): i for i, o in enumerate(objects)}
        for y in range(h):
            for x in range(w):
                cell, c = grid.get(x, y), y * w + x
                if cell is None:
                    continue
                if cell.type in ("wall", "lava"):
                    self.blocked[c] = True
                elif cell.type == "goal":
                    self.goal[c] = True
                elif id(cell) not in index:
                    raise InvalidLevel(f"the {cell.color} {cell.type} at {(x, y)} is missing from the level's objects")
        self.kind = [o.type for o in objects]
        self.color = [o.color for o in objects]
        self.key_color = [getattr(o, "key_color", o.color) for o in objects]
        self.door = [k == "door" for k in self.kind]
        self.movable = any(k != "door" for k in self.kind)  #: whether anything can be picked up and dropped
        pos, unlocked, opened, carry = [], 0, 0, -1
        for i, o in enumerate(objects):
            if o is carrying:
                carry = i
                pos.append(-1)
                continue
            p = self._cell_of(grid, o, i)
            if p is None:  # not on the grid and not carried: a box toggled away
                if o.type != "box":
                    raise InvalidLevel(f"object {i} ({o.color} {o.type}) is neither on the grid nor carried")
                x, y = (int(v) for v in o.cur_pos)
                pos.append(-2 - (y * w + x))
            else:
                pos.append(p)
            if o.type == "door":
                unlocked |= (not o.is_locked) << i
                opened |= bool(o.is_open) << i
        if carrying is not None and carry < 0:
            raise InvalidLevel(f"the carried {carrying.color} {carrying.type} is not one of the level's objects")
        self.mission = mission
        step, done = progress
        x, y = (int(v) for v in agent_pos)
        if not (0 <= x < w and 0 <= y < h) or self.blocked[y * w + x]:
            raise InvalidLevel(f"agent position {(x, y)} is outside the {w}x{h} grid or in a wall")
        mask = sum(1 << i for i in done)
        self.start: State = ((y * w + x) * 4 + int(agent_dir), carry, tuple(pos), unlocked, opened, step, mask)
        self._bound = LowerBound(self)

    def _cell_of(self, grid: Grid, o: Any, i: int) -> int | None:
        """The cell of ``o`` on ``grid``; None if it is not there (carried or removed)."""
        cp = getattr(o, "cur_pos", None)
        if cp is None:
            raise InvalidLevel(f"object {i} ({o.color} {o.type}) has no position")
        x, y = (int(v) for v in cp)
        if 0 <= x < self.w and 0 <= y < self.h and grid.get(x, y) is o:
            return y * self.w + x
        return None

    @classmethod
    def from_level(cls, level: Level, drops: bool = True) -> "Model":
        """The model of ``level`` at its start; raises :class:`InvalidLevel` for objects off the grid."""
        for i, o in enumerate(level.objects):
            pos = getattr(o, "cur_pos", None)
            x, y = (int(v) for v in pos) if pos is not None else (-1, -1)
            if not (0 <= x < level.grid.width and 0 <= y < level.grid.height) or level.grid.get(x, y) is not o:
                raise InvalidLevel(
                    f"object {i} ({o.color} {o.type}) has position {(x, y)}, but a fresh level holds every object "
                    f"on its {level.grid.width}x{level.grid.height} grid at its position (was the level played?)"
                )
        return cls(level.grid, level.objects, level.agent_pos, level.agent_dir, level.mission, drops=drops)

    @classmethod
    def from_env(cls, env: Any, drops: bool = True) -> "Model":
        """The model of a live :class:`~shiftgrid.envs.env.ShiftGridEnv` (unwrapped) at its current state."""
        p = env.progress
        return cls(env.grid, env.objects, env.agent_pos, env.agent_dir, env.level.mission,
                   carrying=env.carrying, progress=(p.step, set(p.done)), drops=drops)

    # -- geometry ---------------------------------------------------------------------------------
    def front(self, pose: int) -> int:
        c, d = pose >> 2, pose & 3
        y, x = divmod(c, self.w)
        fx, fy = x + DIRECTIONS[d][0], y + DIRECTIONS[d][1]
        return fy * self.w + fx if 0 <= fx < self.w and 0 <= fy < self.h else -1

    def _neighbours(self, c: int) -> Iterator[int]:
        y, x = divmod(c, self.w)
        for dx, dy in DIRECTIONS:
            if 0 <= x + dx < self.w and 0 <= y + dy < self.h:
                yield (y + dy) * self.w + x + dx

    # -- mission rules (the env's, in mission.py) ---------------------------------------------------
    def _clause_done(self, clause: Clause, action: int, pre_carry: int, s: State, dropped: int) -> bool:
        verb, t = clause.verb, clause.target
        if verb == "reach":
            return self.goal[s[0] >> 2]
        if verb == "goto":
            f = self.front(s[0])
            return f >= 0 and s[2][t] == f
        if verb == "pickup":
            return action == PICKUP and pre_carry == -1 and s[1] == t
        if verb == "open":
            return action == TOGGLE and s[2][t] == self.front(s[0]) and bool((s[4] >> t) & 1)
        # putnext: the target was just dropped next to the other object's (last) floor position
        if action != DROP or pre_carry != t:
            return False
        o = s[2][clause.other]
        o = o if o >= 0 else (-2 - o if o <= -2 else -1)
        return o >= 0 and o in self._neighbours(dropped)

    def _finish(self, action: int, s: State, pre_carry: int, dropped: int = -1) -> tuple[int, State, bool]:
        """Apply the mission rules after ``action`` led to ``s``: ``(action, s with progress, complete)``."""
        step, done = s[5], s[6]
        steps = self.mission.steps
        while step < len(steps):
            clauses = steps[step]
            for i, clause in enumerate(clauses):
                if not (done >> i) & 1 and self._clause_done(clause, action, pre_carry, s, dropped):
                    done |= 1 << i
            if done != (1 << len(clauses)) - 1:
                return action, s[:5] + (step, done), False
            step, done = step + 1, 0
        return action, s[:5] + (step, done), True

    # -- dynamics ---------------------------------------------------------------------------------
    def transitions(self, s: State) -> Iterator[tuple[int, State, bool]]:
        """Yield ``(action, next_state, complete)`` for every action that changes the state."""
        pose, carry, pos, unlocked, opened = s[:5]
        c, d = pose >> 2, pose & 3
        rest = s[5:]
        yield self._finish(LEFT, (c * 4 + (d + 3) % 4, carry, pos, unlocked, opened) + rest, carry)
        yield self._finish(RIGHT, (c * 4 + (d + 1) % 4, carry, pos, unlocked, opened) + rest, carry)
        f = self.front(pose)
        if f < 0 or self.blocked[f]:
            return
        i = pos.index(f) if f in pos else -1
        if i < 0 or (self.door[i] and (opened >> i) & 1):
            yield self._finish(FORWARD, (f * 4 + d, carry, pos, unlocked, opened) + rest, carry)
        if i < 0:
            if carry >= 0 and not self.goal[f]:
                moved = pos[:carry] + (f,) + pos[carry + 1:]
                out = self._finish(DROP, (pose, -1, moved, unlocked, opened) + rest, carry, f)
                if self.drops or out[2]:
                    yield out
            return
        kind = self.kind[i]
        if kind != "door":
            if carry < 0:
                gone = pos[:i] + (-1,) + pos[i + 1:]
                yield self._finish(PICKUP, (pose, i, gone, unlocked, opened) + rest, carry)
            if kind == "box":
                gone = pos[:i] + (-2 - f,) + pos[i + 1:]
                yield self._finish(TOGGLE, (pose, carry, gone, unlocked, opened) + rest, carry)
        elif not (unlocked >> i) & 1:
            if carry >= 0 and self.kind[carry] == "key" and self.color[carry] == self.key_color[i]:
                yield self._finish(TOGGLE, (pose, carry, pos, unlocked | (1 << i), opened | (1 << i)) + rest, carry)
        else:
            yield self._finish(TOGGLE, (pose, carry, pos, unlocked, opened ^ (1 << i)) + rest, carry)

    def idle(self, s: State) -> tuple[int, State, bool] | None:
        """The no-op ``done`` action if it advances the mission from ``s`` (only possible before any action)."""
        out = self._finish(DONE, s, s[1])
        return out if out[1] != s or out[2] else None

    def lower_bound(self, s: State) -> int:
        """An admissible (never too large) estimate of the actions still needed from ``s``; INF if none can complete."""
        return self._bound(s)
