"""The transformer world model (STORM's recipe sized for grid worlds), behind the same interface as the RSSM.

Each step ``t`` has one categorical latent token ``z_t ~ q(z_t | o_t)`` (``stoch`` x ``classes``,
1% uniform mix, straight-through samples) read from the observation alone, so a whole sequence
is encoded at once. The transformer's input at step ``t`` is ``u_t = MLP([z_{t-1}, a_{t-1}])``
(zeros where ``o_t`` starts an episode), its causal output ``h_t`` plays the RSSM's ``deter``:
the prior ``p(z_t | h_t)``, and the shared heads read ``[h_t, z_t]``. Same loss as the RSSM
(observation, reward, continuation, KL balancing with free bits).

Attention: step ``t`` attends to steps ``t - context + 1 .. t`` of its own episode only (steps
before an ``is_first`` are masked out), with a learned bias per head and distance instead of
absolute positions, so a step's keys and values do not depend on where its window starts.

How a start carries its history: every state carries ``context`` (the keys and values of the
last ``context`` steps, ``(..., blocks, 2, attn_heads, C, head_dim)``) and ``context_mask`` (which
of those slots are real steps of its episode). Observed states get them as views of the
sequence pass (no copy); imagined states as views of the rollout's record. So ``imagine`` (and
:func:`~shiftgrid.world_models.metrics.one_step_accuracy`, the evaluation and the actor-critic)
can start from any state ``observe`` or ``imagine`` returned, ``states[:, t]`` or all of them
flattened, exactly as with the RSSM; a hand-made state without a context is refused.

Imagination uses a key/value cache: a ring of exactly ``context`` slots per sequence and block,
filled from the start's context; each step computes one new token through every block, writes
its keys/values over the oldest slot and attends to the ring (no re-run of the history).

Example:
    >>> import torch
    >>> from shiftgrid.world_models.transformer_config import preset
    >>> model = TransformerWorldModel(preset("tiny"), ObsSpec())
    >>> batch = {"image": torch.ones(2, 5, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 5, dtype=torch.long),
    ...          "mission": torch.zeros(2, 5, 40, dtype=torch.long), "action": torch.zeros(2, 5, dtype=torch.long),
    ...          "reward": torch.zeros(2, 5), "terminated": torch.zeros(2, 5, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 5, dtype=torch.bool)}
    >>> states, out = model.observe(batch)
    >>> states.deter.shape, states.context_mask.shape, sorted(out.losses)
    (torch.Size([2, 5, 64]), torch.Size([2, 5, 8]), ['cont', 'dyn', 'obs', 'rep', 'reward'])
    >>> model.imagine(states[:, -1], torch.zeros(2, 15, dtype=torch.long)).predictions.reward.shape
    torch.Size([2, 15])
"""

from __future__ import annotations

import math
from typing import Mapping, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftgrid.world_models.base import LatentWorldModel
from shiftgrid.world_models.encoder import mlp
from shiftgrid.world_models.interface import Imagined, LatentState, ObserveOutput, ObsSpec, Policy
from shiftgrid.world_models.latents import mixed_sample, unimix
from shiftgrid.world_models.transformer_config import TransformerConfig


def _put(target: Tensor, dim: int, index: int, value: Tensor) -> Tensor:
    """``target`` with ``value`` at ``index`` of ``dim``: written in place, or into a copy while autograd records."""
    if torch.is_grad_enabled():
        target = target.clone()
    target.select(dim, index).copy_(value)
    return target


class CausalBlock(nn.Module):
    """Pre-LayerNorm self-attention over a ``context``-step window (distance bias per head), then an MLP."""

    def __init__(self, d_model: int, heads: int, ff: int, context: int):
        super().__init__()
        self.heads, self.context = heads, context
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff), nn.SiLU(), nn.Linear(ff, d_model))
        self.distance_bias = nn.Parameter(torch.zeros(heads, context))  # [h, d]: score bias of a key d steps back

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = self.qkv(self.ln1(x)).unflatten(-1, (3, self.heads, -1)).unbind(-3)
        return q, k, v

    def _out(self, x: Tensor, attended: Tensor) -> Tensor:
        x = x + self.proj(attended.flatten(-2))
        return x + self.ff(self.ln2(x))

    def forward(self, x: Tensor, allowed: Tensor, distance: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` ``(B, T, d)``, ``allowed`` ``(B, T, T)`` (query, key), ``distance`` ``(T, T)``.

        Returns the output and the keys/values ``(B, T, 2, h, hd)``.
        """
        q, k, v = self._qkv(x)
        bias = self.distance_bias[:, distance.clamp(0, self.context - 1)]
        mask = bias[None].masked_fill(~allowed[:, None], float("-inf")).to(q.dtype)
        attended = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_mask=mask)
        return self._out(x, attended.transpose(1, 2)), torch.stack([k, v], -3)

    def step(self, x: Tensor, ring: Tensor, slot: int, mask: Tensor, distance: Tensor
             ) -> tuple[Tensor, Tensor, Tensor]:
        """One new token ``x`` ``(N, d)``, its keys and values written at ``slot`` of the ``ring`` ``(2, N, h, C, hd)``.

        It attends to the whole ring (the last ``context`` steps); ``mask`` ``(N, 1, C)`` is added
        to the scores (``-inf`` where a slot holds no step of this episode), ``distance`` ``(C,)``
        says how many steps back each slot is. Returns the output, the ring (a new tensor when
        autograd records, else the same one, written in place) and this step's keys/values ``(2, N, h, hd)``.
        """
        q, k, v = self._qkv(x)
        kv = torch.stack([k, v])
        ring = _put(ring, 3, slot, kv)
        window = ring.to(q.dtype)
        scores = (q[:, :, None] @ window[0].transpose(-1, -2))[:, :, 0].float() / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores + self.distance_bias[:, distance] + mask, -1).to(q.dtype)
        return self._out(x, (weights[:, :, None] @ window[1])[:, :, 0]), ring, kv


class TransformerWorldModel(LatentWorldModel):
    """Causal transformer over (latent, action) tokens with a key/value cache; see the module docstring."""

    ring_distance: Tensor  # a buffer

    def __init__(self, config: TransformerConfig, spec: ObsSpec = ObsSpec()):
        super().__init__(config, spec)
        c, latent = config, config.stoch * config.classes
        self.post_net = mlp(c.embed, c.hidden, 1, latent)
        self.token_in = nn.Sequential(nn.Linear(latent + spec.num_actions, c.d_model), nn.LayerNorm(c.d_model),
                                      nn.SiLU(), nn.Linear(c.d_model, c.d_model))
        self.blocks = nn.ModuleList([CausalBlock(c.d_model, c.attn_heads, c.ff, c.context) for _ in range(c.blocks)])
        self.out_norm = nn.LayerNorm(c.d_model)
        slots = torch.arange(c.context)
        # [slot, s]: how many steps back ring slot s is when the newest step sits in ring slot ``slot``
        self.register_buffer("ring_distance", torch.remainder(slots[:, None] - slots[None, :], c.context),
                             persistent=False)
        self.prior_net = mlp(c.d_model, c.hidden, 1, latent)
        self._build_heads(c.d_model)
        self._step = torch.compile(self._dynamics_step, backend=c.compile_backend) if c.compile else self._dynamics_step

    # ---- pieces -------------------------------------------------------------------------------

    @property
    def _head_dim(self) -> int:
        return self.config.d_model // self.config.attn_heads

    def _latent_logits(self, raw: Tensor) -> Tensor:
        return unimix(self._raw(raw), self.config.unimix)

    def _raw(self, out: Tensor) -> Tensor:
        """A network's ``(..., S * K)`` output as float latent logits ``(..., S, K)``."""
        return out.float().unflatten(-1, (self.config.stoch, self.config.classes))

    def tokens(self, prev_stoch: Tensor, prev_action: Tensor) -> Tensor:
        """Transformer inputs ``(..., d_model)`` from the previous latent ``(..., S, K)`` and action ``(...)``."""
        onehot = F.one_hot(prev_action.long(), self.spec.num_actions).to(prev_stoch.dtype)
        return self.token_in(torch.cat([prev_stoch.flatten(-2), onehot], -1))

    def sequence_tokens(self, stoch: Tensor, action: Tensor, is_first: Tensor) -> Tensor:
        """Tokens ``(B, T, d)`` of a sequence: step ``t``'s from ``(stoch[:, t-1], action[:, t-1])``.

        The inputs are zeros at step 0 and where ``is_first`` (a new episode).
        """
        keep = ~is_first.bool()
        keep[:, 0] = False
        prev_stoch = torch.cat([torch.zeros_like(stoch[:, :1]), stoch[:, :-1]], 1) * keep[..., None, None]
        prev_action = torch.cat([torch.zeros_like(action[:, :1]), action[:, :-1]], 1) * keep
        return self.tokens(prev_stoch, prev_action)

    def sequence(self, tokens: Tensor, is_first: Tensor) -> tuple[Tensor, Tensor]:
        """The uncached pass: tokens ``(B, T, d)``, episode starts ``(B, T)`` -> hidden ``(B, T, d)``, keys/values.

        Keys/values are ``(B, T, blocks, 2, attn_heads, head_dim)``. Step 0 starts an episode whatever its flag.
        """
        t = tokens.shape[1]
        episode = torch.cumsum(is_first.long(), 1)
        pos = torch.arange(t, device=tokens.device)
        distance = pos[:, None] - pos[None, :]
        allowed = ((distance >= 0) & (distance < self.config.context))[None] & (episode[:, :, None] == episode[:, None, :])
        x, kvs = tokens, []
        for block in self.blocks:
            x, kv = block(x, allowed, distance)
            kvs.append(kv)
        return self.out_norm(x).float(), torch.stack(kvs, 2).float()

    def _windows(self, kv: Tensor, episode: Tensor) -> tuple[Tensor, Tensor]:
        """Per-step contexts ``(B, T, C, ...)`` and masks ``(B, T, C)`` as views of keys/values ``(B, T, ...)``."""
        c = self.config.context
        padded = torch.cat([kv.new_zeros(kv.shape[0], c - 1, *kv.shape[2:]), kv], 1)
        ep = torch.cat([episode.new_full((episode.shape[0], c - 1), -1), episode], 1)
        context = padded.unfold(1, c, 1).transpose(-1, -2)
        return context, ep.unfold(1, c, 1) == episode[:, :, None]

    def _dynamics_step(self, x: Tensor, ring: Tensor, slot: int, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """All blocks on one token per sequence, stored at ``slot`` of the ``ring`` ``(blocks, 2, N, h, C, hd)``.

        ``valid`` ``(N, C)``: which ring slots hold steps of the episode (``slot`` included).
        Returns the hidden state ``(N, d)``, the ring and this step's keys/values ``(blocks, 2, N, h, hd)``.
        """
        mask = torch.zeros(valid.shape, device=x.device).masked_fill_(~valid, float("-inf"))[:, None]
        distance = self.ring_distance[slot]
        layers, kvs = [], []
        for i, block in enumerate(cast(list[CausalBlock], self.blocks)):
            x, layer, kv = block.step(x, ring[i], slot, mask, distance)
            layers.append(layer)
            kvs.append(kv)
        if torch.is_grad_enabled():
            ring = torch.stack(layers)
        return self.out_norm(x).float(), ring, torch.stack(kvs)

    @staticmethod
    def _ring(context: Tensor) -> Tensor:
        """A fresh ring ``(blocks, 2, N, h, C, hd)`` holding ``context`` ``(N, blocks, 2, h, C, hd)`` in its slot order."""
        return context.transpose(0, 2).transpose(0, 1).clone(memory_format=torch.contiguous_format)

    @staticmethod
    def _history(context: Tensor, horizon: int) -> Tensor:
        """Room ``(blocks, 2, N, h, C + horizon, hd)`` for the keys/values of a rollout, the first ``C`` slots ``context``."""
        n, blocks, two, h, c, hd = context.shape
        history = context.new_empty(blocks, two, n, h, c + horizon, hd)
        history[:, :, :, :, :c] = context.transpose(0, 2).transpose(0, 1)
        return history

    def _contexts(self, history: Tensor) -> Tensor:
        """Contexts ``(N, H, blocks, 2, h, C, hd)`` of the ``H`` states after the first ``C`` slots of ``history`` (a view)."""
        return history.unfold(4, self.config.context, 1)[:, :, :, :, 1:].permute(2, 4, 0, 1, 3, 6, 5)

    def initial(self, batch: int) -> LatentState:
        """A state before any step: zeros and an empty context (imagining from it starts a fresh history)."""
        c, device = self.config, next(self.parameters()).device
        return LatentState(torch.zeros(batch, c.d_model, device=device),
                           torch.zeros(batch, c.stoch, c.classes, device=device), None,
                           torch.zeros(batch, c.blocks, 2, c.attn_heads, c.context, self._head_dim, device=device),
                           torch.zeros(batch, c.context, dtype=torch.bool, device=device))

    def obs_step(self, state: LatentState, action: Tensor, embed: Tensor, is_first: Tensor,
                 generator: torch.Generator | None = None) -> tuple[LatentState, Tensor]:
        """One filtering step (acting online): as step ``t`` of :meth:`observe`, from the previous state and action.

        Where ``is_first``, the context is dropped and the input zeroed (a new episode).
        Returns the posterior state (with its context) and the prior logits.
        """
        n = embed.shape[0]
        assert state.context is not None and state.context_mask is not None, "the transformer's states carry a context"
        first = is_first.bool().to(embed.device).expand(n)
        mask = state.context_mask & ~first[:, None]
        with self._autocast():
            ring = self._ring(state.context)
            slot, valid = 0, mask.clone()
            valid[:, slot] = True
            x = self.tokens(state.stoch * (~first).to(state.stoch.dtype)[:, None, None], action.long() * ~first)
            hidden, _, kv = self._step(x, ring, slot, valid)
            prior = self._latent_logits(self.prior_net(hidden))
            post, stoch = mixed_sample(self._raw(self.post_net(embed)), self.config.unimix, generator)
        context = self._contexts(_put(self._history(state.context, 1), 4, self.config.context, kv))[:, 0]
        return LatentState(hidden, stoch, post, context,
                           torch.cat([mask, mask.new_ones(n, 1)], 1)[:, 1:]), prior

    # ---- the interface ------------------------------------------------------------------------

    def observe(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
                ) -> tuple[LatentState, ObserveOutput]:
        """Encode and filter ``(B, T)`` sequences in one pass; a sequence's first step starts an episode whatever its flag."""
        is_first = batch["is_first"].clone().bool()
        is_first[:, 0] = True
        with self._autocast():
            post, stoch = mixed_sample(self._raw(self.post_net(self._embed(batch))), self.config.unimix, generator)
            hidden, kv = self.sequence(self.sequence_tokens(stoch, batch["action"], is_first), is_first)
            prior = self._latent_logits(self.prior_net(hidden))
            context, mask = self._windows(kv, torch.cumsum(is_first.long(), 1))
            states = LatentState(hidden, stoch, post, context, mask)
            preds = self.predict(states)
        losses, metrics = self._objective(batch, preds, post, prior)
        return states, ObserveOutput(losses, metrics, preds, prior, post)

    def imagine(self, start: LatentState, actions: Tensor | Policy, horizon: int | None = None,
                decode: bool = False, generator: torch.Generator | None = None) -> Imagined:
        """Roll from ``start`` ``(B,)`` with the key/value cache; ``states[:, k]`` follows ``actions[:, k]``.

        ``start`` must carry its context (every state ``observe``, ``imagine`` or :meth:`initial` returns does).
        """
        policy = actions if callable(actions) else None
        horizon = self._horizon(actions, horizon)
        if start.context is None or start.context_mask is None:
            raise ValueError("a transformer imagination start needs its context (keys/values of its last steps): "
                             "start from a state observe(), imagine() or initial() returned")
        c, n = self.config.context, start.deter.shape[0]
        ring, valid = self._ring(start.context), start.context_mask
        history = self._history(start.context, horizon)
        state = LatentState(start.deter, start.stoch, start.logits)
        deters, stochs, logits, taken = [], [], [], []
        with self._autocast():
            for k in range(horizon):
                a = policy(state) if policy is not None else cast(Tensor, actions)[:, k]
                valid = valid.clone()
                valid[:, k % c] = True  # step k goes to ring slot k % c (over the oldest), history slot c + k
                hidden, ring, kv = self._step(self.tokens(state.stoch, a), ring, k % c, valid)
                prior, stoch = mixed_sample(self._raw(self.prior_net(hidden)), self.config.unimix, generator)
                state = LatentState(hidden, stoch, prior)
                deters.append(hidden)
                stochs.append(state.stoch)
                logits.append(prior)
                taken.append(a)
                history = _put(history, 4, c + k, kv)
            mask = torch.cat([start.context_mask, start.context_mask.new_ones(n, horizon)], 1).unfold(1, c, 1)[:, 1:]
            states = LatentState(torch.stack(deters, 1), torch.stack(stochs, 1), torch.stack(logits, 1),
                                 self._contexts(history), mask)
            preds = self.predict(states, decode=decode)
        return Imagined(states, torch.stack(taken, 1), preds)
