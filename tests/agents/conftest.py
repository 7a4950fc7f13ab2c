"""Test learners, each registered for a test (one registry entry): ``tabular`` (``tabular_learner.py``) and
``scripted`` (``scripted_learner.py``: episodes fixed by the global step)."""

from pathlib import Path

import pytest

from shiftgrid.agents.run.registry import register_learner, unregister_learner


def _registered(monkeypatch, name: str, target: str):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    register_learner(name, target)
    yield name
    unregister_learner(name)


@pytest.fixture
def tabular(monkeypatch):
    """Register ``tabular`` for this test; yields its name."""
    yield from _registered(monkeypatch, "tabular", "tabular_learner:TabularLearner")


@pytest.fixture
def scripted(monkeypatch):
    """Register ``scripted`` for this test; yields its name."""
    yield from _registered(monkeypatch, "scripted", "scripted_learner:ScriptedLearner")


#: Levels in each bank of :func:`small_banks`.
SMALL_BANK = 64


@pytest.fixture(scope="module")
def small_banks(tmp_path_factory):
    """GoTo's and DoorKey's training banks of 64 levels, built once per module in a cache of their own (not the user's)."""
    from shiftgrid.envs.engine.bank import build_bank

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIFTGRID_CACHE", str(tmp_path_factory.mktemp("cache")))
        for env_id in ("shiftgrid/GoTo-v1", "shiftgrid/DoorKey-v1"):
            build_bank(env_id, "train", SMALL_BANK, workers=1, progress=False)
        yield


@pytest.fixture
def small_venv(small_banks):
    """``small_venv(env_id, n)``: the engine's vector env of ``n`` envs on a :func:`small_banks` bank, reset with seed 0."""
    from shiftgrid.envs.engine.vector import make_tensor_vec

    def make(env_id: str, n: int):
        venv = make_tensor_vec(env_id, n, bank_size=SMALL_BANK)
        venv.reset(seed=0)
        return venv

    return make
