"""Fixed geometry between an agent's egocentric frame and an allocentric memory grid kept centred on it.

A memory is ``(N, C, M, M)``: ``C`` channels over cells ``[x, y]`` (minigrid's axes: ``x`` east,
``y`` south), the agent always at the centre ``(M // 2, M // 2)``. An agent facing direction
``d`` (minigrid's: 0 east, 1 south, 2 west, 3 north) has a forward vector ``F`` and a right vector
``R = (-F_y, F_x)``; the egocentric cell ``(f, l)`` (``f`` cells ahead, ``l`` to the right) is the
memory cell ``centre + f * F + l * R``. The view is minigrid's: image cell ``[i, j]`` of a ``V x V``
view is ``(f, l) = (V - 1 - j, i - V // 2)``, the agent at ``[V // 2, V - 1]`` looking towards ``j = 0``.

This is geometry only (where a cell of a view or of a neighbourhood lies in the memory, and how
to move the memory under the agent); it says nothing of what any action does.

Example:
    >>> import torch
    >>> geo = EgoGeometry(map_size=15, view=7, window=1, reach=2, crop=2)
    >>> memory = torch.zeros(1, 1, 15, 15)
    >>> memory[0, 0, 8, 7] = 1.0  # one cell east of the centre
    >>> front = gather(memory, geo.window_index[torch.tensor([0])])  # facing east: (f, l) = (1, 0) is index 7
    >>> int(front[0, 0].argmax())
    7
    >>> step = torch.zeros(1, 25)
    >>> step[0, geo.displacement(1, 0)] = 1.0  # one cell forward
    >>> moved = shift(memory, geo.to_allocentric(step, torch.tensor([0])))
    >>> float(moved[0, 0, 7, 7])  # the cell that was ahead is now under the agent
    1.0
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: minigrid's ``DIR_TO_VEC``: the forward vector ``(dx, dy)`` of each direction.
FORWARD = ((1, 0), (0, 1), (-1, 0), (0, -1))


def ego_to_offset(direction: int, f: int, l: int) -> tuple[int, int]:
    """The allocentric offset ``(dx, dy)`` of egocentric ``(f, l)`` for an agent facing ``direction``.

    Example:
        >>> ego_to_offset(0, 1, 0), ego_to_offset(0, 0, 1), ego_to_offset(3, 2, -1)
        ((1, 0), (0, 1), (-1, -2))
    """
    fx, fy = FORWARD[direction]
    rx, ry = -fy, fx
    return f * fx + l * rx, f * fy + l * ry


def _square(radius: int) -> list[tuple[int, int]]:
    """Egocentric cells ``(f, l)`` of a square of ``radius``, ``f`` major, both ascending."""
    return [(f, l) for f in range(-radius, radius + 1) for l in range(-radius, radius + 1)]


class EgoGeometry(nn.Module):
    """Index tables (buffers, so they follow the module's device) for one memory size and view size.

    - ``view_index`` ``(4, V * V)``: memory cell (flat ``x * M + y``) of image cell ``[i, j]`` (flat ``i * V + j``).
    - ``window_index`` ``(4, (2w+1)^2)`` and ``crop_index`` ``(4, (2c+1)^2)``: memory cells of the
      egocentric squares of radius ``window`` and ``crop`` around the agent, ``(f, l)`` order.
    - ``view_context_index`` ``(4, V * V * (2s+1)^2)``: for each image cell (major) the memory cells of the
      egocentric square of radius ``context`` around it, ``(f, l)`` order (what a per-cell decoder may read).
    - ``kernel_order`` ``(4, (2r+1)^2)``: for each allocentric offset of a motion kernel (flat
      ``(dx + r) * (2r + 1) + (dy + r)``), the egocentric displacement it is (flat ``(df + r) * (2r + 1) + (dl + r)``).
    """

    view_index: Tensor
    window_index: Tensor
    crop_index: Tensor
    view_context_index: Tensor
    kernel_order: Tensor

    def __init__(self, map_size: int, view: int, window: int, reach: int, crop: int, context: int = 0):
        super().__init__()
        if map_size % 2 == 0 or map_size < 2 * max(view - 1 + context, window, reach, crop) + 1:
            raise ValueError(f"a {map_size}x{map_size} memory cannot hold a {view}x{view} view with context {context} "
                             f"and radii window={window}, reach={reach}, crop={crop} around its centre")
        self.map_size, self.view, self.window, self.reach, self.crop = map_size, view, window, reach, crop
        c = map_size // 2
        view_cells = [(view - 1 - j, i - view // 2) for i in range(view) for j in range(view)]

        def table(cells: list[tuple[int, int]]) -> Tensor:
            rows = []
            for d in range(4):
                rows.append([(c + dx) * map_size + (c + dy) for dx, dy in (ego_to_offset(d, f, l) for f, l in cells)])
            return torch.tensor(rows, dtype=torch.long)

        self.register_buffer("view_index", table(view_cells), persistent=False)
        self.register_buffer("window_index", table(_square(window)), persistent=False)
        self.register_buffer("crop_index", table(_square(crop)), persistent=False)
        around = [(f + df, l + dl) for f, l in view_cells for df, dl in _square(context)]
        self.register_buffer("view_context_index", table(around), persistent=False)
        side = 2 * reach + 1
        order = torch.empty(4, side * side, dtype=torch.long)
        for d in range(4):
            for e, (df, dl) in enumerate(_square(reach)):
                dx, dy = ego_to_offset(d, df, dl)
                order[d, (dx + reach) * side + (dy + reach)] = e
        self.register_buffer("kernel_order", order, persistent=False)

    def displacement(self, f: int, l: int) -> int:
        """The flat index of egocentric displacement ``(f, l)`` among the motion rule's outputs."""
        return (f + self.reach) * (2 * self.reach + 1) + (l + self.reach)

    def to_allocentric(self, probs: Tensor, direction: Tensor) -> Tensor:
        """Egocentric displacement probabilities ``(N, (2r+1)^2)`` of agents facing ``direction`` ``(N,)`` as motion kernels."""
        return probs.gather(1, self.kernel_order[direction])


def gather(memory: Tensor, index: Tensor) -> Tensor:
    """Cells ``index`` ``(N, K)`` (flat) of ``memory`` ``(N, C, M, M)``: ``(N, C, K)``."""
    n, c = memory.shape[:2]
    return memory.flatten(2).gather(2, index[:, None, :].expand(n, c, index.shape[1]))


def scatter(memory: Tensor, index: Tensor, values: Tensor) -> Tensor:
    """``memory`` with cells ``index`` ``(N, K)`` (distinct per row) replaced by ``values`` ``(N, C, K)`` (a new tensor)."""
    n, c, m, _ = memory.shape
    return memory.flatten(2).scatter(2, index[:, None, :].expand(n, c, index.shape[1]), values).view(n, c, m, m)


def shift(memory: Tensor, kernel: Tensor) -> Tensor:
    """Move ``memory`` ``(N, C, M, M)`` under an agent that moved by offset ``d`` with probability ``kernel[:, d]``.

    ``kernel`` ``(N, (2r+1)^2)`` is over allocentric offsets ``(dx, dy)`` (flat ``(dx + r) * (2r + 1) + (dy + r)``);
    the result is ``sum_d kernel[d] * memory[centre + d]`` at the centre (and likewise at every cell),
    zeros (unknown) coming in from beyond the edge. One grouped convolution each way (forward, and
    each gradient: autograd's own backward of a per-sample grouped convolution is several times slower).
    """
    return _Shift.apply(memory.float(), kernel.float())


def _grouped(x: Tensor, weight: Tensor, padding: int) -> Tensor:
    """Channel ``i`` of ``x`` ``(N, C, H, W)`` correlated with ``weight[i]`` ``(N, C, h, w)``: one grouped convolution,
    in float32 whatever autocast says."""
    n, c = x.shape[:2]
    with torch.autocast(x.device.type, enabled=False):
        out = F.conv2d(x.float().reshape(1, n * c, *x.shape[2:]), weight.float().reshape(n * c, 1, *weight.shape[2:]),
                       padding=padding, groups=n * c)
    return out.view(n, c, *out.shape[2:])


class _Shift(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, memory: Tensor, kernel: Tensor) -> Tensor:
        n, c, m, _ = memory.shape
        side = int(round(kernel.shape[1] ** 0.5))
        ctx.save_for_backward(memory, kernel)
        ctx.side = side
        return _grouped(memory, kernel.view(n, 1, side, side).expand(n, c, side, side), side // 2)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        memory, kernel = ctx.saved_tensors
        n, c, m, _ = memory.shape
        side, r = ctx.side, ctx.side // 2
        grad_memory = grad_kernel = None
        if ctx.needs_input_grad[0]:  # the transposed correlation: the flipped kernel
            flipped = kernel.view(n, 1, side, side).flip(-1, -2).expand(n, c, side, side)
            grad_memory = _grouped(grad.contiguous(), flipped, r)
        if ctx.needs_input_grad[1]:  # d out[x] / d kernel[d] = memory[x + d]: correlate memory with the gradient
            padded = F.pad(memory, (r, r, r, r))
            grad_kernel = _grouped(padded, grad.contiguous(), 0).sum(1).reshape(n, side * side)
        return grad_memory, grad_kernel
