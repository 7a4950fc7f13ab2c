"""The world-model interface every model family answers, and the data it speaks in.

A batch (as :meth:`shiftgrid.world_models.replay.SequenceReplay.sample` returns) is a dict of
``(B, T, ...)`` tensors: ``image`` (uint8 grid codes), ``direction``, token keys (``mission``),
``action`` (taken from each step's observation), ``reward``, ``terminated``, ``truncated``,
``is_first``. A model filters it with :meth:`WorldModel.observe`, rolls forward with
:meth:`WorldModel.imagine`, and :meth:`WorldModel.predict` reads the heads of any state: the
observation that state stands for (for an imagined state, the predicted next observation) as
an :class:`ObsDistribution`, the reward and the continuation.

Example:
    >>> import torch
    >>> dist = ObsDistribution(torch.zeros(1, 7, 7, NUM_TYPES), torch.zeros(1, 7, 7, NUM_COLORS),
    ...                        torch.zeros(1, 7, 7, NUM_STATES), torch.zeros(1, 4))
    >>> frame = dist.sample(torch.Generator().manual_seed(0))
    >>> frame["image"].shape, dist.log_prob(frame).shape
    (torch.Size([1, 7, 7, 3]), torch.Size([1]))
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping, cast

import numpy as np
import torch
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX
from torch import Tensor

NUM_TYPES, NUM_COLORS, NUM_STATES, NUM_DIRECTIONS = len(OBJECT_TO_IDX), len(COLOR_TO_IDX), len(STATE_TO_IDX), 4


@dataclass(frozen=True)
class ObsSpec:
    """What a model is built for: view shape, number of actions, token keys with lengths, vocabulary size."""

    image_shape: tuple[int, int, int] = (7, 7, 3)
    num_actions: int = 7
    token_lengths: tuple[tuple[str, int], ...] = (("mission", 40),)
    vocab_size: int = 69

    @classmethod
    def from_spaces(cls, observation_space: spaces.Space, action_space: spaces.Space) -> "ObsSpec":
        """The spec of a (single-env) space pair as :func:`shiftgrid.envs.learner_env.make_env` makes."""
        if not isinstance(observation_space, spaces.Dict):
            raise TypeError(f"world models need a Dict observation space, got {observation_space}")
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"world models need a Discrete action space, got {action_space}")
        boxes = cast(Mapping[str, spaces.Box], observation_space.spaces)  # the image and the token keys are Boxes
        tokens = tuple((k, int(boxes[k].shape[0])) for k in ("mission", "advice") if k in boxes)
        vocab = max((int(boxes[k].high.max()) + 1 for k, _ in tokens), default=1)
        return cls(cast(tuple[int, int, int], tuple(boxes["image"].shape)), int(action_space.n), tokens, vocab)


def _map(fn: Callable[[Tensor], Tensor], obj: Any) -> Any:
    return type(obj)(**{f.name: (None if getattr(obj, f.name) is None else fn(getattr(obj, f.name))) for f in fields(obj)})


@dataclass
class LatentState:
    """A model state: ``deter`` ``(..., D)`` (deterministic) and ``stoch`` ``(..., S, K)`` (one-hot sample).

    ``logits`` are the categorical logits ``stoch`` was drawn from (prior or posterior).
    ``context`` / ``context_mask`` hold the history a model needs to imagine on from this state,
    in the model's own layout ``(..., *)`` / ``(..., C)`` (the transformer: keys and values of the
    last ``C`` steps of the episode, and which of those slots are real); ``None`` for the
    RSSM, whose ``deter`` is its whole history. So every state :meth:`WorldModel.observe` or
    :meth:`WorldModel.imagine` returns is a valid start for ``imagine``, of either model.
    Index, stack and detach it like a tensor: ``state[:, -1]``, ``LatentState.stack([...], 1)``.
    """

    deter: Tensor
    stoch: Tensor
    logits: Tensor | None = None
    context: Tensor | None = None
    context_mask: Tensor | None = None

    def features(self) -> Tensor:
        """``(..., D + S * K)``: what the heads and a policy read."""
        return torch.cat([self.deter, self.stoch.flatten(-2)], -1)

    def __getitem__(self, index: Any) -> "LatentState":
        return _map(lambda t: t[index], self)

    def detach(self) -> "LatentState":
        return _map(Tensor.detach, self)

    def reshape(self, *shape: int) -> "LatentState":
        """Reshape the leading (batch) dimensions."""
        lead = self.deter.dim() - 1
        return _map(lambda t: t.reshape(*shape, *t.shape[lead:]), self)

    @staticmethod
    def stack(states: list["LatentState"], dim: int) -> "LatentState":
        stacked: dict[str, Any] = {f.name: (None if getattr(states[0], f.name) is None else
                                            torch.stack([getattr(s, f.name) for s in states], dim))
                                   for f in fields(states[0])}
        return type(states[0])(**stacked)


@dataclass
class ObsDistribution:
    """Independent categoricals per view cell over type, colour and state, plus one over direction.

    Logits: ``type_logits`` ``(..., H, W, NUM_TYPES)``, ``color_logits`` ``(..., H, W, NUM_COLORS)``,
    ``state_logits`` ``(..., H, W, NUM_STATES)``, ``direction_logits`` ``(..., 4)``. Observations are
    dicts with ``image`` ``(..., H, W, 3)`` grid codes and ``direction`` ``(...)``.
    """

    type_logits: Tensor
    color_logits: Tensor
    state_logits: Tensor
    direction_logits: Tensor

    def _channels(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.type_logits, self.color_logits, self.state_logits

    def cell_log_prob(self, image: Tensor) -> Tensor:
        """Exact log-likelihood of each cell's (type, colour, state): ``(..., H, W)``."""
        image = image.long()
        return cast(Tensor, sum(torch.log_softmax(lg.float(), -1).gather(-1, image[..., c, None])[..., 0]
                                for c, lg in enumerate(self._channels())))

    def direction_log_prob(self, direction: Tensor) -> Tensor:
        return torch.log_softmax(self.direction_logits.float(), -1).gather(-1, direction.long()[..., None])[..., 0]

    def log_prob(self, obs: Mapping[str, Tensor]) -> Tensor:
        """Exact log-likelihood of whole observations (all cells and the direction): ``(...)``."""
        return self.cell_log_prob(obs["image"]).sum((-1, -2)) + self.direction_log_prob(obs["direction"])

    def mode(self) -> dict[str, Tensor]:
        """The most likely code per cell and channel, and direction."""
        image = torch.stack([lg.argmax(-1) for lg in self._channels()], -1).to(torch.uint8)
        return {"image": image, "direction": self.direction_logits.argmax(-1)}

    def sample(self, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """One frame per leading index, drawn with ``generator`` (seeded: repeatable)."""
        def draw(logits: Tensor) -> Tensor:
            probs = torch.softmax(logits.float(), -1)
            return torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator).reshape(probs.shape[:-1])
        image = torch.stack([draw(lg) for lg in self._channels()], -1).to(torch.uint8)
        return {"image": image, "direction": draw(self.direction_logits)}


@dataclass
class Predictions:
    """Head outputs of states ``(...)``: observation distribution, reward (mean) and its logits, continuation logits."""

    obs: ObsDistribution | None
    reward: Tensor
    reward_logits: Tensor
    cont_logits: Tensor

    @property
    def decoded(self) -> ObsDistribution:
        """:attr:`obs`; ``ValueError`` where the states were predicted with ``decode=False``."""
        if self.obs is None:
            raise ValueError("these predictions were made with decode=False: they have no observation distribution")
        return self.obs

    @property
    def cont_prob(self) -> Tensor:
        """Probability that the episode goes on after this state."""
        return torch.sigmoid(self.cont_logits.float())


@dataclass
class ObserveOutput:
    """What :meth:`WorldModel.observe` computes besides the states: scalar loss terms, metrics, predictions."""

    losses: dict[str, Tensor]
    metrics: dict[str, Tensor]
    predictions: Predictions
    prior_logits: Tensor
    post_logits: Tensor


@dataclass
class Imagined:
    """A rollout of ``H`` steps from a start state: ``states[:, k]`` follows ``actions[:, k]``; heads of each."""

    states: LatentState
    actions: Tensor
    predictions: Predictions


#: A policy for :meth:`WorldModel.imagine`: state ``(B,)`` -> actions ``(B,)`` (long).
Policy = Callable[[LatentState], Tensor]


class WorldModel(torch.nn.Module, abc.ABC):
    """A learned generative model of a grid world. RSSM and transformer models implement it.

    ``spec`` says what it observes; ``config`` is its (frozen dataclass) configuration, with at
    least ``lr``, ``eps`` and ``grad_clip`` (read by :mod:`shiftgrid.world_models.train_step`);
    ``family`` and ``preset`` name it (:func:`~shiftgrid.world_models.models.build_model` sets them).
    """

    spec: ObsSpec
    config: Any
    family: str = "unnamed"
    preset: str = "custom"
    #: reads observations into embeddings (the input of :meth:`obs_step`)
    encoder: torch.nn.Module
    #: width of :meth:`LatentState.features` (what a policy on the model's states reads)
    features_dim: int

    @abc.abstractmethod
    def initial(self, batch: int) -> LatentState:
        """The state an episode starts from (for acting online: Dreamer, the dream env)."""

    @abc.abstractmethod
    def obs_step(self, state: LatentState, action: Tensor, embed: Tensor, is_first: Tensor,
                 generator: torch.Generator | None = None) -> tuple[LatentState, Tensor]:
        """One filtering step (acting online): previous state and action, this step's embedding -> (posterior, prior logits)."""

    @abc.abstractmethod
    def observe(self, batch: Mapping[str, Tensor]) -> tuple[LatentState, ObserveOutput]:
        """Filter real ``(B, T)`` sequences into posterior states ``(B, T)``; losses and predictions of each step."""

    @abc.abstractmethod
    def imagine(self, start: LatentState, actions: Tensor | Policy, horizon: int | None = None,
                decode: bool = False, generator: torch.Generator | None = None) -> Imagined:
        """Roll ``horizon`` steps from ``start`` ``(B,)`` under actions ``(B, H)`` or a policy; decode frames if asked.

        ``start`` is any state ``observe`` or ``imagine`` returned (indexed or flattened): it carries
        what the model needs of its history (see :class:`LatentState`).
        """

    @abc.abstractmethod
    def predict(self, state: LatentState, decode: bool = True) -> Predictions:
        """Heads of ``state``: its observation distribution (if ``decode``), reward, continuation."""

    @abc.abstractmethod
    def loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Total training loss of a batch and its (detached) terms and metrics."""

    def loss_and_states(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], LatentState | None]:
        """:meth:`loss`, and the posterior states ``(B, T)`` of that pass where it filters as :meth:`observe`
        does (an actor-critic starts imagining from them, detached, instead of filtering the batch again);
        ``None`` (this default) where the training pass filters otherwise."""
        total, terms = self.loss(batch)
        return total, terms, None


def to_symbolic(image: Tensor | np.ndarray) -> np.ndarray:
    """minigrid's symbolic image (``uint8`` ``(H, W, 3)``, indexed ``(x, y)``) of one predicted grid-code frame.

    Codes minigrid cannot place in a grid (``agent``, or out of range, which a model may
    predict) become empty cells; everything else is kept as predicted.

    Example:
        >>> to_symbolic(torch.full((7, 7, 3), 10, dtype=torch.uint8))[0, 0].tolist()
        [1, 0, 0]
    """
    codes = np.array(image.detach().cpu().numpy() if isinstance(image, Tensor) else image, dtype=np.uint8)
    if codes.ndim != 3 or codes.shape[-1] != 3:
        raise ValueError(f"need one (H, W, 3) grid-code image, got shape {codes.shape}")
    bad = ((codes[..., 0] >= NUM_TYPES) | (codes[..., 0] == OBJECT_TO_IDX["agent"]) | (codes[..., 1] >= NUM_COLORS)
           | (codes[..., 2] >= NUM_STATES))
    codes[bad] = (OBJECT_TO_IDX["empty"], 0, 0)
    return codes


def render_view(image: Tensor | np.ndarray, tile_size: int = 16) -> np.ndarray:
    """RGB picture of an agent-view grid-code frame, drawn by minigrid's renderer.

    ``Grid.decode(to_symbolic(image))`` rebuilds the grid (and the visibility mask), and
    ``grid.render`` draws it with the agent where minigrid puts it in its own view (bottom
    row, middle, facing up): the same picture as ``env.unwrapped.get_pov_render`` for a real
    frame. Use it on ``ObsDistribution.mode()["image"][i]`` or a sample.

    Example:
        >>> import gymnasium as gym
        >>> obs, _ = gym.make("MiniGrid-Empty-5x5-v0").reset(seed=0)
        >>> render_view(obs["image"]).shape
        (112, 112, 3)
    """
    from minigrid.core.grid import Grid

    codes = to_symbolic(image)
    grid, vis = Grid.decode(codes)
    return grid.render(tile_size, agent_pos=(codes.shape[0] // 2, codes.shape[1] - 1), agent_dir=3, highlight_mask=vis)
