"""Playing an episode never changes the level it was generated as (``env.unwrapped.level``).

The env plays on copies of the level's objects: picking up, dropping, opening and unlocking
change the copies only, so the level's objects, grid and hash stay as generated, and the
oracle can solve it again. The oracle refuses a level whose objects are off the grid.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.world_object import Key

from shiftgrid.envs.level import LevelBuilder, level_hash
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.oracle import InvalidLevel, solve
from shiftgrid.envs.shift.split import hash_extra

SEEDS = range(4)
RANDOM_STEPS = 150


def _snapshot(level) -> tuple:
    objects = [
        (o.type, o.color, tuple(int(v) for v in o.cur_pos), getattr(o, "is_open", None), getattr(o, "is_locked", None))
        for o in level.objects
    ]
    return level_hash(level), objects, [id(c) for c in level.grid.grid], tuple(level.agent_pos), level.agent_dir


def _play(env, actions) -> None:
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            break


@pytest.mark.parametrize("seed", SEEDS)
def test_playing_leaves_the_level_unchanged(env_id, seed):
    env = gym.make(env_id)
    u = env.unwrapped
    for policy in ("oracle", "random"):
        _, info = env.reset(seed=seed)
        level, before = u.level, _snapshot(u.level)
        assert level_hash(level, hash_extra(u.sample.factors)) == info["level_hash"]
        assert all(u.grid.get(*o.cur_pos) is not o for o in level.objects), "the env plays on the level's own objects"
        if policy == "oracle":
            actions = u.optimal_actions
        else:
            actions = np.random.default_rng(seed).integers(7, size=RANDOM_STEPS)
        _play(env, actions)
        assert u.level is level
        assert _snapshot(level) == before, f"{policy} play changed the level"
        assert level_hash(level, hash_extra(u.sample.factors)) == info["level_hash"]
        if policy == "oracle":
            assert solve(level, slip=u.sample.factors.slip).steps == info["optimal_steps"]
    env.close()


def test_doorkey_key_and_door_stay_put():
    """The issue's case: after the key is picked up and the door opened, the level's key and door are as generated."""
    env = gym.make("shiftgrid/DoorKey-v1")
    u = env.unwrapped
    _, info = env.reset(seed=6)
    door, key_positions = u.level.objects[0], [tuple(o.cur_pos) for o in u.level.objects[1:]]
    _play(env, u.optimal_actions)
    assert door.is_locked and not door.is_open
    assert [tuple(o.cur_pos) for o in u.level.objects[1:]] == key_positions
    assert all(u.level.grid.get(*p) is o for p, o in zip(key_positions, u.level.objects[1:]))
    assert u.objects[0].is_open and not u.objects[0].is_locked  # the env's copy did change
    env.close()


def _key_level():
    b = LevelBuilder(6, 6, np.random.default_rng(0))
    b.agent_pos, b.agent_dir = (1, 1), 0
    k = b.put(Key("red"), 3, 1)
    return b.build("pick up the red key", Mission(((Clause("pickup", k),),)))


def test_oracle_refuses_object_off_the_grid():
    level = _key_level()
    level.objects[0].cur_pos = np.array([-1, -1])  # what minigrid writes on pickup
    with pytest.raises(InvalidLevel, match=r"red key.*\(-1, -1\)"):
        solve(level)


def test_oracle_refuses_object_not_where_its_position_says():
    level = _key_level()
    level.grid.set(3, 1, None)  # the key's cell is empty, but the key still says (3, 1)
    with pytest.raises(InvalidLevel, match=r"red key.*\(3, 1\)"):
        solve(level)
