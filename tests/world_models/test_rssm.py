"""RSSM-only: KL balancing, two-hot, straight-through gradients, state helpers, rendering (shared tests: test_models.py)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiftgrid.world_models.config import preset
from shiftgrid.world_models.interface import LatentState, render_view, to_symbolic
from shiftgrid.world_models.latents import categorical_kl, kl_balance, straight_through
from shiftgrid.world_models.rssm import RSSM
from shiftgrid.world_models.twohot import TwoHot, symexp, symlog


def test_kl_balance_hand_made(random_batch):
    post = torch.log(torch.tensor([[[0.7, 0.3]]])).requires_grad_()
    prior = torch.log(torch.tensor([[[0.4, 0.6]]])).requires_grad_()
    want = 0.7 * math.log(0.7 / 0.4) + 0.3 * math.log(0.3 / 0.6)
    assert float(categorical_kl(post, prior).detach()) == pytest.approx(want, abs=1e-6)
    # below the free bits: constant, no gradient
    loss, dyn, rep, kl = kl_balance(post, prior, free_nats=1.0)
    assert float(dyn.detach()) == float(rep.detach()) == 1.0 and float(loss.detach()) == pytest.approx(1.1)
    assert float(kl) == pytest.approx(want, abs=1e-6)
    loss.sum().backward()
    assert post.grad is None or not post.grad.any()
    assert prior.grad is None or not prior.grad.any()
    # above: dynamics (weight 1.0) moves the prior only, representation (0.1) the posterior only
    post.grad = prior.grad = None
    loss, dyn, rep, _ = kl_balance(post, prior, free_nats=0.1, dyn_scale=1.0, rep_scale=0.1)
    assert float(loss.detach()) == pytest.approx(1.1 * want, abs=1e-6)
    dyn.sum().backward()
    assert post.grad is None or not post.grad.any()
    torch.testing.assert_close(prior.grad, torch.tensor([[[0.4 - 0.7, 0.6 - 0.3]]]))  # d KL / d prior logits = q - p
    prior.grad = None
    rep.sum().backward()
    assert prior.grad is None or not prior.grad.any()
    p = torch.tensor([0.7, 0.3])
    torch.testing.assert_close(post.grad[0, 0], p * (torch.log(p / torch.tensor([0.4, 0.6])) - want))
    # the model weights the terms as configured
    model = RSSM(preset("tiny", dyn_scale=2.0, rep_scale=0.5))
    total, terms = model.loss(random_batch())
    want_total = terms["obs"] + terms["reward"] + terms["cont"] + 2.0 * terms["dyn"] + 0.5 * terms["rep"]
    torch.testing.assert_close(total.detach(), want_total)


def test_two_hot_round_trip():
    bins = TwoHot(num_bins=41)
    x = torch.tensor([0.0, 0.9, -0.3, 1.0, 17.5, -250.0, 3.3e5])
    target = bins.encode(x)
    torch.testing.assert_close(target.sum(-1), torch.ones(len(x)))
    assert ((target > 0).sum(-1) <= 2).all()
    torch.testing.assert_close(bins.decode_probs(target), x, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(symexp(symlog(x)), x, rtol=1e-5, atol=1e-6)
    assert float(bins.decode_probs(bins.encode(torch.tensor(1e12)))) == pytest.approx(math.expm1(20.0), rel=1e-4)
    # the cross-entropy is smallest at the target's own distribution
    logits = torch.log(target.clamp_min(1e-12))
    assert (bins.loss(logits, x) <= bins.loss(torch.zeros_like(logits), x)).all()
    with pytest.raises(ValueError, match="num_bins=1"):
        TwoHot(num_bins=1)


def test_straight_through_reaches_the_encoder(random_batch):
    logits = torch.randn(5, 4, 8, requires_grad=True)
    sample = straight_through(logits, torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample.detach(), sample.detach().round())
    torch.testing.assert_close(sample.detach().sum(-1), torch.ones(5, 4))
    (sample * torch.randn(5, 4, 8)).sum().backward()
    assert logits.grad.abs().sum() > 0
    # the samples follow the probabilities, and a seed repeats them
    probs = torch.tensor([0.05, 0.5, 0.0, 0.3, 0.15])
    draws = straight_through(torch.log(probs).expand(20000, 5), torch.Generator().manual_seed(1))
    torch.testing.assert_close(draws.mean(0), probs, atol=0.012, rtol=0)
    assert draws[:, 2].sum() == 0
    assert torch.equal(draws, straight_through(torch.log(probs).expand(20000, 5), torch.Generator().manual_seed(1)))
    # in the model, a 1-step sequence reaches the encoder only through the sampled latent
    model = RSSM(preset("tiny"))
    batch = {k: v[:, :1] for k, v in random_batch().items()}
    _, out = model.observe(batch)
    out.losses["obs"].backward()
    for name, p in model.encoder.named_parameters():
        if name.startswith(("tables", "position", "net")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_latent_state_helpers():
    s = LatentState(torch.zeros(2, 3, 5), torch.zeros(2, 3, 4, 8))
    assert s.features().shape == (2, 3, 5 + 32)
    assert s[:, 1].deter.shape == (2, 5) and s.reshape(6).stoch.shape == (6, 4, 8)
    assert LatentState.stack([s, s], 1).deter.shape == (2, 2, 3, 5)


def test_render_prediction_like_minigrid():
    env = gym.make("MiniGrid-Empty-5x5-v0")
    obs, _ = env.reset(seed=0)
    pic = render_view(torch.as_tensor(obs["image"]), tile_size=8)
    np.testing.assert_array_equal(pic, env.unwrapped.get_pov_render(tile_size=8))
    weird = obs["image"].copy()
    weird[0, 0] = (10, 9, 9)  # agent / out-of-range codes a model may predict: drawn as empty cells
    assert render_view(weird, tile_size=8).shape == pic.shape
    assert to_symbolic(weird)[0, 0].tolist() == [1, 0, 0] and (to_symbolic(weird)[1:] == obs["image"][1:]).all()
    with pytest.raises(ValueError, match="shape"):
        render_view(np.zeros((7, 7)))


def test_observe_is_obs_step_in_turn(random_batch):
    """observe draws every step's latents at once and scores every prior after the loop: the same numbers as
    filtering the sequence one obs_step at a time from the same random state."""
    torch.manual_seed(0)
    model = RSSM(preset("tiny"))
    batch = random_batch(4, 9, seed=3)
    batch["is_first"][1, 4] = True  # an episode starting inside a sequence
    torch.manual_seed(7)
    states, out = model.observe(batch)
    torch.manual_seed(7)
    embed = model._embed(batch)
    state, action = model.initial(4), torch.zeros(4, dtype=torch.long)
    first = batch["is_first"].clone()
    first[:, 0] = True
    for i in range(9):
        state, prior = model.obs_step(state, action, embed[:, i], first[:, i])
        assert torch.equal(state.stoch, states.stoch[:, i])  # the same draws
        torch.testing.assert_close(state.deter, states.deter[:, i], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(state.logits, states.logits[:, i], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(prior, out.prior_logits[:, i], rtol=1e-6, atol=1e-6)
        action = batch["action"][:, i]
