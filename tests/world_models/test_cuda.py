"""The world models' CUDA paths: replay, filtering, training (fp32 and bf16) and the dream env on the device.

Marked ``gpu``: skipped where torch sees no CUDA device; ``pytest -m gpu --gpu-device cpu`` runs them
on the CPU as a smoke run (conftest.py). ``make gpu-check`` runs them first on a GPU machine.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from shiftgrid.world_models.dream_env import DreamVecEnv, RealStarts
from shiftgrid.world_models.interface import ObsSpec
from shiftgrid.world_models.models import build_model
from shiftgrid.world_models.replay import SequenceReplay
from shiftgrid.world_models.train_step import make_optimizer, train_step

pytestmark = pytest.mark.gpu

FAMILIES = ("rssm", "transformer", "mechanism")
EMPTY = "MiniGrid-Empty-5x5-v0"


@pytest.fixture
def full_precision():
    """fp32 matmuls and convolutions without TF32, so the device's figures can be held to the CPU's."""
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.set_float32_matmul_precision(before[0])
    torch.backends.cudnn.allow_tf32 = before[1]


def _fill(replay: SequenceReplay, steps: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = replay.num_envs

    def obs():
        return {"image": rng.integers(0, 11, (n, 7, 7, 3), dtype=np.uint8), "direction": rng.integers(0, 4, n),
                "mission": rng.integers(0, 69, (n, 40))}

    replay.reset(obs())
    for _ in range(steps):
        replay.add(rng.integers(0, 7, n), obs(), rng.random(n).astype(np.float32), rng.random(n) < 0.1, np.zeros(n, bool))


def test_replay_on_the_device_keeps_and_samples_what_the_cpu_replay_does(gpu_device):
    host = SequenceReplay(3, 300, token_lengths={"mission": 40})
    device = SequenceReplay(3, 300, token_lengths={"mission": 40}, device=gpu_device)
    _fill(host, 150)  # past capacity: the rings wrap
    _fill(device, 150)
    assert all(t.device.type == gpu_device.type for t in device.data.values())
    a = host.sample(8, 16, generator=torch.Generator().manual_seed(1))
    b = device.sample(8, 16, generator=torch.Generator().manual_seed(1))
    assert a.keys() == b.keys() and all(t.device.type == gpu_device.type for t in b.values())
    for k in a:
        assert torch.equal(a[k], b[k].cpu()), k
    assert b["is_first"].any()  # episode boundaries were kept


@pytest.mark.parametrize("family", FAMILIES)
def test_filtering_on_the_device_matches_the_cpu(family, gpu_device, random_batch, full_precision):
    """The first filtered step (no latent drawn before it) gives the CPU's posterior and heads on the device."""
    torch.manual_seed(0)
    model = build_model(family, "tiny", ObsSpec()).eval()
    moved = copy.deepcopy(model).to(gpu_device)
    batch = random_batch(b=4, t=4)
    with torch.no_grad():
        states, out = model.observe(batch, generator=torch.Generator().manual_seed(0))
        d_states, d_out = moved.observe({k: v.to(gpu_device) for k, v in batch.items()},
                                        generator=torch.Generator(device=gpu_device).manual_seed(0))
    assert d_states.deter.device.type == gpu_device.type
    first = lambda t: t[:, 0].cpu()  # noqa: E731
    torch.testing.assert_close(first(d_out.post_logits), first(out.post_logits), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(first(d_states.deter), first(states.deter), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(first(d_out.predictions.obs.type_logits), first(out.predictions.obs.type_logits),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("family", FAMILIES)
def test_training_on_the_device_fits_a_batch(family, bf16, gpu_device, random_batch):
    """Updates on one batch lower its loss, with the parameters and optimiser state on the device."""
    torch.manual_seed(0)
    model = build_model(family, "tiny", ObsSpec(), bf16=bf16).to(gpu_device)
    opt = make_optimizer(model)
    batch = {k: v.to(gpu_device) for k, v in random_batch(b=4, t=8).items()}
    losses = [train_step(model, opt, batch)["loss"] for _ in range(30)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5]), losses
    assert all(p.device.type == gpu_device.type for p in model.parameters())
    assert all(v.device.type == gpu_device.type for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim())


def test_dream_env_on_the_device_is_seeded_and_stays_in_its_spaces(gpu_device):
    starts = RealStarts(EMPTY, seed=0)
    spec = ObsSpec.from_spaces(starts.observation_space, starts.action_space)
    torch.manual_seed(0)
    model = build_model("rssm", "tiny", spec).to(gpu_device)

    def rollout(seed: int) -> list[np.ndarray]:
        env = DreamVecEnv(model, RealStarts(EMPTY, seed=0), num_envs=4, seed=seed)
        obs, _ = env.reset(seed=seed)
        frames = [obs["image"]]
        for t in range(8):
            obs, reward, terminated, truncated, _ = env.step(np.full(4, t % 3))
            assert env.observation_space.contains(obs) and reward.shape == (4,) and terminated.dtype == bool
            frames.append(obs["image"])
        return frames

    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b))  # noqa: E731
    assert same(rollout(5), rollout(5))
    assert not same(rollout(1), rollout(2))
