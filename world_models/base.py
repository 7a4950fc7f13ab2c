"""What the RSSM and the transformer world model share: encoder, heads on ``[deter, stoch]``, the loss.

Both read an observation through :class:`~shiftgrid.world_models.encoder.GridEncoder`, keep a
state ``(deter, stoch)`` whose features feed the generative decoder, the symlog two-hot reward
head and the continuation head, and are trained on the same terms: observation, reward and
continuation negative log-likelihoods plus DreamerV3's KL balancing between posterior and prior.
A family subclasses :class:`LatentWorldModel`, builds its dynamics and calls :meth:`_build_heads`.

Example:
    >>> from shiftgrid.world_models.config import preset
    >>> from shiftgrid.world_models.rssm import RSSM
    >>> model = RSSM(preset("tiny"))  # a LatentWorldModel: deter 64, 4 x 8 latents
    >>> model.features_dim, model.predict(model.initial(3)).obs.type_logits.shape
    (96, torch.Size([3, 7, 7, 11]))
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from shiftgrid.world_models.encoder import GridEncoder
from shiftgrid.world_models.heads import ObsDecoder, ScalarHead
from shiftgrid.world_models.interface import LatentState, ObsSpec, Policy, Predictions, WorldModel
from shiftgrid.world_models.latents import kl_balance
from shiftgrid.world_models.twohot import TwoHot

OBS_KEYS = ("image", "direction")


class LatentWorldModel(WorldModel):
    """A world model with a state ``(deter, stoch)`` read by the shared heads; see the module docstring.

    ``config`` needs the encoder and head sizes (``cell_embed``, ``token_embed``, ``embed``,
    ``hidden``, ``layers``), ``stoch``, ``classes``, ``reward_bins``, the KL settings
    (``free_nats``, ``dyn_scale``, ``rep_scale``) and ``bf16``.
    """

    features_dim: int

    def __init__(self, config: Any, spec: ObsSpec):
        super().__init__()
        self.config, self.spec = config, spec
        self.encoder = GridEncoder(config, spec)

    def _build_heads(self, deter: int) -> None:
        """The decoder, reward and continuation heads on features of width ``deter + stoch * classes``."""
        c = self.config
        self.features_dim = deter + c.stoch * c.classes
        self.decoder = ObsDecoder(c, self.spec, self.features_dim)
        self.reward_head = ScalarHead(c, self.features_dim, c.reward_bins)
        self.cont_head = ScalarHead(c, self.features_dim, 1, zero_init=False)
        self.twohot = TwoHot(c.reward_bins)

    def _autocast(self) -> contextlib.AbstractContextManager:
        device = next(self.parameters()).device
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def _embed(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Encoder output ``(B, T, embed)`` of a batch's observations."""
        return self.encoder({k: batch[k] for k in (*OBS_KEYS, *(k for k, _ in self.spec.token_lengths))})

    def _objective(self, batch: Mapping[str, Tensor], preds: Predictions, post_logits: Tensor,
                   prior_logits: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Loss terms (``obs``, ``reward``, ``cont``, ``dyn``, ``rep``) and metrics of observed steps."""
        _, dyn, rep, kl = kl_balance(post_logits, prior_logits, self.config.free_nats)
        losses = {"obs": -preds.decoded.log_prob(batch).mean(),
                  "reward": self.twohot.loss(preds.reward_logits, batch["reward"].float()).mean(),
                  "cont": F.binary_cross_entropy_with_logits(preds.cont_logits, 1.0 - batch["terminated"].float()),
                  "dyn": dyn.mean(), "rep": rep.mean()}
        mode = preds.decoded.mode()
        metrics = {"kl": kl.mean(),
                   "cell_accuracy": (mode["image"] == batch["image"]).all(-1).float().mean(),
                   "direction_accuracy": (mode["direction"] == batch["direction"]).float().mean()}
        return losses, metrics

    @staticmethod
    def _horizon(actions: Tensor | Policy, horizon: int | None) -> int:
        """The rollout length ``imagine`` was asked for (``ValueError`` if actions fall short or none is given)."""
        if callable(actions):
            if horizon is None:
                raise ValueError("imagine under a policy needs a horizon")
            return horizon
        horizon = actions.shape[1] if horizon is None else horizon
        if actions.shape[1] < horizon:
            raise ValueError(f"actions cover {actions.shape[1]} steps but horizon={horizon}")
        return horizon

    def predict(self, state: LatentState, decode: bool = True) -> Predictions:
        """Heads of ``state``; for an imagined state the observation is the predicted next one."""
        feats = state.features()
        reward_logits = self.reward_head(feats)
        return Predictions(self.decoder(feats) if decode else None, self.twohot.decode(reward_logits), reward_logits,
                           self.cont_head(feats)[..., 0])

    def loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``obs + reward + cont + dyn_scale * dyn + rep_scale * rep``, and every term and metric (detached)."""
        total, terms, _ = self.loss_and_states(batch)
        return total, terms

    def loss_and_states(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], LatentState | None]:
        """:meth:`loss`, and the posterior states of the same pass (it is :meth:`observe`)."""
        states, out = self.observe(batch)
        l, c = out.losses, self.config
        total = l["obs"] + l["reward"] + l["cont"] + c.dyn_scale * l["dyn"] + c.rep_scale * l["rep"]
        return total, {**{k: v.detach() for k, v in l.items()}, **{k: v.detach() for k, v in out.metrics.items()}}, states
