"""Symlog and two-hot encoding over bins spaced evenly in symlog space (DreamerV3's reward head).

Example:
    >>> import torch
    >>> bins = TwoHot(num_bins=41)
    >>> target = bins.encode(torch.tensor([0.9, -3.0]))
    >>> target.shape, [round(v, 4) for v in bins.decode_probs(target).tolist()]
    (torch.Size([2, 41]), [0.9, -3.0])
"""

from __future__ import annotations

import torch
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    """``sign(x) * log(1 + |x|)``: compresses large magnitudes, keeps small ones (near-identity at 0)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    """Inverse of :func:`symlog`."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


class TwoHot:
    """``num_bins`` bins evenly spaced over ``[low, high]`` in symlog space.

    A value is encoded as weights on the two bins around its symlog (weights sum to 1, their
    weighted mean is its symlog); values beyond the range land on the end bin.
    """

    def __init__(self, num_bins: int = 255, low: float = -20.0, high: float = 20.0):
        if num_bins < 2 or not low < high:
            raise ValueError(f"need num_bins >= 2 and low < high, got num_bins={num_bins}, low={low}, high={high}")
        self.num_bins, self.low, self.high = num_bins, low, high

    def bins(self, like: Tensor) -> Tensor:
        return torch.linspace(self.low, self.high, self.num_bins, device=like.device, dtype=torch.float32)

    def encode(self, x: Tensor) -> Tensor:
        """Two-hot weights ``(..., num_bins)`` of values ``x``."""
        bins = self.bins(x)
        y = symlog(x.float()).clamp(self.low, self.high)
        upper = torch.searchsorted(bins, y.contiguous(), right=False).clamp(1, self.num_bins - 1)
        lower = upper - 1
        w_upper = (y - bins[lower]) / (bins[upper] - bins[lower])
        out = torch.zeros(*x.shape, self.num_bins, device=x.device)
        out.scatter_(-1, lower[..., None], (1 - w_upper)[..., None])
        out.scatter_add_(-1, upper[..., None], w_upper[..., None])
        return out

    def decode_probs(self, probs: Tensor) -> Tensor:
        """The value whose symlog is the probability-weighted mean bin."""
        return symexp((probs * self.bins(probs)).sum(-1))

    def decode(self, logits: Tensor) -> Tensor:
        """Predicted value of logits ``(..., num_bins)``."""
        return self.decode_probs(torch.softmax(logits.float(), -1))

    def loss(self, logits: Tensor, x: Tensor) -> Tensor:
        """Cross-entropy of logits ``(..., num_bins)`` against the two-hot encoding of ``x`` (shape ``...``)."""
        return -(self.encode(x) * torch.log_softmax(logits.float(), -1)).sum(-1)
