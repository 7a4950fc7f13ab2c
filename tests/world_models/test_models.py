"""Both world-model families (RSSM, transformer) behind the interface: shapes and losses, episode starts,
decoder sampling, saving, NaN stop, bf16 and compile flags."""

from __future__ import annotations

import math

import pytest
import torch

from shiftgrid.world_models.interface import NUM_COLORS, NUM_STATES, NUM_TYPES, ObsDistribution, ObsSpec
from shiftgrid.world_models.models import build_model, model_config, model_names
from shiftgrid.world_models.train_step import NonFiniteLossError, make_optimizer, train_step

FAMILIES = model_names()
#: Parameters of each family's tiny preset stay below these (the issue: well under 1M).
TINY_PARAMS = {"rssm": 300_000, "transformer": 300_000, "mechanism": 300_000}


@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_and_losses(family, random_batch):
    model = build_model(family, "tiny", ObsSpec())
    cfg = model.config
    assert sum(p.numel() for p in model.parameters()) < TINY_PARAMS[family]
    batch = random_batch()
    states, out = model.observe(batch)
    s, k = cfg.stoch, cfg.classes
    deter = model.features_dim - s * k
    assert states.deter.shape == (3, 6, deter) and states.stoch.shape == (3, 6, s, k)
    assert out.prior_logits.shape == out.post_logits.shape == (3, 6, s, k)
    torch.testing.assert_close(states.stoch, states.stoch.round())  # one-hot samples (plus p - sg(p))
    torch.testing.assert_close(states.stoch.sum(-1), torch.ones(3, 6, s))
    assert states.features().shape == (3, 6, model.features_dim)
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
    # imagination under actions and under a policy, from observed states and from imagined ones
    start = states[:, -1]
    imagined = model.imagine(start, torch.zeros(3, 15, dtype=torch.long), decode=True)
    assert imagined.states.deter.shape == (3, 15, deter) and imagined.actions.shape == (3, 15)
    assert imagined.predictions.obs.mode()["image"].shape == (3, 15, 7, 7, 3)
    assert model.imagine(imagined.states[:, -1], torch.zeros(3, 2, dtype=torch.long)).states.deter.shape == (3, 2, deter)
    seen = []
    policy = lambda st: (seen.append(st.deter.shape) or torch.full((st.deter.shape[0],), 2))  # noqa: E731
    imagined = model.imagine(start, policy, horizon=4)
    assert seen == [(3, deter)] * 4 and imagined.predictions.obs is None
    assert torch.equal(imagined.actions, torch.full((3, 4), 2))
    with pytest.raises(ValueError, match="horizon"):
        model.imagine(start, policy)
    with pytest.raises(ValueError, match="actions cover 15 steps but horizon=16"):
        model.imagine(start, torch.zeros(3, 15, dtype=torch.long), horizon=16)
    # every observed state is a start: all of them at once, flattened
    flat = model.imagine(states.reshape(18), torch.zeros(18, 1, dtype=torch.long))
    assert flat.states.deter.shape == (18, 1, deter)


@pytest.mark.parametrize("family", FAMILIES)
def test_is_first_resets_the_state(family, random_batch):
    """A step marked first is filtered exactly as the first step of a fresh sequence."""
    model = build_model(family, "tiny", ObsSpec())
    batch = random_batch(b=1, t=6)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    whole, _ = model.observe(batch, generator=g())
    tail = {k: v[:, 3:] for k, v in batch.items()}  # step 3 is_first
    alone, _ = model.observe(tail, generator=g())
    torch.testing.assert_close(whole.deter[:, 3], alone.deter[:, 0])
    torch.testing.assert_close(whole.logits[:, 3], alone.logits[:, 0])


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_sampling_seeded_and_exact_likelihood(family, random_batch):
    model = build_model(family, "tiny", ObsSpec())
    states, _ = model.observe(random_batch())
    dist = model.predict(states).obs
    a = dist.sample(torch.Generator().manual_seed(3))
    b = dist.sample(torch.Generator().manual_seed(3))
    c = dist.sample(torch.Generator().manual_seed(4))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["direction"], b["direction"])
    assert not torch.equal(a["image"], c["image"])
    assert a["image"].dtype == torch.uint8 and a["image"].shape == (3, 6, 7, 7, 3)
    # imagination is seeded too: the same generator seed gives the same rollout
    runs = [model.imagine(states[:, -1], torch.ones(3, 4, dtype=torch.long), generator=torch.Generator().manual_seed(s))
            for s in (1, 1, 2)]
    assert torch.equal(runs[0].states.stoch, runs[1].states.stoch) and torch.equal(runs[0].states.deter, runs[1].states.deter)
    assert not torch.equal(runs[0].states.stoch, runs[2].states.stoch)
    # exact per-cell log-likelihood, by hand on a small case
    t = torch.zeros(1, 1, NUM_TYPES)
    t[..., 2] = 3.0
    dist = ObsDistribution(t, torch.zeros(1, 1, NUM_COLORS), torch.zeros(1, 1, NUM_STATES), torch.zeros(4))
    obs = {"image": torch.tensor([[[2, 5, 1]]], dtype=torch.uint8), "direction": torch.tensor(1)}
    want_cell = 3.0 - math.log(math.exp(3.0) + NUM_TYPES - 1) - math.log(NUM_COLORS) - math.log(NUM_STATES)
    assert float(dist.cell_log_prob(obs["image"])) == pytest.approx(want_cell, abs=1e-5)
    assert float(dist.log_prob(obs)) == pytest.approx(want_cell - math.log(4), abs=1e-5)
    assert dist.mode()["image"][0, 0, 0] == 2


@pytest.mark.parametrize("family", FAMILIES)
def test_save_reload_identical(family, tmp_path, random_batch):
    torch.manual_seed(0)
    model = build_model(family, "tiny", ObsSpec())
    opt = make_optimizer(model)
    batch = random_batch()
    train_step(model, opt, batch)
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "wm.pt")
    state = torch.load(tmp_path / "wm.pt", weights_only=True)
    other = build_model(family, "tiny", ObsSpec())
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


@pytest.mark.parametrize("family", FAMILIES)
def test_nan_stops_with_a_clear_error(family, random_batch):
    model = build_model(family, "tiny", ObsSpec())
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


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_and_compile_flags_on_cpu(family, keeps_distribution_checks, random_batch):
    small = model_config(family, "small")
    assert not small.bf16 and not small.compile  # no-ops unless asked
    torch.manual_seed(0)
    model = build_model(family, "tiny", ObsSpec(), bf16=True)
    metrics = train_step(model, make_optimizer(model), random_batch())
    assert math.isfinite(metrics["loss"])
    plain = build_model(family, "tiny", ObsSpec())
    compiled = build_model(family, "tiny", ObsSpec(), compile=True, compile_backend="eager")
    compiled.load_state_dict(plain.state_dict())
    outs = []
    for m in (plain, compiled):
        states, _ = m.observe(random_batch(), generator=torch.Generator().manual_seed(0))
        outs.append(m.imagine(states[:, -1], torch.ones(3, 3, dtype=torch.long),
                              generator=torch.Generator().manual_seed(1)).states.deter)
    torch.testing.assert_close(outs[0], outs[1])


@pytest.mark.parametrize("family", FAMILIES)
def test_filtering_step_by_step_equals_observe(family, random_batch):
    """``initial`` then ``obs_step`` per step (how an agent acts online) gives the states ``observe`` gives."""
    model = build_model(family, "tiny", ObsSpec(), **({"context": 4} if family == "transformer" else {}))
    batch = random_batch(b=1, t=9)  # an episode starts at step 3; with context 4 the window slides too
    whole, out = model.observe(batch, generator=torch.Generator().manual_seed(0))
    embed = model._embed(batch)
    state, action, g = model.initial(1), torch.zeros(1, dtype=torch.long), torch.Generator().manual_seed(0)
    for t in range(9):
        first = batch["is_first"][:, t] | (t == 0)
        state, prior = model.obs_step(state, action, embed[:, t], first, g)
        action = batch["action"][:, t]
        torch.testing.assert_close(state.deter, whole.deter[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(prior, out.prior_logits[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state.stoch, whole.stoch[:, t])  # the same draws
