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
