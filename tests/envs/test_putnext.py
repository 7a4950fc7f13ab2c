"""PutNext: every split's levels are solvable, plans replay, and only a drop next to the fixed object succeeds."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from minigrid.core.actions import Actions

from shiftgrid.envs.env import ShiftGridEnv
from shiftgrid.envs.families.common import HELDOUT_COMBOS, SEEN_COMBOS
from shiftgrid.envs.families.putnext import FAMILY, PutNextFactors, neighbours
from shiftgrid.envs.language import VOCAB, tokenize
from shiftgrid.envs.level import LevelError
from shiftgrid.envs.oracle import solve
from shiftgrid.envs.shift.split import load_splits

SPLITS = load_splits(FAMILY)
NAMES = [n for n in SPLITS if not n.endswith("/id")]  # <axis>/id draws the same factors as id


def _combo(obj) -> tuple[str, str]:
    return obj.color, obj.type


def _levels(name: str, n: int = 200):
    rng = np.random.default_rng(sum(map(ord, name)))
    for _ in range(n):
        f = SPLITS[name].draw_factors(FAMILY.factors, rng)
        yield f, FAMILY.generate(f, rng)


@pytest.mark.parametrize("name", NAMES)
def test_every_level_is_well_formed_and_solvable(name: str) -> None:
    for f, level in _levels(name):
        (clause,) = level.mission.steps[0]
        moved, fixed = level.objects[clause.target], level.objects[clause.other]
        others = [_combo(o) for o in level.objects if o is not moved and o is not fixed]
        assert clause.verb == "putnext"
        assert _combo(fixed) in SEEN_COMBOS and _combo(fixed) != _combo(moved)
        assert _combo(moved) in (HELDOUT_COMBOS if f.targets == "heldout" else SEEN_COMBOS)
        assert _combo(moved) not in others and _combo(fixed) not in others
        if f.distractor_style == "near_miss":
            assert all(c == moved.color or t == moved.type for c, t in others)
        assert tuple(fixed.cur_pos) not in neighbours(tuple(moved.cur_pos))
        assert len(level.objects) == f.num_distractors + 2
        assert all(t in VOCAB for t in tokenize(level.mission_text))
        plan = solve(level, slip=f.slip)
        assert plan.steps <= FAMILY.max_steps(f)


def test_only_a_drop_next_to_the_fixed_object_succeeds() -> None:
    env = ShiftGridEnv(FAMILY, split="train")
    for seed in range(10):
        env.reset(seed=seed)
        plan = list(env.optimal_actions)
        assert plan[-1] == Actions.drop
        picked = plan.index(Actions.pickup) + 1
        for action in plan[:picked]:
            env.step(action)
        moved = env.objects[env.level.mission.steps[0][0].target]
        assert env.carrying is moved
        # Put it back where it lay: the named objects never start adjacent, so this is not the mission.
        _, reward, terminated, _, info = env.step(Actions.drop)
        assert env.carrying is None and not terminated and not info["success"] and reward == 0.0
        env.step(Actions.pickup)
        for action in plan[picked:]:
            _, reward, terminated, _, info = env.step(action)
        fixed = env.objects[env.level.mission.steps[0][0].other]
        assert terminated and info["success"]
        assert tuple(fixed.cur_pos) in neighbours(tuple(moved.cur_pos))
        assert reward == pytest.approx(1 - 0.9 * (len(plan) + 2) / env.max_steps)


def test_same_seed_same_level_and_family_pickles() -> None:
    f = PutNextFactors(size=9, num_distractors=5)
    a, b = FAMILY.generate(f, np.random.default_rng(7)), FAMILY.generate(f, np.random.default_rng(7))
    assert a.mission_text == b.mission_text and (a.grid.encode() == b.grid.encode()).all()
    assert pickle.loads(pickle.dumps(FAMILY)) == FAMILY


def _internal_walls(level) -> int:
    g = level.grid
    return sum(1 for x in range(1, g.width - 1) for y in range(1, g.height - 1)
               if (c := g.get(x, y)) is not None and c.type == "wall")


@pytest.mark.parametrize("layout", ["split", "rooms"])
def test_walled_layouts_stay_solvable(layout: str, fixed_level_env) -> None:
    f = PutNextFactors(size=9, num_distractors=6, layout=layout)
    for seed in range(30):
        level = FAMILY.generate(f, np.random.default_rng(seed))
        assert _internal_walls(level) > 0
        plan = solve(level)
        env = fixed_level_env(lambda seed=seed: FAMILY.generate(f, np.random.default_rng(seed)))
        env.reset(seed=0)
        for t, action in enumerate(plan.actions):
            _, _, terminated, truncated, info = env.step(action)
            assert terminated == (t == len(plan.actions) - 1) and not truncated, (seed, t)
        assert info["success"] and plan.steps <= FAMILY.max_steps(f)


def test_overcrowded_room_is_a_level_error() -> None:
    with pytest.raises(LevelError, match=r"size=5, .*num_distractors=9"):
        FAMILY.generate(PutNextFactors(size=5, num_distractors=9), np.random.default_rng(0))
