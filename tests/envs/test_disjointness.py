"""Train and test splits are disjoint (by level hash and by seed range); primitives are seen in training.

Levels are drawn with ``sample_level(..., oracle=False)``, exactly as the environment draws
them, so this checks what a learner can actually be shown. Each sampled distribution is drawn
once per session and shared between xdist workers through a file (drawing 10,000 training
levels per family twice would only cost time).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from minigrid.core.world_object import Ball, Wall

import shiftgrid.envs as sg
from shiftgrid.envs.language import COLORS, OBJECT_TYPES
from shiftgrid.envs.level import KeyedDoor, LevelBuilder, level_hash
from shiftgrid.envs.mission import Clause, Mission
from shiftgrid.envs.shift.split import TRAIN_SEEDS, sample_level

N_TRAIN = 10_000
N_TEST = 1_000

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: every worker computes its own
    fcntl = None


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # under xdist every worker's basetemp sits in one per-session directory
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    d = root / "disjointness"
    d.mkdir(exist_ok=True)
    return d


@contextmanager
def _locked(path: Path):
    with open(path, "a") as f:
        if fcntl:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl:
                fcntl.flock(f, fcntl.LOCK_UN)


_MEMO: dict[str, dict] = {}


def _targets(level) -> list[tuple[str, str]]:
    """(colour, type) of every object a clause of the mission names as its target."""
    return [
        (level.objects[c.target].color, level.objects[c.target].type)
        for step in level.mission.steps
        for c in step
        if c.verb != "reach"
    ]


def sampled(shared_dir: Path, env_id: str, split_name: str, n: int, exposure: float = 0.0) -> dict:
    """Hashes, level seeds and target primitives of ``n`` levels drawn from a split (computed once per session)."""
    key = f"{env_id}|{split_name}|{n}|{exposure:g}".replace("/", "_")
    if key in _MEMO:
        return _MEMO[key]
    path = shared_dir / f"{key}.json"
    with _locked(shared_dir / f"{key}.lock"):
        if path.exists():
            out = json.loads(path.read_text())
        else:
            splits = sg.splits_for(env_id)
            family, split = splits.family, splits[split_name]
            rng = np.random.default_rng(20260101)
            hashes, seeds, targets = [], [], set()
            for _ in range(n):
                s = sample_level(family, split, rng, exposure=exposure, oracle=False)
                hashes.append(s.level_hash)
                seeds.append(s.level_seed)
                targets.update(_targets(s.level))
            out = {"hashes": hashes, "seeds": seeds, "targets": sorted(targets)}
            path.write_text(json.dumps(out))
    out["targets"] = {tuple(t) for t in out["targets"]}
    _MEMO[key] = out
    return out


def _train(shared_dir, env_id):
    return sampled(shared_dir, env_id, "train", N_TRAIN)


# Training samples come first in collection order, so that xdist workers draw each family's
# training levels early and rarely wait for one another later.

@pytest.mark.levels
def test_training_levels_come_from_training_seeds(env_id, shared_dir):
    train = sg.splits_for(env_id)["train"]
    got = _train(shared_dir, env_id)
    lo, hi = train.seed_start, train.seed_start + train.seed_count
    assert len(got["hashes"]) == N_TRAIN
    assert all(lo <= s < hi for s in got["seeds"]), f"{env_id}: a training level seed outside {lo}..{hi - 1}"


COMPOSITION_IDS = [i for i in sg.registered_ids("shiftgrid") if "composition" in sg.splits_for(i).axes]


@pytest.mark.levels
@pytest.mark.parametrize("env_id", COMPOSITION_IDS, ids=[i.split("/", 1)[1] for i in COMPOSITION_IDS])
def test_training_targets_cover_every_primitive(env_id, shared_dir):
    """Every colour and object type is a target in training; only combinations (etc.) are held out."""
    splits = sg.splits_for(env_id)
    train = _train(shared_dir, env_id)["targets"]
    colours = {c for c, _ in train}
    types = {t for _, t in train}
    assert set(COLORS) <= colours, f"colours never a training target: {sorted(set(COLORS) - colours)}"
    assert set(OBJECT_TYPES) <= types, f"object types never a training target: {sorted(set(OBJECT_TYPES) - types)}"
    # and whatever the composition splits name, its colour and its type were each named in training
    for name in splits:
        if name.startswith("composition/") and splits[name].level != "id":
            held = sampled(shared_dir, env_id, name, N_TEST)["targets"]
            assert {c for c, _ in held} <= colours and {t for _, t in held} <= types, name


@pytest.mark.levels
def test_held_out_levels_are_never_training_levels(held_out_case, shared_dir):
    case = held_out_case
    split = case.split
    lo, hi = split.seed_start, split.seed_start + split.seed_count
    got = sampled(shared_dir, case.env_id, case.split_name, N_TEST)
    assert all(lo <= s < hi for s in got["seeds"]), f"{case.label}: a level seed outside the split's range {lo}..{hi - 1}"
    # drawn after the test levels, so that a worker rarely waits on another drawing the same family's train levels
    train = set(_train(shared_dir, case.env_id)["hashes"])
    leaked = sorted(set(got["hashes"]) & train)
    assert not leaked, (
        f"{case.label}: {len(leaked)} of {len(set(got['hashes']))} distinct held-out level hashes are also "
        f"training levels, e.g. {leaked[:5]}"
    )


@pytest.mark.levels
def test_exposure_levels_are_not_test_levels(exposure_case, shared_dir):
    """Training levels drawn as held-out combinations (``exposure``) are still never test levels."""
    case = exposure_case
    family = case.family
    exposed = sampled(shared_dir, case.env_id, "train", N_TEST, exposure=case.exposure)
    assert all(TRAIN_SEEDS[0] <= s < TRAIN_SEEDS[0] + TRAIN_SEEDS[1] for s in exposed["seeds"])
    splits = case.splits
    # the held-out splits drawing any of the exposed factor values (the composition splits, for the built-ins)
    matching = [
        name for name in splits
        if splits[name].held_out and not name.endswith("/id") and any(
            value in (v if isinstance(v := splits[name].factors.get(k), (list, tuple)) else [v])
            for k, value in family.exposure.items()
        )
    ]
    assert matching, f"no held-out split of {family.name} draws the exposure values {family.exposure}"
    for name in matching:
        test = set(sampled(shared_dir, case.env_id, name, N_TEST)["hashes"])
        leaked = sorted(set(exposed["hashes"]) & test)
        assert not leaked, f"{case.label}: exposure levels {leaked[:5]} are also {name} levels"


def test_test_seed_ranges_are_disjoint_from_train(env_id):
    splits = sg.splits_for(env_id)
    train = splits["train"]
    lo, hi = train.seed_start, train.seed_start + train.seed_count
    for name in splits:
        s = splits[name]
        if not s.held_out:
            continue
        assert s.seed_count > 0
        assert s.seed_start + s.seed_count <= lo or s.seed_start >= hi, (
            f"{env_id} split {name!r} draws seeds {s.seed_start}..{s.seed_start + s.seed_count - 1}, "
            f"overlapping train's {lo}..{hi - 1}"
        )


# -- the hash disjointness relies on ----------------------------------------------------------------

def _two_door_level(first: str, agent_dir: int = 0):
    """Doors at (3, 1) red (keyed to red) and (3, 3) blue (keyed to yellow), placed in either order."""
    b = LevelBuilder(7, 5, np.random.default_rng(0))
    b.put(Wall(), 3, 2)
    doors = {"red": (KeyedDoor("red"), 3, 1), "blue": (KeyedDoor("blue", is_locked=True, key_color="yellow"), 3, 3)}
    for name in (first, "blue" if first == "red" else "red"):
        b.put(*doors[name])
    target = b.put(Ball("green"), 5, 2)
    b.agent_pos, b.agent_dir = (1, 2), agent_dir
    return b.build("go to the green ball", Mission(((Clause("goto", target),),)))


def test_level_hash_is_canonical():
    """Disjointness by hash only holds if the same level always gets the same hash."""
    a = level_hash(_two_door_level("red"))
    assert a == level_hash(_two_door_level("red"))
    assert a != level_hash(_two_door_level("red", agent_dir=1))
    assert a != level_hash(_two_door_level("red"), extra=(0.2, "identity", 7))
    # the same grid, agent and mission: only the order the generator placed the doors in differs
    assert a == level_hash(_two_door_level("blue")), "the level hash depends on the order doors were placed in"
