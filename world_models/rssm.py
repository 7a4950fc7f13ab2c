"""The RSSM world model (DreamerV3's recipe sized for grid worlds).

A GRU deterministic state ``h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])`` and categorical latents
``z_t`` (``stoch`` x ``classes``, 1% uniform mix, straight-through samples) drawn from the prior
``p(z_t | h_t)`` when imagining or the posterior ``q(z_t | h_t, embed(o_t))`` when observing.
The heads read ``[h_t, z_t]``: the generative decoder of ``o_t``, a symlog two-hot reward and
a Bernoulli continuation. Loss: observation, reward and continuation negative log-likelihoods
plus KL balancing (dynamics 1.0, representation 0.1, 1 nat free bits). It has no optimiser of
its own: :func:`shiftgrid.world_models.train_step.make_optimizer` gives it one, separate from
any actor's or critic's.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.config import preset
    >>> model = RSSM(preset("tiny"), ObsSpec())
    >>> batch = {"image": torch.ones(2, 5, 7, 7, 3, dtype=torch.uint8), "direction": torch.zeros(2, 5, dtype=torch.long),
    ...          "mission": torch.zeros(2, 5, 40, dtype=torch.long), "action": torch.zeros(2, 5, dtype=torch.long),
    ...          "reward": torch.zeros(2, 5), "terminated": torch.zeros(2, 5, dtype=torch.bool),
    ...          "is_first": torch.zeros(2, 5, dtype=torch.bool)}
    >>> states, out = model.observe(batch)
    >>> states.deter.shape, sorted(out.losses)
    (torch.Size([2, 5, 64]), ['cont', 'dyn', 'obs', 'rep', 'reward'])
    >>> model.imagine(states[:, -1], torch.zeros(2, 15, dtype=torch.long)).predictions.reward.shape
    torch.Size([2, 15])
"""

from __future__ import annotations

from typing import Mapping, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shiftgrid.world_models.base import LatentWorldModel
from shiftgrid.world_models.config import RSSMConfig
from shiftgrid.world_models.encoder import mlp
from shiftgrid.world_models.interface import Imagined, LatentState, ObserveOutput, ObsSpec, Policy
from shiftgrid.world_models.latents import mixed_sample, unimix


class RSSM(LatentWorldModel):
    """Recurrent state-space model; see the module docstring. ``config`` sizes it, ``spec`` says what it observes."""

    def __init__(self, config: RSSMConfig, spec: ObsSpec = ObsSpec()):
        super().__init__(config, spec)
        c, latent = config, config.stoch * config.classes
        self.img_in = nn.Sequential(nn.Linear(latent + spec.num_actions, c.hidden), nn.LayerNorm(c.hidden), nn.SiLU())
        self.gru = nn.GRUCell(c.hidden, c.deter)
        self.prior_net = mlp(c.deter, c.hidden, 1, latent)
        self.post_net = mlp(c.deter + c.embed, c.hidden, 1, latent)
        self._build_heads(c.deter)
        self._core = torch.compile(self._dynamics, backend=c.compile_backend) if c.compile else self._dynamics
        self._filter_core = torch.compile(self._filter_step, backend=c.compile_backend) if c.compile else self._filter_step

    # ---- the recurrent step ----------------------------------------------------------------

    def _recur(self, deter: Tensor, stoch: Tensor, action: Tensor) -> Tensor:
        """``h_t = GRU(h_{t-1}, [z_{t-1}, a_{t-1}])`` (``action`` one-hot)."""
        x = self.img_in(torch.cat([stoch.flatten(-2), action], -1))
        return self.gru(x, deter.to(x.dtype)).float()

    def _dynamics(self, deter: Tensor, stoch: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """``h_t`` and the prior's raw logits ``(B, S, K)`` (before the uniform mix)."""
        deter = self._recur(deter, stoch, action)
        return deter, self._raw(self.prior_net(deter))

    def _filter_step(self, deter: Tensor, stoch: Tensor, action: Tensor, embed: Tensor, uniform: Tensor
                     ) -> tuple[Tensor, Tensor, Tensor]:
        """``h_t``, the posterior's logits and its sample drawn at ``uniform`` ``(B, S)``: a filtering step
        without the prior, which only the loss reads (so :meth:`observe` computes it for every step at once)."""
        deter = self._recur(deter, stoch, action)
        post, stoch = mixed_sample(self._raw(self.post_net(torch.cat([deter, embed.to(deter.dtype)], -1))),
                                   self.config.unimix, uniform=uniform)
        return deter, post, stoch

    def _raw(self, out: Tensor) -> Tensor:
        """A network's ``(B, S * K)`` output as float latent logits ``(B, S, K)``."""
        return out.float().unflatten(-1, (self.config.stoch, self.config.classes))

    def initial(self, batch: int) -> LatentState:
        """The all-zero state an episode starts from."""
        device = next(self.parameters()).device
        return LatentState(torch.zeros(batch, self.config.deter, device=device),
                           torch.zeros(batch, self.config.stoch, self.config.classes, device=device))

    def img_step(self, state: LatentState, action: Tensor, generator: torch.Generator | None = None) -> LatentState:
        """One prior step: ``(h, z)``, action ``(B,)`` -> next state drawn from the prior."""
        deter, raw = self._core(state.deter, state.stoch, F.one_hot(action.long(), self.spec.num_actions).float())
        logits, stoch = mixed_sample(raw, self.config.unimix, generator)
        return LatentState(deter, stoch, logits)

    def obs_step(self, state: LatentState, action: Tensor, embed: Tensor, is_first: Tensor,
                 generator: torch.Generator | None = None) -> tuple[LatentState, Tensor]:
        """One filtering step: previous state and action, this step's embedding -> (posterior state, prior logits).

        Where ``is_first``, the previous state and action are zeroed (a new episode).
        """
        keep = (~is_first.bool()).float()
        onehot = F.one_hot(action.long(), self.spec.num_actions).float() * keep[:, None]
        uniform = torch.rand(state.stoch.shape[:-1], generator=generator, device=embed.device)
        deter, post, stoch = self._filter_core(state.deter * keep[:, None], state.stoch * keep[:, None, None], onehot,
                                               embed, uniform)
        return LatentState(deter, stoch, post), unimix(self._raw(self.prior_net(deter)), self.config.unimix)

    # ---- the interface ---------------------------------------------------------------------

    def observe(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None
                ) -> tuple[LatentState, ObserveOutput]:
        """Filter ``(B, T)`` sequences; a sequence's first step starts from :meth:`initial` whatever its flag.

        The same steps as :meth:`obs_step` in turn, with two costs taken out of the loop: the uniform draws
        of every step are drawn at once, and the prior (read only by the loss) is computed for all steps at once.
        """
        b, t = batch["action"].shape
        with self._autocast():
            embed = self._embed(batch)
            is_first = batch["is_first"].clone()
            is_first[:, 0] = True
            keep = (~is_first.bool()).float()
            previous = torch.cat([torch.zeros_like(batch["action"][:, :1]), batch["action"][:, :-1]], 1)
            onehot = F.one_hot(previous.long(), self.spec.num_actions).float() * keep[..., None]
            # every step's draws at once: the numbers obs_step would draw step by step (torch.rand fills row-major)
            uniform = torch.rand((t, b, self.config.stoch), generator=generator, device=embed.device)
            state = self.initial(b)
            deter, stoch = state.deter, state.stoch
            deters, stochs, posts = [], [], []
            for i in range(t):
                k = keep[:, i]
                deter, post, stoch = self._filter_core(deter * k[:, None], stoch * k[:, None, None], onehot[:, i],
                                                       embed[:, i], uniform[i])
                deters.append(deter)
                stochs.append(stoch)
                posts.append(post)
            states = LatentState(torch.stack(deters, 1), torch.stack(stochs, 1), torch.stack(posts, 1))
            prior_logits = unimix(self._raw(self.prior_net(states.deter)), self.config.unimix)
            preds = self.predict(states)
        assert states.logits is not None, "filtered states keep their posterior logits"
        losses, metrics = self._objective(batch, preds, states.logits, prior_logits)
        return states, ObserveOutput(losses, metrics, preds, prior_logits, states.logits)

    def imagine(self, start: LatentState, actions: Tensor | Policy, horizon: int | None = None,
                decode: bool = False, generator: torch.Generator | None = None) -> Imagined:
        """Roll from ``start`` ``(B,)``; ``actions`` ``(B, H)`` or a policy with ``horizon``. ``states[:, k]`` follows ``actions[:, k]``."""
        policy = actions if callable(actions) else None
        horizon = self._horizon(actions, horizon)
        states, taken = [], []
        state = start
        with self._autocast():
            for k in range(horizon):
                a = policy(state) if policy is not None else cast(Tensor, actions)[:, k]
                state = self.img_step(state, a, generator)
                states.append(state)
                taken.append(a)
            stacked = LatentState.stack(states, 1)
            preds = self.predict(stacked, decode=decode)
        return Imagined(stacked, torch.stack(taken, 1), preds)
