"""RSSM: shapes and losses, KL balancing, two-hot, straight-through gradients, decoder sampling, saving, NaN stop."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiftgrid.world_models.config import preset
from shiftgrid.world_models.interface import (NUM_COLORS, NUM_STATES, NUM_TYPES, LatentState, ObsDistribution, ObsSpec,
                                              render_view, to_symbolic)
from shiftgrid.world_models.latents import categorical_kl, kl_balance, straight_through
from shiftgrid.world_models.rssm import RSSM
from shiftgrid.world_models.train_step import NonFiniteLossError, make_optimizer, train_step
from shiftgrid.world_models.twohot import TwoHot, symexp, symlog


def random_batch(b=3, t=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.stack([torch.randint(n, (b, t, 7, 7), generator=g) for n in (NUM_TYPES, NUM_COLORS, NUM_STATES)], -1)
    is_first = torch.zeros(b, t, dtype=torch.bool)
    is_first[0, 3] = True
    return {"image": image.to(torch.uint8), "direction": torch.randint(4, (b, t), generator=g),
            "mission": torch.randint(69, (b, t, 40), generator=g), "action": torch.randint(7, (b, t), generator=g),
            "reward": torch.rand(b, t, generator=g), "terminated": torch.rand(b, t, generator=g) < 0.2,
            "truncated": torch.zeros(b, t, dtype=torch.bool), "is_first": is_first}


def test_shapes_and_losses():
    cfg = preset("tiny")
    model = RSSM(cfg, ObsSpec())
    assert sum(p.numel() for p in model.parameters()) < 300_000
    batch = random_batch()
    states, out = model.observe(batch)
    s, k = cfg.stoch, cfg.classes
    assert states.deter.shape == (3, 6, cfg.deter) and states.stoch.shape == (3, 6, s, k)
    assert out.prior_logits.shape == out.post_logits.shape == (3, 6, s, k)
    torch.testing.assert_close(states.stoch, states.stoch.round())  # one-hot samples (plus p - sg(p))
    torch.testing.assert_close(states.stoch.sum(-1), torch.ones(3, 6, s))
    assert out.predictions.obs.type_logits.shape == (3, 6, 7, 7, NUM_TYPES)
    assert out.predictions.obs.direction_logits.shape == (3, 6, 4)
    assert out.predictions.reward.shape == out.predictions.cont_logits.shape == (3, 6)
    for name, value in out.losses.items():
        assert value.shape == () and torch.isfinite(value), name
    assert out.losses["dyn"] >= cfg.free_nats and out.losses["rep"] >= cfg.free_nats
    # an untrained decoder is near uniform: the observation NLL is close to the uniform one
    uniform = 49 * math.log(NUM_TYPES * NUM_COLORS * NUM_STATES) + math.log(4)
    assert abs(float(out.losses["obs"].detach()) - uniform) < 0.2 * uniform
    total, terms = model.loss(batch)
    assert torch.isfinite(total) and not terms["obs"].requires_grad
    # imagination under actions and under a policy
    start = states[:, -1]
    imagined = model.imagine(start, torch.zeros(3, 15, dtype=torch.long), decode=True)
    assert imagined.states.deter.shape == (3, 15, cfg.deter) and imagined.actions.shape == (3, 15)
    assert imagined.predictions.obs.mode()["image"].shape == (3, 15, 7, 7, 3)
    seen = []
    policy = lambda st: (seen.append(st.deter.shape) or torch.full((st.deter.shape[0],), 2))  # noqa: E731
    imagined = model.imagine(start, policy, horizon=4)
    assert seen == [(3, cfg.deter)] * 4 and imagined.predictions.obs is None
    assert torch.equal(imagined.actions, torch.full((3, 4), 2))
    with pytest.raises(ValueError, match="horizon"):
        model.imagine(start, policy)


def test_is_first_resets_the_state():
    """A step marked first is filtered exactly as the first step of a fresh sequence."""
    model = RSSM(preset("tiny"))
    batch = random_batch(b=1, t=6)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    whole, _ = model.observe(batch, generator=g())
    tail = {k: v[:, 3:] for k, v in batch.items()}  # step 3 is_first
    alone, _ = model.observe(tail, generator=g())
    torch.testing.assert_close(whole.deter[:, 3], alone.deter[:, 0])
    torch.testing.assert_close(whole.logits[:, 3], alone.logits[:, 0])


def test_kl_balance_hand_made():
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


def test_straight_through_reaches_the_encoder():
    logits = torch.randn(5, 4, 8, requires_grad=True)
    sample = straight_through(logits, torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample.detach(), sample.detach().round())
    torch.testing.assert_close(sample.detach().sum(-1), torch.ones(5, 4))
    (sample * torch.randn(5, 4, 8)).sum().backward()
    assert logits.grad.abs().sum() > 0
    # in the model, a 1-step sequence reaches the encoder only through the sampled latent
    model = RSSM(preset("tiny"))
    batch = {k: v[:, :1] for k, v in random_batch().items()}
    _, out = model.observe(batch)
    out.losses["obs"].backward()
    for name, p in model.encoder.named_parameters():
        if name.startswith(("tables", "position", "net")):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_decoder_sampling_seeded_and_exact_likelihood():
    model = RSSM(preset("tiny"))
    states, _ = model.observe(random_batch())
    dist = model.predict(states).obs
    a = dist.sample(torch.Generator().manual_seed(3))
    b = dist.sample(torch.Generator().manual_seed(3))
    c = dist.sample(torch.Generator().manual_seed(4))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["direction"], b["direction"])
    assert not torch.equal(a["image"], c["image"])
    assert a["image"].dtype == torch.uint8 and a["image"].shape == (3, 6, 7, 7, 3)
    # exact per-cell log-likelihood, by hand on a small case
    t = torch.zeros(1, 1, NUM_TYPES)
    t[..., 2] = 3.0
    dist = ObsDistribution(t, torch.zeros(1, 1, NUM_COLORS), torch.zeros(1, 1, NUM_STATES), torch.zeros(4))
    obs = {"image": torch.tensor([[[2, 5, 1]]], dtype=torch.uint8), "direction": torch.tensor(1)}
    want_cell = 3.0 - math.log(math.exp(3.0) + NUM_TYPES - 1) - math.log(NUM_COLORS) - math.log(NUM_STATES)
    assert float(dist.cell_log_prob(obs["image"])) == pytest.approx(want_cell, abs=1e-5)
    assert float(dist.log_prob(obs)) == pytest.approx(want_cell - math.log(4), abs=1e-5)
    assert dist.mode()["image"][0, 0, 0] == 2


def test_save_reload_identical(tmp_path):
    torch.manual_seed(0)
    model = RSSM(preset("tiny"))
    opt = make_optimizer(model)
    batch = random_batch()
    train_step(model, opt, batch)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "wm.pt")
    state = torch.load(tmp_path / "wm.pt", weights_only=True)
    other = RSSM(preset("tiny"))
    other.load_state_dict(state["model"])
    make_optimizer(other).load_state_dict(state["optimizer"])
    outs = []
    for m in (model, other):
        m.eval()
        with torch.no_grad():
            states, out = m.observe(batch, generator=torch.Generator().manual_seed(1))
            im = m.imagine(states[:, -1], torch.ones(3, 5, dtype=torch.long), decode=True,
                           generator=torch.Generator().manual_seed(2))
        outs.append((states.deter, out.predictions.obs.type_logits, im.states.stoch, im.predictions.reward,
                     im.predictions.obs.sample(torch.Generator().manual_seed(3))["image"]))
    for x, y in zip(*outs):
        assert torch.equal(x, y)


def test_nan_stops_with_a_clear_error():
    model = RSSM(preset("tiny"))
    opt = make_optimizer(model)
    with torch.no_grad():
        model.reward_head.net[0].weight[0, 0] = float("nan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match="non-finite terms.*reward.*not updated"):
        train_step(model, opt, random_batch())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) or torch.isnan(before[k]).any() for k in before)


@pytest.fixture
def keeps_distribution_checks():
    """torch.compile turns off torch.distributions' argument checks for the whole process; put them back."""
    before = torch.distributions.Distribution._validate_args
    yield
    torch.distributions.Distribution.set_default_validate_args(before)


def test_bf16_and_compile_flags_on_cpu(keeps_distribution_checks):
    assert not preset("small").bf16 and not preset("small").compile  # no-ops unless asked
    torch.manual_seed(0)
    model = RSSM(preset("tiny", bf16=True))
    metrics = train_step(model, make_optimizer(model), random_batch())
    assert math.isfinite(metrics["loss"])
    plain = RSSM(preset("tiny"))
    compiled = RSSM(preset("tiny", compile=True, compile_backend="eager"))
    compiled.load_state_dict(plain.state_dict())
    outs = [m.observe(random_batch(), generator=torch.Generator().manual_seed(0))[0].deter for m in (plain, compiled)]
    torch.testing.assert_close(outs[0], outs[1])


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
