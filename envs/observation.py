"""What the agent observes of a level: the palette and view size of the observation axis, on every path.

The grid keeps its observed (type, colour, state) codes in a padded numpy array updated whenever
a cell changes, so the egocentric view is one slice, one rotation and the visibility sweep on 49
booleans; :func:`egocentric_view` returns what ``MiniGridEnv.gen_obs()["image"]`` returns
(tested). The palette lives in the grid, so every other path shows it too: ``encode()``
(minigrid's ``FullyObsWrapper``), ``slice``/``rotate_left`` (``gen_obs_grid``, the agent's
point of view) and ``render`` (``env.render()``, ``RGBImgObsWrapper``, ``RGBImgPartialObsWrapper``).
The level's objects keep their true colours: only what is observed of them changes.

Example:
    >>> from minigrid.core.world_object import Ball
    >>> grid = CodedGrid(6, 6, palette=PALETTES["swap"])
    >>> grid.wall_rect(0, 0, 6, 6)
    >>> grid.set(3, 2, Ball("red"))
    >>> grid.get(3, 2).color, tuple(int(c) for c in grid.encode()[3, 2])  # a red ball, observed green
    ('red', (6, 1, 0))
    >>> egocentric_view(grid, (2, 2), 0, None, 7).shape
    (7, 7, 3)
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, IDX_TO_COLOR, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.world_object import Wall, WorldObj

_EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
_WALL = (OBJECT_TO_IDX["wall"], COLOR_TO_IDX["grey"], 0)
VIEW = 7  # the observation is always 7x7; smaller views are masked inside it
PAD = VIEW  # padding around the code array so any view slice stays in bounds
VIEWS = (3, 5, 7)

#: Palettes for the observation axis: a permutation of colour indices for describable objects.
PALETTES: dict[str, np.ndarray] = {
    "identity": np.arange(6, dtype=np.uint8),
    "swap": np.array([1, 0, 2, 3, 4, 5], dtype=np.uint8),  # red <-> green
    "rotate": np.array([1, 2, 3, 4, 5, 0], dtype=np.uint8),  # every colour shifted by one
}
RECOLOURED_TYPES = ("door", "key", "ball", "box")
_RECOLOURED = np.zeros(256, dtype=bool)
_RECOLOURED[[OBJECT_TO_IDX[t] for t in RECOLOURED_TYPES]] = True


def palette_array(name: str) -> np.ndarray | None:
    """The colour permutation of palette ``name`` (None for ``identity``); raises naming the valid ones.

    Example:
        >>> palette_array("swap").tolist(), palette_array("identity")
        ([1, 0, 2, 3, 4, 5], None)
    """
    if name not in PALETTES:
        raise ValueError(f"unknown palette {name!r}; valid: {', '.join(PALETTES)}")
    return None if name == "identity" else PALETTES[name]


@lru_cache(maxsize=None)
def view_mask(view: int, size: int = VIEW) -> np.ndarray:
    """Which cells of a ``size`` x ``size`` egocentric window a ``view`` x ``view`` view sees (read-only).

    The window is indexed ``[i, j]`` as minigrid's: the agent at ``(size // 2, size - 1)`` looking
    towards ``j = 0``; the view is the ``view`` x ``view`` square in front of it, its cell included.

    Example:
        >>> bool(view_mask(3)[2:5, 4:].all()), int(view_mask(3).sum()), bool(view_mask(7).all())
        (True, 9, True)
    """
    if view not in VIEWS:
        raise ValueError(f"view={view!r} is not valid; valid: {', '.join(map(str, VIEWS))}")
    c, r = size // 2, min(view, size) // 2
    mask = np.zeros((size, size), dtype=bool)
    mask[c - r : c + r + 1, size - min(view, size) :] = True
    mask.flags.writeable = False
    return mask


def observed_code(v: WorldObj | None, palette: np.ndarray | None) -> tuple[int, int, int]:
    """The code an agent observes for ``v``: its ``encode()``, colour remapped by ``palette`` for doors, keys, balls, boxes."""
    if v is None:
        return _EMPTY
    t, c, s = v.encode()
    if palette is not None and _RECOLOURED[t]:
        c = int(palette[c])
    return (t, c, s)


def _shown(v: WorldObj | None, palette: np.ndarray | None) -> WorldObj | None:
    """``v`` as it is drawn: itself, or a shallow copy in its observed colour."""
    if v is None or palette is None or v.type not in RECOLOURED_TYPES:
        return v
    colour = IDX_TO_COLOR[int(palette[COLOR_TO_IDX[v.color]])]
    if colour == v.color:
        return v
    shown = copy.copy(v)
    shown.color = colour
    return shown


class CodedGrid(Grid):
    """A minigrid ``Grid`` observed through ``palette``, keeping a padded ``(W+2P, H+2P, 3)`` code array and opacity mask in sync.

    ``get``/``set`` hold the true objects (dynamics never see the palette); ``codes``,
    ``encode``, ``slice``, ``rotate_left`` and ``render`` show the observed colours.
    """

    def __init__(self, width: int, height: int, palette: np.ndarray | None = None):
        super().__init__(width, height)
        self.palette = palette
        self.codes = np.zeros((width + 2 * PAD, height + 2 * PAD, 3), dtype=np.uint8)
        self.codes[:] = _WALL
        self.codes[PAD : PAD + width, PAD : PAD + height] = _EMPTY
        self.opaque = np.ones((width + 2 * PAD, height + 2 * PAD), dtype=bool)
        self.opaque[PAD : PAD + width, PAD : PAD + height] = False

    @classmethod
    def from_grid(
        cls, grid: Grid, width: int | None = None, height: int | None = None, palette: np.ndarray | None = None
    ) -> "CodedGrid":
        """A coded copy of ``grid`` holding the same object instances, at the top left of a
        ``width`` x ``height`` canvas (default: ``grid``'s size) whose other cells are walls."""
        w, h = width or grid.width, height or grid.height
        if w < grid.width or h < grid.height:
            raise ValueError(f"a {grid.width}x{grid.height} grid does not fit a {w}x{h} canvas")
        out = cls(w, h, palette)
        for j in range(h):
            for i in range(w):
                v = grid.get(i, j) if i < grid.width and j < grid.height else Wall()
                if v is not None:
                    out.set(i, j, v)
        return out

    def set(self, i: int, j: int, v: WorldObj | None) -> None:
        super().set(i, j, v)
        self.refresh(i, j)

    def refresh(self, i: int, j: int) -> None:
        """Re-read cell ``(i, j)`` (call after an object's state changed, e.g. a door toggled)."""
        v = self.grid[j * self.width + i]
        self.codes[PAD + i, PAD + j] = observed_code(v, self.palette)
        self.opaque[PAD + i, PAD + j] = v is not None and not v.see_behind()

    def set_palette(self, palette: np.ndarray | None) -> None:
        """Observe the grid through ``palette`` from now on (None: true colours)."""
        self.palette = palette
        for j in range(self.height):
            for i in range(self.width):
                self.refresh(i, j)

    def encode(self, vis_mask: np.ndarray | None = None) -> np.ndarray:
        """minigrid's ``(W, H, 3)`` encoding, in observed colours; cells outside ``vis_mask`` are zeros."""
        array = self.codes[PAD : PAD + self.width, PAD : PAD + self.height].copy()
        if vis_mask is not None:
            array[~np.asarray(vis_mask, dtype=bool)] = 0
        return array

    def slice(self, topX: int, topY: int, width: int, height: int) -> "CodedGrid":
        """A ``width`` x ``height`` window (walls outside the grid), observed through the same palette."""
        out = CodedGrid(width, height, self.palette)
        for j in range(height):
            for i in range(width):
                x, y = topX + i, topY + j
                v = self.get(x, y) if 0 <= x < self.width and 0 <= y < self.height else Wall()
                if v is not None:
                    out.set(i, j, v)
        return out

    def rotate_left(self) -> "CodedGrid":
        """The grid turned a quarter counter-clockwise, observed through the same palette."""
        out = CodedGrid(self.height, self.width, self.palette)
        for i in range(self.width):
            for j in range(self.height):
                v = self.get(i, j)
                if v is not None:
                    out.set(j, out.height - 1 - i, v)
        return out

    def render(
        self,
        tile_size: int,
        agent_pos: tuple[int, int],
        agent_dir: int | None = None,
        highlight_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """minigrid's rendering, each door, key, ball and box drawn in its observed colour."""
        if self.palette is None:
            return super().render(tile_size, agent_pos, agent_dir, highlight_mask)
        shown = Grid(self.width, self.height)
        shown.grid = [_shown(v, self.palette) for v in self.grid]
        return shown.render(tile_size, agent_pos, agent_dir, highlight_mask)


def _visible(opaque: np.ndarray) -> np.ndarray:
    """minigrid's visibility sweep (``Grid.process_vis``) on a view's opacity mask, agent at bottom centre."""
    n = opaque.shape[0]
    mask = np.zeros((n, n), dtype=bool)
    mask[n // 2, n - 1] = True
    op = opaque.tolist()
    m = mask.tolist()
    for j in range(n - 1, -1, -1):
        for i in range(n - 1):
            if m[i][j] and not op[i][j]:
                m[i + 1][j] = True
                if j > 0:
                    m[i + 1][j - 1] = True
                    m[i][j - 1] = True
        for i in range(n - 1, 0, -1):
            if m[i][j] and not op[i][j]:
                m[i - 1][j] = True
                if j > 0:
                    m[i - 1][j - 1] = True
                    m[i][j - 1] = True
    return np.array(m, dtype=bool)


def egocentric_view(
    grid: CodedGrid,
    agent_pos: tuple[int, int] | np.ndarray,
    agent_dir: int,
    carrying: WorldObj | None,
    view: int = VIEW,
) -> np.ndarray:
    """The agent's 7x7x3 uint8 view in the grid's observed colours; cells beyond ``view`` (3, 5 or 7) are unseen."""
    x, y = int(agent_pos[0]), int(agent_pos[1])
    h = VIEW // 2
    if agent_dir == 0:
        tx, ty = x, y - h
    elif agent_dir == 1:
        tx, ty = x - h, y
    elif agent_dir == 2:
        tx, ty = x - VIEW + 1, y - h
    else:
        tx, ty = x - h, y - VIEW + 1
    sl = (slice(PAD + tx, PAD + tx + VIEW), slice(PAD + ty, PAD + ty + VIEW))
    k = -(agent_dir + 1)
    codes = np.rot90(grid.codes[sl], k)
    opaque = np.rot90(grid.opaque[sl], k)
    vis = _visible(opaque)
    if view < VIEW:
        vis &= view_mask(view)
    image = np.where(vis[:, :, None], codes, 0).astype(np.uint8)
    image[h, VIEW - 1] = observed_code(carrying, grid.palette)
    return image
