"""Test tiers and the ``gpu`` marker, for the tests in tests/ and the doctests in the package folders.

The markers are declared, with why each one is slow, in pyproject's ``[tool.pytest.ini_options]``;
``make test`` runs everything and ``make test-fast`` deselects the slow tiers (docs/testing.md).
A test function takes its marker by decorator. Doctests cannot, so they are marked here:

- a doctest whose examples call ``train(...)`` (the run machinery) is marked ``training``;
- :data:`SLOW_DOCTESTS` marks others by name (the name pytest gives a doctest, ``module.object``),
  measured slow with ``pytest --durations``; tests/test_tiers.py fails when a name no longer
  names a doctest, so the list cannot go stale when a module moves.

Tests marked ``gpu`` use the ``gpu_device`` fixture. They are skipped, with the reason, where torch
sees no CUDA device; ``--gpu-device cpu`` runs them on the CPU instead (a smoke run that keeps them
from rotting between GPU runs; ``python -m shiftgrid.scripts.gpu_check --device cpu`` uses it).
"""

from __future__ import annotations

import re

import pytest

#: A doctest example calling the run machinery's ``train(...)`` (not ``model.train()``).
TRAINS = re.compile(r"(?<![\w.])train\(")

#: Doctests that are slow for another reason than training: name -> marker.
SLOW_DOCTESTS: dict[str, str] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gpu-device", default="cuda",
                     help="device the tests marked gpu run on (default: cuda; cpu runs them here as a smoke run)")


@pytest.fixture
def gpu_device(request: pytest.FixtureRequest):
    """The torch device of the tests marked ``gpu`` (``--gpu-device``, default ``cuda``)."""
    import torch

    return torch.device(request.config.getoption("--gpu-device"))


def _no_cuda_reason() -> str | None:
    import torch

    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"needs CUDA: torch {torch.__version__} is built without it"
    return f"needs CUDA: torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    doctests = {item.name: item for item in items if isinstance(item, pytest.DoctestItem)}
    for item in doctests.values():
        if any(TRAINS.search(example.source) for example in item.dtest.examples):
            item.add_marker("training")
    for name, marker in SLOW_DOCTESTS.items():
        if name in doctests:
            doctests[name].add_marker(marker)

    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu and torch_device_type(config.getoption("--gpu-device")) == "cuda":
        reason = _no_cuda_reason()
        if reason is not None:
            for item in gpu:
                item.add_marker(pytest.mark.skip(reason=reason))


def torch_device_type(device: str) -> str:
    """``cuda`` for ``cuda`` / ``cuda:N``, else the name as given."""
    return device.split(":", 1)[0]
