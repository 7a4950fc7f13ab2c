"""One world-model update: loss of a sampled B x T batch, gradient clipping, a clear stop on NaN/inf.

The optimiser holds the world model's parameters only: an actor and a critic trained in
imagination get optimisers of their own (one shared optimiser silently applies actor
gradients at the model's learning rate).

Example:
    >>> import torch
    >>> from shiftgrid.world_models.config import preset
    >>> from shiftgrid.world_models.rssm import RSSM
    >>> model = RSSM(preset("tiny"))
    >>> batch = {"image": torch.ones(2, 4, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 4, dtype=torch.long),
    ...          "mission": torch.zeros(2, 4, 40, dtype=torch.long), "action": torch.zeros(2, 4, dtype=torch.long),
    ...          "reward": torch.zeros(2, 4), "terminated": torch.zeros(2, 4, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 4, dtype=torch.bool)}
    >>> metrics = train_step(model, make_optimizer(model), batch)
    >>> sorted(metrics)[:4]
    ['cell_accuracy', 'cont', 'direction_accuracy', 'dyn']
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import Tensor

from shiftgrid.world_models.interface import LatentState, WorldModel


class NonFiniteLossError(FloatingPointError):
    """A loss term or the gradient norm was NaN or inf; the parameters were not updated."""


def make_optimizer(model: WorldModel, lr: float | None = None, eps: float | None = None) -> torch.optim.Adam:
    """Adam over ``model``'s parameters only, at its config's learning rate unless given."""
    cfg = model.config
    return torch.optim.Adam(model.parameters(), lr=cfg.lr if lr is None else lr, eps=cfg.eps if eps is None else eps)


def train_step(model: WorldModel, optimizer: torch.optim.Optimizer, batch: Mapping[str, Tensor],
               grad_clip: float | None = None) -> dict[str, float]:
    """Update ``model`` on ``batch``; returns the loss terms, metrics, ``loss`` and ``grad_norm`` as floats.

    Raises:
        NonFiniteLossError: naming the non-finite terms (or the gradient norm); nothing is updated,
            so the last good parameters (and any checkpoint of them) stay valid.
    """
    return train_step_with_states(model, optimizer, batch, grad_clip)[0]


def train_step_with_states(model: WorldModel, optimizer: torch.optim.Optimizer, batch: Mapping[str, Tensor],
                           grad_clip: float | None = None) -> tuple[dict[str, float], LatentState | None]:
    """:func:`train_step`, also returning the batch's posterior states of the loss pass, detached (the
    parameters before the step filtered them), or ``None`` where the model's training pass is not its
    filter (:meth:`WorldModel.loss_and_states`)."""
    model.train()
    total, terms, states = model.loss_and_states(batch)
    values = {k: float(v) for k, v in terms.items()}
    loss = float(total.detach())
    if not math.isfinite(loss):
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        raise NonFiniteLossError(f"world-model loss is {loss} (non-finite terms: {bad or 'none; the sum overflowed'}); "
                                 "parameters not updated")
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    clip = model.config.grad_clip if grad_clip is None else grad_clip
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
    if not math.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLossError(f"world-model gradient norm is {norm} (loss {loss:.4g}); parameters not updated")
    optimizer.step()
    return {**values, "loss": loss, "grad_norm": norm}, None if states is None else states.detach()
