"""Cell codes: minigrid's (type, colour, state) triple as one byte, and the tables read through it.

A cell's code is ``type * 18 + colour * 3 + state`` (at most 197), with minigrid's indices
(``OBJECT_TO_IDX``, ``COLOR_TO_IDX``, doors' state 0 open, 1 closed, 2 locked). What an agent
observes of a code is a table lookup (:func:`observed_table`: the palette of the observation
axis applied to doors, keys, balls and boxes), so the engine's observation is one gather.

This module needs no torch: the oracle and the level converters read it too.

Example:
    >>> from minigrid.core.world_object import Key
    >>> c = code_of(Key("blue"))
    >>> decode(c), decode(EMPTY), decode(WALL)
    ((5, 2, 0), (1, 0, 0), (2, 5, 0))
    >>> observed_table("swap")[code_of(Key("red"))].tolist()  # a red key, observed green
    [5, 1, 0]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, IDX_TO_COLOR, IDX_TO_OBJECT, OBJECT_TO_IDX
from minigrid.core.world_object import WorldObj

from shiftgrid.envs.observation import PALETTES, RECOLOURED_TYPES

NUM_CODES = 256
UNSEEN_T, EMPTY_T, WALL_T, FLOOR_T, DOOR_T = (OBJECT_TO_IDX[n] for n in ("unseen", "empty", "wall", "floor", "door"))
KEY_T, BALL_T, BOX_T, GOAL_T, LAVA_T = (OBJECT_TO_IDX[n] for n in ("key", "ball", "box", "goal", "lava"))
OPEN, CLOSED, LOCKED = 0, 1, 2
#: Palettes by index (the engine stores a level's palette as this index).
PALETTE_NAMES: tuple[str, ...] = tuple(PALETTES)


def code(t: int, c: int = 0, s: int = 0) -> int:
    """The code of type ``t``, colour ``c``, state ``s`` (minigrid's indices)."""
    return t * 18 + c * 3 + s


def decode(k: int) -> tuple[int, int, int]:
    """The ``(type, colour, state)`` of code ``k``."""
    return k // 18, (k % 18) // 3, k % 3


EMPTY = code(EMPTY_T)
WALL = code(WALL_T, COLOR_TO_IDX["grey"])


def code_of(obj: Any) -> int:
    """The code of a minigrid ``WorldObj`` (None: an empty cell)."""
    if obj is None:
        return EMPTY
    t, c, s = obj.encode()
    return t * 18 + c * 3 + s


def is_valid(k: int) -> bool:
    """Whether code ``k`` is a triple minigrid encodes (its object decodes and encodes back to it; goals are green)."""
    t, c, s = decode(k)
    if k == EMPTY:
        return True
    if t >= len(IDX_TO_OBJECT) or t in (UNSEEN_T, EMPTY_T, OBJECT_TO_IDX["agent"]) or c >= len(IDX_TO_COLOR):
        return False
    if s and t != DOOR_T:
        return False
    obj = WorldObj.decode(t, c, s)
    return obj is not None and obj.encode() == (t, c, s)


#: Every code a level can hold, in order.
VALID_CODES: tuple[int, ...] = tuple(k for k in range(NUM_CODES) if is_valid(k))


def type_of(k: int) -> str:
    return IDX_TO_OBJECT[decode(k)[0]]


def colour_of(k: int) -> str:
    return IDX_TO_COLOR[decode(k)[1]]


@lru_cache(maxsize=None)
def observed_table(palette: str = "identity") -> np.ndarray:
    """``[256, 3]`` uint8: the triple observed for each code under ``palette`` (read-only).

    Codes that no level holds decode to ``(0, 0, 0)`` (unseen).
    """
    perm = PALETTES[palette]
    recoloured = {OBJECT_TO_IDX[t] for t in RECOLOURED_TYPES}
    table = np.zeros((NUM_CODES, 3), dtype=np.uint8)
    for k in VALID_CODES:
        t, c, s = decode(k)
        table[k] = (t, int(perm[c]) if t in recoloured else c, s)
    table.flags.writeable = False
    return table


def observed_tables() -> np.ndarray:
    """``[len(PALETTE_NAMES), 256, 3]``: :func:`observed_table` for every palette, in index order."""
    return np.stack([observed_table(p) for p in PALETTE_NAMES])


def palette_index(name: str) -> int:
    """The index of palette ``name``; raises naming the valid ones."""
    if name not in PALETTE_NAMES:
        raise ValueError(f"unknown palette {name!r}; valid: {', '.join(PALETTE_NAMES)}")
    return PALETTE_NAMES.index(name)
