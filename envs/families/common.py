"""Pieces several families share: object construction, held-out combinations, room layouts.

Composition: six colour x type combinations are held out of training. Each colour is held
out once and each type twice, so every colour and every type still appears in training
(with the other combinations).

Example:
    >>> ("red", "ball") in HELDOUT_COMBOS, ("red", "box") in SEEN_COMBOS
    (True, True)
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from minigrid.core.world_object import Ball, Box, Key, WorldObj

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs.language import COLORS, OBJECT_TYPES
from shiftgrid.envs.level import Cell, Level, LevelBuilder, LevelError, cell_of

Combo = tuple[str, str]

HELDOUT_COMBOS: tuple[Combo, ...] = (
    ("red", "ball"), ("green", "box"), ("blue", "key"),
    ("purple", "ball"), ("yellow", "box"), ("grey", "key"),
)
SEEN_COMBOS: tuple[Combo, ...] = tuple((c, t) for c in COLORS for t in OBJECT_TYPES if (c, t) not in HELDOUT_COMBOS)

#: Internal walls of a single room (GoTo, Pickup, Sequence): none, one wall across, four rooms. Maze has its own (MAZE_LAYOUTS).
ROOM_LAYOUTS = ("room", "split", "rooms")
#: How often a generator retries a crowded level with the same rng before giving up.
ATTEMPTS = 50
_MAKERS = {"ball": Ball, "box": Box, "key": Key}


def make_object(color: str, obj_type: str) -> WorldObj:
    """A minigrid ball, box or key of ``color``."""
    return _MAKERS[obj_type](color)


def target_pool(targets: str) -> tuple[Combo, ...]:
    """Combinations a target is drawn from: ``seen`` (training) or ``heldout`` (composition)."""
    return HELDOUT_COMBOS if targets == "heldout" else SEEN_COMBOS


def distractor_pool(target: Combo, style: str) -> list[Combo]:
    """Seen combinations other than the target; ``near_miss`` keeps those sharing its colour or type."""
    pool = [c for c in SEEN_COMBOS if c != target]
    if style == "near_miss":
        pool = [c for c in pool if c[0] == target[0] or c[1] == target[1]]
    return pool


def carve_layout(b: LevelBuilder, layout: str) -> list[Cell]:
    """Add internal walls for ``layout`` and return the floor cells.

    ``room``: one open room. ``split``: a wall across the room with a one-cell gap.
    ``rooms``: a wall cross making four rooms joined by gaps in three of its four arms.
    """
    w, h = b.grid.width, b.grid.height
    if layout in ("split", "rooms") and min(w, h) < 7:
        raise LevelError(f"layout {layout!r} needs a grid of at least 7, got {w}")
    if layout in ("split", "rooms"):
        x = int(b.rng.integers(3, w - 3))
        b.grid.vert_wall(x, 1, h - 2)
        if layout == "split":
            b.grid.set(x, int(b.rng.integers(1, h - 1)), None)
        else:
            y = int(b.rng.integers(3, h - 3))
            b.grid.horz_wall(1, y, w - 2)
            gaps = [(x, int(b.rng.integers(1, y))), (x, int(b.rng.integers(y + 1, h - 1))),
                    (int(b.rng.integers(1, x)), y), (int(b.rng.integers(x + 1, w - 1)), y)]
            closed = int(b.rng.integers(4))
            for i, (gx, gy) in enumerate(gaps):
                if i != closed:
                    b.grid.set(gx, gy, None)
    elif layout != "room":
        raise LevelError(f"unknown layout {layout!r}; valid: {', '.join(ROOM_LAYOUTS)}")
    return b.free_cells()


def place_target_and_distractors(b: LevelBuilder, targets: str, style: str, num_distractors: int) -> tuple[int, Combo]:
    """Place a uniquely described target and ``num_distractors`` others, keeping the floor passable; return (index, combo)."""
    target = b.choice(target_pool(targets))
    index = place_passable(b, make_object(*target), reachable=True)
    pool = distractor_pool(target, style)
    for _ in range(num_distractors):
        place_passable(b, make_object(*b.choice(pool)), keep=[index])
    return index, target


def place_agent_not_facing(b: LevelBuilder, index: int) -> None:
    """Place the agent anywhere except facing object ``index`` (a mission must not start done)."""
    x, y = b.place_agent()
    dx, dy = DIRECTIONS[b.agent_dir]
    if cell_of(b.objects[index]) == (x + dx, y + dy):
        b.agent_dir = (b.agent_dir + 2) % 4


def place_agent_apart(b: LevelBuilder, indices: Sequence[int]) -> None:
    """Place the agent on a free cell beside none of objects ``indices``, facing anywhere.

    From such a cell no mission that names those objects can be done without moving: turning in
    place, picking up, dropping and toggling reach only the four cells beside the agent. Raises
    :class:`LevelError` when every free cell is beside one of them (a crowded room; generators
    that retry draw again).
    """
    near = {n for i in indices for n in neighbours(cell_of(b.objects[i]))}
    b.place_agent([c for c in b.interior if c not in near])


def neighbours(cell: Cell) -> list[Cell]:
    """The four cells next to ``cell``: ``neighbours((2, 2))[0] == (3, 2)``."""
    return [(cell[0] + dx, cell[1] + dy) for dx, dy in DIRECTIONS]


def _connected(cells: set[Cell]) -> bool:
    if not cells:
        return True
    start = next(iter(cells))
    seen, stack = {start}, [start]
    while stack:
        for n in neighbours(stack.pop()):
            if n in cells and n not in seen:
                seen.add(n)
                stack.append(n)
    return len(seen) == len(cells)


_RING = ((0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1))  # clockwise from north


def _locally_simple(cell: Cell, passable: set[Cell]) -> bool:
    """Whether blocking ``cell`` cannot disconnect ``passable`` (a sufficient, local test).

    True when the passable cells among its four neighbours are linked around it through its
    eight-cell ring (consecutive ring cells are 4-adjacent): every path through ``cell`` can
    then go around it. When False, a full connectivity check decides.
    """
    x, y = cell
    ring = [(x + dx, y + dy) in passable for dx, dy in _RING]
    if all(ring) or sum(ring[0::2]) <= 1:
        return True
    sides = 0  # runs of consecutive passable ring cells that contain a side neighbour
    for i in range(8):
        if ring[i] and not ring[i - 1]:
            j, touches = i, False
            while ring[j % 8]:
                touches |= j % 2 == 0
                j += 1
            sides += touches
    return sides <= 1


def place_passable(
    b: LevelBuilder,
    obj: WorldObj,
    region: Iterable[Cell] | None = None,
    *,
    keep: Iterable[int] = (),
    avoid: Iterable[Cell] = (),
    reachable: bool = False,
) -> int:
    """Put ``obj`` on a random free cell of ``region`` (default: the whole interior) that keeps it passable.

    Passable: the region's remaining free cells and door cells stay 4-connected, and each
    object index in ``keep`` (and ``obj`` itself if ``reachable``) still borders one of them.
    Cells in ``avoid`` are never used. Returns the object's index, as :meth:`LevelBuilder.put`.
    Placing every object this way makes a level solvable without moving anything.

    Example:
        >>> b = LevelBuilder(5, 5, np.random.default_rng(0))
        >>> i = place_passable(b, make_object("red", "ball"), reachable=True)
        >>> b.objects[i].color
        'red'

    Raises:
        LevelError: if no free cell of the region qualifies.
    """
    g, w = b.grid.grid, b.grid.width
    cells = b.interior if region is None else list(region)
    free = b.free_cells(cells)
    doors = {c for c in cells if (o := g[c[1] * w + c[0]]) is not None and o.type == "door"}
    # The passable cells before placing; ``rest`` (without the candidate cell) is built only when
    # the local test cannot decide: the ring and neighbour tests never look at the cell itself.
    passable, avoid_set = set(free) | doors, set(avoid)
    kept = [cell_of(b.objects[k]) for k in keep]
    for i in b.rng.permutation(len(free)):
        cell = free[int(i)]
        if cell in avoid_set:
            continue
        if not _locally_simple(cell, passable) and not _connected(passable - {cell}):
            continue
        if any(not any(n != cell and n in passable for n in neighbours(k)) for k in kept + ([cell] if reachable else [])):
            continue
        return b.put(obj, *cell)
    raise LevelError(f"no cell keeps the floor passable for a {obj.color} {obj.type} ({len(free)} free cells)")


def retry(attempt: Callable[..., Level], f: object, rng: np.random.Generator, *extra: object) -> Level:
    """Call ``attempt(f, rng, *extra)`` up to :data:`ATTEMPTS` times (same ``rng``) until a level fits."""
    last = None
    for _ in range(ATTEMPTS):
        try:
            return attempt(f, rng, *extra)
        except LevelError as e:
            last = e
    raise LevelError(f"no level fits {f!r} in {ATTEMPTS} attempts; last: {last}")
