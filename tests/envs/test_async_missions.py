"""Async vector envs carry the current mission text (gymnasium reads a plain Text space only once)."""

import copy

import gymnasium as gym
import numpy as np
import pytest

import shiftgrid.envs  # noqa: F401  (registers the ids)
from shiftgrid.envs.spaces import MissionText, SharedTexts


@pytest.mark.parametrize("env_id", ["shiftgrid/Sequence-v1", "shiftgrid/GoTo-v1"])
def test_async_missions_match_sync_across_auto_resets(env_id):
    async_envs = gym.make_vec(env_id, num_envs=3, vectorization_mode="async")
    sync_envs = gym.make_vec(env_id, num_envs=3, vectorization_mode="sync")
    try:
        a, _ = async_envs.reset(seed=5)
        s, _ = sync_envs.reset(seed=5)
        missions = set(a["mission"])
        rng = np.random.default_rng(0)
        for _ in range(200):
            actions = rng.integers(0, 7, size=3)
            a, *_ = async_envs.step(actions)
            s, *_ = sync_envs.step(actions)
            assert tuple(a["mission"]) == tuple(s["mission"])
            missions.update(a["mission"])
        assert len(missions) > 3  # auto-resets brought new missions through shared memory
        assert all(m and set(m) <= set(MissionText(256, charset="abcdefghijklmnopqrstuvwxyz ,").character_set) for m in missions)
    finally:
        async_envs.close()
        sync_envs.close()


def test_live_view_without_copy_and_snapshot_on_deepcopy():
    envs = gym.make_vec("shiftgrid/GoTo-v1", num_envs=2, vectorization_mode="async", vector_kwargs={"copy": False})
    try:
        obs, _ = envs.reset(seed=0)
        assert isinstance(obs["mission"], SharedTexts)
        snapshot = copy.deepcopy(obs["mission"])
        assert isinstance(snapshot, tuple) and snapshot == tuple(obs["mission"])
        envs.reset(seed=1)  # the live view follows the buffer; the snapshot does not
        sync = gym.make_vec("shiftgrid/GoTo-v1", num_envs=2, vectorization_mode="sync")
        expected = tuple(sync.reset(seed=1)[0]["mission"])
        sync.close()
        assert tuple(obs["mission"]) == expected
        fresh = gym.make_vec("shiftgrid/GoTo-v1", num_envs=2, vectorization_mode="sync")  # no mode: the tensor engine
        assert snapshot == tuple(fresh.reset(seed=0)[0]["mission"])
        fresh.close()
    finally:
        envs.close()
