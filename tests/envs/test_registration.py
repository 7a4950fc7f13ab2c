"""Registration: built-in ids, ``gym.make`` from a fresh interpreter, custom namespaces, splits and families, BabyAIBot."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.world_object import Ball, Goal
from minigrid.utils.baby_ai_bot import BabyAIBot

from shiftgrid.envs import (
    BUILTIN_FAMILIES,
    Clause,
    Factors,
    Family,
    LevelBuilder,
    Mission,
    factor,
    family_splits,
    register_family,
    registered_ids,
    splits_for,
)
import shiftgrid.envs as sg
from shiftgrid.envs.families.common import place_passable

GOTO = next(f for f in BUILTIN_FAMILIES if f.name == "GoTo")
PICKUP = next(f for f in BUILTIN_FAMILIES if f.name == "Pickup")


def test_import_registers_every_builtin_family():
    ids = registered_ids("shiftgrid")
    for family in BUILTIN_FAMILIES:
        env_id = f"shiftgrid/{family.name}-v{family.version}"
        assert env_id == family.env_id()
        assert env_id in gym.registry, f"{env_id} is not registered with gymnasium"
        assert env_id in ids
        assert gym.registry[env_id].entry_point == "shiftgrid.envs.env:ShiftGridEnv"
        assert splits_for(env_id).family is family
        assert family_splits(family.name) is splits_for(env_id)
        assert {"train", "id"} <= set(splits_for(env_id))


def test_gym_make_with_module_prefix_in_fresh_interpreter(tmp_path):
    code = textwrap.dedent(
        """
        import json, sys
        assert not [m for m in sys.modules if m.startswith("shiftgrid")], "shiftgrid imported too early"
        import gymnasium as gym
        env = gym.make("shiftgrid.envs:shiftgrid/GoTo-v1", split="size/far")
        obs, info = env.reset(seed=0)
        print(json.dumps({"hash": info["level_hash"], "width": env.unwrapped.width, "mission": obs["mission"]}))
        """
    )
    # run outside the repository so that nothing but the installed package can be imported
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    env = gym.make("shiftgrid/GoTo-v1", split="size/far")
    obs, info = env.reset(seed=0)
    assert got == {"hash": info["level_hash"], "width": env.unwrapped.width, "mission": obs["mission"]}


CUSTOM = {"version": 0, "train": {"size": 6, "num_distractors": 1}, "axes": {"size": {"far": {"size": 12}}}}


def test_register_family_with_custom_namespace_and_splits_mapping():
    env_id = register_family(GOTO, namespace="regtest", splits=CUSTOM, max_steps=17)
    assert env_id == "regtest/GoTo-v1"
    assert registered_ids("regtest") == [env_id]
    assert list(splits_for(env_id)) == ["train", "id", "size/id", "size/far"]
    env = gym.make(env_id, split="size/far")
    _, info = env.reset(seed=0)
    assert env.unwrapped.width == 12 and env.unwrapped.max_steps == 17
    env = gym.make(env_id)
    env.reset(seed=0)
    assert env.unwrapped.width == 6 and len(env.unwrapped.level.objects) == 2
    # the built-in registration is untouched
    assert "composition/far" in splits_for("shiftgrid/GoTo-v1")
    builtin = gym.make("shiftgrid/GoTo-v1")
    builtin.reset(seed=0)
    assert builtin.unwrapped.max_steps == GOTO.max_steps(builtin.unwrapped.sample.factors)


def test_register_family_with_splits_from_yaml(tmp_path):
    path = tmp_path / "mysplits.yaml"
    path.write_text(
        textwrap.dedent(
            """
            version: 0
            train:
              size: [6, 7]
              num_distractors: [0, 1]
            axes:
              crowd:
                near: {num_distractors: 3, description: "three distractors"}
                far: {num_distractors: 5, size: 9, description: "five distractors, bigger room"}
            """
        )
    )
    env_id = register_family(PICKUP, namespace="regtestyaml", splits=str(path))
    assert env_id == "regtestyaml/Pickup-v1"
    assert gym.spec(env_id).kwargs["splits"] == str(path.resolve())  # a JSON value, as every spec kwarg
    splits = splits_for(env_id)
    assert list(splits) == ["train", "id", "crowd/id", "crowd/near", "crowd/far"]
    assert splits["crowd/far"].description == "five distractors, bigger room"
    for name, width, objects in (("crowd/near", None, 4), ("crowd/far", 9, 6)):
        env = gym.make(env_id, split=name)
        for seed in range(3):
            env.reset(seed=seed)
            assert len(env.unwrapped.level.objects) == objects
            assert width is None or env.unwrapped.width == width
    # a Path works as well as a str
    assert list(splits_for(register_family(PICKUP, namespace="regtestyaml2", splits=path))) == list(splits)


# -- a family defined here, by a "user" -----------------------------------------------------------

@dataclass(frozen=True)
class BallFieldFactors(Factors):
    """Reach the goal across a room with some balls lying around."""

    num_balls: int = factor(1, low=0, high=6, doc="balls on the floor")


def generate_ball_field(f: BallFieldFactors, rng: np.random.Generator):
    b = LevelBuilder(f.size, f.size, rng)
    b.place(Goal())
    for _ in range(f.num_balls):
        place_passable(b, Ball(b.choice(["red", "blue"])))
    b.place_agent()
    return b.build("get to the goal", Mission(((Clause("reach"),),)))


BALL_FIELD = Family(name="UserBallField", factors=BallFieldFactors, generate=generate_ball_field,
                    description="reach the goal among balls")


def test_user_defined_family_registers_and_runs():
    env_id = register_family(
        BALL_FIELD, namespace="usertest",
        splits={"version": 0, "train": {"size": [5, 6], "num_balls": [0, 1, 2]}, "axes": {"size": {"far": {"size": 9}}}},
    )
    assert env_id == "usertest/UserBallField-v0"
    for split in ("train", "size/far"):
        env = gym.make(env_id, split=split)
        check_env(env.unwrapped, skip_render_check=True)
        for seed in range(5):
            _, info0 = env.reset(seed=seed)
            assert env.unwrapped.width in ((9,) if split == "size/far" else (5, 6))
            for a in env.unwrapped.optimal_actions:
                _, reward, terminated, truncated, info = env.step(a)
            assert terminated and info["success"] and reward == info0["optimal_return"]


def test_user_family_without_splits_gets_train_and_id():
    env_id = register_family(BALL_FIELD, namespace="usertest2")
    assert list(splits_for(env_id)) == ["train", "id"]
    _, info = gym.make(env_id, split="id").reset(seed=0)
    assert info["optimal_steps"] >= 1


# -- BabyAI's bot on shiftgrid levels -------------------------------------------------------------

BOT_IDS = [f.env_id() for f in (GOTO, PICKUP)]
BOT_CASES = [(i, s) for i in BOT_IDS for s in splits_for(i)]


@pytest.mark.parametrize("bot_id,split", BOT_CASES, ids=[f"{i.split('/')[1]}/{s}" for i, s in BOT_CASES])
def test_babyai_bot_solves_levels(bot_id, split):
    env = gym.make(bot_id, split=split, oracle=False)
    failures = []
    for seed in range(20):
        env.reset(seed=seed)
        u = env.unwrapped
        bot = BabyAIBot(u)
        for _ in range(u.max_steps):
            _, _, terminated, truncated, info = env.step(bot.replan())
            if terminated or truncated:
                break
        if not info["success"]:
            failures.append((seed, u.mission))
    assert not failures, f"BabyAIBot failed on {failures}"


# -- specs are JSON ------------------------------------------------------------------------------

def test_every_spec_is_json_and_round_trips(capsys):
    gym.pprint_registry()
    assert "shiftgrid/GoTo-v1" in capsys.readouterr().out
    user_id = register_family(BALL_FIELD, namespace="jsontest", splits={"version": 0, "train": {"num_balls": [0, 1]}})
    for env_id in [*registered_ids("shiftgrid"), user_id]:
        spec = gym.spec(env_id)
        text = spec.to_json()
        assert json.loads(text)["kwargs"]["family"].count(":") == 1
        again = gym.envs.registration.EnvSpec.from_json(text)
        assert again == spec, env_id
        env, rebuilt = gym.make(env_id, oracle=False), gym.make(again, oracle=False)
        assert env.reset(seed=3)[1]["level_hash"] == rebuilt.reset(seed=3)[1]["level_hash"], env_id
        assert rebuilt.unwrapped.family is splits_for(env_id).family
        # a made env's spec (its keywords included) is JSON too
        assert json.loads(env.spec.to_json())["kwargs"]["oracle"] is False


def test_builtin_spec_names_the_family_by_import_path():
    assert gym.spec("shiftgrid/GoTo-v1").kwargs == {"family": "shiftgrid.envs.families.goto:FAMILY", "splits": None}
    env_id = register_family(PICKUP, namespace="jsontest2", splits={"version": 0, "train": {"size": 6}}, max_steps=40)
    assert gym.spec(env_id).kwargs == {"family": "shiftgrid.envs.families.pickup:FAMILY",
                                       "splits": {"version": 0, "train": {"size": 6}}, "max_steps": 40}


def test_module_qualified_ids_for_splits():
    assert splits_for("shiftgrid.envs:shiftgrid/GoTo-v1") is splits_for("shiftgrid/GoTo-v1")
    with pytest.raises(sg.UnknownEnvError, match=r"cannot import module 'no_such_module' named in the id"):
        splits_for("no_such_module:shiftgrid/GoTo-v1")


def test_a_split_set_registers_as_the_mapping_it_rebuilds_from():
    builtin = family_splits("GoTo")
    env_id = register_family(GOTO, namespace="splitsettest", splits=builtin)
    kwargs = json.loads(gym.spec(env_id).to_json())["kwargs"]
    rebuilt = sg.registration.resolve_splits(kwargs["family"], kwargs["splits"])[1]
    assert list(rebuilt) == list(builtin) and all(rebuilt[n] == builtin[n] for n in builtin)
