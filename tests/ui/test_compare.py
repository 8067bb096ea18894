"""The Compare page through AppTest: several methods' frontiers, hypervolumes, controllability and selection."""

from __future__ import annotations

import pytest

from cup_core import SweepPlan, resolve_device, run_sweep
from ui import components
from ui.services import catalogue, compare, sweeps

from ..conftest import new_app

METHODS = ["cup", "ws", "mgda"]
POINTS = 5
SEEDS = [0, 1]


# Its users are marked slow (30 runs and WS's calibration), as are those of the copies in test_paper and test_scrubber.
@pytest.fixture(scope="module")
def compared(warm_cache):
    """The default experiment with 3 methods × 5 points × 2 seeds computed (the page computes only on a click)."""
    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    plan = SweepPlan.default(tuple(METHODS), POINTS, tuple(SEEDS))
    run_sweep(experiment, plan, resolve_device("cpu"))
    return experiment, plan


def _open(app_cache):
    app = new_app()
    app.switch_page("pages/compare.py").run()
    app.multiselect(key="methods").set_value(METHODS)
    app.select_slider(key="points").set_value(POINTS)
    app.multiselect(key="seeds").set_value(SEEDS)
    return app.run()


@pytest.mark.slow
def test_compare_renders_frontiers_hypervolumes_and_controllability(app_cache, compared):
    app = _open(app_cache)
    assert not app.exception
    assert not [info for info in app.info if "not cached" in info.value]  # everything these controls need is cached
    assert len(app.get("plotly_chart")) == 3  # frontiers, hypervolume bars, controllability
    hypervolumes = app.dataframe[0].value
    assert sorted(hypervolumes["label"]) == ["CUP", "MGDA", "WS"]
    assert list(hypervolumes["normalised"]) == sorted(hypervolumes["normalised"], reverse=True)
    verdicts = dict(zip(hypervolumes["label"], hypervolumes["vs CUP"]))
    assert verdicts["CUP"] == "—" and {verdicts["WS"], verdicts["MGDA"]} <= {"win", "tie", "loss"}
    assert hypervolumes.set_index("label").loc["WS", "calibration runs"] >= 2  # WS's weight is calibrated
    assert hypervolumes.set_index("label").loc["CUP", "calibration runs"] == 0
    intervals = hypervolumes.set_index("label")["difference 95 %"]
    assert intervals["CUP"] == "—" and intervals[["WS", "MGDA"]].str.startswith("[").all()  # two seeds: intervals
    assert any("reference point (0, 0)" in caption.value for caption in app.caption)  # the paper's, labelled
    assert any("Normalised hypervolume" in caption.value and "1 + 1/H" in caption.value for caption in app.caption)
    assert any("needs no calibration" in caption.value for caption in app.caption)
    experiment, plan = compared
    table = components.hypervolume_table(compare.compare_view(experiment, plan).summary, METHODS)
    assert (table["points"] == POINTS).all() and (table["seeds"] == len(SEEDS)).all()
    recommended = app.dataframe[1].value
    assert len(recommended) == 3


@pytest.mark.slow
def test_the_page_compares_equal_grids_only(app_cache, compared):
    """The Explore page cached 21 CUP points; Compare judges CUP on the same 5 as the others."""
    experiment, plan = compared
    view = compare.compare_view(experiment, plan)
    assert view.frontier.groupby("method").size().to_dict() == {name: POINTS for name in METHODS}
    assert len(experiment.results().query("method == 'cup'")) > POINTS


@pytest.mark.slow
def test_the_best_point_is_shown_until_a_point_is_clicked(app_cache, compared):
    app = _open(app_cache)
    assert any(header.value.startswith("Best overall (lowest avg gap)") for header in app.subheader)
    experiment, plan = compared
    weight = sweeps.resolved_plan(experiment, plan).grids["ws"][2]  # a value of WS's calibrated grid
    app.session_state[components.SELECTED_KEY] = ("ws", weight)
    app.run()
    assert not app.exception
    assert any(header.value == f"Selected: WS, forget weight = {weight:g}" for header in app.subheader)


def test_missing_points_are_offered_not_computed_behind_the_users_back(app_cache):
    app = new_app()
    app.switch_page("pages/compare.py").run()
    app.multiselect(key="methods").set_value(["cup", "salun"])  # no other test computes SalUn's 21 points
    app.select_slider(key="points").set_value(21).run()
    assert not app.exception
    assert app.info and "not cached yet" in app.info[0].value
    assert any("Compute the" in button.label for button in app.button)


@pytest.mark.slow
def test_the_page_pools_learning_rates_and_says_so(app_cache, compared):
    experiment, _ = compared
    own = experiment.config.unlearn.lr
    other = float(f"{own / 10:g}")  # as the cache states it (config.canonical_value): 1e-4, not 1.0000000000000002e-4
    lrs = (own, other)
    for member, plan in compare.compare_members(experiment, ["cup", "ga"], POINTS, [0], True, lrs):
        run_sweep(member, plan, resolve_device("cpu"))
    app = new_app(experiment=experiment.id)  # this experiment, not another digits one other tests cached
    app.switch_page("pages/compare.py").run()
    app.multiselect(key="methods").set_value(["cup", "ga"])
    app.select_slider(key="points").set_value(POINTS)
    app.multiselect(key="seeds").set_value([0])
    app.run()
    assert any("Protocol: single recipe" in caption.value for caption in app.caption)
    pool = app.multiselect(key="pool_lrs")
    assert pool.options[0] == f"{other:g} (cached)"  # the sibling experiment is offered first
    pool.set_value([other]).run()
    assert not app.exception
    assert not [info for info in app.info if "not cached" in info.value]
    assert any("Protocol: pooled learning rates" in caption.value for caption in app.caption)
    table = app.dataframe[0].value.set_index("label")
    view = compare.pooled_compare_view(compare.compare_members(experiment, ["cup", "ga"], POINTS, [0], True, lrs),
                                        lrs)
    assert view.summary["protocol"]["lrs"] == list(lrs)
    assert {name: method["points"] for name, method in view.summary["methods"].items()} == {"cup": 2 * POINTS,
                                                                                            "ga": 2 * POINTS}
    assert set(table.index) == {"CUP", "GA"}


def test_only_a_verdict_over_identical_seeds_is_called_deterministic():
    """One seed in common gives no interval (a tie for want of seeds); the same points from every seed give an
    interval of no width: only the latter compares deterministic runs."""
    import numpy as np

    from cup_core.report import _versus

    cup, method = {"hypervolume_normalised": 1.0}, {"hypervolume_normalised": 0.5}
    summary = {"methods": {
        "cup": {"versus_cup": None},
        "ga": {"versus_cup": _versus(method, cup, np.zeros(0), np.zeros(0))},
        "ws": {"versus_cup": _versus(method, cup, np.full(50, 0.5), np.full(50, 1.0))},
        "mgda": {"versus_cup": _versus(method, cup, np.linspace(0.4, 0.6, 50), np.full(50, 1.0))}}}
    assert "why" in summary["methods"]["ga"]["versus_cup"]  # it says why there is no interval
    assert compare.deterministic_verdicts(summary, ["cup", "ga", "ws", "mgda"]) == ["ws"]


def test_the_intervals_caption_counts_the_resamples_of_the_seeds_chosen():
    from cup_core.report import _resamples

    assert "no interval" in compare.bootstrap_words(1)
    assert "2,000 resamples; 3 seeds give at most 10 distinct ones" in compare.bootstrap_words(3)
    for seeds, most in ((2, 3), (3, 10), (5, 126)):
        assert f"at most {most} distinct" in compare.bootstrap_words(seeds)
        assert len(_resamples(seeds)[0]) <= most


def _fingerprint(view) -> str:
    """Every table and number of a view, as text: what a page that changed a shared view in place would alter."""
    import json

    import pandas as pd

    parts = {name: value.to_json(orient="split", double_precision=15) for name, value in vars(view).items()
             if isinstance(value, pd.DataFrame)}
    return json.dumps({**parts, **{name: value for name, value in vars(view).items()
                                   if not isinstance(value, pd.DataFrame)}}, sort_keys=True, default=repr)


@pytest.mark.slow
def test_the_views_that_reruns_share_are_never_changed_by_a_page(app_cache, compared):
    """Explore's and Compare's views are shared by every rerun and session without a copy (caching.view_cache):
    clicks, seed changes, slider moves and releases on both pages leave them as they were built."""
    from ui import scrubber
    from ui.services import explore

    experiment, plan = compared
    view, explored = compare.compare_view(experiment, plan), explore.explorer_view(experiment)
    payload = explore.explore_scrub_payload(experiment, explored.values[0])
    before = _fingerprint(view), _fingerprint(explored), repr(payload)
    app = _open(app_cache)
    weight = sweeps.resolved_plan(experiment, plan).grids["ws"][2]
    for selected in (("ws", weight), ("cup", 0.5), ("mgda", 0.0)):
        app.session_state[components.SELECTED_KEY] = selected
        app.run()
    app.multiselect(key="seeds").set_value([0]).run()
    app.multiselect(key="seeds").set_value(SEEDS).run()
    live = new_app()
    live.session_state[scrubber.STATUS_KEY] = "ready"
    live.run()
    for value in explored.values[1:4]:
        live.session_state[components.INTENSITY_KEY] = value
        live.run()
    fallback = new_app().run()
    for value in explored.values[-3:]:
        fallback.select_slider(key=components.INTENSITY_KEY).set_value(value).run()
    assert not (app.exception or live.exception or fallback.exception)
    assert compare.compare_view(experiment, plan) is view and explore.explorer_view(experiment) is explored
    assert (_fingerprint(view), _fingerprint(explored),
            repr(explore.explore_scrub_payload(experiment, explored.values[0]))) == before
