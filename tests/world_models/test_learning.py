"""Each world-model family learns a tiny deterministic grid: an empty 5x5 room under random actions, collected into the replay."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from shiftgrid.envs.learner_env import make_env
from shiftgrid.world_models.interface import ObsSpec
from shiftgrid.world_models.metrics import one_step_accuracy
from shiftgrid.world_models.models import build_model
from shiftgrid.world_models.replay import SequenceReplay
from shiftgrid.world_models.train_step import make_optimizer, train_step


def collect(seed: int, steps: int) -> tuple[SequenceReplay, gym.vector.VectorEnv]:
    envs = gym.vector.SyncVectorEnv([lambda: make_env("MiniGrid-Empty-5x5-v0", max_steps=30)] * 4)
    replay = SequenceReplay.for_space(envs.single_observation_space, num_envs=4, capacity=4 * steps)
    replay.reset(envs.reset(seed=seed)[0])
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.integers(0, 3, size=4)  # left, right, forward
        replay.add(actions, *envs.step(actions))
    return replay, envs


#: family -> (preset overrides, B x T of each update, most updates).
SETTINGS = {"rssm": ({"lr": 3e-3}, (16, 8), 1500), "transformer": ({"lr": 3e-3}, (16, 16), 2000)}


@pytest.mark.parametrize("family", list(SETTINGS))
@pytest.mark.training
def test_learns_empty_room_one_step(family):
    train, envs = collect(seed=0, steps=500)
    held_out, _ = collect(seed=1000, steps=100)
    batch = held_out.sample(64, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    overrides, (b, t), most = SETTINGS[family]
    spec = ObsSpec.from_spaces(envs.single_observation_space, envs.single_action_space)
    model = build_model(family, "tiny", spec, **overrides)
    before = one_step_accuracy(model, batch)
    opt, g = make_optimizer(model), torch.Generator().manual_seed(0)
    for update in range(1, most + 1):
        train_step(model, opt, train.sample(b, t, generator=g))
        if update % 100 == 0:
            acc = one_step_accuracy(model, batch)
            if acc["cell_accuracy"] >= 0.99:
                break
    assert acc["cell_accuracy"] >= 0.99, (update, acc)
    assert acc["changed_cell_accuracy"] > before["changed_cell_accuracy"] + 0.3, (before, acc)
