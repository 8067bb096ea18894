"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder, also made the default through $CUP_CACHE_DIR for the test's duration."""
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("CUP_CACHE_DIR", str(root))
    return root
