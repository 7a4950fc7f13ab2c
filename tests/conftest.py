"""Fixtures for every test folder."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Small networks on a shared 2-core machine: extra torch threads only contend (as in training and evaluate)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
