"""The tabular learner of ``tabular_learner.py``, registered for a test as ``tabular`` (one registry entry)."""

from pathlib import Path

import pytest

from shiftgrid.agents.run.registry import register_learner, unregister_learner


@pytest.fixture
def tabular(monkeypatch):
    """Register ``tabular`` for this test; yields its name."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    register_learner("tabular", "tabular_learner:TabularLearner")
    yield "tabular"
    unregister_learner("tabular")


@pytest.fixture
def scripted(monkeypatch):
    """Register ``scripted`` (``scripted_learner.py``: episodes fixed by the global step) for this test; yields its name."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    register_learner("scripted", "scripted_learner:ScriptedLearner")
    yield "scripted"
    unregister_learner("scripted")
