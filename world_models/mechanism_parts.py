"""The learned pieces of the mechanism world model that touch observations: the cell encoder and the view decoder.

:class:`CellEncoder` turns an observation into what the model writes: one embedding per view
cell (its type, colour and state codes, plus a learned vector per view position), the direction
(one-hot) and the mission (mean token embedding per token key), packed into one vector per
observation (:meth:`CellEncoder.unpack` undoes it). :class:`ViewDecoder` turns the memory cells a
view covers into an :class:`~shiftgrid.world_models.interface.ObsDistribution`: a per-cell MLP
(weights shared across cells; a learned vector per view position and the agent's own latent as
inputs) gives each cell's content, and a network over the whole view gives each cell's
probability of being seen; an unseen cell shows the observation format's ``unseen`` code
``(0, 0, 0)``. Which cells are seen (minigrid's occlusion) is learned, like everything else.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> from shiftgrid.world_models.mechanism_config import preset
    >>> enc, dec = CellEncoder(preset("tiny"), ObsSpec()), ViewDecoder(preset("tiny"), ObsSpec())
    >>> obs = {"image": torch.zeros(2, 7, 7, 3, dtype=torch.uint8), "direction": torch.tensor([1, 3]),
    ...        "mission": torch.zeros(2, 40, dtype=torch.long)}
    >>> cells, direction, mission = enc.unpack(enc(obs))
    >>> cells.shape, direction.tolist(), mission.shape
    (torch.Size([2, 49, 8]), [1, 3], torch.Size([2, 8]))
    >>> dec(torch.zeros(2, 12, 49 * 9), torch.zeros(2, 8), torch.zeros(2, 4)).type_logits.shape  # each cell with its 3x3
    torch.Size([2, 7, 7, 11])
"""

from __future__ import annotations

from typing import Mapping, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftgrid.world_models.encoder import mlp
from shiftgrid.world_models.interface import NUM_COLORS, NUM_DIRECTIONS, NUM_STATES, NUM_TYPES, ObsDistribution, ObsSpec
from shiftgrid.world_models.mechanism_config import MechanismConfig

CHANNELS = (NUM_TYPES, NUM_COLORS, NUM_STATES)
#: Logit of "seen" every cell starts with (so an untrained decoder is close to uniform over codes).
SEEN_PRIOR = 3.0
#: Features of each view cell the visibility network reads (its opacity, as far as it matters).
SEEN_FEATURES = 4


class CellEncoder(nn.Module):
    """Observation dict ``(..., ...)`` -> packed ``(..., V*V*cell_embed + 4 + token_embed * keys)``."""

    def __init__(self, config: MechanismConfig, spec: ObsSpec):
        super().__init__()
        v, e = spec.image_shape[0], config.cell_embed
        self.cells, self.width = v * v, e
        self.tables = nn.ModuleList([nn.Embedding(n, e) for n in CHANNELS])
        self.position = nn.Parameter(torch.zeros(v * v, e))
        self.tokens = nn.ModuleDict({k: nn.Embedding(spec.vocab_size, config.token_embed, padding_idx=0)
                                     for k, _ in spec.token_lengths})
        self.mission_dim = config.token_embed * len(self.tokens)

    def forward(self, obs: Mapping[str, Tensor]) -> Tensor:
        image = obs["image"].long()
        cells = sum(t(image[..., c]) for c, t in enumerate(self.tables)).flatten(-3, -2) + self.position
        parts = [cells.flatten(-2), F.one_hot(obs["direction"].long(), NUM_DIRECTIONS).to(cells.dtype)]
        for k, table in self.tokens.items():
            ids = obs[k].long()
            count = (ids != 0).sum(-1, keepdim=True).clamp(min=1)
            parts.append(table(ids).sum(-2) / count)
        return torch.cat(parts, -1)

    def unpack(self, packed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(cells (..., V*V, cell_embed), direction (...) long, mission (..., mission_dim))`` of a packed observation."""
        n = self.cells * self.width
        cells = packed[..., :n].unflatten(-1, (self.cells, self.width))
        direction = packed[..., n:n + NUM_DIRECTIONS].argmax(-1)
        return cells, direction, packed[..., n + NUM_DIRECTIONS:]


class SightScan(nn.Module):
    """Which cells of a ``V x V`` view are seen, from a learned local rule scanned outward from the viewer.

    The rows of the view are visited from the viewer's row (``j = V - 1``) to the farthest (``j = 0``). A
    cell's state comes only from cells nearer the viewer: the three beside it in the row before, and a chain
    along its own row from each side (cells to its left, cells to its right), each cell passing on a state that
    its own content (``(N, V, V, F)`` features) shapes. A cell's own content never decides whether that cell
    is seen. All the rules are small learned layers shared by every cell (locality and weight sharing); what
    blocks sight, and how, is learned. Returns logits ``(N, V * V)`` (flat ``i * V + j``).
    """

    def __init__(self, features: int, view: int, width: int = 8):
        super().__init__()
        self.view, self.width = view, width
        self.viewer = nn.Parameter(torch.randn(width) * 0.5)
        self.below = nn.Linear(3 * width, width)
        self.sweep = nn.ModuleList([nn.Linear(2 * width, width) for _ in range(2)])
        self.combine = nn.Linear(2 * width, width)
        self.passing = nn.Linear(width + features, width)
        self.head = nn.Linear(width, 1)
        nn.init.constant_(self.head.bias, SEEN_PRIOR)

    def forward(self, features: Tensor) -> Tensor:
        n, v, w = features.shape[0], self.view, self.width
        zero = features.new_zeros(n, 1, w)
        before = features.new_zeros(n, v, w)  # what the row before passes on; before the first row: the viewer
        before = torch.cat([before[:, :v // 2], self.viewer.to(features.dtype).expand(n, 1, w), before[:, v // 2 + 1:]], 1)
        logits = []
        for j in range(v - 1, -1, -1):
            padded = torch.cat([zero, before, zero], 1)
            below = torch.tanh(self.below(torch.cat([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]], -1)))  # (N, V, W)
            sides = []
            for sweep, order in zip(self.sweep, (range(v), range(v - 1, -1, -1))):
                carried, side = zero[:, 0], [zero[:, 0]] * v
                for i in order:
                    side[i] = torch.tanh(sweep(torch.cat([below[:, i], carried], -1)))
                    carried = torch.tanh(self.passing(torch.cat([side[i], features[:, i, j]], -1)))
                sides.append(torch.stack(side, 1))
            row = torch.tanh(self.combine(torch.cat(sides, -1)))
            logits.append(self.head(row)[..., 0])  # (N, V) for this j
            before = torch.tanh(self.passing(torch.cat([row, features[:, :, j]], -1)))
        return torch.stack(logits[::-1], 2).flatten(1)  # (N, V (i), V (j)) -> i * V + j


class ViewDecoder(nn.Module):
    """Memory cells of a view ``(N, C, V*V*K)``, the agent's latent ``(N, carry)`` and direction logits -> :class:`ObsDistribution`.

    ``K = (2 * decoder_context + 1) ** 2``: each view cell's egocentric neighbourhood, its own cell in the middle.
    """

    def __init__(self, config: MechanismConfig, spec: ObsSpec):
        super().__init__()
        v, h = spec.image_shape[0], config.decoder_hidden
        self.v, self.k = v, (2 * config.decoder_context + 1) ** 2
        self.position = nn.Parameter(torch.zeros(v * v, config.cell_embed))
        self.content = mlp(config.channels * self.k + config.carry + config.cell_embed, h, 1, sum(CHANNELS))
        self.seen_in = nn.Linear(config.channels, SEEN_FEATURES)
        if config.sight == "scan":
            self.seen: nn.Module = SightScan(SEEN_FEATURES, v)
        else:
            whole_view = mlp(v * v * SEEN_FEATURES, 2 * h, 1, v * v)
            nn.init.constant_(cast(nn.Linear, whole_view[-1]).bias, SEEN_PRIOR)
            self.seen = whole_view
        self.sight = config.sight

    def forward(self, view: Tensor, carry: Tensor, direction_logits: Tensor) -> ObsDistribution:
        n, c, cells = view.shape[0], view.shape[1], view.shape[2] // self.k
        around = view.view(n, c, cells, self.k)
        x = torch.cat([around.permute(0, 2, 1, 3).flatten(2), carry[:, None].expand(n, cells, carry.shape[-1]),
                       self.position.expand(n, cells, self.position.shape[-1])], -1)
        content = self.content(x).float()
        cell_features = self.seen_in(around[..., self.k // 2].transpose(1, 2))  # (N, V*V, F)
        if self.sight == "scan":
            seen = self.seen(cell_features.unflatten(1, (self.v, self.v))).float()
        else:
            seen = self.seen(cell_features.flatten(1)).float()
        log_seen, log_unseen = F.logsigmoid(seen)[..., None], F.logsigmoid(-seen)[..., None]
        out = []
        for logits in content.split(CHANNELS, -1):  # mixture: seen -> the content, unseen -> code 0
            lp = log_seen + torch.log_softmax(logits.contiguous(), -1)
            out.append(torch.cat([torch.logaddexp(lp[..., :1], log_unseen), lp[..., 1:]], -1).view(n, self.v, self.v, -1))
        type_logits, color_logits, state_logits = out
        return ObsDistribution(type_logits, color_logits, state_logits, direction_logits.float())
