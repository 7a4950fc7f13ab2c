"""Maze: reach the goal square through a generated layout, around any lava ("reach the goal").

The layout (:mod:`shiftgrid.envs.families.layouts`: rooms, perfect mazes, WFC ruins and caves)
is carved first. The agent starts on a random floor cell, facing a random way, and the goal
lies ``size - 2`` or more steps away (or as far as the floor allows) and at least half as far as
the farthest cell. Lava cells go on random floor cells, never cutting every path from agent to
goal. Stepping on lava ends the episode as a failure (reward 0); the oracle treats lava as wall.

Version 1 gives an episode ``4 * size**2`` steps (minigrid's limit for its navigation grids); version
0 (deprecated) gave ``2 * size**2``. The oracle needs at most about ``0.5 * size**2``; the longer limit
lifts a uniformly random policy's success on the training split from about 1% to 5%.

Example:
    >>> import numpy as np
    >>> level = generate(MazeFactors(size=9, layout="rooms", lava=2), np.random.default_rng(0))
    >>> level.mission_text
    'reach the goal'
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from minigrid.core.world_object import Goal, Lava, Wall

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs.factors import Factors, factor
from shiftgrid.envs.families.layouts import MAZE_LAYOUTS, MIN_SIZE, Walls, carve, distances, floor_cells
from shiftgrid.envs.family import Family
from shiftgrid.envs.level import Cell, Level, LevelBuilder, LevelError
from shiftgrid.envs.mission import Clause, Mission


@dataclass(frozen=True)
class MazeFactors(Factors):
    """Factors of Maze (plus the common ones: slip, palette, view)."""

    size: int = factor(9, low=MIN_SIZE, high=32, doc="side of the square grid, outer walls included")
    layout: str = factor("maze", choices=tuple(MAZE_LAYOUTS), doc="rooms, perfect maze, or WFC ruins / caves")
    lava: int = factor(0, low=0, high=32, doc="lava cells; at least one path from agent to goal avoids them all")


#: The instruction: the same with or without lava, so a rules split changes dynamics, not language.
MISSION = "reach the goal"


def place_agent_and_goal(walls: Walls, rng: np.random.Generator) -> tuple[Cell, Cell]:
    """A random agent cell, and a goal ``size - 2`` or more steps away (the farthest cells, if none is
    that far) and at least half as far as the farthest cell.

    Example:
        >>> from shiftgrid.envs.families.layouts import carve
        >>> walls = carve("maze", 9, np.random.default_rng(0))
        >>> agent, goal = place_agent_and_goal(walls, np.random.default_rng(0))
        >>> int(distances(walls, agent)[goal[1], goal[0]]) >= 7
        True
    """
    floor = floor_cells(walls)
    agent = floor[int(rng.integers(len(floor)))]
    d = distances(walls, agent)
    far = int(d.max())
    if far < 2:
        raise LevelError(f"the layout's floor has {len(floor)} cells; a goal two steps from the agent needs more")
    need = max(-(-far // 2), min(walls.shape[0] - 2, far))
    ys, xs = np.nonzero(d >= need)
    k = int(rng.integers(len(xs)))
    return agent, (int(xs[k]), int(ys[k]))


def shortest_path(walls: Walls, start: Cell, end: Cell) -> list[Cell]:
    """Cells of a shortest 4-connected floor path from ``start`` to ``end`` (both included); [] if none.

    Example:
        >>> from shiftgrid.envs.families.layouts import carve
        >>> walls = carve("rooms", 7, np.random.default_rng(0))
        >>> path = shortest_path(walls, (1, 1), (5, 5))
        >>> path[0], path[-1]
        ((1, 1), (5, 5))
    """
    d = distances(walls, end)
    x, y = start
    if d[y, x] < 0:
        return []
    path = [start]
    while (x, y) != end:
        steps = ((x + dx, y + dy) for dx, dy in DIRECTIONS)
        x, y = next((nx, ny) for nx, ny in steps if d[ny, nx] == d[y, x] - 1)
        path.append((x, y))
    return path


def place_lava(walls: Walls, agent: Cell, goal: Cell, count: int, rng: np.random.Generator) -> list[Cell]:
    """``count`` random floor cells (not agent or goal) that leave a lava-free path from agent to goal.

    A candidate off the current shortest path cannot cut every path; one on it is kept only if
    the goal stays reachable around it.

    Example:
        >>> from shiftgrid.envs.families.layouts import carve
        >>> walls = carve("rooms", 9, np.random.default_rng(0))
        >>> lava = place_lava(walls, (1, 1), (7, 7), 4, np.random.default_rng(0))
        >>> len(lava), (1, 1) in lava or (7, 7) in lava
        (4, False)
    """
    candidates = [c for c in floor_cells(walls) if c not in (agent, goal)]
    order = rng.permutation(len(candidates))  # drawn even for no lava: the rest of the level depends on it
    if count == 0:
        return []
    blocked = walls.copy()
    path = set(shortest_path(blocked, agent, goal))
    lava: list[Cell] = []
    for k in order:
        if len(lava) == count:
            break
        x, y = candidates[k]
        blocked[y, x] = True
        if (x, y) in path:
            detour = shortest_path(blocked, agent, goal)
            if not detour:
                blocked[y, x] = False
                continue
            path = set(detour)
        lava.append((x, y))
    if len(lava) < count:
        raise LevelError(f"only {len(lava)} of {count} lava cells fit without cutting the agent off the goal")
    return lava


def generate(f: MazeFactors, rng: np.random.Generator) -> Level:
    walls = carve(f.layout, f.size, rng)
    agent, goal = place_agent_and_goal(walls, rng)
    lava = place_lava(walls, agent, goal, f.lava, rng)
    b = LevelBuilder(f.size, f.size, rng)
    ys, xs = np.nonzero(walls[1:-1, 1:-1])
    for x, y in zip(xs.tolist(), ys.tolist()):
        b.grid.set(x + 1, y + 1, Wall())
    for x, y in lava:
        b.grid.set(x, y, Lava())
    b.put(Goal(), *goal)
    b.place_agent([agent])
    return b.build(MISSION, Mission(((Clause("reach"),),)))


def max_steps(f: MazeFactors) -> int:
    """Episode limit: ``4 * size**2``, minigrid's limit for its navigation grids (Crossing, LavaGap, Empty)."""
    return 4 * f.size * f.size


def max_steps_v0(f: MazeFactors) -> int:
    """Version 0's episode limit, ``2 * size**2``: ample for the oracle, scarce for exploring."""
    return 2 * f.size * f.size


FAMILY = Family(
    name="Maze",
    factors=MazeFactors,
    generate=generate,
    max_steps=max_steps,
    description="reach the goal through rooms, mazes, WFC ruins or caves, around lava",
    version=1,
)

#: Version 0, kept registered (deprecated) so its results can be reproduced.
FAMILY_V0 = replace(FAMILY, version=0, max_steps=max_steps_v0)
