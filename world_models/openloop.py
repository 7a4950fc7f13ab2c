"""Open-loop predictions of a world model next to the real frames, as DreamerV3's report draws them.

:func:`open_loop` filters the first ``context`` steps of real sequences, then rolls the model
forward ``horizon`` steps under the real actions without seeing another frame; the most likely
predicted frame (the decoder's mode) is compared with the real one. :func:`openloop_image`
draws a few sequences as a grid, three rows each, labelled on the left: ``real`` (the context
frames the model filtered, then the real frames it had to predict), ``predicted`` (both drawn by
minigrid's renderer, :func:`~shiftgrid.world_models.interface.render_view`) and ``difference``
(the real frame dimmed, every cell whose (type, colour, state) the model got wrong in red). A
vertical line marks where the context ends and open-loop prediction begins, and a header names
both parts. The world-model trainer logs it to TensorBoard; the Dreamer agent does too.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.models import build_model
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> model = build_model("rssm", "tiny", ObsSpec())
    >>> batch = {"image": torch.ones(2, 6, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 6, dtype=torch.long),
    ...          "mission": torch.zeros(2, 6, 40, dtype=torch.long), "action": torch.zeros(2, 6, dtype=torch.long),
    ...          "reward": torch.zeros(2, 6), "terminated": torch.zeros(2, 6, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 6, dtype=torch.bool)}
    >>> result = open_loop(model, batch, context=2, horizon=4)
    >>> result.predicted["image"].shape, 0.0 <= result.cell_accuracy() <= 1.0
    (torch.Size([2, 4, 7, 7, 3]), True)
    >>> openloop_image(result, tile_size=4).shape
    (204, 257, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from shiftgrid.world_models.interface import WorldModel, render_view
from shiftgrid.world_models.replay import SequenceReplay

#: Pixels between frames, and between the blocks of two sequences.
PAD, BLOCK_PAD = 2, 6
#: The rows of each sequence, as the image labels them.
ROWS = ("real", "predicted", "difference")
#: Pixels of the label column on the left, of the header on top, and of the line where the context ends.
LABEL_WIDTH, HEADER_HEIGHT, CONTEXT_LINE = 70, 16, 3
_WRONG = np.array([255, 0, 0], dtype=np.float32)
_CONTEXT_COLOUR = (30, 90, 200)


@dataclass
class OpenLoop:
    """Real and predicted frames of ``(B, horizon)`` steps after ``context`` filtered ones.

    ``real`` / ``predicted``: ``image`` ``(B, horizon, H, W, 3)`` grid codes and ``direction`` ``(B, horizon)``;
    ``observed``: the ``(B, context, H, W, 3)`` real frames the model filtered before predicting (None: not kept).
    """

    real: dict[str, Tensor]
    predicted: dict[str, Tensor]
    context: int
    observed: Tensor | None = None

    def wrong_cells(self) -> Tensor:
        """``(B, horizon, H, W)``: cells whose predicted (type, colour, state) is not the real one."""
        return (self.predicted["image"] != self.real["image"]).any(-1)

    def cell_accuracy(self) -> float:
        """Share of cells predicted exactly, over every sequence and step."""
        return float(1.0 - self.wrong_cells().float().mean())


def span_without_reset(batch: Mapping[str, Tensor], length: int) -> Tensor:
    """``(B,)``: sequences whose first ``length`` steps are one episode (no ``is_first`` after the first step)."""
    return ~batch["is_first"][:, 1:length].any(-1)


@torch.no_grad()
def open_loop(model: WorldModel, batch: Mapping[str, Tensor], context: int, horizon: int,
              generator: torch.Generator | None = None) -> OpenLoop:
    """Filter ``context`` real steps of each ``(B, T)`` sequence, then predict ``horizon`` steps open-loop.

    The ``k``-th prediction follows the real actions ``context - 1 .. context - 1 + k`` and is
    compared with real step ``context + k``. Needs ``T >= context + horizon`` and ``context >= 1``.
    """
    t = batch["action"].shape[1]
    if context < 1 or horizon < 1 or context + horizon > t:
        raise ValueError(f"need context >= 1, horizon >= 1 and context + horizon <= sequence length {t}; "
                         f"got context={context}, horizon={horizon}")
    was_training = model.training
    model.eval()
    try:
        states, _ = model.observe({k: v[:, :context] for k, v in batch.items()})
        actions = batch["action"][:, context - 1:context - 1 + horizon]
        imagined = model.imagine(states[:, -1], actions, decode=True, generator=generator)
    finally:
        model.train(was_training)
    predicted = imagined.predictions.decoded.mode()
    real = {"image": batch["image"][:, context:context + horizon].to(torch.uint8),
            "direction": batch["direction"][:, context:context + horizon].long()}
    return OpenLoop(real, {"image": predicted["image"], "direction": predicted["direction"].long()}, context,
                    batch["image"][:, :context].to(torch.uint8))


def _difference(real_picture: np.ndarray, wrong: np.ndarray, tile: int) -> np.ndarray:
    """The real picture dimmed, with the wrong cells (``wrong`` indexed ``(x, y)`` as grid codes are) in red."""
    out = real_picture.astype(np.float32) * 0.35
    for x, y in zip(*np.nonzero(wrong)):
        cell = real_picture[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile].astype(np.float32)
        out[y * tile:(y + 1) * tile, x * tile:(x + 1) * tile] = 0.4 * cell + 0.6 * _WRONG
    return out.astype(np.uint8)


def openloop_image(result: OpenLoop, max_sequences: int = 4, tile_size: int = 8) -> np.ndarray:
    """An ``HxWx3`` uint8 grid: per sequence (up to ``max_sequences``) rows real / predicted / difference, labelled,
    the context frames first (real row only) and a line where the context ends (see the module docstring)."""
    real, pred = result.real["image"].cpu().numpy(), result.predicted["image"].cpu().numpy()
    seen = None if result.observed is None else result.observed.cpu().numpy()
    wrong = result.wrong_cells().cpu().numpy()
    n, k, c = min(max_sequences, real.shape[0]), real.shape[1], 0 if seen is None else seen.shape[1]
    h, w = real.shape[2] * tile_size, real.shape[3] * tile_size
    block = 3 * (h + PAD)
    split = LABEL_WIDTH + PAD + c * (w + PAD) + (CONTEXT_LINE + PAD if c else 0)  # where the predictions start
    grid = np.full((HEADER_HEIGHT + n * block + (n - 1) * BLOCK_PAD + PAD, split + k * (w + PAD), 3), 255, dtype=np.uint8)
    if c:
        grid[:, split - CONTEXT_LINE - PAD:split - PAD] = _CONTEXT_COLOUR
    for i in range(n):
        top = HEADER_HEIGHT + i * (block + BLOCK_PAD) + PAD
        for j in range(c):
            left = LABEL_WIDTH + PAD + j * (w + PAD)
            grid[top:top + h, left:left + w] = render_view(seen[i, j], tile_size)  # type: ignore[index]  # c > 0: seen
        for j in range(k):
            left = split + j * (w + PAD)
            real_picture = render_view(real[i, j], tile_size)
            rows = (real_picture, render_view(pred[i, j], tile_size), _difference(real_picture, wrong[i, j], tile_size))
            for r, picture in enumerate(rows):
                y = top + r * (h + PAD)
                grid[y:y + h, left:left + w] = picture
    return _labelled(grid, n, h, block, c, k, split)


def _labelled(grid: np.ndarray, n: int, h: int, block: int, c: int, k: int, split: int) -> np.ndarray:
    """``grid`` with the row labels on the left and the header naming the context and the open-loop steps."""
    from PIL import Image, ImageDraw

    picture = Image.fromarray(grid)
    draw = ImageDraw.Draw(picture)
    for i in range(n):
        top = HEADER_HEIGHT + i * (block + BLOCK_PAD) + PAD
        for r, label in enumerate(ROWS):
            draw.text((3, top + r * (h + PAD) + h // 2 - 5), label, fill=(0, 0, 0))
    if c:
        draw.text((LABEL_WIDTH + PAD, 2), "context", fill=_CONTEXT_COLOUR)
    draw.text((split, 2), f"open loop k = 1..{k}", fill=(0, 0, 0))
    return np.asarray(picture, dtype=np.uint8).copy()


def replay_open_loop(model: WorldModel, replay: SequenceReplay, context: int, horizon: int, sequences: int,
                     log_image: Callable[[str, np.ndarray], None], generator: torch.Generator | None = None) -> dict[str, float]:
    """Draw ``sequences`` replayed sequences predicted open-loop as ``openloop/prediction`` (through ``log_image``).

    Sequences that stay within one episode are drawn first. Returns the tag ``openloop/cell_accuracy``,
    or nothing while no stream of ``replay`` holds ``context + horizon`` steps. The world-model trainer
    and Dreamer both log their open-loop predictions this way.
    """
    span = context + horizon
    if not bool((replay.size >= span).any()):
        return {}
    batch = replay.sample(4 * sequences, span, generator=generator)
    clean = span_without_reset(batch, span)
    order = torch.cat([torch.nonzero(clean).flatten(), torch.nonzero(~clean).flatten()])[:sequences]
    result = open_loop(model, {k: v[order.to(v.device)] for k, v in batch.items()}, context, horizon)
    log_image("openloop/prediction", openloop_image(result, sequences))
    return {"openloop/cell_accuracy": result.cell_accuracy()}
