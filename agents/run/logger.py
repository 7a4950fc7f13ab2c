"""The run's TensorBoard logger: what the run services write scalars and images through.

The services need four calls of a logger (:class:`RunLogger`), not a learner library's logger
class. By default a run writes with :class:`TensorBoardLogger` (torch's ``SummaryWriter``); a
learner that logs through a library's own logger supplies an adapter to the same protocol
instead, from a ``make_logger(directory)`` method (SB3's learners do: their ``Logger`` collects
the services' tags and SB3's own ``train/*`` in one write, see ``agents/sb3/learner.py``).

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     logger = TensorBoardLogger(d)
    ...     logger.record("rollout/success_rate", 0.5)
    ...     logger.dump(step=128)
    ...     logger.close()
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np


class RunLogger(Protocol):
    """Scalars and images recorded by tag, written together at a step by :meth:`dump`."""

    def record(self, tag: str, value: float) -> None:
        """Keep ``value`` under ``tag`` for the next :meth:`dump` (a later record of the tag replaces it)."""

    def record_image(self, tag: str, image: np.ndarray) -> None:
        """Keep an ``HxWx3`` uint8 image under ``tag`` for the next :meth:`dump`."""

    def dump(self, step: int) -> None:
        """Write everything recorded since the last dump at ``step``, and forget it."""

    def close(self) -> None:
        """Flush and close the files."""


class TensorBoardLogger:
    """A :class:`RunLogger` writing TensorBoard event files into ``directory`` with torch's ``SummaryWriter``."""

    def __init__(self, directory: str | Path):
        from torch.utils.tensorboard import SummaryWriter  # tensorboard is imported only by a run that logs

        self.writer = SummaryWriter(log_dir=str(directory))
        self._scalars: dict[str, float] = {}
        self._images: dict[str, np.ndarray] = {}

    def record(self, tag: str, value: float) -> None:
        self._scalars[tag] = float(value)

    def record_image(self, tag: str, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"record_image takes an HxWx3 image, got shape {tuple(image.shape)}")
        self._images[tag] = image

    def dump(self, step: int) -> None:
        for tag, value in self._scalars.items():
            self.writer.add_scalar(tag, value, int(step))
        for tag, image in self._images.items():
            self.writer.add_image(tag, image, int(step), dataformats="HWC")
        self._scalars.clear()
        self._images.clear()
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
