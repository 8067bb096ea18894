"""The report: per-method summaries (hypervolumes, their intervals, calibration, verdicts, controllability, best
points) as `report --json` prints them, and the bootstrap over seeds on a known case."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep, summary
from cup_core.pareto import Normalisation, hypervolume, normalised_hypervolume
from cup_core.report import BOOTSTRAP_SAMPLES, _bootstrap, _interval, controllability, frontier_table, reference_table

from ._experiments import TINY_GRID


def test_bootstrap_of_two_seeds_spans_each_seeds_hypervolume():
    """With two seeds a resample is {a, a}, {a, b} or {b, b} (1/4, 1/2, 1/4): the 95 % interval runs from the
    hypervolume of one seed's points to the other's."""
    rows = pd.DataFrame({"value": [0.0, 1.0, 0.0, 1.0], "seed": [0, 0, 1, 1],
                         "retain_acc": [90.0, 60.0, 80.0, 50.0], "ua": [20.0, 70.0, 40.0, 90.0]})
    norm = Normalisation(ideal=(100.0, 100.0), nadir=(0.0, 0.0), intervals=1)
    paper, normalised = _bootstrap(rows, [0, 1], "class", None, norm)
    assert len(paper) == BOOTSTRAP_SAMPLES
    per_seed = [hypervolume(rows[rows["seed"] == s][["retain_acc", "ua"]].to_numpy()) for s in (0, 1)]
    mean = hypervolume(rows.groupby("value")[["retain_acc", "ua"]].mean().to_numpy())
    assert set(np.round(paper, 12)) == set(np.round([*per_seed, mean], 12))
    assert _interval(paper) == pytest.approx(sorted(per_seed))
    assert np.mean(np.isclose(paper, mean)) == pytest.approx(0.5, abs=0.05)


def test_one_seed_gives_no_interval():
    rows = pd.DataFrame({"value": [0.0], "seed": [0], "retain_acc": [90.0], "ua": [20.0]})
    paper, _ = _bootstrap(rows, [0], "class", None, Normalisation((100.0, 100.0), (0.0, 0.0), 1))
    assert _interval(paper) is None


@pytest.mark.slow
def test_summary_states_both_hypervolumes_intervals_calibration_and_verdicts(tmp_path):
    experiment = Experiment(default_config("blobs"), tmp_path)
    table = run_sweep(experiment, SweepPlan.default(("cup", "ga", "mgda"), 6, (0, 1)), resolve_device("cpu"))
    result = json.loads(json.dumps(summary(experiment, table)))  # what report --json prints
    norm = result["normalisation"]
    assert set(norm) >= {"ideal", "nadir", "reference"}
    cup, ga = result["methods"]["cup"], result["methods"]["ga"]
    assert cup["calibration"] is None and cup["versus_cup"] is None
    assert ga["calibration"]["status"] in ("calibrated", "no_upper") and ga["calibration"]["runs"] >= 2
    assert len(ga["calibration"]["range"]) == 2 and ga["calibration"]["seconds"] > 0
    assert ga["versus_cup"]["verdict"] in ("win", "tie", "loss")
    low, high = ga["versus_cup"]["difference_ci95"]
    assert low <= ga["versus_cup"]["difference"] + 1e-9 and ga["versus_cup"]["difference"] <= high + 1e-9 or low == high
    for method in result["methods"].values():
        assert len(method["hypervolume_ci95"]) == 2 and len(method["hypervolume_normalised_ci95"]) == 2
    # recomputable from the points and the stated normalisation
    space = Normalisation(tuple(norm["ideal"]), tuple(norm["nadir"]), norm["intervals"])
    frontier = frontier_table(experiment, table)
    rows = frontier[frontier["method"] == "ga"][["objective_x", "objective_y"]].to_numpy()
    assert normalised_hypervolume(rows, space) == pytest.approx(ga["hypervolume_normalised"])


def test_summary_of_the_tiny_sweep(tiny_blobs):
    experiment, results = tiny_blobs
    report = summary(experiment)
    cup = report["methods"]["cup"]
    assert cup["points"] == len(TINY_GRID) and cup["seeds"] == [0, 1]
    assert 0 < cup["hypervolume"] <= 1
    assert set(cup["hypervolume_per_seed"]) == {0, 1}
    assert report["forget_set"] == "class 2"
    assert report["protocol"] == {"name": "single recipe", "lr": experiment.config.unlearn.lr}
    assert all("lr" not in row for row in cup["table"])  # a pooled report's rows have one (test_pool.py)
    json.dumps(report, allow_nan=False)  # strict JSON: NaN became null


def test_controllability_is_the_rank_correlation_and_span_of_ua():
    rows = pd.DataFrame({"value": [0.0, 0.5, 1.0, 1.5], "ua": [10.0, 20.0, 15.0, 90.0]})
    result = controllability(rows)
    assert result["spearman_value_ua"] == pytest.approx(0.8)  # ranks 1,3,2,4 against 1,2,3,4
    assert result["ua_span"] == 80.0
    flat = controllability(rows.assign(ua=50.0))
    assert flat == {"spearman_value_ua": None, "ua_span": 0.0}


def test_the_frontier_table_averages_the_seeds_and_marks_each_methods_front(tiny_blobs):
    experiment, results = tiny_blobs
    frontier = frontier_table(experiment).sort_values("value")
    by_value = results.groupby("value")[["retain_acc", "ua"]].mean()
    assert list(frontier["value"]) == list(TINY_GRID) and (frontier["seeds"] == 2).all()
    np.testing.assert_allclose(frontier["objective_x"], by_value["retain_acc"])  # class-wise: (retain acc, UA)
    np.testing.assert_allclose(frontier["objective_y"], by_value["ua"])
    points = frontier[["objective_x", "objective_y"]].to_numpy()
    dominated = [any((other >= point).all() and (other > point).any() for other in points) for point in points]
    assert list(frontier["non_dominated"]) == [not flag for flag in dominated]
    references = reference_table(experiment)
    assert sorted(references.index) == ["oracle", "original"]
    np.testing.assert_allclose(references["objective_y"], references["ua"])
