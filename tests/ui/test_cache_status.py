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
    from ui.services import catalogue, explore, selected_point, sweeps

    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    plan = explore.explore_plan()
    assert sweeps.missing_count(experiment, plan) == 0
    entry = experiment.point_entry("cup", 0.5, 0)
    weights = entry / cache.WEIGHTS_FILE
    original = weights.read_bytes()
    try:
        weights.write_bytes(original[:-10])
        assert sweeps.missing_count(experiment, plan) == 1
        assert not selected_point.point_is_cached(experiment, "cup", 0.5, 0)
    finally:
        weights.write_bytes(original)
    assert sweeps.missing_count(experiment, plan) == 0


def test_a_compare_view_is_built_once_per_set_of_computed_points(app_cache, monkeypatch):
    """Compare after a change of seeds or runs per method: a view is a function of the computed points it shows,
    built once (one frontier table, which the summary reuses). A seed without models yet (3: the warm cache has
    seed 0 only) shows the same points, so nothing is built, and its models are offered; other points (5 per
    method) are a new view, built once; a view seen before rebuilds nothing. The caches' keys do not grow with the
    plan (Streamlit hashes a key on every call: a key holding every point cost tens of ms a rerun)."""
    from cup_core import report
    from ui import components
    from ui.services import catalogue
    from ui.services import compare as compare_service

    built = []
    for module, name in ((compare_service, "frontier_table"), (report, "frontier_table"), (compare_service, "summary")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, _real=real, _name=name, **kwargs:
                            built.append(_name) or _real(*args, **kwargs))
    compare_service._compare.clear()
    compare = new_app()
    compare.switch_page("pages/compare.py").run()
    assert not compare.exception
    assert sorted(built) == ["frontier_table", "summary"]  # the default seeds' view
    for seeds in ([0, 3], [0], [0, 3]):
        compare.multiselect(key="seeds").set_value(seeds).run()
        assert not compare.exception
    assert sorted(built) == ["frontier_table", "summary"]  # seed 3 has no models: the same points, the same view
    assert any("not cached yet" in info.value for info in compare.info)  # seed 3's models, offered
    for points in (5, 11, 5, 11):
        compare.select_slider(key="points").set_value(points).run()
        assert not compare.exception
    assert sorted(built) == ["frontier_table", "frontier_table", "summary", "summary"]  # 5 points' view, once
    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    methods = components.DEFAULT_COMPARE_METHODS
    keys = [compare_service.compare_view(experiment, compare_service.compare_plan(methods, points, seeds)).key
            for points, seeds in ((5, [0]), (21, list(range(10))))]
    assert keys[0] != keys[1] and len(repr(keys[0])) == len(repr(keys[1]))


def test_views_of_calibrated_methods_alone_have_the_keys_of_their_computed_points(app_cache, monkeypatch):
    """A view's key (what the Compare figures are cached under) names the computed points the view shows:
    calibrated methods have none in the plan itself (a key made from the plan gave every seed set the same
    figures), so the key comes from their resolved grids. Grids of other computed points are other views; a seed
    without models yet is the same view."""
    from cup_core import SweepPlan
    from ui.services import catalogue, compare, sweeps

    def calibrated(experiment, plan):  # as when the cache holds the searches: grids of computed points (CUP's here)
        return SweepPlan.default(("cup",), max(plan.calibrate.values()), plan.seeds)

    monkeypatch.setattr(sweeps, "resolve_plan", calibrated)
    sweeps._resolved.clear()
    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    plans = [compare.compare_plan(["ga", "rl"], points, seeds) for points, seeds in ((5, [0]), (5, [0, 1]), (3, [0]))]
    assert not any(plan.points() for plan in plans)  # nothing but calibrations
    views = [compare.compare_view(experiment, plan) for plan in plans]
    assert [len(view.results) for view in views] == [5, 5, 3]  # the warm cache has seed 0 only
    assert views[0].key == views[1].key and views[0].key != views[2].key
    assert views[1] is views[0]
    sweeps._resolved.clear()


def test_explore_slider_moves_rebuild_no_frontier_and_no_bars_seen_before(app_cache, monkeypatch):
    """The fallback slider's moves ring the frontier built once per view; a value's bars are built once."""
    from ui import figures

    built = []
    for name in ("frontier_figure", "per_class_figure"):
        real = getattr(figures, name)
        monkeypatch.setattr(figures, name, lambda *args, _real=real, _name=name, **kwargs:
                            built.append(_name) or _real(*args, **kwargs))
    app = new_app().run()
    assert not app.exception
    opened = built.count("frontier_figure")
    values = [float(v) for v in app.select_slider(key="intensity").options[:3]]
    for value in values * 2:
        app.select_slider(key="intensity").set_value(value).run()
        assert not app.exception
    assert built.count("frontier_figure") == opened
    assert built.count("per_class_figure") <= 1 + len(values)  # the opening value's, then each value's once
