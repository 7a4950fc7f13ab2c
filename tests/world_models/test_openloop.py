"""Open-loop prediction images: which row is real, predicted and difference, and where the context ends."""

import numpy as np
import torch

from shiftgrid.world_models.interface import ObsSpec
from shiftgrid.world_models.models import build_model
from shiftgrid.world_models.openloop import (
    CONTEXT_LINE,
    HEADER_HEIGHT,
    LABEL_WIDTH,
    PAD,
    ROWS,
    _CONTEXT_COLOUR,
    open_loop,
    openloop_image,
)


def result(context=3, horizon=4, sequences=2):
    t = context + horizon
    batch = {"image": torch.randint(1, 3, (sequences, t, 7, 7, 3), generator=torch.Generator().manual_seed(0)).to(torch.uint8),
             "direction": torch.zeros(sequences, t, dtype=torch.long), "mission": torch.zeros(sequences, t, 40, dtype=torch.long),
             "action": torch.zeros(sequences, t, dtype=torch.long), "reward": torch.zeros(sequences, t),
             "terminated": torch.zeros(sequences, t, dtype=torch.bool), "is_first": torch.zeros(sequences, t, dtype=torch.bool)}
    torch.manual_seed(0)
    return open_loop(build_model("rssm", "tiny", ObsSpec()), batch, context=context, horizon=horizon), batch


def ink(region: np.ndarray) -> bool:
    """Some dark (text) pixels in a region of the white margin."""
    return bool((region.min(-1) < 100).any())


def test_the_image_shows_the_context_labels_each_row_and_marks_where_the_context_ends():
    out, batch = result(context=3, horizon=4)
    assert torch.equal(out.observed, batch["image"][:, :3])  # the frames the model filtered are kept for the picture
    tile = 8
    image = openloop_image(out, tile_size=tile)
    frame = 7 * tile
    split = LABEL_WIDTH + PAD + 3 * (frame + PAD) + CONTEXT_LINE + PAD
    assert image.shape == (HEADER_HEIGHT + 2 * 3 * (frame + PAD) + 6 + PAD, split + 4 * (frame + PAD), 3)
    line = image[HEADER_HEIGHT:, split - CONTEXT_LINE - PAD]
    assert (line == _CONTEXT_COLOUR).all()  # a line from the top of the frames to the bottom, where the context ends
    assert ink(image[:HEADER_HEIGHT, LABEL_WIDTH:split]) and ink(image[:HEADER_HEIGHT, split:])  # "context", "open loop"
    block = 3 * (frame + PAD)
    for i in range(2):
        for r, _ in enumerate(ROWS):  # a label beside every row of every sequence
            top = HEADER_HEIGHT + i * (block + 6) + PAD + r * (frame + PAD)
            assert ink(image[top:top + frame, :LABEL_WIDTH]), (i, ROWS[r])
    left = LABEL_WIDTH + PAD
    top = HEADER_HEIGHT + PAD
    assert not (image[top:top + frame, left:left + frame] == 255).all()  # the first context frame is drawn (real row)
    below = image[top + frame + PAD:top + 2 * frame, left:left + frame]
    assert (below == 255).all()  # nothing is predicted during the context
