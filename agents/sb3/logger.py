"""SB3's ``Logger`` behind the run's logger protocol, so an SB3 model and the run services write together.

An SB3 learner hands :class:`SB3RunLogger` to the run services (its ``make_logger``) and its
``sb3`` logger to the model: SB3's ``train/*`` and ``rollout/*`` and the services' tags are then
recorded into one ``Logger`` and written at the same steps, with SB3's tag names.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     logger = SB3RunLogger(d)
    ...     logger.record("time/sps", 700)
    ...     logger.dump(step=8)
    ...     logger.close()
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3.common.logger import Image, Logger, configure


class SB3RunLogger:
    """A :class:`~shiftgrid.agents.run.logger.RunLogger` over SB3's ``Logger`` (``sb3``), TensorBoard format only."""

    def __init__(self, directory: str | Path):
        self.sb3: Logger = configure(str(directory), ["tensorboard"])

    def record(self, tag: str, value: float) -> None:
        self.sb3.record(tag, value)

    def record_image(self, tag: str, image: np.ndarray) -> None:
        self.sb3.record(tag, Image(image, "HWC"))

    def dump(self, step: int) -> None:
        self.sb3.dump(step)

    def close(self) -> None:
        self.sb3.close()
