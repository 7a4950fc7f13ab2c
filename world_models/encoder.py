"""Observation encoder: per-cell embeddings of the (type, colour, state) codes, direction and mission tokens.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.config import preset
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> enc = GridEncoder(preset("tiny"), ObsSpec())
    >>> obs = {"image": torch.zeros(2, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, dtype=torch.long),
    ...        "mission": torch.zeros(2, 40, dtype=torch.long)}
    >>> enc(obs).shape
    torch.Size([2, 64])
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from shiftgrid.world_models.config import LatentModelConfig
from shiftgrid.world_models.interface import NUM_COLORS, NUM_DIRECTIONS, NUM_STATES, NUM_TYPES, ObsSpec


def mlp(inp: int, hidden: int, layers: int, out: int | None = None) -> nn.Sequential:
    """``layers`` x (Linear, LayerNorm, SiLU), then an optional Linear to ``out``."""
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(inp, hidden), nn.LayerNorm(hidden), nn.SiLU()]
        inp = hidden
    if out is not None:
        mods.append(nn.Linear(inp, out))
    return nn.Sequential(*mods)


class GridEncoder(nn.Module):
    """Observation dict ``(..., ...)`` -> embedding ``(..., embed)``.

    Each cell's three codes are embedded (a table per channel, plus a learned per-position
    vector), the cells concatenated; the direction is embedded; each token key's non-padding
    tokens are embedded and averaged. All of it goes through an MLP.
    """

    def __init__(self, config: LatentModelConfig, spec: ObsSpec):
        super().__init__()
        e, (h, w, _) = config.cell_embed, spec.image_shape
        self.spec = spec
        self.tables = nn.ModuleList([nn.Embedding(n, e) for n in (NUM_TYPES, NUM_COLORS, NUM_STATES)])
        self.position = nn.Parameter(torch.zeros(h, w, e))
        self.direction = nn.Embedding(NUM_DIRECTIONS, config.token_embed)
        self.tokens = nn.ModuleDict({k: nn.Embedding(spec.vocab_size, config.token_embed, padding_idx=0)
                                     for k, _ in spec.token_lengths})
        inp = h * w * e + config.token_embed * (1 + len(self.tokens))
        self.net = mlp(inp, config.hidden, 1, config.embed)
        self.out_norm = nn.Sequential(nn.LayerNorm(config.embed), nn.SiLU())

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        image = obs["image"].long()
        cells = sum(t(image[..., c]) for c, t in enumerate(self.tables)) + self.position
        parts = [cells.flatten(-3), self.direction(obs["direction"].long())]
        for k, table in self.tokens.items():
            ids = obs[k].long()
            count = (ids != 0).sum(-1, keepdim=True).clamp(min=1)
            parts.append(table(ids).sum(-2) / count)
        return self.out_norm(self.net(torch.cat(parts, -1)))
