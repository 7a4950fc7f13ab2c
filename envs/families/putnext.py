"""PutNext: move a described object next to another ("put the red ball next to the blue key").

Objects are placed so that the floor stays passable: the free cells stay connected and both
named objects keep a free neighbour, so every level is solvable by construction.

Example:
    >>> import numpy as np
    >>> level = generate(PutNextFactors(size=7, num_distractors=2), np.random.default_rng(0))
    >>> level.mission_text.startswith("put the ")
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
from minigrid.core.world_object import WorldObj

from shiftgrid.envs.families.common import SEEN_COMBOS, carve_layout, distractor_pool, make_object, target_pool
from shiftgrid.envs.families.goto import GoToFactors
from shiftgrid.envs.family import Family
from shiftgrid.envs.language import describe
from shiftgrid.envs.level import Cell, Level, LevelBuilder, LevelError
from shiftgrid.envs.mission import Clause, Mission

_DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))
ATTEMPTS = 50


def neighbours(cell: Cell) -> list[Cell]:
    """The four cells next to ``cell``: ``neighbours((2, 2))[0] == (3, 2)``."""
    return [(cell[0] + dx, cell[1] + dy) for dx, dy in _DIRS]


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


def place_passable(
    b: LevelBuilder,
    obj: WorldObj,
    region: Iterable[Cell],
    *,
    keep: Iterable[int] = (),
    avoid: Iterable[Cell] = (),
    reachable: bool = False,
) -> int:
    """Put ``obj`` on a random free cell of ``region`` that keeps the region passable.

    Passable: the region's remaining free cells stay 4-connected, and each object index in
    ``keep`` (and ``obj`` itself if ``reachable``) still has a free neighbour in the region.
    Cells in ``avoid`` are never used. Returns the object's index, as :meth:`LevelBuilder.put`.

    Example:
        >>> b = LevelBuilder(5, 5, np.random.default_rng(0))
        >>> i = place_passable(b, make_object("red", "ball"), b.free_cells(), reachable=True)
        >>> b.objects[i].color
        'red'

    Raises:
        LevelError: if no free cell of the region qualifies.
    """
    free = b.free_cells(list(region))
    free_set, avoid_set = set(free), set(avoid)
    kept = [tuple(b.objects[k].cur_pos) for k in keep]
    for i in b.rng.permutation(len(free)):
        cell = free[int(i)]
        if cell in avoid_set:
            continue
        rest = free_set - {cell}
        if not _connected(rest):
            continue
        if any(not any(n in rest for n in neighbours(k)) for k in kept + ([cell] if reachable else [])):
            continue
        return b.put(obj, *cell)
    raise LevelError(f"no cell keeps the floor passable for a {obj.color} {obj.type} ({len(free)} free cells)")


@dataclass(frozen=True)
class PutNextFactors(GoToFactors):
    """Factors of PutNext: as GoTo's; ``targets`` is the pool of the object to move."""


def _attempt(f: PutNextFactors, rng: np.random.Generator) -> Level:
    b = LevelBuilder(f.size, f.size, rng)
    floor = carve_layout(b, f.layout)
    moved = b.choice(target_pool(f.targets))
    fixed = b.choice([c for c in SEEN_COMBOS if c != moved])
    other = place_passable(b, make_object(*fixed), floor, reachable=True)
    near_fixed = neighbours(tuple(b.objects[other].cur_pos))
    target = place_passable(b, make_object(*moved), floor, keep=[other], avoid=near_fixed, reachable=True)
    pool = [c for c in distractor_pool(moved, f.distractor_style) if c != fixed]
    for _ in range(f.num_distractors):
        place_passable(b, make_object(*b.choice(pool)), floor, keep=[other, target])
    b.place_agent()
    text = f"put {describe(*moved)} next to {describe(*fixed)}"
    return b.build(text, Mission(((Clause("putnext", target, other=other),),)))


def generate(f: PutNextFactors, rng: np.random.Generator) -> Level:
    """A PutNext level; crowded rooms are retried up to :data:`ATTEMPTS` times with the same ``rng``.

    Example:
        >>> level = generate(PutNextFactors(size=6), np.random.default_rng(1))
        >>> [c.verb for c in level.mission.steps[0]]
        ['putnext']
    """
    last = None
    for _ in range(ATTEMPTS):
        try:
            return _attempt(f, rng)
        except LevelError as e:
            last = e
    raise LevelError(f"PutNext size={f.size} num_distractors={f.num_distractors} layout={f.layout!r}: {last}")


def max_steps(f: PutNextFactors) -> int:
    """Episode limit: ``2 * size**2`` (two trips across the room, with room to spare)."""
    return 2 * f.size * f.size


FAMILY = Family(
    name="PutNext",
    factors=PutNextFactors,
    generate=generate,
    max_steps=max_steps,
    description="put a described object next to another",
    exposure={"targets": "heldout"},
)
