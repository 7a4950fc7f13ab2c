"""The tabular learner of ``tabular_learner.py``, registered for a test as ``tabular`` (one registry entry)."""

from pathlib import Path

import pytest

from shiftgrid.agents.registry import register_learner, unregister_learner


@pytest.fixture
def tabular(monkeypatch):
    """Register ``tabular`` for this test; yields its name."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    register_learner("tabular", "tabular_learner:TabularLearner")
    yield "tabular"
    unregister_learner("tabular")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Small networks on a shared 2-core machine: extra torch threads only contend (as in training and evaluate)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
