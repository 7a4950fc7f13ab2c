"""Sequence replay: episode boundaries under each auto-reset convention, wrapping, sampling, saving."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

from shiftgrid.envs.learner_env import make_env
from shiftgrid.world_models.replay import SequenceReplay

MODES = ("next_step", "same_step", "sb3")
KEYS = ("image", "direction", "mission", "action", "reward", "terminated", "truncated", "is_first")


def vector(fns, mode):
    if mode == "sb3":
        return DummyVecEnv(fns)
    autoreset = gym.vector.AutoresetMode.NEXT_STEP if mode == "next_step" else gym.vector.AutoresetMode.SAME_STEP
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=autoreset)


def collect(fns, mode, steps, capacity=10_000, seed=0):
    """Feed ``steps`` random vector steps into a replay; returns the replay and the actions taken."""
    envs = vector(fns, mode)
    replay = SequenceReplay.for_space(envs.observation_space if mode == "sb3" else envs.single_observation_space,
                                      num_envs=len(fns), capacity=capacity, mode=mode)
    if mode == "sb3":
        envs.seed(seed)
        replay.reset(envs.reset())
    else:
        replay.reset(envs.reset(seed=seed)[0])
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 3, size=(steps, len(fns)))  # left, right, forward
    for a in actions:
        replay.add(a, *envs.step(a))
    envs.close()
    return replay, actions


def expected(make, seed, actions, mode):
    """What one stream must hold, derived from a single (non-vector) env given the same actions."""
    env = make()
    first = lambda obs: dict(obs=obs, reward=0.0, terminated=False, truncated=False, is_first=True)  # noqa: E731
    pending, records = first(env.reset(seed=seed)[0]), []
    for a in actions:
        if mode == "next_step" and (pending["terminated"] or pending["truncated"]):
            records.append({**pending, "action": 0})  # the reset step: its action is ignored
            pending = first(env.reset()[0])
            continue
        obs, reward, term, trunc, _ = env.step(int(a))
        records.append({**pending, "action": int(a)})
        pending = dict(obs=obs, reward=float(reward), terminated=term, truncated=trunc, is_first=False)
        if mode != "next_step" and (term or trunc):
            records.append({**pending, "action": 0})
            pending = first(env.reset()[0])
    return records


def assert_stream(stream, records):
    assert len(stream["action"]) == len(records)
    for k in ("image", "direction", "mission"):
        want = np.stack([np.asarray(r["obs"][k]) for r in records])
        np.testing.assert_array_equal(stream[k].numpy(), want, err_msg=k)
    for k in ("action", "reward", "terminated", "truncated", "is_first"):
        np.testing.assert_array_equal(stream[k].numpy(), np.array([r[k] for r in records]), err_msg=k)


@pytest.mark.parametrize("mode", MODES)
def test_scripted_boundaries(mode, scripted):
    fns = [lambda i=i: scripted(tag=i) for i in range(3)]
    replay, actions = collect(fns, mode, steps=40)
    for i in range(3):
        stream = replay.stream(i)
        assert_stream(stream, expected(fns[i], i, actions[:, i], mode))
        ended = torch.nonzero(stream["terminated"] | stream["truncated"]).flatten()
        assert len(ended) >= 8
        for j in ended.tolist():  # the terminal step keeps its reward and its real last observation
            tag, episode, t = stream["image"][j, 0, 0].tolist()
            assert (tag, t) == (i, 2 + episode % 3)
            assert stream["reward"][j] == 10 * episode + t
            assert bool(stream["terminated"][j]) == (episode % 2 == 0)
            assert stream["action"][j] == 0
            assert stream["is_first"][j + 1] if j + 1 < len(stream["is_first"]) else True
            if j + 1 < len(stream["is_first"]):
                assert stream["image"][j + 1, 0, 0].tolist() == [i, episode + 1, 0]  # the reset observation
                assert stream["reward"][j + 1] == 0
    # no sampled sequence mixes two episodes without is_first where the episode changes
    batch = replay.sample(256, 8, generator=torch.Generator().manual_seed(1))
    episode = batch["image"][:, :, 0, 0, 1].long()
    changed = episode[:, 1:] != episode[:, :-1]
    assert changed.any()
    assert torch.equal(changed, batch["is_first"][:, 1:])
    assert (batch["image"][:, :, 0, 0, 0] == batch["image"][:, :1, 0, 0, 0]).all()  # one stream per sequence


@pytest.mark.parametrize("mode", MODES)
def test_minigrid_boundaries(mode):
    """A real minigrid room with 4-step episodes: the replay equals what single envs produce."""
    fns = [lambda: make_env("MiniGrid-Empty-5x5-v0", max_steps=4)] * 2
    replay, actions = collect(fns, mode, steps=30, seed=3)
    for i in range(2):
        stream = replay.stream(i)
        assert_stream(stream, expected(fns[i], 3 + i, actions[:, i], mode))
        assert stream["truncated"].sum() >= 4
    # a terminal (goal) step keeps its reward: drive one env onto the goal
    envs = vector([lambda: make_env("MiniGrid-Empty-5x5-v0")], mode)
    replay = SequenceReplay.for_space(envs.observation_space if mode == "sb3" else envs.single_observation_space,
                                      num_envs=1, capacity=100, mode=mode)
    replay.reset(envs.reset() if mode == "sb3" else envs.reset(seed=0)[0])
    for a in (2, 2, 1, 2, 2):  # from (1, 1) facing east: forward x2, turn right, forward x2 onto the goal at (3, 3)
        replay.add(np.array([a]), *envs.step(np.array([a])))
    for _ in range(2):  # next_step: the reset step, then one that stores the reset observation
        replay.add(np.array([2]), *envs.step(np.array([2])))
    stream = replay.stream(0)
    j = int(torch.nonzero(stream["terminated"]).flatten()[0])
    assert stream["reward"][j] > 0.5 and not stream["is_first"][j] and stream["is_first"][j + 1]
    assert (stream["image"][j] != stream["image"][j + 1]).any()  # the real last view, not the reset one


def test_capacity_wraps(scripted):
    fns = [lambda i=i: scripted(tag=i) for i in range(2)]
    replay, actions = collect(fns, "same_step", steps=50, capacity=2 * 13)
    assert len(replay) == 26 and replay.stream_capacity == 13
    for i in range(2):
        assert_stream(replay.stream(i), expected(fns[i], i, actions[:, i], "same_step")[-13:])
    batch = replay.sample(200, 13, generator=torch.Generator().manual_seed(0))
    steps = batch["image"][:, :, 0, 0, 1:].long()  # (episode, t) ordered within each sequence
    order = steps[..., 0] * 100 + steps[..., 1]
    assert (order[:, 1:] > order[:, :-1]).all()  # never a jump back across the write position
    with pytest.raises(ValueError, match="no stream holds 14"):
        replay.sample(1, 14)


def test_sampling_is_seeded(scripted):
    replay, _ = collect([lambda: scripted()] * 2, "next_step", steps=30)
    a = replay.sample(16, 5, generator=torch.Generator().manual_seed(7))
    b = replay.sample(16, 5, generator=torch.Generator().manual_seed(7))
    c = replay.sample(16, 5, generator=torch.Generator().manual_seed(8))
    assert all(torch.equal(a[k], b[k]) for k in KEYS)
    assert not torch.equal(a["image"], c["image"])


def test_uniform_over_starts(scripted):
    """Streams of unequal length: every valid start is equally likely."""
    replay = SequenceReplay(2, 40, token_lengths={"mission": 40})
    replay.size[:] = torch.tensor([20, 6])
    replay.ptr[:] = torch.tensor([0, 6])
    replay.data["image"][:, :, 0, 0, 0] = torch.arange(20).repeat(2, 1).to(torch.uint8)
    replay.data["image"][1, :, 0, 0, 1] = 1
    batch = replay.sample(30_000, 3, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(batch["image"][:, 0, 0, 0, 1].long(), minlength=2).float()
    assert abs(counts[1] / counts.sum() - 4 / 22) < 0.01  # 18 starts in stream 0, 4 in stream 1
    assert batch["image"][batch["image"][:, 0, 0, 0, 1] == 1][:, :, 0, 0, 0].max() == 5  # stream 1 holds steps 0..5


def test_save_restore(tmp_path, scripted):
    fns = [lambda i=i: scripted(tag=i) for i in range(2)]
    envs = vector(fns, "next_step")
    replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=2, capacity=30)
    replay.reset(envs.reset(seed=0)[0])
    for _ in range(20):
        replay.add(np.array([1, 2]), *envs.step(np.array([1, 2])))
    torch.save(replay.state_dict(), tmp_path / "replay.pt")
    restored = SequenceReplay.for_space(envs.single_observation_space, num_envs=2, capacity=30)
    restored.load_state_dict(torch.load(tmp_path / "replay.pt", weights_only=True))
    for _ in range(7):  # both keep going identically from the restored pending step
        out = envs.step(np.array([0, 1]))
        replay.add(np.array([0, 1]), *out)
        restored.add(np.array([0, 1]), *out)
    a = replay.sample(8, 6, generator=torch.Generator().manual_seed(2))
    b = restored.sample(8, 6, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(a[k], b[k]) for k in KEYS)
    with pytest.raises(ValueError, match="layout"):
        SequenceReplay.for_space(envs.single_observation_space, num_envs=2, capacity=40).load_state_dict(replay.state_dict())


def test_a_saved_replay_holds_only_its_filled_part(tmp_path, scripted):
    envs = vector([lambda: scripted(tag=0)], "next_step")
    replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=1, capacity=100_000)
    replay.reset(envs.reset(seed=0)[0])
    for _ in range(50):
        replay.add(np.array([1]), *envs.step(np.array([1])))
    torch.save(replay.state_dict(), tmp_path / "replay.pt")
    assert (tmp_path / "replay.pt").stat().st_size < 100 * replay.bytes_per_step + 20_000  # not 100,000 steps' worth
    restored = SequenceReplay.for_space(envs.single_observation_space, num_envs=1, capacity=100_000)
    restored.load_state_dict(torch.load(tmp_path / "replay.pt", weights_only=True))
    assert len(restored) == len(replay) == 50 and all(torch.equal(replay.stream(0)[k], restored.stream(0)[k]) for k in KEYS)
    full = replay.state_dict() | {f"data.{k}": t.cpu() for k, t in replay.data.items()}  # a file saved whole, as before
    old = SequenceReplay.for_space(envs.single_observation_space, num_envs=1, capacity=100_000)
    old.load_state_dict(full)
    assert all(torch.equal(replay.stream(0)[k], old.stream(0)[k]) for k in KEYS)


def test_bad_input(scripted):
    with pytest.raises(ValueError, match="unknown auto-reset mode 'auto'.*next_step, same_step, sb3"):
        SequenceReplay(1, 10, mode="auto")
    replay = SequenceReplay(1, 10)
    with pytest.raises(RuntimeError, match="reset"):
        replay.add(np.array([0]), {}, np.zeros(1), np.zeros(1), np.zeros(1), {})
    envs = vector([lambda: scripted()], "next_step")  # fed as if same-step: the final observation is missing
    replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=1, capacity=10, mode="same_step")
    replay.reset(envs.reset(seed=0)[0])
    with pytest.raises(ValueError, match="final_obs"):
        for _ in range(3):
            replay.add(np.array([0]), *envs.step(np.array([0])))
