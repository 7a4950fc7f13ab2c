"""Categorical latents: 1% uniform mix, straight-through samples, KL balancing with free bits (DreamerV3).

Example:
    >>> import torch
    >>> logits = unimix(torch.zeros(2, 4, 8), 0.01)
    >>> sample = straight_through(logits, torch.Generator().manual_seed(0))
    >>> sample.shape, sample.sum(-1).tolist()[0]
    (torch.Size([2, 4, 8]), [1.0, 1.0, 1.0, 1.0])
"""

from __future__ import annotations

import torch
from torch import Tensor


def unimix(logits: Tensor, mix: float) -> Tensor:
    """Logits of ``(1 - mix) * softmax(logits) + mix / K``: no class ever has probability 0."""
    probs = torch.softmax(logits.float(), -1)
    probs = (1 - mix) * probs + mix / logits.shape[-1]
    return torch.log(probs)


def straight_through(logits: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One-hot sample of each categorical in ``(..., K)``; its gradient is that of the probabilities.

    Drawn by inverting the CDF at one uniform per categorical (``torch.rand`` with ``generator``,
    in row-major order), so a seeded draw is repeatable and does not depend on how a batch is split.
    """
    return _draw(torch.softmax(logits.float(), -1), generator)


def mixed_sample(raw: Tensor, mix: float, generator: torch.Generator | None = None,
                 uniform: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(unimix(raw, mix), straight_through(that))`` with the probabilities computed once (the imagination step).

    ``uniform`` ``(...)``: the draws to invert, one per categorical, instead of drawing them here
    (a filter draws a whole sequence's at once: the same numbers, as ``torch.rand`` fills row-major).
    """
    probs = (1 - mix) * torch.softmax(raw.float(), -1) + mix / raw.shape[-1]
    return torch.log(probs), _draw(probs, generator, uniform)


def _draw(probs: Tensor, generator: torch.Generator | None, uniform: Tensor | None = None) -> Tensor:
    u = torch.rand(probs.shape[:-1], generator=generator, device=probs.device, dtype=probs.dtype) if uniform is None else uniform
    idx = (probs.cumsum(-1) < u[..., None]).sum(-1).clamp_(max=probs.shape[-1] - 1)
    onehot = torch.nn.functional.one_hot(idx, probs.shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach() if torch.is_grad_enabled() and probs.requires_grad else onehot


def categorical_kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """``KL(p || q)`` summed over the latent groups: ``(..., S, K) -> (...)``."""
    p_log, q_log = torch.log_softmax(p_logits.float(), -1), torch.log_softmax(q_logits.float(), -1)
    return (p_log.exp() * (p_log - q_log)).sum((-1, -2))


def kl_balance(post_logits: Tensor, prior_logits: Tensor, free_nats: float = 1.0, dyn_scale: float = 1.0,
               rep_scale: float = 0.1) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """DreamerV3's KL loss: ``(loss, dyn, rep, kl)``, each ``(...)`` (per step).

    ``dyn = max(free, KL(sg(post) || prior))`` trains the prior towards the posterior,
    ``rep = max(free, KL(post || sg(prior)))`` the posterior towards the prior; ``loss =
    dyn_scale * dyn + rep_scale * rep``. Below ``free_nats`` a term is constant (no gradient).
    ``kl`` is the unclipped ``KL(post || prior)``.
    """
    kl = categorical_kl(post_logits, prior_logits)
    dyn = torch.clamp(categorical_kl(post_logits.detach(), prior_logits), min=free_nats)
    rep = torch.clamp(categorical_kl(post_logits, prior_logits.detach()), min=free_nats)
    return dyn_scale * dyn + rep_scale * rep, dyn, rep, kl.detach()
