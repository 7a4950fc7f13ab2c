"""Test tiers and the ``gpu`` marker, for the tests in tests/ and the doctests in the package folders.

The markers are declared, each with why, in pyproject's ``[tool.pytest.ini_options]``: ``slow``
(more than ~5 s on a 2-core CPU), ``training`` and ``levels`` (why a test is slow; each implies
``slow``), ``gpu`` (needs CUDA). ``make test`` runs everything; ``make test-fast`` runs
``-m "not slow and not gpu"`` (docs/architecture.md, "Tests").

A test function takes its marker by decorator. Doctests cannot, so a doctest whose examples call
``train(...)`` (the run machinery) is marked ``training`` here; tests/test_tiers.py checks the tiers.

Tests marked ``gpu`` use the ``gpu_device`` fixture. They are skipped, with the reason, where torch
sees no CUDA device; ``--gpu-device cpu`` runs them on the CPU instead (a smoke run that keeps them
from rotting between GPU runs; ``python -m shiftgrid.scripts.gpu_check --device cpu`` uses it).
"""

from __future__ import annotations

import re

import pytest

#: A doctest example calling the run machinery's ``train(...)`` (not ``model.train()``).
TRAINS = re.compile(r"(?<![\w.])train\(")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gpu-device", default="cuda",
                     help="device the tests marked gpu run on (default: cuda; cpu runs them here as a smoke run)")


@pytest.fixture
def gpu_device(request: pytest.FixtureRequest):
    """The torch device of the tests marked ``gpu`` (``--gpu-device``, default ``cuda``)."""
    import torch

    return torch.device(request.config.getoption("--gpu-device"))


def gpu_skip_reason() -> str | None:
    """The reason a ``gpu`` test is skipped on this machine; ``None`` where torch sees a CUDA device."""
    from shiftgrid.world_models.device import no_cuda_reason

    why = no_cuda_reason()
    return None if why is None else f"needs CUDA: {why}"


#: Markers that say why a test is slow; each implies ``slow``.
REASONS = ("training", "levels")


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects: the markers added here count
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.dtest is not None \
                and any(TRAINS.search(example.source) for example in item.dtest.examples):
            item.add_marker("training")
        if any(item.get_closest_marker(reason) for reason in REASONS) and not item.get_closest_marker("slow"):
            item.add_marker("slow")

    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu and torch_device_type(config.getoption("--gpu-device")) == "cuda":
        reason = gpu_skip_reason()
        if reason is not None:
            for item in gpu:
                item.add_marker(pytest.mark.skip(reason=reason))


def torch_device_type(device: str) -> str:
    """``cuda`` for ``cuda`` / ``cuda:N``, else the name as given."""
    return device.split(":", 1)[0]
