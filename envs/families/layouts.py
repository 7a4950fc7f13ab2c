"""Layouts: wall masks of whole grids — rooms, perfect mazes, and wave-function-collapse caves and ruins.

A layout is a boolean array ``walls[y, x]`` (True = wall) of shape ``(size, size)``, outer
walls included, whose floor is one 4-connected region. Any family can carve one into a grid
and draw its cells from :func:`floor_cells`.

Layouts (:data:`MAZE_LAYOUTS`):
    rooms   a grid of rectangular rooms; neighbours are joined by one-cell gaps along a random
            spanning tree of the rooms, plus a few extra gaps that make loops
    maze    a perfect maze (randomized depth-first search on the odd cells): corridors one cell
            wide and exactly one path between any two floor cells
    ruins   wave function collapse on a sample of short wall pieces in open floor, one WFC cell
            per grid cell: an open field of scattered obstacles
    caves   wave function collapse (2x2 patterns) on a sample of wall blobs, each WFC cell a 2x2
            block of grid cells: chambers joined by passages two cells wide

WFC follows minigrid's solver (``minigrid.envs.wfc.wfclogic.solver``: entropy location and
weighted pattern heuristics) on samples authored here, with its own propagation (pattern sets
as bitmasks, revised only next to a change, where minigrid pads and multiplies the whole wave
with ``np.pad(mode="wrap")`` every round): the same patches from the same seeds, faster. A sample's patterns and their
adjacency are extracted once per process; each level then runs the solver on a small
*periodic* patch (at most :attr:`WFCSample.patch` cells a side), which tiles seamlessly:
every window of the tiled plane is a pattern of the sample, and the cost per level stays
bounded at any grid size. (minigrid's ``execute_wfc`` re-extracts the adjacency on every
call, about a second per level here.)

Example:
    >>> import numpy as np
    >>> walls = carve("maze", 9, np.random.default_rng(0))
    >>> walls.shape, bool(walls[0].all()), len(components(walls))
    ((9, 9), True, 1)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable

import numpy as np
from minigrid.envs.wfc.wfclogic import solver as wfc_solver

from shiftgrid.envs.directions import DIRECTIONS
from shiftgrid.envs.level import Cell, LevelError

Walls = np.ndarray  # bool (size, size), walls[y, x]; True = wall
MIN_SIZE = 7  # the smallest grid every layout can carve (two rooms of two cells a side)


def _box(size: int) -> Walls:
    walls = np.zeros((size, size), dtype=bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    return walls


def floor_cells(walls: Walls) -> list[Cell]:
    """Floor cells ``(x, y)`` in row-major order.

    Example:
        >>> floor_cells(carve("maze", 7, np.random.default_rng(1)))[:2]
        [(1, 1), (2, 1)]
    """
    ys, xs = np.nonzero(~walls)
    return [(int(x), int(y)) for x, y in zip(xs, ys)]


def distances(walls: Walls, start: Cell) -> np.ndarray:
    """Shortest 4-connected path lengths ``d[y, x]`` from ``start`` over the floor; -1 where unreachable.

    Example:
        >>> d = distances(_box(5), (1, 1))
        >>> int(d[3, 3]), int(d[0, 0])
        (4, -1)
    """
    x0, y0 = start
    if walls[y0, x0]:
        raise ValueError(f"start {start} is a wall cell")
    padded = np.pad(walls, 1, constant_values=True)  # a wall ring: flat neighbours never wrap
    w = padded.shape[1]
    blocked = padded.ravel().tolist()
    d = [-1] * len(blocked)
    first = (y0 + 1) * w + x0 + 1
    d[first] = 0
    queue = deque([first])
    while queue:
        c = queue.popleft()
        nd = d[c] + 1
        for n in (c + 1, c + w, c - 1, c - w):
            if d[n] < 0 and not blocked[n]:
                d[n] = nd
                queue.append(n)
    return np.array(d, dtype=np.int64).reshape(padded.shape)[1:-1, 1:-1]


def components(walls: Walls) -> list[list[Cell]]:
    """The 4-connected floor regions, largest first (ties in row-major order of their first cell).

    Example:
        >>> w = _box(5); w[:, 2] = True
        >>> [len(c) for c in components(w)]
        [3, 3]
    """
    seen = walls.copy()
    out = []
    for cell in floor_cells(walls):
        if seen[cell[1], cell[0]]:
            continue
        d = distances(walls, cell)
        reached = d >= 0
        seen |= reached
        out.append(floor_cells(~reached))
    return sorted(out, key=len, reverse=True)


def largest_component(walls: Walls) -> Walls:
    """``walls`` with every floor region but the largest filled in.

    Example:
        >>> w = _box(6); w[:, 2] = True
        >>> int((~largest_component(w)).sum())
        8
    """
    regions = components(walls)
    out = np.ones_like(walls)
    if regions:
        xs, ys = zip(*regions[0])
        out[list(ys), list(xs)] = False
    return out


# -- rooms ------------------------------------------------------------------------------------


def _partition(n: int, count: int, rng: np.random.Generator) -> list[int]:
    """Coordinates of ``count - 1`` walls dividing interior cells ``1..n`` into rooms of side >= 2."""
    extra = n - (count - 1) - 2 * count
    widths = 2 + rng.multinomial(extra, [1.0 / count] * count)
    return [int(1 + widths[: i + 1].sum() + i) for i in range(count - 1)]


def rooms(size: int, rng: np.random.Generator) -> Walls:
    """A grid of rooms (2 a side up to size 12, then one more per 4 cells), joined by one-cell gaps.

    Gaps follow a random spanning tree of the rooms; each other pair of neighbours gets a gap
    with probability 1/4, so most levels have loops.

    Example:
        >>> w = rooms(9, np.random.default_rng(0))
        >>> len(components(w))
        1
    """
    _check_size("rooms", size)
    n = size - 2
    count = max(2, (n + 1) // 4)
    xs, ys = _partition(n, count, rng), _partition(n, count, rng)
    walls = _box(size)
    for x in xs:
        walls[:, x] = True
    for y in ys:
        walls[y, :] = True
    # First and last interior coordinate of each band of rooms, per axis.
    lo_x, hi_x = [1] + [c + 1 for c in xs], [c - 1 for c in xs] + [size - 2]
    lo_y, hi_y = [1] + [c + 1 for c in ys], [c - 1 for c in ys] + [size - 2]
    # Neighbouring rooms (i = row, j = column): horizontal pairs share wall column xs[j].
    edges = [((i, j), (i, j + 1)) for i in range(count) for j in range(count - 1)]
    edges += [((i, j), (i + 1, j)) for i in range(count - 1) for j in range(count)]
    parent = {(i, j): (i, j) for i in range(count) for j in range(count)}

    def root(r: tuple[int, int]) -> tuple[int, int]:
        while parent[r] != r:
            r = parent[r]
        return r

    for k in rng.permutation(len(edges)):
        a, b = edges[k]
        ra, rb = root(a), root(b)
        joined = ra != rb
        if joined:
            parent[ra] = rb
        if joined or rng.random() < 0.25:
            (i, j), (i2, _) = a, b
            if i == i2:  # left-right neighbours: a gap in column xs[j] within row band i
                walls[int(rng.integers(lo_y[i], hi_y[i] + 1)), xs[j]] = False
            else:  # up-down neighbours: a gap in row ys[i] within column band j
                walls[ys[i], int(rng.integers(lo_x[j], hi_x[j] + 1))] = False
    return walls


# -- perfect maze -----------------------------------------------------------------------------


def perfect_maze(size: int, rng: np.random.Generator) -> Walls:
    """A perfect maze carved by randomized depth-first search over the odd-offset lattice of cells.

    On an even ``size`` the lattice starts at 1 or 2 (at random, per axis), so the spare wall
    line falls on either side. The floor is a tree: ``edges == cells - 1``.

    Example:
        >>> w = perfect_maze(9, np.random.default_rng(0))
        >>> int((~w).sum())  # 16 lattice cells joined by 15 corridor cells
        31
    """
    _check_size("maze", size)
    n = size - 2
    m = (n + 1) // 2  # lattice cells per axis
    ox, oy = (1, 1) if n % 2 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    walls = np.ones((size, size), dtype=bool)
    visited = np.zeros((m, m), dtype=bool)
    start = (int(rng.integers(m)), int(rng.integers(m)))
    visited[start[1], start[0]] = True
    walls[oy + 2 * start[1], ox + 2 * start[0]] = False
    stack = [start]
    while stack:
        cx, cy = stack[-1]
        options = [(cx + dx, cy + dy) for dx, dy in DIRECTIONS
                   if 0 <= cx + dx < m and 0 <= cy + dy < m and not visited[cy + dy, cx + dx]]
        if not options:
            stack.pop()
            continue
        nx, ny = options[int(rng.integers(len(options)))]
        visited[ny, nx] = True
        walls[oy + 2 * ny, ox + 2 * nx] = False
        walls[oy + cy + ny, ox + cx + nx] = False  # the corridor cell between the two
        stack.append((nx, ny))
    return walls


# -- wave function collapse -------------------------------------------------------------------


@dataclass(frozen=True)
class WFCSample:
    """A small black-and-white sample image that wave function collapse imitates.

    Attributes:
        name: the layout's name.
        rows: the image, ``'#'`` wall and ``'.'`` floor; read as periodic (it wraps) and in all
            eight rotations and reflections.
        pattern: side of the windows (patterns) WFC copies from the sample.
        patch: side of the periodic WFC output, in WFC cells; larger grids tile it.
        scale: grid cells per WFC cell, a side.
    """

    name: str
    rows: tuple[str, ...]
    pattern: int = 3
    patch: int = 5
    scale: int = 1

    def image(self) -> np.ndarray:
        """The sample as a bool array ``[y, x]`` (True = wall)."""
        bad = {c for r in self.rows for c in r} - {"#", "."}
        if bad or len({len(r) for r in self.rows}) != 1:
            raise ValueError(f"WFC sample {self.name!r} needs equal rows of '#' and '.'; found {sorted(bad)}")
        return np.array([[c == "#" for c in r] for r in self.rows], dtype=bool)


RUINS = WFCSample(
    "ruins",
    (
        "..........",
        ".##....#..",
        "..#....#..",
        "......###.",
        "..........",
        "...#......",
        "...#...##.",
        ".###......",
        "......#...",
        "......#...",
    ),
)
CAVES = WFCSample(
    "caves",
    (
        "##....###.",
        "##.....##.",
        "......###.",
        "...##.....",
        "..####....",
        "..###...##",
        "........##",
        "###.....##",
        "####...###",
        "###.....##",
    ),
    pattern=2,
    scale=2,
)
WFC_SAMPLES: dict[str, WFCSample] = {s.name: s for s in (RUINS, CAVES)}


def symmetries(image: np.ndarray) -> list[np.ndarray]:
    """The eight rotations and reflections of a square or rectangular image."""
    out = []
    for k in range(4):
        r = np.rot90(image, k)
        out += [r, r[:, ::-1]]
    return out


@lru_cache(maxsize=None)
def wfc_patterns(sample: WFCSample) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], np.ndarray]]:
    """Patterns of ``sample`` (``(P, k, k)`` bool), their counts, and their adjacency for minigrid's solver.

    ``adjacency[(dr, dc)][q, p]`` is 1 where pattern ``p`` may sit ``dr`` rows and ``dc``
    columns from pattern ``q`` (their overlap agrees): the convention of
    ``minigrid.envs.wfc.wfclogic.solver.propagate``. Float matrices keep its products on BLAS.
    """
    k = sample.pattern
    found: dict[bytes, list] = {}
    for img in symmetries(sample.image()):
        padded = np.pad(img, ((0, k - 1), (0, k - 1)), mode="wrap")
        for y in range(img.shape[0]):
            for x in range(img.shape[1]):
                window = padded[y : y + k, x : x + k]
                entry = found.setdefault(window.tobytes(), [window.copy(), 0])
                entry[1] += 1
    patterns = np.array([e[0] for e in found.values()])
    weights = np.array([e[1] for e in found.values()], dtype=np.float64)
    adjacency = {}
    for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
        q = patterns[:, max(dr, 0) : k + min(dr, 0), max(dc, 0) : k + min(dc, 0)]
        p = patterns[:, max(-dr, 0) : k - max(dr, 0), max(-dc, 0) : k - max(dc, 0)]
        adjacency[(dr, dc)] = np.all(q[:, None] == p[None, :], axis=(2, 3)).astype(np.float32)
    return patterns, weights, adjacency


_ADJACENCY_ORDER = ((-1, 0), (0, 1), (1, 0), (0, -1))


class _Propagator:
    """Arc consistency for periodic WFC over pattern sets held as int bitmasks (bit ``p``: pattern ``p``).

    ``support[k][p]`` is the set of patterns that pattern ``p``, ``_ADJACENCY_ORDER[k]`` away,
    allows; the patterns a neighbour's set allows are memoised per set. Propagation reaches
    the same fixpoint as minigrid's ``propagate(periodic=True)`` (the largest arc-consistent
    wave, which does not depend on the order cells are revised in), revising only the cells
    next to a change, where minigrid pads and multiplies the whole wave every round.
    """

    def __init__(self, adjacency: dict) -> None:
        self.support = [
            [sum(1 << q for q in np.nonzero(adjacency[d][:, p])[0].tolist()) for p in range(adjacency[d].shape[1])]
            for d in _ADJACENCY_ORDER
        ]
        self.allowed: list[dict[int, int]] = [{} for _ in _ADJACENCY_ORDER]

    def allows(self, k: int, patterns: int) -> int:
        """Patterns a neighbour holding ``patterns`` (in direction ``k``) leaves supported."""
        memo = self.allowed[k]
        out = memo.get(patterns)
        if out is None:
            out, rest, support = 0, patterns, self.support[k]
            while rest:
                low = rest & -rest
                out |= support[low.bit_length() - 1]
                rest ^= low
            if len(memo) > 100_000:
                memo.clear()
            memo[patterns] = out
        return out

    def run(self, wave: list[int], neighbours: list[tuple[int, ...]], changed: list[int]) -> None:
        """Revise ``wave`` in place from the cells ``changed``; raises ``Contradiction`` on an empty cell."""
        stack, pending = list(changed), set(changed)
        memos = list(enumerate(self.allowed))
        while stack:
            c = stack.pop()
            pending.discard(c)
            before = now = wave[c]
            around = neighbours[c]
            for k, memo in memos:
                w = wave[around[k]]
                a = memo.get(w)
                now &= self.allows(k, w) if a is None else a
            if now != before:
                if not now:
                    raise wfc_solver.Contradiction("a cell has no pattern left")
                wave[c] = now
                for n in neighbours[c]:
                    if n not in pending:
                        pending.add(n)
                        stack.append(n)


@lru_cache(maxsize=None)
def _propagator(sample: WFCSample) -> _Propagator:
    return _Propagator(wfc_patterns(sample)[2])


@lru_cache(maxsize=None)
def _periodic_neighbours(side: int) -> list[tuple[int, ...]]:
    """For each flat cell ``i * side + j``, its neighbours in ``_ADJACENCY_ORDER``, wrapping around."""
    return [tuple(((i + dr) % side) * side + (j + dc) % side for dr, dc in _ADJACENCY_ORDER)
            for i in range(side) for j in range(side)]


def _collapse(sample: WFCSample, side: int, rng: np.random.Generator) -> np.ndarray:
    """One periodic WFC run: pattern index per cell ``(side, side)``; raises ``Contradiction``.

    Follows ``minigrid.envs.wfc.wfclogic.solver.run`` with its entropy location and weighted
    pattern heuristics step for step, drawing the same numbers from ``rng``, so it returns the
    same patch (``tests/envs/test_maze.py`` checks this against minigrid's solver).
    """
    _, weights, _ = wfc_patterns(sample)
    propagator, neighbours = _propagator(sample), _periodic_neighbours(side)
    count, cells = len(weights), list(range(side * side))
    preferences = (rng.random((side, side)) * 0.1).ravel().tolist()
    wave = [(1 << count) - 1] * len(cells)
    nbytes = (count + 7) // 8
    propagator.run(wave, neighbours, cells)  # later rounds start from a fixpoint: only a collapse changes it
    while True:
        sizes = [w.bit_count() for w in wave]
        if all(k == 1 for k in sizes):
            return np.array([w.bit_length() - 1 for w in wave]).reshape(side, side)
        entropy = [preferences[c] + sizes[c] if sizes[c] > 1 else np.inf for c in cells]
        c = entropy.index(min(entropy))  # the first lowest, as np.argmin
        allowed = np.unpackbits(np.frombuffer(wave[c].to_bytes(nbytes, "little"), np.uint8), bitorder="little")
        p = weights * allowed[:count].astype(bool)
        p /= p.sum()
        wave[c] = 1 << int(rng.choice(count, p=p))
        propagator.run(wave, neighbours, [n for n in neighbours[c] if n != c])


def wfc_patch(sample: WFCSample, side: int, rng: np.random.Generator, attempts: int = 10) -> np.ndarray:
    """A periodic ``side x side`` WFC output (bool, True = wall), in WFC cells; retried on contradiction.

    Every ``k x k`` window of the patch, wrapping around its edges, is a pattern of the sample.

    Example:
        >>> wfc_patch(RUINS, 4, np.random.default_rng(0)).shape
        (4, 4)
    """
    patterns = wfc_patterns(sample)[0]
    for _ in range(attempts):
        try:
            solution = _collapse(sample, side, rng)
        except wfc_solver.Contradiction:
            continue
        return patterns[solution, 0, 0]
    raise LevelError(f"WFC on sample {sample.name!r} met a contradiction in all {attempts} attempts")


def wfc(sample: WFCSample, size: int, rng: np.random.Generator, attempts: int = 8) -> Walls:
    """A WFC layout: a periodic patch tiled over the interior at a random offset, largest region kept.

    Retries with a new patch while the kept region is under a third of the interior.

    Example:
        >>> w = wfc(CAVES, 11, np.random.default_rng(0))
        >>> len(components(w)), bool(w[0].all())
        (1, True)
    """
    _check_size(sample.name, size)
    n = size - 2
    cells = -(-n // sample.scale)
    side = min(sample.patch, cells)
    period = side * sample.scale
    reps = -(-n // period) + 1
    for _ in range(attempts):
        patch = wfc_patch(sample, side, rng)
        plane = np.kron(np.tile(patch, (reps, reps)), np.ones((sample.scale, sample.scale), dtype=bool))
        oy, ox = (int(v) for v in rng.integers(period, size=2))
        walls = _box(size)
        walls[1:-1, 1:-1] = plane[oy : oy + n, ox : ox + n]
        walls = largest_component(walls)
        if 3 * int((~walls).sum()) >= n * n:
            return walls
    raise LevelError(f"WFC layout {sample.name!r} left under a third of the floor connected in {attempts} attempts")


# -- registry ---------------------------------------------------------------------------------


def _check_size(layout: str, size: int) -> None:
    if size < MIN_SIZE:
        raise LevelError(f"layout {layout!r} needs a grid of size >= {MIN_SIZE}, got {size}")


#: Maze's layouts by name ("rooms" here is a grid of rooms joined by gaps, not ROOM_LAYOUTS' four rooms).
MAZE_LAYOUTS: dict[str, Callable[[int, np.random.Generator], Walls]] = {
    "rooms": rooms,
    "maze": perfect_maze,
    "ruins": partial(wfc, RUINS),
    "caves": partial(wfc, CAVES),
}


def carve(layout: str, size: int, rng: np.random.Generator) -> Walls:
    """The wall mask of ``layout`` (one of :data:`MAZE_LAYOUTS`) on a ``size x size`` grid; one floor region.

    Example:
        >>> sorted(MAZE_LAYOUTS)
        ['caves', 'maze', 'rooms', 'ruins']
    """
    if layout not in MAZE_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; valid: {', '.join(MAZE_LAYOUTS)}")
    return largest_component(MAZE_LAYOUTS[layout](size, rng))
