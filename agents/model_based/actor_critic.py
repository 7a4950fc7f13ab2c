"""Actor-critic in imagination (DreamerV3's recipe for discrete actions), over any world model.

From a batch of start states (every replayed posterior state), the actor rolls the world model
forward ``horizon`` steps (:meth:`~shiftgrid.world_models.interface.WorldModel.imagine`, under
``no_grad``: actions are integers sampled from the actor, so no gradient can flow through a
categorical sample; the log-probabilities of the actor's pass that chose them are kept for its
loss, their graph reaching the actor's weights only). With ``s_0`` the start and ``s_{k+1}`` the
state action ``a_k`` led to, the heads of ``s_{k+1}`` give the reward ``r_{k+1}`` of taking
``a_k`` at ``s_k`` and the continuation ``c_{k+1}``. Then:

- lambda-returns ``R_k = r_{k+1} + gamma c_{k+1} ((1 - lam) v(s_{k+1}) + lam R_{k+1})``,
  ``R_H = v(s_H)``, bootstrapped from the **slow critic** (an EMA of the critic's weights, a
  target network; this replaces DreamerV3's extra regulariser towards it);
- weights ``w_k = (1 - terminated(s_0)) prod_{j<=k} gamma c_j``: steps after a predicted end count less;
- returns normalised by ``S = max(1, P95 - P5)``, the 5th-95th percentile range of the returns,
  tracked by an EMA (:class:`ReturnScale`);
- actor: REINFORCE (score function) ``-w_k (R_k - v(s_k)) / S * log pi(a_k | s_k)`` plus an
  entropy bonus; the policy mixes ``unimix`` uniform into its probabilities, so no action's
  probability reaches 0;
- critic: a symlog two-hot distribution (DreamerV3), trained by cross-entropy to ``R_k``.

Actor and critic have optimisers of their own, separate from the world model's.

Example:
    >>> import torch
    >>> from shiftgrid.world_models.models import build_model
    >>> from shiftgrid.world_models.interface import ObsSpec
    >>> model = build_model("rssm", "tiny", ObsSpec())
    >>> ac = ActorCritic(ActorCriticConfig(hidden=32, layers=1), model.features_dim, num_actions=7)
    >>> metrics = ac.update(model, model.initial(8), torch.ones(8), generator=torch.Generator().manual_seed(0))
    >>> metrics["train/return_scale"], len(metrics)
    (1.0, 9)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from shiftgrid.world_models.encoder import mlp
from shiftgrid.world_models.interface import LatentState, WorldModel
from shiftgrid.world_models.train_step import NonFiniteLossError
from shiftgrid.world_models.twohot import TwoHot


@dataclass(frozen=True)
class ActorCriticConfig:
    """Settings of the actor and critic trained in imagination."""

    horizon: int = 15
    """Imagined steps from every start state."""
    gamma: float = 0.99
    """Discount per step."""
    lam: float = 0.95
    """Lambda of the lambda-returns."""
    hidden: int = 200
    """Units of the actor's and critic's MLP layers."""
    layers: int = 2
    """Hidden layers of the actor and of the critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic."""
    eps: float = 1e-5
    """Adam epsilon (actor and critic)."""
    grad_clip: float = 100.0
    """Gradient-norm clip of the actor and of the critic."""
    entropy: float = 3e-4
    """Entropy bonus weight (on normalised returns)."""
    unimix: float = 0.05
    """Share of the uniform distribution mixed into the policy (a floor on every action's probability)."""
    critic_bins: int = 41
    """Two-hot bins of the critic (symlog space, [-20, 20])."""
    slow_critic_decay: float = 0.98
    """EMA decay of the slow critic's weights, per update."""
    return_decay: float = 0.99
    """EMA decay of the 5th and 95th return percentiles."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming a setting outside its range."""
        checks = {"horizon": self.horizon >= 1, "gamma": 0 < self.gamma <= 1, "lam": 0 <= self.lam <= 1,
                  "hidden": self.hidden >= 1, "layers": self.layers >= 0, "actor_lr": self.actor_lr > 0,
                  "critic_lr": self.critic_lr > 0, "entropy": self.entropy >= 0, "unimix": 0 <= self.unimix < 1,
                  "critic_bins": self.critic_bins >= 2, "slow_critic_decay": 0 <= self.slow_critic_decay < 1,
                  "return_decay": 0 <= self.return_decay < 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"actor_critic.{bad[0]} = {getattr(self, bad[0])!r} is out of range")


def lambda_returns(reward: Tensor, cont: Tensor, value: Tensor, gamma: float, lam: float) -> Tensor:
    """``(N, H)`` lambda-returns of rewards ``r_1..r_H``, continuations ``c_1..c_H`` and values ``v_0..v_H`` ``(N, H+1)``.

    Example:
        >>> lambda_returns(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]), torch.zeros(1, 3), 0.9, 1.0)
        tensor([[0.9000, 1.0000]])
    """
    out, nxt = [], value[:, -1]
    for k in reversed(range(reward.shape[1])):
        nxt = reward[:, k] + gamma * cont[:, k] * ((1 - lam) * value[:, k + 1] + lam * nxt)
        out.append(nxt)
    return torch.stack(out[::-1], 1)


class ReturnScale(nn.Module):
    """EMA of the 5th and 95th percentiles of the returns; ``scale = max(1, hi - lo)``.

    Example:
        >>> rs = ReturnScale(decay=0.0)
        >>> rs.update(torch.linspace(0, 10, 101)); round(rs.scale(), 2)
        9.0
    """

    low: Tensor  # buffers
    high: Tensor
    count: Tensor

    def __init__(self, decay: float = 0.99):
        super().__init__()
        self.decay = decay
        self.register_buffer("low", torch.zeros(()))
        self.register_buffer("high", torch.zeros(()))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def update(self, returns: Tensor) -> None:
        q = torch.quantile(returns.detach().float().flatten(), torch.tensor([0.05, 0.95], device=returns.device))
        d = self.decay if int(self.count) else 0.0
        self.low.mul_(d).add_((1 - d) * q[0])
        self.high.mul_(d).add_((1 - d) * q[1])
        self.count += 1

    def scale(self) -> float:
        return max(1.0, float(self.high - self.low))


class Actor(nn.Module):
    """State features -> action logits; the policy mixes ``unimix`` uniform into the softmax."""

    def __init__(self, features: int, num_actions: int, hidden: int, layers: int, unimix: float):
        super().__init__()
        self.net, self.unimix = mlp(features, hidden, layers, num_actions), unimix

    def log_probs(self, features: Tensor) -> Tensor:
        """Log-probabilities ``(..., A)`` of the mixed policy."""
        probs = torch.softmax(self.net(features).float(), -1)
        return torch.log((1 - self.unimix) * probs + self.unimix / probs.shape[-1])

    @torch.no_grad()
    def act(self, features: Tensor, deterministic: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Integer actions ``(...)``: sampled, or the most likely with ``deterministic``."""
        logp = self.log_probs(features)
        return logp.argmax(-1) if deterministic else self.sample(logp, generator)

    @staticmethod
    @torch.no_grad()
    def sample(log_probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Integer actions ``(...)`` drawn from log-probabilities ``(..., A)``."""
        flat = log_probs.exp().reshape(-1, log_probs.shape[-1])
        return torch.multinomial(flat, 1, generator=generator).reshape(log_probs.shape[:-1])


class Critic(nn.Module):
    """State features -> a symlog two-hot value distribution (the last layer starts at zero: values start at 0)."""

    def __init__(self, features: int, hidden: int, layers: int, bins: int):
        super().__init__()
        self.net, self.twohot = mlp(features, hidden, layers, bins), TwoHot(bins)
        last = cast(nn.Linear, self.net[-1])
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)

    def logits(self, features: Tensor) -> Tensor:
        return self.net(features).float()

    def value(self, features: Tensor) -> Tensor:
        return self.twohot.decode(self.logits(features))


class ActorCritic(nn.Module):
    """Actor, critic, slow critic and return scale, with their own optimisers; see the module docstring."""

    def __init__(self, config: ActorCriticConfig, features: int, num_actions: int):
        super().__init__()
        config.validate()
        c = self.config = config
        self.actor = Actor(features, num_actions, c.hidden, c.layers, c.unimix)
        self.critic = Critic(features, c.hidden, c.layers, c.critic_bins)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.return_scale = ReturnScale(c.return_decay)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=c.actor_lr, eps=c.eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=c.critic_lr, eps=c.eps)

    def optim_state(self) -> dict[str, Any]:
        return {"actor": self.actor_opt.state_dict(), "critic": self.critic_opt.state_dict()}

    def load_optim_state(self, state: dict[str, Any]) -> None:
        self.actor_opt.load_state_dict(state["actor"])
        self.critic_opt.load_state_dict(state["critic"])

    def rollout(self, model: WorldModel, start: LatentState, generator: torch.Generator | None = None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Imagine ``horizon`` steps from ``start`` ``(N,)`` under the actor (no graph is kept).

        Returns ``features`` ``(N, H+1, F)`` of ``s_0..s_H``, ``actions`` ``(N, H)`` (``a_k`` taken
        at ``s_k``), ``reward`` and ``cont`` ``(N, H)`` (of ``s_1..s_H``).
        """
        return self._imagine(model, start, generator, keep_log_probs=False)[:4]

    def _imagine(self, model: WorldModel, start: LatentState, generator: torch.Generator | None, keep_log_probs: bool
                 ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """:meth:`rollout`, and with ``keep_log_probs`` the actor's log-probabilities ``(N, H, A)`` at ``s_0..s_{H-1}``
        from the forward pass that chose the actions, with its graph (the actor's loss then needs no second
        pass; the model's features carry no graph, so its gradient reaches the actor's weights alone)."""
        kept: list[Tensor] = []
        device = start.deter.device.type

        def policy(state: LatentState) -> Tensor:
            with torch.enable_grad() if keep_log_probs else torch.no_grad(), torch.autocast(device, enabled=False):
                logp = self.actor.log_probs(state.features().float())  # fp32, as the actor's loss reads it
            kept.append(logp)
            return self.actor.sample(logp.detach(), generator)

        with torch.no_grad():
            imagined = model.imagine(start, policy, self.config.horizon)
            feats = torch.cat([start.features()[:, None], imagined.states.features()], 1).float()
        return (feats, imagined.actions, imagined.predictions.reward.float(), imagined.predictions.cont_prob.float(),
                torch.stack(kept, 1) if keep_log_probs else None)

    def update(self, model: WorldModel, start: LatentState, start_cont: Tensor,
               generator: torch.Generator | None = None) -> dict[str, float]:
        """One actor and one critic step on rollouts from ``start`` ``(N,)``; ``start_cont`` is ``1 - terminated`` there.

        Raises:
            NonFiniteLossError: a loss or gradient norm is NaN or inf (nothing is updated).
        """
        c = self.config
        feats, actions, reward, cont, logp = self._imagine(model, start.detach(), generator, keep_log_probs=True)
        assert logp is not None, "kept when asked"
        with torch.no_grad():
            ret = lambda_returns(reward, cont, self.slow_critic.value(feats), c.gamma, c.lam)
            weight = start_cont.float()[:, None] * torch.cumprod(
                torch.cat([torch.ones_like(cont[:, :1]), c.gamma * cont[:, :-1]], 1), 1)
            self.return_scale.update(ret)
            scale = self.return_scale.scale()
        now = feats[:, :-1]
        critic_logits = self.critic.logits(now)
        critic_loss = (weight * self.critic.twohot.loss(critic_logits, ret)).mean()
        baseline = self.critic.twohot.decode(critic_logits.detach())
        advantage = (ret - baseline) / scale
        taken = logp.gather(-1, actions.long()[..., None])[..., 0]
        entropy = -(logp.exp() * logp).sum(-1)
        actor_loss = -(weight * (taken * advantage + c.entropy * entropy)).mean()
        for name, loss in (("actor", actor_loss), ("critic", critic_loss)):
            if not math.isfinite(float(loss.detach())):
                raise NonFiniteLossError(f"{name} loss is {float(loss.detach())}; parameters not updated")
        norms = {}
        for name, loss, net, opt in (("actor", actor_loss, self.actor, self.actor_opt),
                                     ("critic", critic_loss, self.critic, self.critic_opt)):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norms[name] = float(torch.nn.utils.clip_grad_norm_(net.parameters(), c.grad_clip))
            if not math.isfinite(norms[name]):
                opt.zero_grad(set_to_none=True)
                raise NonFiniteLossError(f"{name} gradient norm is {norms[name]}; parameters not updated")
        self.actor_opt.step()
        self.critic_opt.step()
        with torch.no_grad():
            for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
                slow.lerp_(fast, 1 - c.slow_critic_decay)
        return {"train/actor_loss": float(actor_loss.detach()), "train/critic_loss": float(critic_loss.detach()),
                "train/actor_entropy": float(entropy.detach().mean()), "train/return_scale": scale,
                "train/imagined_return": float(ret[:, 0].mean()), "train/imagined_reward": float(reward.sum(1).mean()),
                "train/value": float(baseline.mean()), "train/actor_grad_norm": norms["actor"],
                "train/critic_grad_norm": norms["critic"]}
