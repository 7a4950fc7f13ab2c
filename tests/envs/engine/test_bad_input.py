"""Bad input to the engine: each a clear error naming what was given and what is valid, a UserInputError (CLI: one line, exit 2)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import shiftgrid.envs  # noqa: F401  (registers the ids)
from shiftgrid.envs import make_tensor_vec
from shiftgrid.envs.engine.bank import build_bank
from shiftgrid.envs.errors import UserInputError

GOTO = "shiftgrid/GoTo-v1"


@pytest.fixture(scope="module")
def bank():
    return build_bank(GOTO, "train", 8, workers=1, progress=False, save=False)


@pytest.fixture
def envs(bank):
    envs = make_tensor_vec(GOTO, 4, bank=bank)
    envs.reset(seed=0)
    return envs


@pytest.mark.parametrize("call, message", [
    (lambda b: make_tensor_vec("shiftgrid/Nope-v0", 4), "the tensor engine cannot run 'shiftgrid/Nope-v0'; it runs: shiftgrid/GoTo-v1"),
    (lambda b: make_tensor_vec("MiniGrid-Dynamic-Obstacles-8x8-v0", 4), r"cannot run .*minigrid's MiniGrid-\{.*DoorKey"),
    (lambda b: make_tensor_vec(GOTO, 4, split="size/nope"), "unknown split 'size/nope' for GoTo; valid: train, id"),
    (lambda b: make_tensor_vec("MiniGrid-Empty-8x8-v0", 4, split="size/far"), "has no splits or factors; valid: split='train'"),
    (lambda b: make_tensor_vec(GOTO, 0, bank=b), r"num_envs=0 is not valid; valid: an integer >= 1"),
    (lambda b: make_tensor_vec(GOTO, 2.5, bank=b), r"num_envs=2.5 is not valid"),
    (lambda b: make_tensor_vec(GOTO, 4, bank=b, device="cuda:7"), r"device='cuda:7' cannot be used by this torch.*valid here: cpu"),
    (lambda b: make_tensor_vec(GOTO, 4, bank=b, device="tpu"), r"device='tpu' is not a device name; valid here: cpu"),
    (lambda b: gym.make_vec(GOTO, num_envs=0, vectorization_mode="vector_entry_point", bank=b), r"num_envs=0 is not valid"),
    (lambda b: gym.make_vec(GOTO, num_envs=2, vectorization_mode="vector_entry_point", split="nope", bank=b), "unknown split 'nope'"),
    (lambda b: gym.make_vec(GOTO, num_envs=2, vectorization_mode="vector_entry_point", colour=3, bank=b),
     "unknown keyword 'colour' for the tensor engine of shiftgrid/GoTo-v1; valid: factors"),
])
def test_making_the_engine(bank, call, message):
    with pytest.raises(UserInputError, match=message):
        call(bank)


@pytest.mark.parametrize("actions, message", [
    (np.zeros(3, dtype=np.int64), r"actions must have shape \(4,\); got \(3,\)"),
    (np.zeros((4, 1), dtype=np.int64), r"actions must have shape \(4,\); got \(4, 1\)"),
    (np.array([0, 1, 7, 2]), r"actions must be in 0..6 \(minigrid's actions\); got \[7\]"),
    (np.array([0, -1, 0, 0]), r"actions must be in 0..6 .*got \[-1\]"),
    (np.zeros(4, dtype=np.float32), r"actions must be integers 0..6 of shape \(4,\); got ndarray of torch.float32"),
    ("left", r"actions must be integers 0..6 of shape \(4,\); got str"),
])
def test_stepping_with_bad_actions(envs, actions, message):
    with pytest.raises(UserInputError, match=message):
        envs.step(actions)
    envs.step(torch.zeros(4, dtype=torch.int64))  # the batch is still usable


@pytest.mark.parametrize("call, message", [
    (lambda e: e.reset(options={"level": 1}), r"unknown reset options \['level'\]; valid: levels"),
    (lambda e: e.reset(options={"levels": torch.tensor([0, 1, 2, 99])}), r"levels must be in 0..\d+; got 0..99"),
    (lambda e: e.set_next_levels(torch.tensor([0, 1])), r"next levels must be an integer tensor of shape \(4,\)"),
    (lambda e: e.to_minigrid(4), r"env index 4 is not valid; valid: 0..3"),
])
def test_resets_and_views(envs, call, message):
    with pytest.raises(UserInputError, match=message):
        call(envs)


def test_an_episode_limit_no_level_can_meet():
    bank = build_bank("shiftgrid/DoorKey-v1", "train", 6, workers=1, progress=False, save=False)
    with pytest.raises(UserInputError, match=r"no level of the bank \(6 levels of shiftgrid/DoorKey-v1\) can be solved "
                                              r"within max_steps=2; valid: max_steps >= \d+"):
        make_tensor_vec("shiftgrid/DoorKey-v1", 4, bank=bank, max_steps=2)
