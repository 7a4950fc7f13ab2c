"""Prediction accuracy of any :class:`~shiftgrid.world_models.interface.WorldModel` on real sequences.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.config import preset
    >>> from shiftgrid.world_models.rssm import RSSM
    >>> batch = {"image": torch.ones(2, 4, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 4, dtype=torch.long),
    ...          "mission": torch.zeros(2, 4, 40, dtype=torch.long), "action": torch.zeros(2, 4, dtype=torch.long),
    ...          "reward": torch.zeros(2, 4), "terminated": torch.zeros(2, 4, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 4, dtype=torch.bool)}
    >>> sorted(one_step_accuracy(RSSM(preset("tiny")), batch))[:4]
    ['cell_accuracy', 'changed_cell_accuracy', 'direction_accuracy', 'frame_accuracy']
    >>> sorted(one_step_accuracy(RSSM(preset("tiny")), batch))[4:]
    ['reward_f1', 'termination_f1']
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from shiftgrid.world_models.interface import WorldModel
from shiftgrid.world_models.scoring import CONTINUE_THRESHOLD, REWARD_THRESHOLD, f1_score


@torch.no_grad()
def one_step_accuracy(model: WorldModel, batch: Mapping[str, Tensor]) -> dict[str, float]:
    """Filter each sequence, predict every next frame from the prior given the real action, score its mode.

    Every observed state is the start of its own one-step rollout (for the transformer it carries
    its key/value context, so each start sees exactly its own history). Steps whose next
    observation starts a new episode are left out. A cell is right when all
    three codes are; ``changed_cell_accuracy`` counts only cells that differ from the previous frame.
    ``reward_f1`` and ``termination_f1`` score the predicted reward and continuation of each next step as
    :mod:`shiftgrid.world_models.scoring` does (NaN where the batch has no positive, real or predicted).
    """
    model.eval()
    states, _ = model.observe(batch)
    b, t = batch["action"].shape
    start = states[:, :-1].reshape(b * (t - 1))
    imagined = model.imagine(start, batch["action"][:, :-1].reshape(-1, 1), decode=True)
    p = imagined.predictions
    mode = p.decoded.mode()
    h, w = batch["image"].shape[2:4]
    target = batch["image"][:, 1:].reshape(-1, h, w, 3)
    before = batch["image"][:, :-1].reshape(-1, h, w, 3)
    valid = ~batch["is_first"][:, 1:].reshape(-1)
    right = (mode["image"][:, 0] == target).all(-1)[valid]
    changed = (target != before).any(-1)[valid]
    real_reward, real_end = batch["reward"][:, 1:].reshape(-1)[valid], batch["terminated"][:, 1:].reshape(-1)[valid]
    reward_f1 = f1_score(real_reward.float() > REWARD_THRESHOLD, p.reward[:, 0].float()[valid] > REWARD_THRESHOLD)
    termination_f1 = f1_score(real_end.bool(), p.cont_prob[:, 0][valid] < CONTINUE_THRESHOLD)
    return {"reward_f1": reward_f1, "termination_f1": termination_f1,
            "cell_accuracy": float(right.float().mean()),
            "changed_cell_accuracy": float(right[changed].float().mean()) if changed.any() else float("nan"),
            "frame_accuracy": float(right.all(-1).all(-1).float().mean()),
            "direction_accuracy": float((mode["direction"][:, 0] == batch["direction"][:, 1:].reshape(-1))[valid]
                                        .float().mean())}
