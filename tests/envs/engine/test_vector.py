"""The gymnasium VectorEnv: a seeded reset gives env i the level gym.make(id, split).reset(seed=s + i) gives."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import shiftgrid.envs  # noqa: F401  (registers the ids)
from shiftgrid.envs import make_tensor_vec
from shiftgrid.envs.engine.bank import build_bank
from shiftgrid.envs.engine.levels import int_to_hash


@pytest.mark.parametrize("env_id, split, workers", [("shiftgrid/GoTo-v1", "layout/far", 2), ("shiftgrid/DoorKey-v1", "train", 1),
                                                    ("MiniGrid-DoorKey-5x5-v0", "train", 2)])
def test_seeded_reset_starts_each_env_on_the_minigrid_envs_level(env_id, split, workers):
    bank = build_bank(env_id, split, 8, workers=1, progress=False, save=False)
    n, seed = 40, 100  # most of these levels are not in the bank: made on demand, in parallel with 2 workers
    envs = make_tensor_vec(env_id, n, split=split, bank=bank, workers=workers)
    obs, info = envs.reset(seed=seed)
    kwargs = {"split": split} if env_id.startswith("shiftgrid/") else {}
    single = gym.make(env_id, **kwargs)
    for i in range(n):
        o, i_info = single.reset(seed=seed + i)
        assert np.array_equal(obs["image"][i].numpy(), o["image"]), i
        assert int(obs["direction"][i]) == o["direction"], i
        if "level_hash" in i_info:
            assert int_to_hash(int(info["level_hash"][i])) == i_info["level_hash"], i
    again, _ = envs.reset(seed=seed)  # the levels made on demand are kept
    assert np.array_equal(again["image"].numpy(), obs["image"].numpy())
