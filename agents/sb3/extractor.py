"""The BabyAI-style features extractor: cell embeddings, convolution, FiLM on the mission, pooling.

It reads the learner-facing Dict observation of :func:`shiftgrid.envs.learner_env.make_env`:
``image`` (HxWx3 uint8 codes: type, colour, state per cell -- not pixels), ``direction``
(``Discrete(4)``), ``mission`` (token ids) and, when present, ``advice`` (token ids). The mission
(and advice) are encoded by GRUs; FiLM layers let that encoding scale and shift the
convolutional features, which are max-pooled and joined with a direction embedding.

stable-baselines3 takes a uint8 HxWx3 Box for a picture: it may transpose it to channels-first
(``VecTransposeImage``) and, unless ``normalize_images=False``, divide it by 255. The extractor
undoes both, so the codes reach the embeddings as exact integers either way.

Example:
    >>> from stable_baselines3 import PPO
    >>> from shiftgrid.envs.learner_env import make_env
    >>> model = PPO("MultiInputPolicy", make_env("shiftgrid/GoTo-v1"), n_steps=64, batch_size=64,
    ...             policy_kwargs={"features_extractor_class": BabyAIExtractor, "normalize_images": False})
    >>> model.policy.features_extractor.features_dim
    128
"""

from __future__ import annotations

from typing import Mapping, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

#: Codes per image channel the cell embedding accepts (minigrid uses 11 types, 6 colours, 3 states;
#: fully observed views put the agent's direction, 0-3, in the state channel).
CODES_PER_CHANNEL = 16


def image_codes(image: torch.Tensor, channels_first: bool) -> torch.Tensor:
    """Integer cell codes (B, H, W, 3) from an image batch as SB3 hands it over.

    Undoes SB3's preprocessing: a channels-first layout is moved back to channels-last, and
    values divided by 255 are scaled back. The test is per value and exact: a code ``k`` in
    1..254 divided by 255 is never an integer, while raw codes always are.
    """
    image = image.float()
    if channels_first:
        image = image.permute(0, 2, 3, 1)
    image = torch.where(image.frac() != 0, image * 255.0, image)
    return image.round().long()


def token_ids(tokens: torch.Tensor) -> torch.Tensor:
    """Token ids as ``long`` (SB3 hands Box observations over as floats)."""
    return tokens.round().long()


def direction_onehot(direction: torch.Tensor) -> torch.Tensor:
    """One-hot directions (B, 4) from SB3's one-hot encoding ((B, 4) or (B, 1, 4)) or from raw ids ((B,) or (B, 1))."""
    flat = direction.reshape(direction.shape[0], -1)
    if flat.shape[1] == 4:
        return flat.float()
    return nn.functional.one_hot(token_ids(flat[:, 0]), 4).float()


class TextEncoder(nn.Module):
    """A GRU over token ids padded with 0 at the end; returns the hidden state after the last token.

    Args:
        words: the word embedding (shared between mission and advice encoders).
        hidden: GRU hidden size.
    """

    def __init__(self, words: nn.Embedding, hidden: int):
        super().__init__()
        self.words = words
        self.gru = nn.GRU(words.embedding_dim, hidden, batch_first=True)
        self.hidden = hidden

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        ids = token_ids(tokens)
        lengths = (ids != 0).sum(dim=1)
        longest = int(lengths.max()) if ids.shape[0] else 0
        if longest == 0:  # every text empty: nothing to read
            return ids.new_zeros(ids.shape[0], self.hidden, dtype=torch.float32)
        out, _ = self.gru(self.words(ids[:, :longest]))  # pads only trail, so out[t] depends on tokens <= t
        last = (lengths - 1).clamp(min=0)
        h = out[torch.arange(ids.shape[0], device=ids.device), last]
        return h * (lengths > 0).unsqueeze(1).to(h.dtype)


class FiLMBlock(nn.Module):
    """Residual block whose features are scaled and shifted by the text: ``x + relu(g * conv(x) + b)``.

    Args:
        channels: feature maps in and out.
        cond_dim: size of the conditioning (text) vector.
    """

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * channels)  # gamma is predicted around 1: (1 + gamma)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(cond).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        h = self.conv2(torch.relu(self.conv1(x)))
        return x + torch.relu((1.0 + gamma) * h + beta)


#: Ways :class:`BabyAIExtractor` turns its feature maps into one vector.
POOLS = ("max", "flatten")


class BabyAIExtractor(BaseFeaturesExtractor):
    """Features from {image codes, direction, mission tokens[, advice tokens]} for SB3 policies.

    Use it through ``policy_kwargs`` with ``MultiInputPolicy`` (PPO, A2C, DQN) or
    ``MultiInputLstmPolicy`` (sb3-contrib's RecurrentPPO, which adds BabyAI's LSTM memory).

    The defaults are sized for a CPU (BabyAI's original used 128 channels and a 128-unit GRU).

    Args:
        observation_space: the Dict space (``image`` and ``mission`` required).
        cell_dim: embedding size of each of a cell's three codes (summed per cell).
        channels: convolution / FiLM feature maps.
        film_layers: number of FiLM residual blocks.
        word_dim: word embedding size.
        text_dim: GRU hidden size of the mission (and advice) encoder.
        direction_dim: direction embedding size.
        features_dim: output size.
        vocab_size: number of token ids (default: the token spaces' own, ``high + 1``: the grammar's words,
            and the advice words too when the space has ``advice``).
        positions: add a learned embedding of each cell's place in the (egocentric) view, so the
            pooled features can still say where things are relative to the agent.
        pool: how the FiLM feature maps become one vector: ``max`` over the view (BabyAI's
            choice), or ``flatten`` (every cell's features, so where things are is kept exactly).

    Example:
        >>> from shiftgrid.envs.learner_env import make_env
        >>> env = make_env("BabyAI-GoToLocal-v0")
        >>> ext = BabyAIExtractor(env.observation_space)
        >>> obs, _ = env.reset(seed=0)
        >>> batch = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
        >>> batch["direction"] = torch.nn.functional.one_hot(batch["direction"].long(), 4).float()
        >>> ext(batch).shape
        torch.Size([1, 128])
    """

    offsets: torch.Tensor  # a buffer

    def __init__(
        self,
        observation_space: spaces.Dict,
        cell_dim: int = 16,
        channels: int = 32,
        film_layers: int = 2,
        word_dim: int = 32,
        text_dim: int = 32,
        direction_dim: int = 8,
        features_dim: int = 128,
        vocab_size: int | None = None,
        positions: bool = True,
        pool: str = "max",
    ):
        super().__init__(observation_space, features_dim)
        missing = {"image", "mission"} - set(observation_space.spaces)
        if missing:
            raise ValueError(f"BabyAIExtractor needs observation keys image and mission; missing {sorted(missing)}")
        boxes = cast(Mapping[str, spaces.Box], observation_space.spaces)  # the image and the token keys are Boxes
        shape = boxes["image"].shape
        if len(shape) != 3 or 3 not in (shape[0], shape[-1]):
            raise ValueError(f"image must be HxWx3 codes (or 3xHxW), got shape {shape}")
        self.channels_first = shape[-1] != 3  # SB3's VecTransposeImage made it 3xHxW
        self.cells = nn.Embedding(3 * CODES_PER_CHANNEL, cell_dim)
        self.register_buffer("offsets", torch.arange(3) * CODES_PER_CHANNEL, persistent=False)
        height, width = (shape[1], shape[2]) if self.channels_first else (shape[0], shape[1])
        self.positions = nn.Parameter(0.1 * torch.randn(1, cell_dim, height, width)) if positions else None
        self.stem = nn.Sequential(nn.Conv2d(cell_dim, channels, 3, padding=1), nn.ReLU())
        if vocab_size is None:
            vocab_size = max(int(np.max(boxes[k].high)) + 1 for k in ("mission", "advice")
                             if k in observation_space.spaces)
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.mission = TextEncoder(self.words, text_dim)
        self.advice = TextEncoder(self.words, text_dim) if "advice" in observation_space.spaces else None
        cond_dim = text_dim * (2 if self.advice is not None else 1)
        self.film = nn.ModuleList(FiLMBlock(channels, cond_dim) for _ in range(film_layers))
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        self.pool = pool
        pooled = channels if pool == "max" else channels * height * width
        has_direction = "direction" in observation_space.spaces
        self.direction = nn.Linear(4, direction_dim, bias=False) if has_direction else None
        self.head = nn.Sequential(nn.Linear(pooled + (direction_dim if has_direction else 0), features_dim), nn.ReLU())

    def encode_text(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        """The conditioning vector: the mission's GRU encoding (joined with the advice's when present)."""
        cond = self.mission(observations["mission"])
        if self.advice is not None:
            cond = torch.cat([cond, self.advice(observations["advice"])], dim=1)
        return cond

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        codes = image_codes(observations["image"], self.channels_first)
        x = self.cells(codes + self.offsets).sum(dim=3).permute(0, 3, 1, 2)  # (B, cell_dim, H, W)
        if self.positions is not None:
            x = x + self.positions
        x = self.stem(x)
        cond = self.encode_text(observations)
        for block in self.film:
            x = block(x, cond)
        parts = [torch.amax(x, dim=(2, 3)) if self.pool == "max" else x.flatten(1)]
        if self.direction is not None:
            parts.append(self.direction(direction_onehot(observations["direction"])))
        return self.head(torch.cat(parts, dim=1))
