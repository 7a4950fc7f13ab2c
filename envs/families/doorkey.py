"""DoorKey: unlock a coloured door with the right key, then reach the goal behind it.

A wall splits the room; its one door is locked. The key that opens it lies on the agent's
side among distractor keys of other colours, and a goal square lies on the far side
("open the red door, then get to the goal"). Under ``key_map="same"`` a door opens with the
key of its own colour; under ``"rotate"`` with the key of the next colour in
:data:`~shiftgrid.envs.language.COLORS` order (a red door takes the yellow key), and the
door-coloured key, when there are distractors, is the first of them.

Version 1 gives an episode ``10 * size**2`` steps (minigrid's DoorKey limit); version 0
(deprecated) gave ``3 * size**2``, enough for the oracle but too short for a learner that must
find the key by exploring (PPO reached no success on size 5 in 100k steps).

Example:
    >>> import numpy as np
    >>> level = generate(DoorKeyFactors(size=7, key_map="rotate"), np.random.default_rng(0))
    >>> door = level.objects[0]
    >>> door.is_locked, door.key_color == next_color(door.color)
    (True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from minigrid.core.world_object import Goal, Key

from shiftgrid.envs.factors import Factors, factor
from shiftgrid.envs.families.common import place_passable, retry
from shiftgrid.envs.family import Family
from shiftgrid.envs.language import COLORS, describe
from shiftgrid.envs.level import Cell, KeyedDoor, Level, LevelBuilder, LevelError
from shiftgrid.envs.mission import Clause, Mission

KEY_MAPS = ("same", "rotate")


@dataclass(frozen=True)
class DoorKeyFactors(Factors):
    """Factors of DoorKey (plus the common ones: size, slip, palette, view)."""

    num_distractors: int = factor(1, low=0, high=len(COLORS) - 1, doc="keys of other colours on the agent's side")
    key_map: str = factor("same", choices=KEY_MAPS, doc="which key opens a door: its own colour, or the next one")


def next_color(color: str) -> str:
    """The colour after ``color`` in COLORS order, wrapping: ``next_color("red") == "yellow"``."""
    if color not in COLORS:
        raise ValueError(f"unknown colour {color!r}; valid: {', '.join(COLORS)}")
    return COLORS[(COLORS.index(color) + 1) % len(COLORS)]


def key_color_for(door_color: str, key_map: str) -> str:
    """The colour of the key that opens a ``door_color`` door under ``key_map``.

    Example:
        >>> key_color_for("red", "same"), key_color_for("grey", "rotate")
        ('red', 'purple')
    """
    if key_map not in KEY_MAPS:
        raise ValueError(f"unknown key_map {key_map!r}; valid: {', '.join(KEY_MAPS)}")
    return door_color if key_map == "same" else next_color(door_color)


def _sides(size: int, wall_x: int) -> tuple[list[Cell], list[Cell]]:
    rows = range(1, size - 1)
    return [(x, y) for x in range(1, wall_x) for y in rows], [(x, y) for x in range(wall_x + 1, size - 1) for y in rows]


def _wall_options(f: DoorKeyFactors) -> list[tuple[int, bool]]:
    """Wall columns, each with whether the agent is on its left, whose agent side holds the keys,
    the agent and the door's approach cell."""
    need = f.num_distractors + 3
    options, largest = [], 0
    for x in range(2, f.size - 2):
        left, right = _sides(f.size, x)
        options += [(x, True)] * (len(left) >= need) + [(x, False)] * (len(right) >= need)
        largest = max(largest, len(left), len(right))
    if not options:
        raise LevelError(
            f"DoorKey size={f.size} with num_distractors={f.num_distractors} needs {need} cells on the agent's "
            f"side of the wall; the largest side has {largest}"
        )
    return options


def _attempt(f: DoorKeyFactors, rng: np.random.Generator, walls: list[tuple[int, bool]]) -> Level:
    b = LevelBuilder(f.size, f.size, rng)
    wall_x, agent_left = b.choice(walls)
    b.grid.vert_wall(wall_x, 1, f.size - 2)
    left, right = _sides(f.size, wall_x)
    near, far = (left, right) if agent_left else (right, left)
    door_y = int(rng.integers(1, f.size - 1))
    step = -1 if agent_left else 1
    approach = (wall_x + step, door_y)
    door_color = b.choice(COLORS)
    key_color = key_color_for(door_color, f.key_map)
    door = b.put(KeyedDoor(door_color, is_locked=True, key_color=key_color), wall_x, door_y)
    key = place_passable(b, Key(key_color), near, avoid=[approach], reachable=True)
    others = [c for c in COLORS if c not in (key_color, door_color)]
    rng.shuffle(others)
    if door_color != key_color:
        others.insert(0, door_color)
    for color in others[: f.num_distractors]:
        place_passable(b, Key(color), near, keep=[key], avoid=[approach])
    b.place(Goal(), far)
    b.place_agent(near)
    text = f"open {describe(door_color, 'door')}, then get to the goal"
    return b.build(text, Mission(((Clause("open", door),), (Clause("reach"),))))


def generate(f: DoorKeyFactors, rng: np.random.Generator) -> Level:
    """A DoorKey level; crowded sides are retried up to ``ATTEMPTS`` times with the same ``rng``.

    Example:
        >>> level = generate(DoorKeyFactors(size=6, num_distractors=2), np.random.default_rng(3))
        >>> level.mission_text.endswith("then get to the goal"), len(level.objects)
        (True, 4)
    """
    walls = _wall_options(f)
    return retry(_attempt, f, rng, walls)


def max_steps(f: DoorKeyFactors) -> int:
    """Episode limit: ``10 * size**2``, minigrid's DoorKey limit (room to explore before the key is found)."""
    return 10 * f.size * f.size


def max_steps_v0(f: DoorKeyFactors) -> int:
    """Version 0's episode limit, ``3 * size**2``: enough for the oracle's plan, too short for exploring."""
    return 3 * f.size * f.size


FAMILY = Family(
    name="DoorKey",
    factors=DoorKeyFactors,
    generate=generate,
    max_steps=max_steps,
    description="unlock a door with the key its colour calls for, then reach the goal",
    version=1,
)

#: Version 0, kept registered (deprecated) so its results can be reproduced.
FAMILY_V0 = replace(FAMILY, version=0, max_steps=max_steps_v0)
