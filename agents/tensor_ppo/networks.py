"""Actor-critic networks of ``tensor-ppo``: a cheap mission-reading one, and BabyAI's extractor as an option.

Both read the observation as the engine (and :func:`~shiftgrid.envs.learner_env.make_env`)
gives it: ``image`` (B, 7, 7, 3) integer cell codes, ``direction`` (B,) ids, ``mission`` (B, L)
token ids padded with 0. Either as torch tensors or NumPy arrays (:func:`as_batch`).

- ``cheap`` (:class:`CheapEncoder`): BabyAI 1.1's bag-of-words cell embedding (a cell is the sum
  of the embeddings of its type, colour and state), one FiLM layer conditioned on the mission, a
  light mission encoder (word counts and places, one linear layer), then one linear layer over
  the view (or, ``conv: true``, a small convolution). About 0.1 MFLOP per sample forward, some
  40x less than ``babyai``.
- ``babyai`` (:class:`~shiftgrid.agents.sb3.extractor.BabyAIExtractor`): the extractor SB3's
  ``ppo`` uses (GRU mission encoder, two FiLM residual blocks, ~4 MFLOP per sample).

:class:`ActorCritic` puts separate policy and value heads on one shared encoder, optionally with
a memory between them (``memory`` > 0: a GRU cell whose state is carried from step to step and
zeroed where an episode starts), for families whose levels the 7x7 view cannot see whole.

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


def word_counts(tokens: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """A mission as ``(B, 2 * vocab_size)`` floats: each word's count, and the sum of its relative places (0 first, 1 last).

    The second half keeps a little order (the words of a first clause from those of a second)
    at the cost of a bag of words. Padding (0, trailing) counts as nothing, so the figures do not
    depend on how wide the token array is.

    Example:
        >>> word_counts(torch.tensor([[3, 5, 3, 0, 0]]), 6).tolist()
        [[0.0, 0.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5]]
    """
    present = (tokens != 0).to(torch.float32)
    last = (present.sum(dim=1, keepdim=True) - 1).clamp(min=1)
    places = torch.arange(tokens.shape[1], device=tokens.device, dtype=torch.float32) / last
    out = torch.zeros(tokens.shape[0], 2 * vocab_size, device=tokens.device)
    out.scatter_add_(1, tokens, present)
    out.scatter_add_(1, tokens + vocab_size, present * places)
    return out


class CheapEncoder(nn.Module):
    """Bag-of-words cells modulated by the mission (one FiLM layer), then a small convolution or one linear layer.

    A cell is the sum of the embeddings of its type, colour and state (BabyAI 1.1's bag of words),
    computed as a one-hot matrix product (the same function as summed ``nn.Embedding`` lookups,
    whose backward pass costs several times more on a CPU). The mission is its word counts and
    places (:func:`word_counts`) through one linear layer. The FiLM layer acts on the cell
    embeddings at the view's full resolution, so each cell can be scored against the mission
    ("is this the red ball?") before anything is mixed. Then either a small convolution
    (``conv=True``: 2x2, max-pool, 2x2) or one linear layer over the flattened view.

    With ``advice_vocab`` > 0 it also reads ``advice`` (B, L) token ids (a teacher's words, all
    padding when it is silent; the advised policy of advice distillation): encoded as the mission
    is, added to the mission's encoding before the FiLM layer and given to the output layer.

    Args:
        vocab_size: mission token ids.
        cell_dim: embedding size of each cell code (the three are summed).
        text_dim: mission encoding size.
        features_dim: output size.
        conv: a small convolution before the output layer (False: the flattened view).
        channels: the convolution's first feature maps (the second has twice as many).
        advice_vocab: token ids of the ``advice`` words (0: no advice read).
    """

    offsets: torch.Tensor  # a buffer

    def __init__(self, vocab_size: int, cell_dim: int = 16, text_dim: int = 32, features_dim: int = 64,
                 conv: bool = False, channels: int = 16, advice_vocab: int = 0):
        super().__init__()
        self.vocab_size, self.advice_vocab = vocab_size, int(advice_vocab)
        self.cells = nn.Parameter(torch.randn(3 * CODES_PER_CHANNEL, cell_dim) / 3 ** 0.5)
        self.register_buffer("offsets", torch.arange(3) * CODES_PER_CHANNEL, persistent=False)
        self.mission = nn.Sequential(nn.Linear(2 * vocab_size, text_dim), nn.ReLU())
        self.advice = nn.Sequential(nn.Linear(2 * advice_vocab, text_dim), nn.ReLU()) if advice_vocab > 0 else None
        self.film = nn.Linear(text_dim, 2 * cell_dim)  # (1 + gamma), beta for each cell's embedding
        self.conv = (nn.Sequential(nn.Conv2d(cell_dim, channels, 2), nn.ReLU(), nn.MaxPool2d(2),  # 7 -> 6 -> 3
                                   nn.Conv2d(channels, 2 * channels, 2), nn.ReLU(), nn.Flatten())  # 3 -> 2
                     if conv else None)
        view = 2 * channels * 4 if conv else cell_dim * VIEW * VIEW
        advice_dim = text_dim if advice_vocab > 0 else 0
        self.head = nn.Sequential(nn.Linear(view + 4 + advice_dim, features_dim), nn.ReLU())
        self.features_dim = features_dim

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        image = obs["image"]
        codes = image.reshape(-1, 3).to(torch.int64) + self.offsets
        onehot = torch.zeros(codes.shape[0], self.cells.shape[0], device=image.device).scatter_(1, codes, 1.0)
        x = (onehot @ self.cells).reshape(image.shape[0], VIEW, VIEW, -1)  # (B, 7, 7, cell_dim)
        mission = self.mission(word_counts(obs["mission"], self.vocab_size))
        advice = self.advice(word_counts(obs["advice"], self.advice_vocab)) if self.advice is not None else None
        gamma, beta = self.film(mission if advice is None else mission + advice)[:, None, None, :].chunk(2, dim=3)
        x = torch.relu((1.0 + gamma) * x + beta)
        x = self.conv(x.permute(0, 3, 1, 2)) if self.conv is not None else x.flatten(1)
        direction = nn.functional.one_hot(obs["direction"], 4).to(x.dtype)
        return self.head(torch.cat([x, direction] + ([] if advice is None else [advice]), dim=1))


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
    """An encoder with a policy head (action logits) and a value head, each one hidden layer; optionally a memory.

    Without memory (``memory=0``) the policy reads the current observation only: call it,
    ``logits, value = net(obs)``. With memory, a GRU cell of ``memory`` units sits between the
    encoder and the heads; its state ``(B, memory)`` is carried by the caller, one row per env:
    :meth:`step` acts on one step of a batch, :meth:`sequence` on ``T`` steps of it (the same
    function, the encoder batched over all ``T * B`` observations), and :meth:`act` picks actions.
    ``first`` marks the steps that are an episode's first observation: the state is zeroed there
    before the step is read, so nothing passes from one episode to the next. Both methods work
    without memory too (the state then has no columns), so one acting loop serves both kinds.

    Args:
        encoder: maps an observation batch to (B, ``encoder.features_dim``).
        hidden: units of each head's hidden layer.
        memory: units of the GRU cell (0: none, a feedforward policy).

    Example:
        >>> net = ActorCritic.build("cheap", vocab_size=40, settings={}, memory=8)
        >>> obs = {"image": torch.zeros(2, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, dtype=torch.int64),
        ...        "mission": torch.ones(2, 3, dtype=torch.int64)}
        >>> state = net.initial_state(2)
        >>> actions, state = net.act(obs, state, first=torch.tensor([True, True]), deterministic=True)
        >>> tuple(actions.shape), tuple(state.shape)
        ((2,), (2, 8))
    """

    def __init__(self, encoder: nn.Module, hidden: int = 64, memory: int = 0):
        super().__init__()
        self.encoder = encoder
        dim = int(getattr(encoder, "features_dim"))
        self.memory_size = int(memory)
        self.core = nn.GRUCell(dim, memory) if memory > 0 else None
        dim = memory if memory > 0 else dim
        logits, value = nn.Linear(hidden, N_ACTIONS), nn.Linear(hidden, 1)
        for layer, gain in ((logits, 0.01), (value, 1.0)):  # small initial logits: a near-uniform first policy
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
        self.policy = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), logits)
        self.value = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), value)

    @classmethod
    def build(cls, network: str, vocab_size: int, settings: Mapping[str, Any], hidden: int = 64,
              memory: int = 0) -> "ActorCritic":
        """The actor-critic of ``network`` (:data:`NETWORKS`) with the encoder's keyword ``settings`` and ``memory`` GRU units.

        Raises:
            ValueError: an unknown network or encoder setting, a negative memory (the message names the valid ones).
        """
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; valid: {', '.join(NETWORKS)}")
        if memory < 0:
            raise ValueError(f"memory must be >= 0 (0: no memory, else GRU units), got {memory}")
        encoder_cls: Any = CheapEncoder if network == "cheap" else BabyAIEncoder
        try:
            encoder = encoder_cls(vocab_size, **settings)
        except TypeError as e:
            valid = [p for p in _parameters(CheapEncoder if network == "cheap" else BabyAIExtractor)
                     if p not in ("vocab_size", "observation_space", "features_dim_", "mission_length")]
            raise ValueError(f"bad setting for the {network} network ({e}); valid: {', '.join(valid)}") from None
        return cls(encoder, hidden, memory)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, value)`` of a feedforward net (one with memory needs its state: :meth:`step`)."""
        if self.core is not None:
            raise TypeError("this ActorCritic has a memory: call step(obs, state, first) or sequence(...)")
        features = self.encoder(obs)
        return self.policy(features), self.value(features).squeeze(-1)

    def initial_state(self, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The memory of ``batch`` envs before any step: zeros ``(batch, memory)`` (no columns without memory)."""
        if device is None:
            device = next(self.parameters()).device
        return torch.zeros(batch, self.memory_size, device=device)

    def step(self, obs: Mapping[str, torch.Tensor], state: torch.Tensor, first: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of a batch: ``(logits (B, 7), value (B,), next state)``; ``first`` (B,) bool zeroes the state first."""
        features = self.encoder(obs)
        if self.core is not None:
            state = self.core(features, state * ~first[:, None])
            features = state
        return self.policy(features), self.value(features).squeeze(-1), state

    def sequence(self, obs: Mapping[str, torch.Tensor], state: torch.Tensor, first: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``T`` steps of a batch from ``state`` (observations ``(T, B, ...)``, ``first`` ``(T, B)``), as :meth:`step` ``T`` times.

        Returns ``(logits (T, B, 7), value (T, B), state after the last step)``.
        """
        steps, batch = first.shape
        features = self.encoder({k: v.reshape((steps * batch,) + tuple(v.shape[2:])) for k, v in obs.items()})
        if self.core is not None:
            features = features.reshape(steps, batch, -1)
            outputs = []
            for t in range(steps):
                state = self.core(features[t], state * ~first[t, :, None])
                outputs.append(state)
            features = torch.stack(outputs).reshape(steps * batch, -1)
        logits, value = self.policy(features), self.value(features).squeeze(-1)
        return logits.reshape(steps, batch, -1), value.reshape(steps, batch), state

    def act(self, obs: Mapping[str, torch.Tensor], state: torch.Tensor, first: torch.Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions ``(B,)`` for one step (the most likely, or sampled with ``generator``) and the next state, on the device."""
        logits, _, state = self.step(obs, state, first)
        if deterministic:
            return logits.argmax(dim=1), state
        return torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator).squeeze(1), state


def _parameters(cls: type) -> list[str]:
    import inspect

    return [p for p in inspect.signature(cls).parameters if p != "self"]
