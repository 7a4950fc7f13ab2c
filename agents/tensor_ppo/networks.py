"""Actor-critic networks of ``tensor-ppo``: a cheap mission-reading one, and BabyAI's extractor as an option.

Both read the observation as the engine (and :func:`~shiftgrid.envs.learner_env.make_env`)
gives it: ``image`` (B, 7, 7, 3) integer cell codes, ``direction`` (B,) ids, ``mission`` (B, L)
token ids padded with 0. Either as torch tensors or NumPy arrays (:func:`as_batch`).

- ``cheap`` (:class:`CheapEncoder`): BabyAI 1.1's bag-of-words cell embedding (a cell is the sum
  of the embeddings of its type, colour and state), a small strided convolution, one FiLM layer
  conditioned on the mission, and a light mission encoder (word plus position embeddings, summed,
  one linear layer). About 60 kMAC per sample forward, sized so that a CPU core spends its time on
  the environment and the PPO update in the same proportion as the fast array engines do.
- ``babyai`` (:class:`~shiftgrid.agents.sb3.extractor.BabyAIExtractor`): the extractor SB3's
  ``ppo`` uses (GRU mission encoder, two FiLM residual blocks, ~4 MFLOP per sample).

:class:`ActorCritic` puts separate policy and value heads on one shared encoder.

Example:
    >>> import torch
    >>> net = ActorCritic.build("cheap", vocab_size=40, settings={})
    >>> obs = {"image": torch.zeros(2, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, dtype=torch.int64),
    ...        "mission": torch.ones(2, 12, dtype=torch.int64)}
    >>> logits, value = net(obs)
    >>> tuple(logits.shape), tuple(value.shape)
    ((2, 7), (2,))
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from shiftgrid.agents.sb3.extractor import CODES_PER_CHANNEL, BabyAIExtractor

#: Network names ``hyperparams.network`` accepts.
NETWORKS = ("cheap", "babyai")
#: Side of the egocentric view.
VIEW = 7
#: Actions (minigrid's seven).
N_ACTIONS = 7


def as_batch(observation: Mapping[str, Any], device: torch.device | str) -> dict[str, torch.Tensor]:
    """An observation batch (tensors or NumPy arrays, SB3's layout or the engine's) as int64/uint8 tensors on ``device``.

    Example:
        >>> batch = as_batch({"image": np.zeros((1, 7, 7, 3), np.uint8), "direction": np.array([2]),
        ...                   "mission": np.zeros((1, 5), np.int64)}, "cpu")
        >>> batch["direction"].dtype, batch["image"].dtype
        (torch.int64, torch.uint8)
    """
    out = {}
    for key in ("image", "direction", "mission"):
        value = torch.as_tensor(np.asarray(observation[key]) if not isinstance(observation[key], torch.Tensor)
                                else observation[key], device=device)
        out[key] = value.to(torch.uint8) if key == "image" else value.to(torch.int64)
    out["direction"] = out["direction"].reshape(out["direction"].shape[0], -1)[:, 0]
    return out


class MissionBag(nn.Module):
    """A light mission encoder: sum over tokens of word + position embeddings (padding 0 adds nothing), then linear + ReLU.

    Args:
        vocab_size: token ids the embedding accepts.
        length: the longest mission it reads (positions beyond share the last embedding).
        dim: embedding and output size.
    """

    def __init__(self, vocab_size: int, length: int = 64, dim: int = 32):
        super().__init__()
        self.words = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.places = nn.Parameter(0.1 * torch.randn(length, dim))
        self.out = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.length = length

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        places = self.places[torch.arange(n, device=tokens.device).clamp(max=self.length - 1)]
        present = (tokens != 0).unsqueeze(-1).to(places.dtype)
        return self.out(((self.words(tokens) + places) * present).sum(dim=1))


class CheapEncoder(nn.Module):
    """Bag-of-words cells modulated by the mission (one FiLM layer), then a small strided convolution.

    The FiLM layer acts on the cell embeddings themselves, at the view's full resolution, so each
    cell can be scored against the mission ("is this the red ball?") before anything is pooled.

    Args:
        vocab_size: mission token ids.
        cell_dim: embedding size of each cell code (the three are summed).
        channels: feature maps of the first convolution (the second has twice as many).
        text_dim: mission encoding size.
        features_dim: output size.
    """

    offsets: torch.Tensor  # a buffer

    def __init__(self, vocab_size: int, cell_dim: int = 16, channels: int = 16, text_dim: int = 32, features_dim: int = 64):
        super().__init__()
        self.cells = nn.Embedding(3 * CODES_PER_CHANNEL, cell_dim)
        self.register_buffer("offsets", torch.arange(3) * CODES_PER_CHANNEL, persistent=False)
        self.mission = MissionBag(vocab_size, dim=text_dim)
        self.film = nn.Linear(text_dim, 2 * cell_dim)  # (1 + gamma), beta for each cell's embedding
        self.conv = nn.Sequential(nn.Conv2d(cell_dim, channels, 2), nn.ReLU(), nn.MaxPool2d(2),  # 7 -> 6 -> 3
                                  nn.Conv2d(channels, 2 * channels, 2), nn.ReLU())  # 3 -> 2
        self.direction = nn.Embedding(4, 8)
        self.head = nn.Sequential(nn.Linear(2 * channels * 4 + 8, features_dim), nn.ReLU())
        self.features_dim = features_dim

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        codes = obs["image"].to(torch.int64) + self.offsets
        x = self.cells(codes).sum(dim=3)  # (B, 7, 7, cell_dim)
        gamma, beta = self.film(self.mission(obs["mission"]))[:, None, None, :].chunk(2, dim=3)
        x = torch.relu((1.0 + gamma) * x + beta).permute(0, 3, 1, 2)
        return self.head(torch.cat([self.conv(x).flatten(1), self.direction(obs["direction"])], dim=1))


class BabyAIEncoder(nn.Module):
    """:class:`~shiftgrid.agents.sb3.extractor.BabyAIExtractor` on engine observations (``settings``: its keywords)."""

    def __init__(self, vocab_size: int, mission_length: int = 64, **settings: Any):
        super().__init__()
        space = spaces.Dict({
            "image": spaces.Box(0, 255, (VIEW, VIEW, 3), np.uint8),
            "direction": spaces.Discrete(4),
            "mission": spaces.Box(0, vocab_size - 1, (mission_length,), np.int64),
        })
        self.extractor = BabyAIExtractor(space, **settings)
        self.features_dim = self.extractor.features_dim

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.extractor(dict(obs))


class ActorCritic(nn.Module):
    """An encoder with a policy head (action logits) and a value head, each one hidden layer.

    Args:
        encoder: maps an observation batch to (B, ``encoder.features_dim``).
        hidden: units of each head's hidden layer.
    """

    def __init__(self, encoder: nn.Module, hidden: int = 64):
        super().__init__()
        self.encoder = encoder
        dim = int(getattr(encoder, "features_dim"))
        self.policy = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, N_ACTIONS))
        self.value = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        for head, gain in ((self.policy, 0.01), (self.value, 1.0)):  # small initial logits: a near-uniform first policy
            nn.init.orthogonal_(head[-1].weight, gain)
            nn.init.zeros_(head[-1].bias)

    @classmethod
    def build(cls, network: str, vocab_size: int, settings: Mapping[str, Any], hidden: int = 64) -> "ActorCritic":
        """The actor-critic of ``network`` (:data:`NETWORKS`) with the encoder's keyword ``settings``.

        Raises:
            ValueError: an unknown network or encoder setting (the message names the valid ones).
        """
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; valid: {', '.join(NETWORKS)}")
        encoder_cls: Any = CheapEncoder if network == "cheap" else BabyAIEncoder
        try:
            encoder = encoder_cls(vocab_size, **settings)
        except TypeError as e:
            valid = [p for p in _parameters(CheapEncoder if network == "cheap" else BabyAIExtractor)
                     if p not in ("vocab_size", "observation_space", "features_dim_", "mission_length")]
            raise ValueError(f"bad setting for the {network} network ({e}); valid: {', '.join(valid)}") from None
        return cls(encoder, hidden)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        return self.policy(features), self.value(features).squeeze(-1)


def _parameters(cls: type) -> list[str]:
    import inspect

    return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
