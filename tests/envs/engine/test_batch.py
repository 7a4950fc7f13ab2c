"""One batch equals its envs run one at a time (auto-reset and level draws included), and CPU equals CUDA."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiftgrid.envs.engine.batch import LevelStore, TensorEngine
from shiftgrid.envs.engine.levels import Layout, row_from_sample, stack

CASES = [("GoTo", "train"), ("DoorKey", "rules/far"), ("Maze", "rules/far"), ("Sequence", "instructions/far"),
         ("PutNext", "observation/far"), ("Pickup", "layout/far")]
B, STEPS = 6, 120


def _store(family: str, split: str, levels: int, device: str = "cpu") -> LevelStore:
    env = gym.make(f"shiftgrid/{family}-v1", split=split, max_steps=30)
    u = env.unwrapped
    rows = []
    for s in range(levels):
        env.reset(seed=s)
        rows.append(row_from_sample(u.sample, u.max_steps, Layout(u.height, u.width)))
    layout = Layout(u.height, u.width, max(r["obj_cell"].shape[0] for r in rows), max(r["verb"].shape[0] for r in rows))
    return LevelStore(stack(rows, layout), layout, device)


def _run(engine: TensorEngine, actions: np.ndarray) -> list:
    out = []
    engine.reset(seed=5)
    for a in actions:
        obs, reward, terminated, truncated, info = engine.step(torch.as_tensor(a, device=engine.device), autoreset=True)
        out.append([obs["image"].cpu().numpy().copy(), obs["direction"].cpu().numpy(), obs["mission"].cpu().numpy(),
                    reward.cpu().numpy(), terminated.cpu().numpy(), truncated.cpu().numpy(), info["success"].cpu().numpy(),
                    info["level_index"].cpu().numpy()])
    return out


@pytest.mark.parametrize("family,split", CASES, ids=[f"{f}/{s}" for f, s in CASES])
def test_batch_equals_one_env_at_a_time(family, split):
    store = _store(family, split, levels=5)
    actions = np.random.default_rng(0).integers(7, size=(STEPS, B))
    batched = _run(TensorEngine(store, B), actions)
    episodes = sum(int(step[4].sum() + step[5].sum()) for step in batched)
    assert episodes >= B, "too few episodes ended to exercise auto-reset"
    for i in range(B):
        alone = _run(TensorEngine(store, 1, streams=[i]), actions[:, i : i + 1])
        for t, (a, b) in enumerate(zip(batched, alone)):
            for k, (x, y) in enumerate(zip(a, b)):
                assert np.array_equal(x[i], y[0]), f"env {i}, step {t}, output {k}"


def test_draws_reach_every_level_and_count_them():
    store = _store("GoTo", "train", levels=4)
    engine = TensorEngine(store, 16)
    engine.reset(seed=1)
    for _ in range(60):
        engine.step(torch.full((16,), 6), autoreset=True)  # 'done' never ends a GoTo episode: only truncation (30)
    assert engine.distinct_levels() == 4


def test_teacher_names_the_next_levels():
    store = _store("GoTo", "train", levels=4)
    engine = TensorEngine(store, 3)
    engine.reset(levels=torch.tensor([0, 1, 2]))
    engine.set_next_levels(torch.tensor([3, -1, 3]))
    seen = []
    for _ in range(62):
        _, _, _, _, info = engine.step(torch.full((3,), 6), autoreset=True)
        seen.append(info["level_index"].tolist())
    assert seen[30] == [3, seen[30][1], 3]  # reset at step 31 (next-step convention) onto the named levels
    assert seen[29] == [0, 1, 2]


@pytest.mark.gpu
@pytest.mark.parametrize("family,split", CASES, ids=[f"{f}/{s}" for f, s in CASES])
def test_cpu_equals_cuda(family, split):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device in this torch: the CPU == CUDA check runs on a GPU machine")
    actions = np.random.default_rng(0).integers(7, size=(STEPS, B))
    cpu = _run(TensorEngine(_store(family, split, 5, "cpu"), B), actions)
    gpu = _run(TensorEngine(_store(family, split, 5, "cuda"), B), actions)
    for t, (a, b) in enumerate(zip(cpu, gpu)):
        for k, (x, y) in enumerate(zip(a, b)):
            assert np.array_equal(x, y), f"step {t}, output {k}"
