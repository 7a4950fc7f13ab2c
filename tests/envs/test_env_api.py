"""The gymnasium API on every registered id and split: checker, spaces, seeding, pickling, info."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import shiftgrid.envs as sg
from shiftgrid.envs.level import level_hash
from shiftgrid.envs.shift.split import hash_extra

INFO_KEYS = {"success", "level_hash", "level_seed", "optimal_steps", "optimal_return"}
ACTIONS = tuple(int(a) for a in np.random.default_rng(1234).integers(0, 7, size=80))


def _obs_key(obs) -> tuple:
    return (obs["image"].tobytes(), int(obs["direction"]), obs["mission"])


def _rollout(env, actions, seed=None, options=None) -> list:
    """Everything observable along a fixed action sequence (auto-resetting with no seed)."""
    obs, info = env.reset(seed=seed, options=options)
    trace = [("reset", _obs_key(obs), info)]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        trace.append((_obs_key(obs), reward, terminated, truncated, info))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append(("reset", _obs_key(obs), info))
    return trace


def test_gymnasium_check_env(env_id, split_name):
    env = gym.make(env_id, split=split_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=True)
    messages = [str(w.message) for w in caught if "gymnasium" in w.filename or "minigrid" in w.filename]
    assert not messages, f"check_env warned on {env_id} split={split_name}: {messages}"


def test_observations_in_space(env_id, split_name):
    env = gym.make(env_id, split=split_name)
    space = env.observation_space
    obs, _ = env.reset(seed=0)
    assert space.contains(obs), f"reset obs not in {space}"
    assert obs["image"].dtype == np.uint8 and obs["image"].shape == (7, 7, 3)
    for a in ACTIONS:
        obs, reward, terminated, truncated, _ = env.step(a)
        assert space.contains(obs), f"obs after action {a} not in {space}"
        assert isinstance(reward, float) and 0.0 <= reward <= 1.0
        if terminated or truncated:
            obs, _ = env.reset()
            assert space.contains(obs)


def test_same_seed_same_trajectory(env_id, split_name):
    a = _rollout(gym.make(env_id, split=split_name), ACTIONS, seed=7)
    b = _rollout(gym.make(env_id, split=split_name), ACTIONS, seed=7)
    assert a == b


def test_different_seeds_give_different_levels(env_id, split_name):
    env = gym.make(env_id, split=split_name)
    hashes = [env.reset(seed=s)[1]["level_hash"] for s in (0, 1, 2)]
    assert len(set(hashes)) == 3, f"seeds 0, 1, 2 gave level hashes {hashes}"


def test_pickle_mid_episode_continues_identically(env_id, split_name):
    env = gym.make(env_id, split=split_name)
    env.reset(seed=3)
    for a in (1, 2, 0):
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    clone = pickle.loads(pickle.dumps(env))

    def continue_(e):
        trace = []
        for a in ACTIONS:
            obs, r, term, trunc, info = e.step(a)
            trace.append((_obs_key(obs), r, term, trunc, info))
            if term or trunc:
                obs, info = e.reset()  # unseeded: the env's own generator must have travelled too
                trace.append(("reset", _obs_key(obs), info))
        return trace

    assert continue_(env) == continue_(clone)


def _check_info(info, split, where):
    missing = INFO_KEYS - set(info)
    assert not missing, f"info at {where} lacks {sorted(missing)}: {info}"
    assert isinstance(info["success"], bool)
    assert isinstance(info["level_hash"], str) and len(info["level_hash"]) == 16
    int(info["level_hash"], 16)
    assert split.seed_start <= info["level_seed"] < split.seed_start + split.seed_count
    assert info["optimal_steps"] >= 1
    assert 0.0 < info["optimal_return"] <= 1.0


def test_info_keys_at_reset_and_step(env_id, split_name):
    env = gym.make(env_id, split=split_name)
    split = sg.splits_for(env_id)[split_name]
    obs, info = env.reset(seed=11)
    _check_info(info, split, "reset")
    assert info["success"] is False
    u = env.unwrapped
    # the hash in info is the canonical hash of the level as generated
    assert info["level_hash"] == level_hash(u.level, hash_extra(u.sample.factors))
    first = info
    for a in ACTIONS:
        _, reward, terminated, truncated, info = env.step(a)
        _check_info(info, split, f"step (action {a})")
        for k in ("level_hash", "level_seed", "optimal_steps", "optimal_return"):
            assert info[k] == first[k], f"info[{k!r}] changed within an episode"
        assert info["success"] == (reward > 0), "success must come with (and only with) a positive reward"
        if terminated or truncated:
            break


def test_level_seed_option_reproduces_level(env_id, split_name):
    env = gym.make(env_id, split=split_name)
    split = sg.splits_for(env_id)[split_name]
    obs0, info0 = env.reset(seed=5)
    # the reported level seed reproduces the level, whatever the episode seed
    other = gym.make(env_id, split=split_name)
    obs1, info1 = other.reset(seed=99, options={"level_seed": info0["level_seed"]})
    assert (info1["level_hash"], info1["level_seed"]) == (info0["level_hash"], info0["level_seed"])
    assert _obs_key(obs1) == _obs_key(obs0)
    obs2, info2 = other.reset(options={"level_seed": info0["level_seed"]})
    assert info2["level_hash"] == info0["level_hash"]
    # an arbitrary seed in the range gives the same admissible level every time
    k = split.seed_start + 12345
    h = {env.reset(seed=s, options={"level_seed": k})[1]["level_hash"] for s in (0, 1, 2)}
    assert len(h) == 1
    assert env.reset(options={"level_seed": k})[1]["level_seed"] >= k
