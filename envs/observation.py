"""Fast egocentric observations: minigrid's 7x7x3 view computed from a cached code array.

minigrid rebuilds the view object by object every step (slice, rotate, encode). Here the grid
keeps its (type, colour, state) codes in a padded numpy array that is updated whenever a cell
changes, so a view is one slice, one rotation and the same visibility sweep on 49 booleans.
:func:`egocentric_view` returns exactly what ``MiniGridEnv.gen_obs()["image"]`` returns (tested).

Example:
    >>> grid = CodedGrid(6, 6)
    >>> grid.wall_rect(0, 0, 6, 6)
    >>> egocentric_view(grid, (2, 2), 0, None, 7).shape
    (7, 7, 3)
"""

from __future__ import annotations

import numpy as np
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.world_object import WorldObj

_EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
_WALL = (OBJECT_TO_IDX["wall"], COLOR_TO_IDX["grey"], 0)
VIEW = 7  # the observation is always 7x7; smaller views are masked inside it
PAD = VIEW  # padding around the code array so any view slice stays in bounds

#: Palettes for the observation axis: a permutation of colour indices for describable objects.
PALETTES: dict[str, np.ndarray] = {
    "identity": np.arange(6, dtype=np.uint8),
    "swap": np.array([1, 0, 2, 3, 4, 5], dtype=np.uint8),  # red <-> green
    "rotate": np.array([1, 2, 3, 4, 5, 0], dtype=np.uint8),  # every colour shifted by one
}
_RECOLOURED = np.zeros(256, dtype=bool)
_RECOLOURED[[OBJECT_TO_IDX[t] for t in ("door", "key", "ball", "box")]] = True


class CodedGrid(Grid):
    """A minigrid ``Grid`` that keeps a padded ``(W+2P, H+2P, 3)`` code array and opacity mask in sync."""

    def __init__(self, width: int, height: int):
        super().__init__(width, height)
        self.codes = np.zeros((width + 2 * PAD, height + 2 * PAD, 3), dtype=np.uint8)
        self.codes[:] = _WALL
        self.codes[PAD : PAD + width, PAD : PAD + height] = _EMPTY
        self.opaque = np.ones((width + 2 * PAD, height + 2 * PAD), dtype=bool)
        self.opaque[PAD : PAD + width, PAD : PAD + height] = False

    @classmethod
    def from_grid(cls, grid: Grid) -> "CodedGrid":
        """A coded copy of ``grid`` holding the same object instances."""
        out = cls(grid.width, grid.height)
        for j in range(grid.height):
            for i in range(grid.width):
                v = grid.get(i, j)
                if v is not None:
                    out.set(i, j, v)
        return out

    def set(self, i: int, j: int, v: WorldObj | None) -> None:
        super().set(i, j, v)
        self.refresh(i, j)

    def refresh(self, i: int, j: int) -> None:
        """Re-read cell ``(i, j)`` (call after an object's state changed, e.g. a door toggled)."""
        v = self.grid[j * self.width + i]
        self.codes[PAD + i, PAD + j] = _EMPTY if v is None else v.encode()
        self.opaque[PAD + i, PAD + j] = v is not None and not v.see_behind()


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
    agent_pos: tuple[int, int],
    agent_dir: int,
    carrying: WorldObj | None,
    view: int = VIEW,
    palette: np.ndarray | None = None,
) -> np.ndarray:
    """The agent's 7x7x3 uint8 view; cells beyond ``view`` (3, 5 or 7) are unseen, colours remapped by ``palette``."""
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
    image = np.where(vis[:, :, None], codes, 0).astype(np.uint8)
    image[h, VIEW - 1] = _EMPTY if carrying is None else carrying.encode()
    if view < VIEW:
        r = view // 2
        image[: h - r] = 0
        image[h + r + 1 :] = 0
        image[:, : VIEW - view] = 0
    if palette is not None:
        recolour = _RECOLOURED[image[:, :, 0]]
        image[:, :, 1] = np.where(recolour, palette[image[:, :, 1]], image[:, :, 1])
    return image
