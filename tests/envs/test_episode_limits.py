"""Episode limits: DoorKey-v1 and Maze-v1 give exploration room, v0 keeps its old limits, and the engine agrees.

DoorKey-v1 ends an episode after ``10 * size**2`` steps (minigrid's DoorKey), Maze-v1 after
``4 * size**2`` (minigrid's navigation grids); their v0 ids (``3 *`` and ``2 * size**2``) stay
makeable with gymnasium's out-of-date warning. The engine reads the limit from the level's row,
so a policy that never finishes is truncated at the same step in both.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import pytest
import torch

import shiftgrid.envs as sg
from shiftgrid.envs.engine.batch import LevelStore, TensorEngine
from shiftgrid.envs.engine.levels import Layout, row_from_sample, stack

LIMITS = {"shiftgrid/DoorKey-v1": 10, "shiftgrid/Maze-v1": 4, "shiftgrid/DoorKey-v0": 3, "shiftgrid/Maze-v0": 2}


def _make(env_id: str, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the v0 ids' out-of-date warning is tested below
        return gym.make(env_id, **kwargs)


@pytest.mark.parametrize("env_id", LIMITS)
@pytest.mark.parametrize("split", ["train", "size/far"])
def test_limit_per_cell(env_id, split):
    env = _make(env_id, split=split, oracle=False)
    for seed in range(3):
        env.reset(seed=seed)
        u = env.unwrapped
        assert u.max_steps == LIMITS[env_id] * u.sample.factors.size**2, (env_id, split, seed)
    env.close()


@pytest.mark.parametrize("name", ["DoorKey", "Maze"])
def test_v1_is_current_and_v0_warns(name):
    assert f"shiftgrid/{name}-v1" in sg.registered_ids("shiftgrid")
    assert f"shiftgrid/{name}-v0" not in sg.registered_ids("shiftgrid")
    assert f"shiftgrid/{name}-v0" in sg.registered_ids("shiftgrid", superseded=True)
    with pytest.warns(Warning, match="out of date"):
        gym.make(f"shiftgrid/{name}-v0").close()


def _steps_to_truncation_in_engine(rows, layout: Layout) -> int:
    engine = TensorEngine(LevelStore(rows, layout, "cpu"), 1)
    engine.reset(levels=torch.zeros(1, dtype=torch.int64))
    left = torch.zeros(1, dtype=torch.int64)
    for t in range(1, 100_000):
        _, _, terminated, truncated, _ = engine.step(left, check=False)
        if bool(terminated | truncated):
            assert bool(truncated) and not bool(terminated)
            return t
    raise AssertionError("the engine never truncated")


@pytest.mark.parametrize("env_id", LIMITS)
def test_engine_truncates_where_the_env_does(env_id):
    """Turning left forever: the minigrid env and the engine end the episode at the family's own limit."""
    env = _make(env_id, split="train")
    env.reset(seed=0)
    u = env.unwrapped
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(0)
        steps += 1
        assert not terminated
    assert steps == LIMITS[env_id] * u.sample.factors.size**2
    layout = Layout(u.height, u.width)
    row = row_from_sample(u.sample, u.max_steps, layout)
    layout = Layout(u.height, u.width, row["obj_cell"].shape[0], row["verb"].shape[0])
    assert _steps_to_truncation_in_engine(stack([row], layout), layout) == steps
    env.close()
