"""The report: per-method summaries (hypervolume, controllability, best points) as `report --json` prints them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cup_core import summary
from cup_core.report import controllability, frontier_table, reference_table

from ._experiments import TINY_GRID


def test_summary_of_the_tiny_sweep(tiny_blobs):
    experiment, results = tiny_blobs
    report = summary(experiment)
    cup = report["methods"]["cup"]
    assert cup["points"] == len(TINY_GRID) and cup["seeds"] == [0, 1]
    assert 0 < cup["hypervolume"] <= 1
    assert set(cup["hypervolume_per_seed"]) == {0, 1}
    assert report["forget_set"] == "class 2"
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
