"""The oracle's state space: a compact, hashable state of a level in play and its exact transitions.

A state is the tuple ``(pose, carry, pos, unlocked, opened, step, done)``:

- ``pose``: ``cell * 4 + direction``, with ``cell = y * width + x``;
- ``carry``: index of the carried object in ``objects``, or -1;
- ``pos``: per object, its cell on the floor; -1 while carried; ``-2 - cell`` for a box
  toggled away at ``cell`` (minigrid keeps its last ``cur_pos``, which ``putnext`` still reads);
- ``unlocked``, ``opened``: bit masks over the doors;
- ``step``, ``done``: the current mission step and a bit mask of its clauses already done.

:class:`Model` is built from a fresh level (:meth:`Model.from_level`) or from a live
environment mid-episode (:meth:`Model.from_env`); its :meth:`~Model.transitions` apply the
game's one rule set, :mod:`shiftgrid.envs.rules` (what each action does to the cell in
front and to what is carried, when a clause holds, how the mission advances), to every turn,
move, pickup, toggle and drop on any free cell; moves into lava (a failure) are left out. And
:meth:`~Model.lower_bound` is an admissible estimate of the steps still needed, for A*
(:mod:`shiftgrid.envs.oracle_bound`).

Example:
    >>> import gymnasium as gym, shiftgrid.envs
    >>> env = gym.make("shiftgrid/Pickup-v1"); _ = env.reset(seed=0)
    >>> m = Model.from_level(env.unwrapped.level)
    >>> m.start[1], m.lower_bound(m.start) > 0
    (-1, True)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterator

from minigrid.core.constants import COLOR_TO_IDX
from minigrid.core.grid import Grid

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs import rules
from shiftgrid.envs.cell_codes import CLOSED, EMPTY, LOCKED, OPEN, WALL, code, code_of, decode
from shiftgrid.envs.rules import DONE, DROP, FORWARD, LEFT, PICKUP, RIGHT, TOGGLE
from shiftgrid.envs.level import Level
from shiftgrid.envs.mission import Mission
from shiftgrid.envs.oracle_bound import INF, LowerBound

__all__ = ["DONE", "DROP", "FORWARD", "LEFT", "PICKUP", "RIGHT", "TOGGLE", "INF", "InvalidLevel", "Model", "State"]

#: The actions that change a state, in the order a search tries them (turns, forward, drop, pickup, toggle).
_ACTIONS = (LEFT, RIGHT, FORWARD, DROP, PICKUP, TOGGLE)
State = tuple


@lru_cache(maxsize=None)
def _effects(front: int, carry: int, opens_with: int) -> tuple[tuple[int, rules.Effect], ...]:
    """The effects of :data:`_ACTIONS` that change something and do not end in lava, in that order."""
    out = []
    for a in _ACTIONS:
        e = rules.transition(a, front, carry, opens_with)
        if not e.dies and (e.turn or e.move or e.front != front or e.carry != carry):
            out.append((a, e))
    return tuple(out)


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
        self.blocked = [False] * (w * h)  # walls and lava: never entered by a plan, never dropped on (the bound's relaxation)
        self.goal = [False] * (w * h)
        self.static = [EMPTY] * (w * h)  # the code of every cell without an object (walls, lava, goals, floor)
        index = {id(o): i for i, o in enumerate(objects)}
        for y in range(h):
            for x in range(w):
                cell, c = grid.get(x, y), y * w + x
                if cell is None:
                    continue
                if id(cell) in index:
                    continue
                if cell.type in ("door", "key", "ball", "box"):
                    raise InvalidLevel(f"the {cell.color} {cell.type} at {(x, y)} is missing from the level's objects")
                self.static[c] = code_of(cell)
                self.blocked[c] = cell.type in ("wall", "lava")
                self.goal[c] = cell.type == "goal"
        self.kind = [o.type for o in objects]
        self.color = [o.color for o in objects]
        self.key_color = [getattr(o, "key_color", o.color) for o in objects]
        self.door = [k == "door" for k in self.kind]
        self.codes = [code_of(o) // 3 * 3 for o in objects]  # state 0; doors' state is in the state's bits
        self.opens = [COLOR_TO_IDX[k] for k in self.key_color]
        for i, o in enumerate(objects):
            if getattr(o, "contains", None) is not None:
                raise InvalidLevel(f"object {i} (a {o.color} box) holds a {o.contains.type}; the oracle plans with empty boxes")
        steps = mission.steps
        flat = [c for st in steps for c in st]
        self._verbs = [rules.VERB_CODES[c.verb] for c in flat]
        self._targets = [0 if c.target < 0 else 1 << c.target for c in flat]
        self._others = [0 if c.other < 0 else 1 << c.other for c in flat]
        self._needs = [rules.CLAUSE_RULES[v][0] for v in self._verbs]  # the action each clause needs (None: any)
        self._looking_at: tuple = ()
        self._offsets = [sum(len(st) for st in steps[:k]) for k in range(len(steps) + 1)]
        self._step_masks = [((1 << len(st)) - 1) << self._offsets[k] for k, st in enumerate(steps)]
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

    # -- the rules (shiftgrid.envs.rules) on this state encoding -----------------------------
    def _code(self, i: int, unlocked: int, opened: int) -> int:
        """The code of object ``i`` (doors in their state)."""
        if not self.door[i]:
            return self.codes[i]
        state = OPEN if (opened >> i) & 1 else CLOSED if (unlocked >> i) & 1 else LOCKED
        return self.codes[i] + state

    def _step_clauses(self, k: int) -> int:
        return self._step_masks[k] if k < len(self._step_masks) else 0

    def _fact(self, name: str) -> int | bool:
        """A fact the clause rules read (:class:`~shiftgrid.envs.rules.Facts`), about the state :meth:`_finish` is looking at."""
        action, s, pre_carry = self._looking_at
        pose, carry, pos, unlocked, opened = s[:5]
        if name == "carry":
            return 0 if carry < 0 else 1 << carry
        if name == "pre_carry":
            return 0 if pre_carry < 0 else 1 << pre_carry
        if name == "dropped":
            return pre_carry >= 0 and carry < 0 and action == DROP
        if name == "on_goal":
            return self.goal[pose >> 2]
        f = self.front(pose)
        ahead = pos.index(f) if f >= 0 and f in pos else -1
        if name == "front":
            return 0 if ahead < 0 else 1 << ahead
        if name == "front_open":
            return ahead >= 0 and self.door[ahead] and bool((opened >> ahead) & 1)
        if name == "ghost_adjacent":  # each object's last floor cell (a box toggled away keeps its own)
            near = set(self._neighbours(f)) if f >= 0 else set()
            return sum(1 << j for j, p in enumerate(pos) if (p if p >= 0 else -2 - p if p <= -2 else -1) in near)
        raise KeyError(f"the oracle has no fact {name!r}; it plans shiftgrid's clauses only")

    def _finish(self, action: int, s: State, pre_carry: int) -> tuple[int, State, bool]:
        """Apply the mission rules after ``action`` led to ``s``: ``(action, s with progress, complete)``."""
        step, done = s[5], s[6]
        first = self._offsets[step]
        done_flat = done << first
        holds = 0
        self._looking_at = (action, s, pre_carry)
        for i in range(first, self._offsets[-1]):
            need = self._needs[i]
            if (need is None or need == action) and not (done_flat >> i) & 1 and rules.clause_holds_lazily(
                    self._verbs[i], self._targets[i], self._others[i], action, self._fact):
                holds |= 1 << i
        if not holds:
            return action, s, False
        nsteps = len(self._step_masks)
        step, flat = rules.advance(step, done_flat, holds, self._step_clauses, nsteps)
        done = flat >> self._offsets[step] if step < nsteps else 0
        return action, s[:5] + (step, done), step >= nsteps

    # -- dynamics ---------------------------------------------------------------------------------
    def transitions(self, s: State) -> Iterator[tuple[int, State, bool]]:
        """Yield ``(action, next_state, complete)`` for every action that changes the state (none into lava)."""
        pose, carry, pos, unlocked, opened = s[:5]
        c, d = pose >> 2, pose & 3
        rest = s[5:]
        f = self.front(pose)
        i = pos.index(f) if f >= 0 and f in pos else -1
        front = WALL if f < 0 else self.static[f] if i < 0 else self._code(i, unlocked, opened)
        held = EMPTY if carry < 0 else self.codes[carry]
        opens = self.opens[i] if i >= 0 else 0
        for a, e in _effects(front, held, opens):
            if e.turn:
                nxt = (c * 4 + (d + e.turn) % 4, carry, pos, unlocked, opened)
            elif e.move:
                nxt = (f * 4 + d, carry, pos, unlocked, opened)
            elif e.moved == rules.PICKED:
                nxt = (pose, i, pos[:i] + (-1,) + pos[i + 1:], unlocked, opened)
            elif e.moved == rules.DROPPED:
                nxt = (pose, -1, pos[:carry] + (f,) + pos[carry + 1:], unlocked, opened)
                out = self._finish(a, nxt + rest, carry)
                if self.drops or out[2]:
                    yield out
                continue
            elif e.moved == rules.CONSUMED:
                nxt = (pose, carry, pos[:i] + (-2 - f,) + pos[i + 1:], unlocked, opened)
            else:  # a door changed state
                state = decode(e.front)[2]
                bit = 1 << i
                nxt = (pose, carry, pos, unlocked | bit if state != LOCKED else unlocked & ~bit,
                       opened | bit if state == OPEN else opened & ~bit)
            yield self._finish(a, nxt + rest, carry)

    def idle(self, s: State) -> tuple[int, State, bool] | None:
        """The no-op ``done`` action if it advances the mission from ``s`` (only possible before any action)."""
        out = self._finish(DONE, s, s[1])
        return out if out[1] != s or out[2] else None

    def lower_bound(self, s: State) -> int:
        """An admissible (never too large) estimate of the actions still needed from ``s``; INF if none can complete."""
        return self._bound(s)
