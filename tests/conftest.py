"""Fixtures shared by every test folder, among them one warm cache holding the default experiment,
computed by the app itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "app.py")
APP_TIMEOUT_S = 300  # the first run computes the default experiment (about 10 s here)


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder, also made the default through $CUP_CACHE_DIR for the test's duration."""
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("CUP_CACHE_DIR", str(root))
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the warm cache is slow whatever it does itself: the cache's first use runs the app's first open,
    computing the default experiment (18 s here), which alone was a fifth of the fast lane."""
    for item in items:
        if {"warm_cache", "first_open"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def new_app(**query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=APP_TIMEOUT_S)
    for name, value in query.items():
        app.query_params[name] = value
    return app


@pytest.fixture(scope="session")
def first_open(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AppTest]:
    """The app opened on an empty cache, which computes its default experiment, and that cache folder."""
    root = tmp_path_factory.mktemp("app-cache")
    previous = os.environ.get("CUP_CACHE_DIR")
    os.environ["CUP_CACHE_DIR"] = str(root)
    app = new_app().run()
    assert not app.exception, app.exception
    yield root, app
    if previous is None:
        os.environ.pop("CUP_CACHE_DIR", None)
    else:
        os.environ["CUP_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def warm_cache(first_open: tuple[Path, AppTest]) -> Path:
    """A cache folder in which the app, opened on an empty cache, has computed its default experiment."""
    return first_open[0]


@pytest.fixture
def app_cache(warm_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CUP_CACHE_DIR", str(warm_cache))
    return warm_cache


@pytest.fixture
def export_browser() -> None:
    """Figure export (kaleido driving Chromium) can run here: skipped where it cannot, a failure in CI, which
    installs Chromium."""
    from ui import static_export

    problem = static_export.export_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
