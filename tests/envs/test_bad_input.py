"""User errors raise errors that name what was given and what is valid."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import shiftgrid.envs as sg
from shiftgrid.envs import FactorError, SplitError, UnknownEnvError, register_family, splits_for
from shiftgrid.envs.factors import describe_range
from shiftgrid.envs.shift.split import load_splits

GOTO = next(f for f in sg.BUILTIN_FAMILIES if f.name == "GoTo")


# -- ids and splits -------------------------------------------------------------------------------

def test_unknown_split(env_id):
    with pytest.raises(SplitError) as e:
        gym.make(env_id, split="size/huge")
    msg = str(e.value)
    assert "'size/huge'" in msg
    assert all(name in msg for name in splits_for(env_id)), f"valid splits not all named: {msg}"


def test_unknown_id():
    with pytest.raises(UnknownEnvError) as e:
        splits_for("shiftgrid/Nope-v0")
    assert "'shiftgrid/Nope-v0'" in str(e.value) and "shiftgrid/GoTo-v1" in str(e.value)
    with pytest.raises(UnknownEnvError) as e:
        sg.family_splits("Nope")
    assert "'Nope'" in str(e.value) and all(f.name in str(e.value) for f in sg.BUILTIN_FAMILIES)
    with pytest.raises(gym.error.NameNotFound, match="Nope"):
        gym.make("shiftgrid/Nope-v0")
    with pytest.raises(gym.error.VersionNotFound, match="v0"):
        gym.make("shiftgrid/GoTo-v7")


# -- factors --------------------------------------------------------------------------------------

def _factor_cases():
    cases = []
    for env_id in sg.registered_ids("shiftgrid"):
        cls = splits_for(env_id).family.factors
        for f in dataclasses.fields(cls):
            m = f.metadata
            if m.get("choices") is not None:
                cases.append((cls, f, "not-a-choice"))
            elif m.get("high") is not None:
                cases.append((cls, f, m["high"] + 1))
            if m.get("low") is not None:
                cases.append((cls, f, m["low"] - 1))
    return cases


FACTOR_CASES = _factor_cases()


@pytest.mark.parametrize("cls,field,value", FACTOR_CASES, ids=[f"{c.__name__}.{f.name}={v}" for c, f, v in FACTOR_CASES])
def test_factor_out_of_range(cls, field, value):
    with pytest.raises(FactorError) as e:
        cls(**{field.name: value})
    msg = str(e.value)
    assert f"{field.name}={value!r}" in msg, msg
    assert describe_range(field) in msg, msg


def test_factor_messages_spelled_out():
    with pytest.raises(FactorError, match=r"size=3 is out of range; valid: 5\.\.32"):
        GOTO.factors(size=3)
    with pytest.raises(FactorError, match=r"layout='maze' is not valid; valid: one of: room, split, rooms"):
        GOTO.factors(layout="maze")
    with pytest.raises(FactorError, match=r"size='big' must be a number; valid: 5\.\.32"):
        GOTO.factors(size="big")
    with pytest.raises(FactorError, match=r"unknown factor 'colour' for GoToFactors; valid: size, slip"):
        GOTO.factors.check("colour", "red")


# -- split declarations ---------------------------------------------------------------------------

BAD_SPECS = {
    "not_yaml": ("train: [6, 7\naxes: {", r"cannot read splits for GoTo from .*bad\.yaml"),
    "a_list": ("- size\n- 6\n", r"needs a 'train' mapping"),
    "unknown_key": ("version: 0\ntrain: {size: 6}\ntrian: {size: 7}\n", r"unknown keys \['trian'\]; valid: version, train, axes"),
    "unknown_factor": ("version: 0\ntrain: {colour: red}\n", r"unknown factor 'colour' for GoToFactors; valid: size"),
    "out_of_range": ("version: 0\ntrain: {size: 6}\naxes:\n  size:\n    far: {size: 64}\n", r"size/far: GoToFactors\.size=64 is out of range; valid: 5\.\.32"),
    "bad_level": ("version: 0\ntrain: {size: 6}\naxes:\n  size:\n    farther: {size: 9}\n", r"axis 'size': expected near/far mappings, got \{'farther'"),
    "no_values": ("version: 0\ntrain: {size: []}\n", r"factor 'size' has no values"),
    "wrong_version": ("version: -1\ntrain: {size: 6}\n", r"version=-1 is not valid; valid: a whole number >= 0"),
}


@pytest.mark.parametrize("name", list(BAD_SPECS))
def test_malformed_split_yaml(tmp_path, name):
    text, pattern = BAD_SPECS[name]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SplitError, match=pattern):
        load_splits(GOTO, path)
    with pytest.raises(SplitError, match=pattern):
        register_family(GOTO, namespace=f"bad{name.replace('_', '')}", splits=path)


def test_missing_split_file(tmp_path):
    with pytest.raises(SplitError, match=r"cannot read splits for GoTo from .*missing\.yaml"):
        load_splits(GOTO, tmp_path / "missing.yaml")


def test_split_that_leaves_no_levels():
    env_id = register_family(GOTO, namespace="nolevels", splits={
        "version": 0, "train": {"size": 6, "num_distractors": 1},
        "axes": {"distractors": {"far": {"size": 5, "num_distractors": 40}}},
    })
    gym.make(env_id)  # train is fine
    with pytest.raises(SplitError) as e:
        gym.make(env_id, split="distractors/far")
    msg = str(e.value)
    assert "leaves no levels" in msg and "'distractors/far'" in msg
    assert "'num_distractors': 40" in msg and "'size': 5" in msg, msg


# -- exposure -------------------------------------------------------------------------------------

@pytest.mark.parametrize("exposure", [1.5, -0.1])
def test_exposure_out_of_range(exposure):
    with pytest.raises(SplitError) as e:
        gym.make("shiftgrid/GoTo-v1", exposure=exposure)
    assert f"exposure={exposure!r}" in str(e.value) and "[0, 1]" in str(e.value)


def test_exposure_only_on_train_of_composition_families(env_id):
    family = splits_for(env_id).family
    if family.exposure:
        held_out = next(n for n in splits_for(env_id) if n != "train")
        with pytest.raises(SplitError) as e:
            gym.make(env_id, split=held_out, exposure=0.05)
        assert "exposure=0.05" in str(e.value) and f"'{held_out}'" in str(e.value) and "train" in str(e.value)
        gym.make(env_id, exposure=0.05).reset(seed=0)  # the valid use works
    else:
        with pytest.raises(SplitError) as e:
            gym.make(env_id, exposure=0.05)
        assert "exposure=0.05" in str(e.value) and family.name in str(e.value)


# -- actions --------------------------------------------------------------------------------------

INVALID_ACTIONS = (7, -1, 2.5, "left", None)


def test_invalid_action(env_id):
    """Each invalid action raises an error naming it and 0..6, and leaves the env as it was."""
    env = gym.make(env_id)
    env.reset(seed=0)
    u = env.unwrapped
    problems = []
    for action in INVALID_ACTIONS:
        before = (u.step_count, tuple(u.agent_pos), u.agent_dir)
        try:
            env.step(action)
        except (ValueError, TypeError) as e:
            msg = str(e)
            if not (repr(action) in msg and "0..6" in msg):
                problems.append(f"step({action!r}): message should name {action!r} and the valid 0..6: {msg!r}")
        else:
            problems.append(f"step({action!r}) was accepted")
            continue
        after = (u.step_count, tuple(u.agent_pos), u.agent_dir)
        if after != before:
            problems.append(f"step({action!r}) changed (step_count, pos, dir) from {before} to {after}")
    assert not problems, "\n".join(problems)
    env.step(np.int64(0))  # numpy integers are valid actions


# -- factor values as keywords, max_steps ---------------------------------------------------------

def test_factor_keywords_override_the_split():
    env = gym.make("shiftgrid/GoTo-v1", size=9, num_distractors=5)
    base = gym.make("shiftgrid/GoTo-v1", split="size/far")
    far = gym.make("shiftgrid/GoTo-v1", split="size/far", size=[9, 10])
    widths = set()
    for seed in range(6):
        env.reset(seed=seed)
        assert env.unwrapped.sample.level.grid.width == 9 and len(env.unwrapped.level.objects) == 6
        assert env.unwrapped.sample.factors.size == 9
        far.reset(seed=seed)
        widths.add(far.unwrapped.sample.level.grid.width)
        assert far.unwrapped.split.seed_start == base.unwrapped.split.seed_start
    assert widths == {9, 10}
    assert splits_for("shiftgrid/GoTo-v1")["train"].factors["size"] != 9  # the registered split is untouched


@pytest.mark.parametrize("kwargs,pattern", [
    ({"size": 64}, r"GoTo keyword arguments: GoToFactors\.size=64 is out of range; valid: 5\.\.32"),
    ({"size": [9, 3]}, r"GoToFactors\.size=3 is out of range; valid: 5\.\.32"),
    ({"layout": "maze"}, r"GoToFactors\.layout='maze' is not valid; valid: one of: room, split, rooms"),
    ({"size": []}, r"factor 'size' has no values"),
    ({"colour": "red"}, r"unknown keyword 'colour' for GoTo; valid: factors size, slip, palette, view, num_distractors.*"
                        r"options split, splits, exposure, oracle, max_steps, render_mode"),
])
def test_bad_factor_keywords(kwargs, pattern):
    with pytest.raises(SplitError, match=pattern):
        gym.make("shiftgrid/GoTo-v1", **kwargs)


def test_factor_keywords_that_leave_no_levels():
    with pytest.raises(SplitError, match=r"split 'train' of GoTo leaves no levels.*'num_distractors': 40"):
        gym.make("shiftgrid/GoTo-v1", size=5, num_distractors=40)


@pytest.mark.parametrize("max_steps", [-5, 0, 2.5, True, "100"])
def test_bad_max_steps(max_steps):
    with pytest.raises(SplitError) as e:
        gym.make("shiftgrid/GoTo-v1", max_steps=max_steps)
    msg = str(e.value)
    assert f"max_steps={max_steps!r} is not valid" in msg and "a positive integer, or None" in msg, msg


def test_valid_max_steps():
    env = gym.make("shiftgrid/GoTo-v1", max_steps=np.int64(30))
    env.reset(seed=0)
    assert env.unwrapped.max_steps == 30


def test_factor_keywords_through_the_learners_env_factory():
    """``shiftgrid train --set env_kwargs.size=9`` passes its env_kwargs to ``make_env``."""
    from shiftgrid.envs.learner_env import make_env

    env = make_env("shiftgrid/GoTo-v1", "size/far", size=9)
    env.reset(seed=0)
    assert env.unwrapped.sample.factors.size == 9
    with pytest.raises(SplitError, match=r"GoToFactors\.size=99 is out of range"):
        make_env("shiftgrid/GoTo-v1", size=99)
