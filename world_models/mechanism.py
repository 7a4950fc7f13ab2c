"""The mechanism world model: a spatial memory the view is read from and written to, and a few learned local rules.

Structure (assumed) and rules (learned). The state is an allocentric memory of ``M x M`` cells
(``channels`` latents each) kept centred on the agent, the agent's own latent (``carry``: what
it holds), its direction, the mission and the last action. The fixed geometry
(:mod:`shiftgrid.world_models.ego_geometry`) says only where the cells of the egocentric view and
of the agent's neighbourhood lie in the memory for each direction. Nothing says what an action
does: from the same replayed observations, actions, rewards and terminations as the other
families, the model learns

- the **interaction rule**: an MLP on the agent's ``(2w+1)^2`` neighbourhood (seen from the
  agent, so one rule serves every direction), its latent and the action, which may rewrite
  any cell of that neighbourhood and the agent's latent (gated), and gives the turn;
- the **turn**: a categorical over the four relative turns (the model's one stochastic latent;
  observed when filtering, sampled when imagining);
- the **motion rule**: a categorical over the ``(2r+1)^2`` displacements (in the agent's frame),
  given the rule's hidden state and the turn; the memory is moved under the agent by the
  expected displacement (one convolution), so cells far from the agent never change;
- the **write**: each observed cell's embedding updates the memory cell it shows (gated,
  so an ``unseen`` cell can leave memory alone), and an attention over the view updates the
  agent's latent;
- the **view decoder** (:class:`~shiftgrid.world_models.mechanism_parts.ViewDecoder`): per-cell
  content and which cells are seen; and the **reward and continuation heads**, MLPs on the
  neighbourhood, the agent's latent, the last action and the mission.

One step from a state and action: rule, turn, motion give the prior state (its view is the
predicted next frame); the observation is then written into it (the posterior state). Loss:
negative log-likelihood of each next frame (cells and direction) under the prior state, of each
frame under the posterior state it was written into (``recon``), of rewards (symlog two-hot) and
terminations from the prior states. ``dyn`` is the direction's KL between the observed
posterior and the prior (already part of ``obs``; ``rep`` equals it and trains nothing).

A :class:`~shiftgrid.world_models.interface.LatentState` of this model holds the memory in
``context`` ``(..., C, M, M)``; ``deter`` is ``[carry, mission, last action, egocentric crop of
the memory]`` (what a policy reads) and ``stoch`` the direction, one-hot ``(..., 1, 4)``.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.mechanism_config import preset
    >>> model = MechanismWorldModel(preset("tiny"), ObsSpec())
    >>> batch = {"image": torch.ones(2, 5, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 5, dtype=torch.long),
    ...          "mission": torch.zeros(2, 5, 40, dtype=torch.long), "action": torch.zeros(2, 5, dtype=torch.long),
    ...          "reward": torch.zeros(2, 5), "terminated": torch.zeros(2, 5, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 5, dtype=torch.bool)}
    >>> states, out = model.observe(batch)
    >>> states.context.shape, sorted(out.losses)
    (torch.Size([2, 5, 12, 15, 15]), ['cont', 'dyn', 'obs', 'recon', 'rep', 'reward'])
    >>> model.imagine(states[:, -1], torch.zeros(2, 15, dtype=torch.long)).predictions.reward.shape
    torch.Size([2, 15])
"""

from __future__ import annotations

import contextlib
import math
from typing import Mapping, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftgrid.world_models.base import OBS_KEYS, LatentWorldModel
from shiftgrid.world_models.ego_geometry import EgoGeometry, gather, scatter, shift
from shiftgrid.world_models.encoder import mlp
from shiftgrid.world_models.heads import ScalarHead
from shiftgrid.world_models.interface import (NUM_DIRECTIONS, Imagined, LatentState, ObserveOutput, ObsSpec, Policy,
                                              Predictions, WorldModel)
from shiftgrid.world_models.latents import straight_through
from shiftgrid.world_models.mechanism_config import MechanismConfig
from shiftgrid.world_models.mechanism_parts import CellEncoder, ViewDecoder
from shiftgrid.world_models.twohot import TwoHot

#: Gate bias the interaction rule starts with: cells and the agent's latent start out unchanged.
KEEP_PRIOR = -4.0
#: Gate bias the write starts with: an observed cell starts out overwriting its memory cell.
WRITE_PRIOR = 2.0
#: Logit the zero displacement starts with (the others start at 0).
STAY_PRIOR = 3.0
#: Logit of the observed direction in a posterior state's direction logits (the others: 0).
OBSERVED = 30.0


def _uniform_init(linear: nn.Linear, scale: float = 0.1) -> None:
    nn.init.uniform_(linear.weight, -scale / math.sqrt(linear.in_features), scale / math.sqrt(linear.in_features))
    nn.init.zeros_(linear.bias)


class HeadSize(NamedTuple):
    """The sizes :class:`~shiftgrid.world_models.heads.ScalarHead` reads of a config."""

    hidden: int
    layers: int


class PriorPieces(NamedTuple):
    """What the heads read of a prior state: its view's memory cells ``(N, C, V*V*K')`` (each with its decoder context),
    neighbourhood ``(N, C*K)``, carry."""

    view: Tensor
    window: Tensor
    carry: Tensor


class MechanismWorldModel(WorldModel):
    """Spatial memory plus learned local rules; see the module docstring. ``config`` sizes it, ``spec`` says what it observes."""

    def __init__(self, config: MechanismConfig, spec: ObsSpec = ObsSpec()):
        super().__init__()
        self.config, self.spec = config, spec
        c, view, actions = config, spec.image_shape[0], spec.num_actions
        if spec.image_shape[0] != spec.image_shape[1]:
            raise ValueError(f"the mechanism model needs a square view, got {spec.image_shape}")
        if c.map_size < 2 * (view + c.decoder_context) - 1:
            raise ValueError(f"map_size={c.map_size} cannot hold a {view}x{view} view with decoder_context="
                             f"{c.decoder_context} in every direction; need map_size >= {2 * (view + c.decoder_context) - 1}")
        self.geometry = EgoGeometry(c.map_size, view, c.window, c.reach, c.actor_view, c.decoder_context)
        self.encoder = cell_encoder = CellEncoder(c, spec)
        self.mission_dim = cell_encoder.mission_dim
        k_window, k_move = (2 * c.window + 1) ** 2, (2 * c.reach + 1) ** 2
        self.k_window = k_window
        # the interaction rule: neighbourhood, agent latent, action -> turn, cell and agent updates
        self.rule = mlp(c.channels * k_window + c.carry + actions, c.hidden, 2)
        self.rule_out = nn.Linear(c.hidden, NUM_DIRECTIONS + k_window * (c.channels + 1) + c.carry + 1)
        _uniform_init(self.rule_out)
        with torch.no_grad():
            gates = NUM_DIRECTIONS + k_window * c.channels
            self.rule_out.bias[gates:gates + k_window] = KEEP_PRIOR
            self.rule_out.bias[-1] = KEEP_PRIOR
        self.motion = mlp(c.hidden + NUM_DIRECTIONS, c.hidden // 2, 1, k_move)
        motion_out = cast(nn.Linear, self.motion[-1])
        _uniform_init(motion_out)
        with torch.no_grad():
            motion_out.bias[self.geometry.displacement(0, 0)] = STAY_PRIOR
        # the write: observed cell embeddings into memory cells; an attention over the view into the agent latent
        self.write = nn.Linear(c.cell_embed, c.channels + 1)
        nn.init.constant_(self.write.bias[-1:], WRITE_PRIOR)
        self.carry_attention = nn.Linear(c.cell_embed, 1)
        self.carry_write = nn.Linear(c.cell_embed, c.carry + 1)
        # reading
        self.decoder = ViewDecoder(c, spec)
        head_in = c.channels * k_window + c.carry + actions + self.mission_dim
        size = HeadSize(c.head_hidden, c.layers)
        self.reward_head = ScalarHead(size, head_in, c.reward_bins)  # type: ignore[arg-type]
        self.cont_head = ScalarHead(size, head_in, 1, zero_init=False)  # type: ignore[arg-type]
        self.twohot = TwoHot(c.reward_bins)
        self.deter_dim = c.carry + self.mission_dim + actions + c.channels * (2 * c.actor_view + 1) ** 2
        self.features_dim = self.deter_dim + NUM_DIRECTIONS
        self._rule_core = torch.compile(self._rule, backend=c.compile_backend) if c.compile else self._rule
        self._motion_core = torch.compile(self._motion, backend=c.compile_backend) if c.compile else self._motion

    # ---- pieces --------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager:
        device = next(self.parameters()).device
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Packed observations ``(B, T, F)`` of a batch (:class:`~shiftgrid.world_models.mechanism_parts.CellEncoder`)."""
        return self.encoder({k: batch[k] for k in (*OBS_KEYS, *(k for k, _ in self.spec.token_lengths))})

    def _rule(self, memory: Tensor, carry: Tensor, direction: Tensor, action: Tensor
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The interaction rule: ``(turn logits (N, 4), memory, carry, hidden)`` after the agent acts ``action`` (one-hot)."""
        c, n, k = self.config, memory.shape[0], self.k_window
        index = self.geometry.window_index[direction]
        window = gather(memory, index)
        hidden = self.rule(torch.cat([window.flatten(1), carry, action], -1))
        out = self.rule_out(hidden).float()
        turn = out[:, :NUM_DIRECTIONS]
        cells = torch.tanh(out[:, NUM_DIRECTIONS:NUM_DIRECTIONS + k * c.channels]).view(n, c.channels, k)
        gate = torch.sigmoid(out[:, NUM_DIRECTIONS + k * c.channels:NUM_DIRECTIONS + k * (c.channels + 1)])[:, None]
        agent = torch.tanh(out[:, -c.carry - 1:-1])
        agent_gate = torch.sigmoid(out[:, -1:])
        memory = scatter(memory, index, window + gate * (cells - window))
        return turn, memory, carry + agent_gate * (agent - carry), hidden

    def _motion(self, hidden: Tensor, turn: Tensor) -> Tensor:
        """The motion rule: logits ``(N, (2r+1)^2)`` over the agent's displacement (its own frame) given ``turn`` (one-hot)."""
        return self.motion(torch.cat([hidden, turn.to(hidden.dtype)], -1)).float()

    def _move(self, memory: Tensor, displacement: Tensor, direction: Tensor) -> Tensor:
        """``memory`` moved under an agent facing ``direction`` by ``displacement`` (probabilities, its own frame)."""
        return shift(memory, self.geometry.to_allocentric(displacement, direction))

    def _write(self, memory: Tensor, carry: Tensor, cells: Tensor, direction: Tensor) -> tuple[Tensor, Tensor]:
        """Memory and agent latent after observing embedded cells ``(N, V*V, E)`` facing ``direction``."""
        c = self.config
        out = self.write(cells).float()
        index = self.geometry.view_index[direction]
        old = gather(memory, index)
        new = torch.tanh(out[..., :c.channels]).transpose(1, 2)
        memory = scatter(memory, index, old + torch.sigmoid(out[..., c.channels:]).transpose(1, 2) * (new - old))
        weights = torch.softmax(self.carry_attention(cells).float(), 1)
        agent = self.carry_write((weights * cells).sum(1)).float()
        gate = torch.sigmoid(agent[:, -1:])
        return memory, carry + gate * (torch.tanh(agent[:, :-1]) - carry)

    @staticmethod
    def _absolute(turn_logits: Tensor, direction: Tensor) -> Tensor:
        """Logits over the next absolute direction from logits over the relative turn, facing ``direction``."""
        index = (torch.arange(NUM_DIRECTIONS, device=direction.device)[None] - direction[:, None]) % NUM_DIRECTIONS
        return turn_logits.gather(1, index)

    def _state(self, memory: Tensor, carry: Tensor, direction: Tensor, mission: Tensor, action: Tensor,
               direction_logits: Tensor) -> LatentState:
        """Pack one step's pieces ``(N, ...)`` into a :class:`LatentState` (``action``: the one-hot last action)."""
        crop = gather(memory, self.geometry.crop_index[direction]).flatten(1)
        deter = torch.cat([carry, mission.to(carry.dtype), action.to(carry.dtype), crop], -1)
        stoch = F.one_hot(direction, NUM_DIRECTIONS).to(carry.dtype)[:, None]
        return LatentState(deter, stoch, direction_logits[:, None], memory)

    def _unpack(self, state: LatentState) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(memory, carry, direction, mission, last action)`` of a flat state ``(N,)``."""
        if state.context is None:
            raise ValueError("a mechanism-model state needs its memory (context): start from a state observe(), "
                             "imagine() or initial() returned")
        carry, mission, action, _ = self._deter_parts(state.deter)
        return state.context, carry, state.stoch[:, 0].argmax(-1), mission, action

    def _deter_parts(self, deter: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(carry, mission, last action (one-hot), crop)`` slices of ``deter`` ``(..., D)``."""
        return tuple(deter.split([self.config.carry, self.mission_dim, self.spec.num_actions,
                                  self.deter_dim - self.config.carry - self.mission_dim - self.spec.num_actions], -1))

    def initial(self, batch: int) -> LatentState:
        """The state before an episode: an empty memory, facing east (``obs_step`` with ``is_first`` replaces it)."""
        c, device = self.config, next(self.parameters()).device
        zeros = lambda *shape: torch.zeros(*shape, device=device)  # noqa: E731
        return self._state(zeros(batch, c.channels, c.map_size, c.map_size), zeros(batch, c.carry),
                           torch.zeros(batch, dtype=torch.long, device=device), zeros(batch, self.mission_dim),
                           zeros(batch, self.spec.num_actions), zeros(batch, NUM_DIRECTIONS))

    def _filter(self, state: LatentState, action: Tensor, embed: Tensor, is_first: Tensor, blind: Tensor | None = None
                ) -> tuple[LatentState, Tensor, "PriorPieces"]:
        """One filtering step: ``(posterior state, prior logits (N, 4), what the heads read of the prior state)``.

        The prior state is the previous state after ``action`` (its view: the predicted frame);
        where ``is_first`` it is an empty memory and agent latent, and its logits are zeros.
        Where ``blind`` (training only) the observation is not written: the posterior keeps the prior's
        memory and agent latent (its direction is still the observed one).
        """
        memory, carry, direction, _, _ = self._unpack(state)
        cells, observed, mission = cast(CellEncoder, self.encoder).unpack(embed)
        n = embed.shape[0]
        keep = (~is_first.bool().to(embed.device).expand(n)).float()
        onehot = F.one_hot(action.long(), self.spec.num_actions).float() * keep[:, None]
        with self._autocast():
            turn_logits, memory, carry, hidden = self._rule_core(memory, carry, direction, onehot)
            turn = F.one_hot((observed - direction) % NUM_DIRECTIONS, NUM_DIRECTIONS).float()
            memory = self._move(memory, torch.softmax(self._motion_core(hidden, turn), -1), direction)
            prior = self._absolute(turn_logits, direction) * keep[:, None]
            memory, carry = memory * keep[:, None, None, None], carry * keep[:, None]
            pieces = PriorPieces(gather(memory, self.geometry.view_context_index[observed]),
                                 gather(memory, self.geometry.window_index[observed]).flatten(1), carry)
            written, written_carry = self._write(memory, carry, cells, observed)
            if blind is None:
                memory, carry = written, written_carry
            else:
                see = (~blind).float()
                memory = memory + see[:, None, None, None] * (written - memory)
                carry = carry + see[:, None] * (written_carry - carry)
        posterior = (F.one_hot(observed, NUM_DIRECTIONS).float() - 1.0) * OBSERVED
        return self._state(memory, carry, observed, mission, onehot, posterior), prior, pieces

    def obs_step(self, state: LatentState, action: Tensor, embed: Tensor, is_first: Tensor,
                 generator: torch.Generator | None = None) -> tuple[LatentState, Tensor]:
        """One filtering step: previous state and action, this step's packed observation -> (posterior state, prior logits).

        Where ``is_first`` the memory and the agent's latent start empty (a new episode) and the
        prior logits are zeros. ``generator`` is unused (the filtered direction is observed).
        """
        post, prior, _ = self._filter(state, action, embed, is_first)
        return post, prior[:, None]

    # ---- the interface -------------------------------------------------------------------------

    def observe(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
                ) -> tuple[LatentState, ObserveOutput]:
        """Filter ``(B, T)`` sequences; a sequence's first step starts an episode whatever its flag.

        Every step's prior state (the prediction of that frame from the step before) is scored for the loss too.
        """
        return self._observe(batch)

    def _observe(self, batch: Mapping[str, Tensor], blind: Tensor | None = None) -> tuple[LatentState, ObserveOutput]:
        """:meth:`observe`, not writing the observations of steps ``blind`` ``(B, T)`` (see :meth:`_blind_spans`)."""
        b, t = batch["action"].shape
        embed = self._embed(batch)
        is_first = batch["is_first"].clone().bool()
        is_first[:, 0] = True
        state, action = self.initial(b), torch.zeros(b, dtype=torch.long, device=embed.device)
        posts, priors, pieces = [], [], []
        for i in range(t):
            state, prior, piece = self._filter(state, action, embed[:, i], is_first[:, i],
                                               None if blind is None else blind[:, i])
            posts.append(state)
            priors.append(prior)
            pieces.append(piece)
            action = batch["action"][:, i]
        states = LatentState.stack(posts, 1)
        prior_logits = torch.stack(priors, 1)
        _, mission, last_action, _ = self._deter_parts(states.deter)
        view, window, carry = (torch.stack(parts, 1) for parts in zip(*pieces))
        with self._autocast():
            preds = self.predict(states)
            prior_preds = self._heads(window, carry, last_action, mission, view, prior_logits)
        losses, metrics = self._objective(batch, is_first, preds, prior_preds, prior_logits)
        assert states.logits is not None, "posterior states keep their direction logits"
        return states, ObserveOutput(losses, metrics, preds, prior_logits[:, :, None], states.logits)

    def _heads(self, window: Tensor, carry: Tensor, action: Tensor, mission: Tensor, view: Tensor | None,
               direction_logits: Tensor) -> Predictions:
        """Heads of states given as pieces with leading dims ``(...)``: neighbourhood, carry, action, mission, view."""
        lead = carry.shape[:-1]
        flat = lambda x: x.reshape(-1, *x.shape[len(lead):])  # noqa: E731
        feats = torch.cat([flat(window), flat(carry), flat(action).to(carry.dtype), flat(mission).to(carry.dtype)], -1)
        reward_logits = self.reward_head(feats).unflatten(0, lead)
        cont_logits = self.cont_head(feats)[:, 0].unflatten(0, lead)
        obs = None
        if view is not None:
            dist = self.decoder(flat(view), flat(carry), flat(direction_logits))
            obs = type(dist)(*(lg.unflatten(0, lead) for lg in (dist.type_logits, dist.color_logits, dist.state_logits,
                                                                 dist.direction_logits)))
        return Predictions(obs, self.twohot.decode(reward_logits), reward_logits, cont_logits)

    def predict(self, state: LatentState, decode: bool = True) -> Predictions:
        """Heads of ``state``; for an imagined state the observation is the predicted next one."""
        lead = state.deter.shape[:-1]
        flat = state.reshape(int(math.prod(lead)))
        memory, carry, direction, mission, action = self._unpack(flat)
        window = gather(memory, self.geometry.window_index[direction]).flatten(1)
        view = gather(memory, self.geometry.view_context_index[direction]) if decode else None
        assert flat.logits is not None, "a mechanism-model state keeps its direction logits"
        preds = self._heads(window, carry, action, mission, view, flat.logits[:, 0])
        obs = preds.obs
        if obs is not None:
            obs = type(obs)(*(lg.unflatten(0, lead) for lg in (obs.type_logits, obs.color_logits, obs.state_logits,
                                                               obs.direction_logits)))
        return Predictions(obs, preds.reward.unflatten(0, lead), preds.reward_logits.unflatten(0, lead),
                           preds.cont_logits.unflatten(0, lead))

    def _objective(self, batch: Mapping[str, Tensor], is_first: Tensor, post: Predictions, prior: Predictions,
                   prior_logits: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Loss terms and metrics; every prior term is averaged over the steps that do not start an episode."""
        assert prior.obs is not None and post.obs is not None, "the objective scores decoded frames"
        valid = (~is_first).float()
        count = valid.sum().clamp(min=1.0)
        mean = lambda x: (x * valid).sum() / count  # noqa: E731
        direction_nll = -torch.log_softmax(prior_logits, -1).gather(-1, batch["direction"].long()[..., None])[..., 0]
        losses = {"obs": mean(-prior.obs.log_prob(batch)),
                  "recon": -post.obs.log_prob(batch).mean(),
                  "reward": mean(self.twohot.loss(prior.reward_logits, batch["reward"].float())),
                  "cont": mean(F.binary_cross_entropy_with_logits(prior.cont_logits, 1.0 - batch["terminated"].float(),
                                                                  reduction="none")),
                  "dyn": mean(direction_nll)}
        losses["rep"] = losses["dyn"].detach()
        prior_mode, post_mode = prior.obs.mode(), post.obs.mode()
        metrics = {"cell_accuracy": (post_mode["image"] == batch["image"]).all(-1).float().mean(),
                   "prior_cell_accuracy": mean((prior_mode["image"] == batch["image"]).all(-1).float().mean((-1, -2))),
                   "direction_accuracy": mean((prior_mode["direction"] == batch["direction"]).float())}
        return losses, metrics

    def _blind_spans(self, is_first: Tensor) -> Tensor:
        """Steps ``(B, T)`` whose observations training does not write: spans that start with chance
        ``blind_start`` per step and go on with chance ``blind_stay`` (drawn from torch's generator), never
        at an episode's first step (which must be written) and ending there."""
        c = self.config
        draws = torch.rand(is_first.shape, device=is_first.device)
        blind = torch.zeros_like(is_first)
        for i in range(1, is_first.shape[1]):
            blind[:, i] = ~is_first[:, i] & torch.where(blind[:, i - 1], draws[:, i] < c.blind_stay, draws[:, i] < c.blind_start)
        return blind

    def loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``obs + recon_scale * recon + reward + cont``, and every term and metric (detached).

        Training filters with blind spans (:meth:`_blind_spans`): the frames in them are predicted open-loop.
        """
        is_first = batch["is_first"].bool()
        _, out = self._observe(batch, self._blind_spans(is_first) if self.config.blind_start > 0 else None)
        l = out.losses
        total = l["obs"] + self.config.recon_scale * l["recon"] + l["reward"] + l["cont"]
        return total, {**{k: v.detach() for k, v in l.items()}, **{k: v.detach() for k, v in out.metrics.items()}}

    def imagine(self, start: LatentState, actions: Tensor | Policy, horizon: int | None = None,
                decode: bool = False, generator: torch.Generator | None = None) -> Imagined:
        """Roll from ``start`` ``(B,)``; ``actions`` ``(B, H)`` or a policy with ``horizon``. ``states[:, k]`` follows ``actions[:, k]``.

        Each step's turn, then its displacement, are drawn from the prior (with ``generator``).
        """
        policy = actions if callable(actions) else None
        horizon = LatentWorldModel._horizon(actions, horizon)
        memory, carry, direction, mission, _ = self._unpack(start)
        state, states, taken = start, [], []
        with self._autocast():
            for k in range(horizon):
                a = policy(state) if policy is not None else cast(Tensor, actions)[:, k]
                onehot = F.one_hot(a.long(), self.spec.num_actions).float()
                turn_logits, memory, carry, hidden = self._rule_core(memory, carry, direction, onehot)
                turn = straight_through(turn_logits, generator).detach()
                displacement = straight_through(self._motion_core(hidden, turn), generator).detach()
                memory = self._move(memory, displacement, direction)
                logits = self._absolute(turn_logits, direction)
                direction = (direction + turn.argmax(-1)) % NUM_DIRECTIONS
                state = self._state(memory, carry, direction, mission, onehot, logits)
                states.append(state)
                taken.append(a)
            stacked = LatentState.stack(states, 1)
            preds = self.predict(stacked, decode=decode)
        return Imagined(stacked, torch.stack(taken, 1), preds)
