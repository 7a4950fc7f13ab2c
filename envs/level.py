"""A generated level, the small authoring API generators use, and the canonical level hash.

Example (a generator's body):
    >>> import numpy as np
    >>> from minigrid.core.world_object import Ball
    >>> from shiftgrid.envs.mission import Clause, Mission
    >>> b = LevelBuilder(6, 6, np.random.default_rng(0))
    >>> target = b.place(Ball("red"))
    >>> start = b.place_agent()
    >>> level = b.build("go to the red ball", Mission(((Clause("goto", target),),)))
    >>> len(level_hash(level))
    16
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

import numpy as np
from minigrid.core.grid import Grid
from minigrid.core.world_object import Door, Key, Wall, WorldObj

from shiftgrid.envs.mission import Mission

Cell = tuple[int, int]


class LevelError(RuntimeError):
    """A generator could not build a level from these factors and this seed."""


def cell_of(obj: WorldObj) -> Cell:
    """The cell ``(x, y)`` that ``obj`` is on (``cur_pos`` as ints); raises :class:`LevelError` if it is on none."""
    if obj.cur_pos is None:
        raise LevelError(f"the {obj.color} {obj.type} is on no cell")
    return int(obj.cur_pos[0]), int(obj.cur_pos[1])


class KeyedDoor(Door):
    """A door whose lock opens with a key of ``key_color`` (its own colour unless a rule changes it)."""

    def __init__(self, color: str, is_open: bool = False, is_locked: bool = False, key_color: str | None = None):
        super().__init__(color, is_open=is_open, is_locked=is_locked)
        self.key_color = key_color or color

    def toggle(self, env: Any, pos: Any) -> bool:
        if self.is_locked:
            carried = env.carrying
            if isinstance(carried, Key) and carried.color == self.key_color:
                self.is_locked, self.is_open = False, True
                return True
            return False
        self.is_open = not self.is_open
        return True


@dataclass
class Level:
    """Everything a generator decides: the grid, the agent's pose, the mission and its objects.

    Attributes:
        grid: a minigrid ``Grid`` (outer walls included).
        agent_pos: the agent's start cell ``(x, y)``.
        agent_dir: 0=right, 1=down, 2=left, 3=up (minigrid's convention).
        mission_text: the instruction, in the grammar of :mod:`shiftgrid.envs.language`.
        mission: the same instruction as data (clauses over ``objects``).
        objects: every pickable object and door, in placement order; clauses index this list.
    """

    grid: Grid
    agent_pos: Cell
    agent_dir: int
    mission_text: str
    mission: Mission
    objects: list[WorldObj] = field(default_factory=list)


@lru_cache(maxsize=None)
def _frame(width: int, height: int) -> tuple[tuple[int, ...], tuple[Cell, ...]]:
    """Flat indices of a grid's outer wall, and its interior cells ``(x, y)`` row by row."""
    border = tuple(y * width + x for y in range(height) for x in range(width)
                   if x in (0, width - 1) or y in (0, height - 1))
    return border, tuple((x, y) for y in range(1, height - 1) for x in range(1, width - 1))


class LevelBuilder:
    """A walled room and helpers to place objects and the agent at random free cells.

    Attributes:
        interior: every cell inside the outer wall, row by row (``(x, y)``; shared, read-only).
    """

    def __init__(self, width: int, height: int, rng: np.random.Generator):
        self.rng = rng
        self.grid = Grid(width, height)
        border, self.interior = _frame(width, height)
        cells = self.grid.grid
        for i in border:  # what ``wall_rect(0, 0, width, height)`` does, without a method call per cell
            cells[i] = Wall()
        self.objects: list[WorldObj] = []
        self.agent_pos: Cell | None = None
        self.agent_dir = 0

    def choice(self, seq: Sequence[Any]) -> Any:
        """A uniformly random element of ``seq``."""
        if len(seq) == 0:
            raise LevelError("nothing to choose from")
        return seq[int(self.rng.integers(len(seq)))]

    def free_cells(self, cells: Sequence[Cell] | None = None) -> list[Cell]:
        """Empty cells, in the order of ``cells`` (default: :attr:`interior`, row by row), excluding the agent's.

        Reads the grid's cell list directly (no per-cell method call): generators call this on
        every placement.
        """
        g, w, agent = self.grid.grid, self.grid.width, self.agent_pos
        return [c for c in (self.interior if cells is None else cells) if g[c[1] * w + c[0]] is None and c != agent]

    def put(self, obj: WorldObj, x: int, y: int) -> int:
        """Put ``obj`` at ``(x, y)``; pickable objects and doors join :attr:`objects`. Returns its index or -1."""
        self.grid.set(x, y, obj)
        obj.init_pos = obj.cur_pos = (x, y)
        if obj.can_pickup() or obj.type in ("door", "box"):
            self.objects.append(obj)
            return len(self.objects) - 1
        return -1

    def place(self, obj: WorldObj, cells: Sequence[Cell] | None = None) -> int:
        """Put ``obj`` on a random free cell (among ``cells`` if given); see :meth:`put`."""
        free = self.free_cells(cells)
        if not free:
            raise LevelError(f"no free cell left for a {obj.color} {obj.type}")
        return self.put(obj, *self.choice(free))

    def place_agent(self, cells: Sequence[Cell] | None = None, direction: int | None = None) -> Cell:
        """Put the agent on a random free cell, facing ``direction`` (random if None)."""
        free = self.free_cells(cells)
        if not free:
            raise LevelError("no free cell left for the agent")
        self.agent_pos = tuple(self.choice(free))
        self.agent_dir = int(self.rng.integers(4)) if direction is None else direction
        return self.agent_pos

    def build(self, mission_text: str, mission: Mission) -> Level:
        """Freeze the builder's state into a :class:`Level`."""
        if self.agent_pos is None:
            raise LevelError("place_agent() was never called")
        return Level(self.grid, self.agent_pos, self.agent_dir, mission_text, mission, list(self.objects))


def playable_copy(level: Level) -> tuple[Grid, list[WorldObj]]:
    """A copy of ``level``'s grid and objects for one episode: play changes the copies, never the level.

    Objects that play may change (every one in ``level.objects``: moved, carried, opened,
    unlocked) are copied; walls, lava and goals never change and are shared.

    Example:
        >>> from minigrid.core.world_object import Key
        >>> from shiftgrid.envs.mission import Clause
        >>> b = LevelBuilder(5, 5, np.random.default_rng(0)); k = b.place(Key("red")); _ = b.place_agent()
        >>> level = b.build("pick up the red key", Mission(((Clause("pickup", k),),)))
        >>> grid, objects = playable_copy(level)
        >>> objects[0] is level.objects[0], grid.get(*objects[0].cur_pos) is objects[0]
        (False, True)
    """
    grid = copy.copy(level.grid)
    grid.grid = list(level.grid.grid)
    objects = []
    for o in level.objects:
        c = copy.copy(o)
        if getattr(o, "contains", None) is not None:
            c.contains = copy.copy(o.contains)
        x, y = cell_of(o)
        if not (0 <= x < grid.width and 0 <= y < grid.height) or level.grid.get(x, y) is not o:
            raise LevelError(f"the level's {o.color} {o.type} has position {(x, y)}, where the grid does not hold it")
        c.cur_pos = c.init_pos = (x, y)
        grid.set(x, y, c)
        objects.append(c)
    return grid, objects


def level_hash(level: Level, extra: Any = ()) -> str:
    """Canonical 16-hex-digit hash of a level: layout, objects (and door keys), agent pose, mission.

    ``extra`` adds anything else that changes the level's dynamics or observations (rules, palette).
    Two levels with the same hash are the same level to an agent.
    """
    h = hashlib.sha1()
    h.update(repr([None if c is None else c.encode() for c in level.grid.grid]).encode())
    h.update(repr((level.grid.width, level.grid.height, tuple(level.agent_pos), level.agent_dir)).encode())
    doors = sorted((cell_of(o), o.key_color) for o in level.objects if isinstance(o, KeyedDoor))
    h.update(repr((level.mission_text, doors, extra)).encode())
    return h.hexdigest()[:16]
