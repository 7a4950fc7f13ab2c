"""DoorKey: every split's levels are solvable, plans replay, and only the mapped key opens the door."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from minigrid.core.actions import Actions
from minigrid.core.world_object import Goal, Key

from shiftgrid.envs.env import ShiftGridEnv
from shiftgrid.envs.families.doorkey import FAMILY, DoorKeyFactors, key_color_for, next_color
from shiftgrid.envs.language import COLORS, VOCAB, tokenize
from shiftgrid.envs.level import KeyedDoor, LevelBuilder, LevelError
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.oracle import UnsolvableLevel, solve
from shiftgrid.envs.shift.split import load_splits

SPLITS = load_splits(FAMILY)
NAMES = [n for n in SPLITS if not n.endswith("/id")]  # <axis>/id draws the same factors as id


def _levels(name: str, n: int = 200):
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(n):
        f = SPLITS[name].draw_factors(FAMILY.factors, rng)
        yield f, FAMILY.generate(f, rng)


@pytest.mark.parametrize("name", NAMES)
def test_every_level_is_well_formed_and_solvable(name: str) -> None:
    for f, level in _levels(name):
        door, keys = level.objects[0], level.objects[1:]
        assert isinstance(door, KeyedDoor) and door.is_locked
        assert door.key_color == key_color_for(door.color, f.key_map)
        colors = [k.color for k in keys]
        assert all(k.type == "key" for k in keys) and len(set(colors)) == len(colors) == f.num_distractors + 1
        assert colors[0] == door.key_color  # the mapped key is always there
        if f.key_map == "rotate" and f.num_distractors:
            assert door.color in colors  # the key the training rule would pick is a distractor
        side = np.sign(np.array([k.cur_pos[0] for k in keys]) - door.cur_pos[0])
        assert len(set(side)) == 1 and side[0] == np.sign(level.agent_pos[0] - door.cur_pos[0])
        assert level.mission == Mission(((Clause("open", 0),), (Clause("reach"),)))
        assert all(t in VOCAB for t in tokenize(level.mission_text))
        plan = solve(level, slip=f.slip)
        assert len(plan.actions) <= plan.steps <= FAMILY.max_steps(f)


def test_slippery_split_reports_expected_steps_above_the_plan() -> None:
    env = ShiftGridEnv(FAMILY, split="rules/far")
    for seed in range(5):
        _, info = env.reset(seed=seed)
        assert env.slip == 0.2 and info["optimal_steps"] > len(env.optimal_actions)


@pytest.mark.parametrize("split", ["train", "rules/near"])
def test_only_the_mapped_key_opens_the_door(split: str) -> None:
    env = ShiftGridEnv(FAMILY, split=split)
    for seed in range(10):
        env.reset(seed=seed)
        plan = list(env.optimal_actions)
        door = env.objects[0]
        opening = plan.index(Actions.toggle)
        for action in plan[:opening]:
            env.step(action)
        mapped = env.carrying
        assert isinstance(mapped, Key) and mapped.color == door.key_color
        assert (door.key_color != door.color) == (split == "rules/near")
        for color in COLORS:
            if color != door.key_color:
                env.carrying = Key(color)
                _, reward, terminated, _, _ = env.step(Actions.toggle)
                assert door.is_locked and not door.is_open and not terminated and reward == 0.0
        env.carrying = mapped
        for action in plan[opening:]:
            _, reward, terminated, _, info = env.step(action)
        assert not door.is_locked and terminated and info["success"]
        assert reward == pytest.approx(1 - 0.9 * (len(plan) + len(COLORS) - 1) / env.max_steps)


def _small_level(door_color: str, key_color: str, carried_key: str):
    """A 7x5 room: key | wall with a locked door | goal."""
    b = LevelBuilder(7, 5, np.random.default_rng(0))
    b.grid.vert_wall(3, 1, 3)
    door = b.put(KeyedDoor(door_color, is_locked=True, key_color=key_color), 3, 2)
    b.put(Key(carried_key), 1, 1)
    b.put(Goal(), 5, 2)
    b.agent_pos, b.agent_dir = (1, 3), 3
    return b.build("open the door, then get to the goal", Mission(((Clause("open", door),), (Clause("reach"),))))


def test_oracle_agrees_on_the_key_map() -> None:
    assert len(solve(_small_level("red", "green", "green")).actions) > 0
    with pytest.raises(UnsolvableLevel):
        solve(_small_level("red", "green", "red"))


def test_key_map_helpers() -> None:
    assert [next_color(c) for c in COLORS] == list(COLORS[1:] + COLORS[:1])
    assert key_color_for("blue", "same") == "blue" and key_color_for("blue", "rotate") == "green"
    with pytest.raises(ValueError, match="unknown key_map 'flip'; valid: same, rotate"):
        key_color_for("blue", "flip")


def test_same_seed_same_level_and_family_pickles() -> None:
    f = DoorKeyFactors(size=9, num_distractors=3, key_map="rotate")
    a, b = FAMILY.generate(f, np.random.default_rng(7)), FAMILY.generate(f, np.random.default_rng(7))
    assert a.mission_text == b.mission_text and (a.grid.encode() == b.grid.encode()).all()
    assert pickle.loads(pickle.dumps(FAMILY)) == FAMILY


def test_too_small_room_is_a_level_error() -> None:
    with pytest.raises(LevelError, match="size=5 with num_distractors=5 needs 8 cells"):
        FAMILY.generate(DoorKeyFactors(size=5, num_distractors=5), np.random.default_rng(0))
