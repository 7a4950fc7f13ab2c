"""Prediction accuracy of any :class:`~shiftgrid.world_models.interface.WorldModel` on real sequences.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.config import preset
    >>> from shiftgrid.world_models.rssm import RSSM
    >>> batch = {"image": torch.ones(2, 4, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 4, dtype=torch.long),
    ...          "mission": torch.zeros(2, 4, 40, dtype=torch.long), "action": torch.zeros(2, 4, dtype=torch.long),
    ...          "reward": torch.zeros(2, 4), "terminated": torch.zeros(2, 4, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 4, dtype=torch.bool)}
    >>> sorted(one_step_accuracy(RSSM(preset("tiny")), batch))
    ['cell_accuracy', 'changed_cell_accuracy', 'direction_accuracy', 'frame_accuracy']
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from shiftgrid.world_models.interface import WorldModel


@torch.no_grad()
def one_step_accuracy(model: WorldModel, batch: Mapping[str, Tensor]) -> dict[str, float]:
    """Filter each sequence, predict every next frame from the prior given the real action, score its mode.

    Every observed state is the start of its own one-step rollout (for the transformer it carries
    its key/value context, so each start sees exactly its own history). Steps whose next
    observation starts a new episode are left out. A cell is right when all
    three codes are; ``changed_cell_accuracy`` counts only cells that differ from the previous frame.
    """
    model.eval()
    states, _ = model.observe(batch)
    b, t = batch["action"].shape
    start = states[:, :-1].reshape(b * (t - 1))
    imagined = model.imagine(start, batch["action"][:, :-1].reshape(-1, 1), decode=True)
    mode = imagined.predictions.decoded.mode()
    h, w = batch["image"].shape[2:4]
    target = batch["image"][:, 1:].reshape(-1, h, w, 3)
    before = batch["image"][:, :-1].reshape(-1, h, w, 3)
    valid = ~batch["is_first"][:, 1:].reshape(-1)
    right = (mode["image"][:, 0] == target).all(-1)[valid]
    changed = (target != before).any(-1)[valid]
    return {"cell_accuracy": float(right.float().mean()),
            "changed_cell_accuracy": float(right[changed].float().mean()) if changed.any() else float("nan"),
            "frame_accuracy": float(right.all(-1).all(-1).float().mean()),
            "direction_accuracy": float((mode["direction"][:, 0] == batch["direction"][:, 1:].reshape(-1))[valid]
                                        .float().mean())}
