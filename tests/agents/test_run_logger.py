"""The run's logger protocol: torch's TensorBoard writer and SB3's logger write the same tags and images."""

from __future__ import annotations

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from shiftgrid.agents.run.logger import RunLogger, TensorBoardLogger
from shiftgrid.agents.sb3.logger import SB3RunLogger


def read(directory) -> EventAccumulator:
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize("make", [TensorBoardLogger, SB3RunLogger], ids=["torch", "sb3"])
def test_scalars_and_images_are_written_at_the_dump_step(make, tmp_path):
    logger: RunLogger = make(tmp_path)
    logger.record("rollout/success_rate", 0.25)
    logger.record("rollout/success_rate", 0.5)  # a later record replaces the earlier one
    logger.record_image("eval/id/episode", np.full((4, 6, 3), 200, dtype=np.uint8))
    logger.dump(step=64)
    logger.record("time/sps", 900)
    logger.dump(step=128)
    logger.close()
    acc = read(tmp_path)
    assert [(e.step, e.value) for e in acc.Scalars("rollout/success_rate")] == [(64, 0.5)]  # forgotten after its dump
    assert [(e.step, e.value) for e in acc.Scalars("time/sps")] == [(128, 900)]
    (image,) = acc.Images("eval/id/episode")
    assert (image.step, image.width, image.height) == (64, 6, 4)


def test_an_image_that_is_not_hxwx3_is_refused_with_its_shape(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    with pytest.raises(ValueError, match=r"HxWx3 image, got shape \(4, 6\)"):
        logger.record_image("eval/id/episode", np.zeros((4, 6), dtype=np.uint8))
    logger.close()
