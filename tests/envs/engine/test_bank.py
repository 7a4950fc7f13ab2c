"""Level banks: the split's own levels (same seeds, hashes, disjointness), cached, growable, versioned, refused when corrupt."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import shiftgrid.envs  # noqa: F401  (registers the ids)
from shiftgrid.envs.engine import bank as bank_module
from shiftgrid.envs.engine.bank import BANK_FORMAT, Bank, BankError, bank_name, build_bank, source_for
from shiftgrid.envs.engine.levels import hash_to_int
from shiftgrid.envs.engine.minigrid_levels import import_row
from shiftgrid.envs.registration import UnknownEnvError
from shiftgrid.envs.shift.split import SplitError

GOTO = "shiftgrid/GoTo-v1"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTGRID_CACHE", str(tmp_path / "cache"))


def _build(split="train", count=12, **kw):
    return build_bank(GOTO, split, count, workers=1, progress=False, **kw)


def _rewrite_meta(path, **changes):
    with np.load(path) as data:
        rows = {k: data[k] for k in data.files}
    meta = {**json.loads(bytes(rows.pop("__meta__")).decode()), **changes}
    with open(path, "wb") as f:
        np.savez_compressed(f, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **rows)


def test_bank_holds_the_splits_levels_with_their_seeds_and_hashes():
    bank = _build("size/far", 6)
    env = gym.make(GOTO, split="size/far")
    for seed, level_hash, steps in zip(bank.rows["seed"], bank.rows["hash"], bank.rows["optimal_steps"]):
        _, info = env.reset(options={"level_seed": int(seed)})
        assert info["level_seed"] == int(seed) and hash_to_int(info["level_hash"]) == int(level_hash)
        assert steps == env.unwrapped.sample.plan.steps
    assert np.all(np.diff(bank.rows["seed"]) > 0)  # seed order


def test_train_and_test_banks_are_disjoint():
    train, far = _build("train", 40), _build("size/far", 40)
    assert not set(train.rows["hash"].tolist()) & set(far.rows["hash"].tolist())


def test_parallel_build_equals_one_process():
    one = build_bank(GOTO, "train", 300, workers=1, progress=False, save=False)
    two = build_bank(GOTO, "train", 300, workers=2, progress=False, save=False)
    for key in one.rows:
        assert np.array_equal(one.rows[key], two.rows[key], equal_nan=True), key


def test_grown_bank_equals_a_bank_built_that_large():
    bank = _build(count=10, save=False)
    bank.grow(7, workers=1, progress=False)
    whole = _build(count=17, save=False)
    for key in whole.rows:
        assert np.array_equal(bank.rows[key], whole.rows[key], equal_nan=True), key


def test_a_built_bank_is_cached_and_not_generated_again(monkeypatch, tmp_path):
    first = _build()
    assert first.meta["path"].endswith(bank_name(source_for(GOTO), 12))
    assert not first.meta.get("loaded")

    def never(*args, **kwargs):
        raise AssertionError("the cached bank was generated again")

    monkeypatch.setattr(bank_module.SplitSource, "generate", never)
    again = _build()
    assert again.meta["loaded"]
    for key in first.rows:
        assert np.array_equal(first.rows[key], again.rows[key], equal_nan=True)
    assert not list((tmp_path / "cache" / "banks").glob("*.tmp"))  # written whole


def test_a_bank_of_another_splits_version_is_refused(tmp_path):
    path = _build(out=tmp_path / "b.npz").meta["path"]
    _rewrite_meta(path, splits_version=999)
    with pytest.raises(BankError, match=r"splits version 999; the splits are now version \d+: build it again"):
        Bank.load(path)
    with pytest.raises(BankError, match="splits version 999"):
        _build(out=path)


@pytest.mark.parametrize("change, message", [({"format": BANK_FORMAT + 1}, "has format"),
                                             ({"family_version": 999}, "levels; shiftgrid/GoTo-v1 is GoTo"),
                                             ({"split": "size/far"}, "holds split 'size/far'")])
def test_a_bank_of_another_format_family_or_split_is_refused(tmp_path, change, message):
    path = _build(out=tmp_path / "b.npz").meta["path"]
    _rewrite_meta(path, **change)
    with pytest.raises(BankError, match=message):
        Bank.load(path, source_for(GOTO))


@pytest.mark.parametrize("content", [b"not a bank", b"PK\x03\x04 truncated zip", b""])
def test_a_corrupt_bank_is_refused(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(BankError, match="is corrupt or not a bank"):
        Bank.load(path)


def test_a_truncated_bank_is_refused(tmp_path):
    path = _build(out=tmp_path / "b.npz").meta["path"]
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    with pytest.raises(BankError, match="is corrupt or not a bank"):
        Bank.load(path)


def test_a_cached_bank_of_another_count_is_refused(tmp_path):
    _build(out=tmp_path / "b.npz")
    with pytest.raises(BankError, match="holds 12 levels; asked for 13"):
        _build(count=13, out=tmp_path / "b.npz")


@pytest.mark.parametrize("call, error, message", [
    (lambda: build_bank("shiftgrid/Nope-v0", "train", 5), UnknownEnvError, "cannot run 'shiftgrid/Nope-v0'; it runs: shiftgrid/GoTo-v1"),
    (lambda: build_bank(GOTO, "nope", 5), SplitError, "unknown split 'nope' for GoTo; valid: train"),
    (lambda: build_bank(GOTO, "train", 0), BankError, r"count=0 is not valid; valid: an integer >= 1"),
    (lambda: build_bank("MiniGrid-Empty-8x8-v0", "size/far", 5), SplitError, "minigrid's own ids: it has no splits"),
    (lambda: build_bank("MiniGrid-Dynamic-Obstacles-8x8-v0", "train", 5), UnknownEnvError, "MiniGrid-{.*DoorKey"),
])
def test_bad_input_names_what_is_valid(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_minigrid_id_bank_holds_the_levels_of_reset_seed_i():
    bank = build_bank("MiniGrid-DoorKey-5x5-v0", "train", 4, workers=1, progress=False, save=False)
    assert bank.rows["seed"].tolist() == [0, 1, 2, 3]
    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=2)
    row = import_row(env, 2)
    for key in ("codes", "agent_cell", "agent_dir", "hash", "optimal_steps"):
        assert np.array_equal(row[key], bank.rows[key][2], equal_nan=True), key
