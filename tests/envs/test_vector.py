"""Vector environments: gymnasium sync/async (auto-reset), MissionTokens inside them, SB3 vec envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import shiftgrid.envs as sg
from shiftgrid.envs.language import UNK, VOCAB
from shiftgrid.envs.wrappers import DEFAULT_MAX_LEN, MissionTokens, encode

NUM_ENVS = 8
MAX_VEC_STEPS = 3000
# Async and SB3 subprocess vectors start processes: a couple of ids is enough.
FEW_IDS = sg.registered_ids("shiftgrid")[:2]
FEW = pytest.mark.parametrize("few_id", FEW_IDS, ids=[i.split("/", 1)[1] for i in FEW_IDS])


def _run_vec(vec, seed=0, min_steps=0, action_seed=0):
    """Random actions until every sub-env has been auto-reset once (and at least ``min_steps``)."""
    actions = np.random.default_rng(action_seed)
    obs, info = vec.reset(seed=seed)
    trace = [(obs, None, None, None, info)]
    reset_seen = np.zeros(vec.num_envs, dtype=bool)
    done_prev = np.zeros(vec.num_envs, dtype=bool)
    for t in range(MAX_VEC_STEPS):
        a = actions.integers(0, 7, size=vec.num_envs)
        obs, reward, terminated, truncated, info = vec.step(a)
        trace.append((obs, reward, terminated, truncated, info))
        reset_seen |= done_prev
        done_prev = terminated | truncated
        if reset_seen.all() and t + 1 >= min_steps:
            break
    return trace, reset_seen


def _equal_traces(a, b) -> None:
    assert len(a) == len(b)
    for t, (x, y) in enumerate(zip(a, b)):
        ox, oy = x[0], y[0]
        assert set(ox) == set(oy)
        for k in ox:
            same = np.array_equal(np.asarray(ox[k]), np.asarray(oy[k]))
            if not same and k == "mission":
                got, want = [m[:40] for m in ox[k]], list(oy[k])
                assert same, f"missions differ at vector step {t}: got {got}, expected {want}"
            assert same, f"obs[{k!r}] differs at vector step {t}"
        for i, name in ((1, "reward"), (2, "terminated"), (3, "truncated")):
            if x[i] is not None:
                assert np.array_equal(x[i], y[i]), f"{name} differs at vector step {t}"
        for k in ("level_hash", "success", "optimal_return"):
            assert np.array_equal(x[4][k], y[4][k]), f"info[{k!r}] differs at vector step {t}"


def test_sync_vector_autoreset(env_id):
    vec = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="sync")
    assert vec.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) == AutoresetMode.NEXT_STEP
    trace, reset_seen = _run_vec(vec)
    vec.close()
    assert reset_seen.all(), f"not every sub-env ended an episode within {MAX_VEC_STEPS} random steps"
    obs0, info0 = trace[0][0], trace[0][4]
    assert obs0["image"].shape == (NUM_ENVS, 7, 7, 3) and obs0["image"].dtype == np.uint8
    assert len(obs0["mission"]) == NUM_ENVS
    # sub-env i is seeded with seed + i, exactly as a single env would be
    for i in (0, NUM_ENVS - 1):
        single_obs, single_info = gym.make(env_id).reset(seed=i)
        assert np.array_equal(single_obs["image"], obs0["image"][i])
        assert single_obs["mission"] == obs0["mission"][i]
        assert single_info["level_hash"] == info0["level_hash"][i]
    for t in range(1, len(trace)):
        obs, reward, terminated, truncated, info = trace[t]
        assert vec.observation_space.contains(obs)
        prev_done = trace[t - 1][2] | trace[t - 1][3] if t > 1 else np.zeros(NUM_ENVS, dtype=bool)
        # next-step auto-reset: the step after an episode ends is a reset (no reward, not done, a new level)
        for i in np.flatnonzero(prev_done):
            assert reward[i] == 0 and not terminated[i] and not truncated[i]
            assert info["level_hash"][i] != trace[t - 1][4]["level_hash"][i] or info["level_seed"][i] != trace[t - 1][4]["level_seed"][i]
            assert info["success"][i] == False  # noqa: E712 (numpy bool)
        # success is reported exactly on rewarded terminations
        assert np.array_equal(info["success"] & ~prev_done, (reward > 0) & ~prev_done)


def _async_and_sync_traces(env_id, **async_kwargs):
    """Run an async vector (made with ``async_kwargs``) and a sync vector side by side; return both traces."""
    sync = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="sync")
    async_ = gym.make_vec(env_id, num_envs=NUM_ENVS, vectorization_mode="async", **async_kwargs)
    try:
        a, seen = _run_vec(async_, min_steps=10)
        b, _ = _run_vec(sync, min_steps=10)
    finally:
        async_.close()
        sync.close()
    return a, seen, b, async_


@FEW
@pytest.mark.parametrize("shared_memory", [True, False])
def test_async_vector_matches_sync(few_id, shared_memory):
    """Async vectors (with or without shared memory) return exactly what the sync vector returns, missions included."""
    a, seen, b, _ = _async_and_sync_traces(few_id, vector_kwargs={"shared_memory": shared_memory})
    assert seen.all()
    _equal_traces(a, b)


@FEW
def test_async_vector_with_mission_tokens(few_id):
    a, seen, b, tokens = _async_and_sync_traces(few_id, wrappers=[MissionTokens])
    assert seen.all()
    assert tokens.single_observation_space["mission"].shape == (DEFAULT_MAX_LEN,)
    for t, (x, y) in enumerate(zip(a, b)):
        assert x[0]["mission"].shape == (NUM_ENVS, DEFAULT_MAX_LEN) and x[0]["mission"].dtype == np.int64
        expected = np.stack([encode(m, DEFAULT_MAX_LEN) for m in y[0]["mission"]])
        assert np.array_equal(x[0]["mission"], expected), f"mission tokens differ at vector step {t}"
        assert np.array_equal(x[0]["image"], y[0]["image"])
        assert not (x[0]["mission"] == VOCAB.index(UNK)).any()


# -- stable-baselines3 ---------------------------------------------------------------------------

def _token_env_fn(env_id):
    def make():
        return MissionTokens(gym.make(env_id))

    return make


def test_sb3_check_env_on_token_wrapped_env(env_id):
    from stable_baselines3.common.env_checker import check_env

    check_env(MissionTokens(gym.make(env_id)), warn=False)


def _run_sb3(venv, steps=300):
    venv.seed(0)
    obs = venv.reset()
    actions = np.random.default_rng(0)
    trace = [obs]
    dones_seen = np.zeros(venv.num_envs, dtype=bool)
    for _ in range(steps):
        obs, reward, done, infos = venv.step(actions.integers(0, 7, size=venv.num_envs))
        for i in np.flatnonzero(done):
            term = infos[i]["terminal_observation"]
            assert term["mission"].shape == (DEFAULT_MAX_LEN,) and term["image"].shape == (7, 7, 3)
            dones_seen[i] = True
        trace.append((obs, reward, done, [(d["level_hash"], d["success"]) for d in infos]))
    return trace, dones_seen


@FEW
@pytest.mark.slow
def test_sb3_dummy_and_subproc_vec_env_with_mission_tokens(few_id):
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    dummy = DummyVecEnv([_token_env_fn(few_id)] * 2)
    subproc = SubprocVecEnv([_token_env_fn(few_id)] * 2)
    try:
        a, seen = _run_sb3(dummy)
        b, _ = _run_sb3(subproc)
    finally:
        dummy.close()
        subproc.close()
    assert seen.all(), "every sub-env should end at least one episode in 300 random steps"
    first = a[0]
    assert first["mission"].shape == (2, DEFAULT_MAX_LEN) and first["image"].shape == (2, 7, 7, 3)
    for t, (x, y) in enumerate(zip(a, b)):
        if t == 0:
            x, y = (x,), (y,)
        for k in x[0]:
            assert np.array_equal(x[0][k], y[0][k]), f"obs[{k!r}] differs between Dummy and Subproc at step {t}"
        if t:
            # DummyVecEnv keeps rewards in float32, SubprocVecEnv returns the env's float64
            assert np.array_equal(np.float32(x[1]), np.float32(y[1])), f"rewards differ at step {t}"
            assert np.array_equal(x[2], y[2]), f"dones differ at step {t}"
            assert x[3] == y[3], f"infos differ at step {t}"
