"""Fixtures of the cup_core tests: one tiny swept experiment, computed once and only read by its users."""

from __future__ import annotations

import pytest

from ._experiments import tiny_sweep


@pytest.fixture(scope="session")
def tiny_blobs(tmp_path_factory):
    """(experiment, results) of the tiny class-wise blobs sweep, γ in {0, 0.5, 1}, seeds 0 and 1. Read only."""
    return tiny_sweep(tmp_path_factory.mktemp("tiny-blobs-cache"), seeds=(0, 1))
