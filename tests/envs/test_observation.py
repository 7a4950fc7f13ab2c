"""The fast egocentric view equals minigrid's own ``gen_obs``; palettes and view sizes work as documented.

Documented (``Factors``, ``observation.PALETTES``): ``view`` v in (3, 5, 7) keeps the image
7x7 and leaves unseen (all zeros) every cell outside the v x v square in front of the agent
(the agent's cell at the bottom centre); ``palette`` recolours doors, keys, balls and boxes
(never walls): ``swap`` exchanges red and green, ``rotate`` shifts every colour by one.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from minigrid.core.constants import COLOR_NAMES, COLOR_TO_IDX, OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.world_object import Ball, Box, Goal, Key, Wall
from minigrid.minigrid_env import MiniGridEnv

from shiftgrid.envs.level import KeyedDoor, LevelBuilder
from shiftgrid.envs.mission import Clause, Mission

RECOLOURED = {OBJECT_TO_IDX[t] for t in ("door", "key", "ball", "box")}
_BY_CODE = sorted(COLOR_NAMES, key=COLOR_TO_IDX.get)  # red, green, blue, purple, yellow, grey
DOCUMENTED_PALETTES = {
    "identity": {c: c for c in _BY_CODE},
    "swap": {**{c: c for c in _BY_CODE}, "red": "green", "green": "red"},
    "rotate": {c: _BY_CODE[(i + 1) % len(_BY_CODE)] for i, c in enumerate(_BY_CODE)},  # colour code + 1
}


def minigrid_view(env) -> np.ndarray:
    """minigrid's own (unshifted) view of our env: its ``gen_obs_grid`` and ``Grid.encode``, true colours."""
    grid, vis = MiniGridEnv.gen_obs_grid(env.unwrapped)
    return Grid.encode(grid, vis)


def reference_image(env) -> np.ndarray:
    """minigrid's own view of our env, then the documented view mask and palette."""
    u = env.unwrapped
    image = minigrid_view(env)
    f = u.sample.factors
    if f.view < 7:
        r = f.view // 2
        seen = np.zeros((7, 7), dtype=bool)
        seen[3 - r : 3 + r + 1, 7 - f.view :] = True
        image[~seen] = 0
    mapping = DOCUMENTED_PALETTES[f.palette]
    lut = np.array([COLOR_TO_IDX[mapping[c]] for c in _BY_CODE], dtype=np.uint8)
    recolour = np.isin(image[:, :, 0], list(RECOLOURED))
    image[:, :, 1] = np.where(recolour, lut[np.minimum(image[:, :, 1], len(lut) - 1)], image[:, :, 1])
    return image


def _check(env, obs, where):
    ref = MiniGridEnv.gen_obs(env.unwrapped)
    expected = reference_image(env)
    if not np.array_equal(obs["image"], expected):
        diff = np.argwhere((obs["image"] != expected).any(axis=2)).tolist()
        raise AssertionError(f"{where}: image differs from minigrid's at view cells {diff}")
    assert obs["direction"] == ref["direction"] and obs["mission"] == ref["mission"], where


def _random_rollout(env, steps, seed):
    """Random actions (auto-reset); returns how often a door changed state and how many steps carried something."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    _check(env, obs, "reset")
    u = env.unwrapped
    toggled = carried = 0
    for t in range(steps):
        doors = {id(o): o.is_open for o in u.objects if o.type == "door"}
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(7)))
        _check(env, obs, f"step {t}")
        toggled += sum(o.is_open != doors[id(o)] for o in u.objects if o.type == "door")
        carried += u.carrying is not None
        if terminated or truncated:
            obs, _ = env.reset()
            _check(env, obs, f"reset after step {t}")
    return toggled, carried


def test_view_equals_minigrid_gen_obs(env_id, split_name):
    env = gym.make(env_id, split=split_name, oracle=False)
    _random_rollout(env, 300, seed=0)


def rich_level():
    """A 9x9 room split by a wall with an open door, a closed door and a locked door; keys, balls, boxes."""
    b = LevelBuilder(9, 9, np.random.default_rng(0))
    for y in range(1, 8):
        b.put(Wall(), 4, y)
    b.put(KeyedDoor("red", is_open=True), 4, 1)
    b.put(KeyedDoor("green"), 4, 4)
    b.put(KeyedDoor("yellow", is_locked=True), 4, 6)
    b.put(Key("yellow"), 2, 3)
    b.put(Ball("blue"), 3, 5)
    b.put(Box("purple"), 1, 6)
    b.put(Key("grey"), 6, 2)
    target = b.put(Ball("green"), 7, 7)
    b.put(Goal(), 7, 1)
    b.agent_pos, b.agent_dir = (2, 4), 0
    return b.build("pick up the green ball", Mission(((Clause("pickup", target),),)))


@pytest.mark.parametrize("palette,view", [("identity", 7), ("swap", 5), ("rotate", 3), ("rotate", 7)])
def test_view_with_doors_toggled_and_objects_carried(fixed_level_env, palette, view):
    env = fixed_level_env(rich_level, palette=palette, view=view, oracle=False)
    toggled, carried = _random_rollout(env, 1500, seed=1)
    # the rollout must actually have exercised what this test is for
    assert toggled > 0 and carried > 0, (toggled, carried)


def corridor_with_objects():
    """Agent at (1, 1) facing right; a red ball adjacent, a blue key 3 cells ahead, a red door 5 ahead."""
    b = LevelBuilder(9, 3, np.random.default_rng(0))
    b.put(Ball("red"), 2, 1)
    b.put(Key("blue"), 4, 1)
    b.put(KeyedDoor("red"), 6, 1)
    b.agent_pos, b.agent_dir = (1, 1), 0
    return b.build("get to the goal", Mission(((Clause("reach"),),)))


def _code(obj_type, color, state=0):
    return (OBJECT_TO_IDX[obj_type], COLOR_TO_IDX[color], state)


@pytest.mark.parametrize("view", [3, 5, 7])
def test_view_size_masks_cells_outside_the_square(fixed_level_env, view):
    obs, _ = fixed_level_env(corridor_with_objects, view=view, oracle=False).reset(seed=0)
    image = obs["image"]
    # the cell k ahead of the agent is image[3, 6 - k]
    assert tuple(image[3, 5]) == _code("ball", "red")
    assert (tuple(image[3, 3]) == _code("key", "blue")) == (view >= 5)
    assert (tuple(image[3, 1]) == _code("door", "red", 1)) == (view >= 7)  # state 1: closed
    r = view // 2
    outside = np.ones((7, 7), dtype=bool)
    outside[3 - r : 3 + r + 1, 7 - view :] = False
    assert not image[outside].any(), "cells outside the view square must be unseen (all zeros)"
    assert tuple(image[3, 6]) == (OBJECT_TO_IDX["empty"], 0, 0)  # the agent's own cell: carrying nothing


@pytest.mark.parametrize(
    "palette,ball,key,door",
    [("identity", "red", "blue", "red"), ("swap", "green", "blue", "green"), ("rotate", "green", "purple", "green")],
)
def test_palette_recolours_objects_not_walls(fixed_level_env, palette, ball, key, door):
    env = fixed_level_env(corridor_with_objects, palette=palette, oracle=False)
    obs, _ = env.reset(seed=0)
    image = obs["image"]
    assert tuple(image[3, 5]) == _code("ball", ball)
    assert tuple(image[3, 3]) == _code("key", key)
    assert tuple(image[3, 1]) == _code("door", door, 1)
    walls = image[:, :, 0] == OBJECT_TO_IDX["wall"]
    assert walls.any() and (image[walls][:, 1] == COLOR_TO_IDX["grey"]).all()
    # the carried ball is shown in the agent's cell, recoloured too
    obs, *_ = env.step(3)  # pickup
    assert tuple(obs["image"][3, 6]) == _code("ball", ball)
