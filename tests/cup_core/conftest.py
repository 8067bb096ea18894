"""Fixtures of the cup_core tests: one tiny swept experiment, computed once and only read by its users."""

from __future__ import annotations

import pytest

from ._experiments import tiny_sweep


@pytest.fixture(scope="session")
def tiny_blobs(tmp_path_factory):
    """(experiment, results) of the tiny class-wise blobs sweep, γ in {0, 0.5, 1}, seeds 0 and 1. Read only."""
    return tiny_sweep(tmp_path_factory.mktemp("tiny-blobs-cache"), seeds=(0, 1))


@pytest.fixture
def one_thread():
    """One CPU thread for a test that calls a training loop directly, as a sweep runs small models
    (device.threads_for): idle threads spinning against other work on the cores slow tiny steps many times."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
