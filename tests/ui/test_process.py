"""The app's process keeps the objects of its imports out of the garbage collector's sweeps (ui/process.py)."""

from __future__ import annotations

import gc
import sys
import types
import weakref

import pytest

from ui import process

from ..conftest import new_app


@pytest.fixture
def unfrozen(monkeypatch):
    """A process that has frozen nothing yet; what a test froze is handed back to the collector after it."""
    gc.unfreeze()
    monkeypatch.setattr(process, "_modules_frozen", 0)
    yield
    gc.unfreeze()


class Cycle:
    itself: object = None


def test_what_is_alive_is_frozen_once_per_wave_of_imports_and_garbage_is_not(unfrozen, monkeypatch):
    process.freeze_long_lived()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    made_since = [[] for _ in range(1000)]  # tracked by the collector
    process.freeze_long_lived()  # nothing imported meanwhile: a rerun's objects are left to the collector
    assert gc.get_freeze_count() == frozen
    garbage = Cycle()
    garbage.itself, gone = garbage, weakref.ref(garbage)
    del garbage  # unreachable, but only the collector frees a cycle
    monkeypatch.setitem(sys.modules, "cup_test_imported", types.ModuleType("cup_test_imported"))
    process.freeze_long_lived()
    assert gc.get_freeze_count() >= frozen + len(made_since)
    assert gone() is None  # collected before the freeze, not kept for good


def test_every_page_runs_with_the_imports_frozen(unfrozen, tmp_cache):
    app = new_app()
    app.switch_page("pages/experiments.py").run()
    assert not app.exception
    assert gc.get_freeze_count() > 0 and process._modules_frozen > 0
