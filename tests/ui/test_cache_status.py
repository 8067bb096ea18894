"""A page rerun knows what is cached from metadata: it never reads or hashes a checkpoint's bytes."""

from __future__ import annotations

import pytest

from cup_core import cache

from ..conftest import new_app


@pytest.mark.slow
def test_explore_and_compare_reruns_read_no_checkpoint_bytes(app_cache, monkeypatch):
    app = new_app().run()
    assert not app.exception
    compare = new_app()
    compare.switch_page("pages/compare.py").run()
    assert not compare.exception
    read = []
    real = cache.read_weight_bytes
    monkeypatch.setattr(cache, "read_weight_bytes", lambda *args: read.append(args) or real(*args))
    slider = app.select_slider(key="intensity")
    for value in slider.options[:3]:
        app.select_slider(key="intensity").set_value(float(value)).run()
        assert not app.exception
    compare.multiselect(key="seeds").set_value([0, 1]).run()
    compare.run()
    assert not compare.exception
    assert read == []


def test_a_point_with_a_damaged_checkpoint_is_counted_missing_and_not_offered_for_export(app_cache):
    from ui import services

    experiment = services.default_experiment("digits", services.default_forget("digits"))
    plan = services.explore_plan()
    assert services.missing_count(experiment, plan) == 0
    entry = experiment.point_entry("cup", 0.5, 0)
    weights = entry / cache.WEIGHTS_FILE
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-10])
        assert services.missing_count(experiment, plan) == 1
        assert not services.point_is_cached(experiment, "cup", 0.5, 0)
    finally:
        weights.write_bytes(original)
    assert services.missing_count(experiment, plan) == 0
