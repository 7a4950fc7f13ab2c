"""The engine's CUDA paths (marked ``gpu``; skipped, with the reason, where torch sees no CUDA device).

The gymnasium vector env on CUDA equals it on the CPU step for step (auto-reset and slip draws
included); a step never synchronises with the host (masked auto-reset, no ``nonzero``, no
``.item()``), checked with CUDA's sync debug mode; the benchmark measures on CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shiftgrid.envs import make_tensor_vec
from shiftgrid.envs.engine.bank import build_bank
from shiftgrid.envs.engine.benchmark import engine_throughput

pytestmark = pytest.mark.gpu

CASES = [("shiftgrid/GoTo-v1", "train"), ("shiftgrid/DoorKey-v1", "rules/far"), ("shiftgrid/PutNext-v1", "observation/far")]


@pytest.fixture
def device(gpu_device, tmp_path, monkeypatch):
    """The gpu tier's device (``--gpu-device``, default cuda; the conftest skips these tests without CUDA)."""
    if gpu_device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"needs CUDA: torch {torch.__version__} sees no CUDA device")
    monkeypatch.setenv("SHIFTGRID_CACHE", str(tmp_path / "cache"))
    return str(gpu_device)


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _bank(env_id, split):
    return build_bank(env_id, split, 12, workers=1, progress=False, save=False)


@pytest.mark.parametrize("env_id, split", CASES)
def test_vector_env_on_cuda_equals_cpu(env_id, split, device):
    bank = _bank(env_id, split)
    envs = {k: make_tensor_vec(env_id, 32, split=split, bank=bank, device=d, max_steps=20)
            for k, d in (("cpu", "cpu"), ("gpu", device))}  # with --gpu-device cpu, a smoke run: CPU against CPU
    outs = {d: [e.reset(seed=3)[0]] for d, e in envs.items()}
    actions = np.random.default_rng(0).integers(7, size=(60, 32))
    for a in actions:
        for d, e in envs.items():
            outs[d].append(e.step(torch.as_tensor(a, device=e.device)))
    for t, (cpu, gpu) in enumerate(zip(outs["cpu"], outs["gpu"])):
        flat_cpu, flat_gpu = _flatten(cpu), _flatten(gpu)
        assert flat_cpu.keys() == flat_gpu.keys()
        for k in flat_cpu:
            assert torch.equal(flat_cpu[k], flat_gpu[k].cpu()), (t, k)


def _flatten(out, prefix=""):
    if isinstance(out, torch.Tensor):
        return {prefix: out}
    items = out.items() if isinstance(out, dict) else enumerate(out)
    flat = {}
    for k, v in items:
        flat.update(_flatten(v, f"{prefix}/{k}"))
    return flat


@pytest.mark.parametrize("env_id, split", CASES)
def test_a_step_never_syncs_with_the_host(env_id, split, device):
    envs = make_tensor_vec(env_id, 256, split=split, bank=_bank(env_id, split), device=device, max_steps=10)
    engine = envs.engine
    engine.reset(seed=0)
    actions = torch.randint(0, 7, (40, 256), device=device)
    engine.step(actions[0], autoreset=True, check=False)  # first-call allocations
    _sync(device)
    if device.startswith("cuda"):
        torch.cuda.set_sync_debug_mode("error")
    ends = []
    try:
        for a in actions[1:]:  # episodes end (10 steps) and auto-reset on the device
            _, _, terminated, truncated, _ = engine.step(a, autoreset=True, check=False)
            ends.append(terminated | truncated)
    finally:
        if device.startswith("cuda"):
            torch.cuda.set_sync_debug_mode("default")
    assert int(torch.stack(ends).sum()) >= 256 * 3  # every env ended (and was reset) at least three times


def test_benchmark_measures_on_cuda(device):
    fig = engine_throughput(make_tensor_vec("shiftgrid/GoTo-v1", 4096, bank=_bank("shiftgrid/GoTo-v1", "train"),
                                            device=device), steps=5)
    assert fig.device.startswith(device) and fig.steps_per_second > 0 and fig.reset_seconds > 0
