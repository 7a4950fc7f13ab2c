"""Heads read from state features: generative observation decoder, two-hot reward, Bernoulli continuation.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.config import preset
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> dec = ObsDecoder(preset("tiny"), ObsSpec(), features=96)
    >>> dec(torch.zeros(5, 96)).type_logits.shape
    torch.Size([5, 7, 7, 11])
"""

from __future__ import annotations

from typing import cast

from torch import Tensor, nn

from shiftgrid.world_models.config import LatentModelConfig
from shiftgrid.world_models.encoder import mlp
from shiftgrid.world_models.interface import NUM_COLORS, NUM_DIRECTIONS, NUM_STATES, NUM_TYPES, ObsDistribution, ObsSpec

_CHANNELS = (NUM_TYPES, NUM_COLORS, NUM_STATES)


class ObsDecoder(nn.Module):
    """Features ``(..., F)`` -> :class:`ObsDistribution`: logits per cell per channel, and direction."""

    def __init__(self, config: LatentModelConfig, spec: ObsSpec, features: int):
        super().__init__()
        self.h, self.w = spec.image_shape[:2]
        self.net = mlp(features, config.hidden, config.layers, self.h * self.w * sum(_CHANNELS) + NUM_DIRECTIONS)

    def forward(self, features: Tensor) -> ObsDistribution:
        out = self.net(features).float()
        cells, direction = out[..., :-NUM_DIRECTIONS], out[..., -NUM_DIRECTIONS:]
        cells = cells.reshape(*features.shape[:-1], self.h, self.w, sum(_CHANNELS))
        t, c, s = cells.split(_CHANNELS, -1)
        return ObsDistribution(t, c, s, direction)


class ScalarHead(nn.Module):
    """Features -> ``out`` logits; the last layer starts at zero (DreamerV3: reward predictions start at 0)."""

    def __init__(self, config: LatentModelConfig, features: int, out: int, zero_init: bool = True):
        super().__init__()
        self.net = mlp(features, config.hidden, config.layers, out)
        if zero_init:
            last = cast(nn.Linear, self.net[-1])
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).float()
