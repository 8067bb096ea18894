"""The report: per-method summaries (hypervolumes, their intervals, calibration, verdicts, controllability, best
points) as `report --json` prints them, and the bootstrap over seeds on a known case."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from cup_core import Experiment, SweepPlan, default_config, read_summary, resolve_device, run_sweep
from cup_core.calibration import Criteria
from cup_core.config import SCHEMA_VERSION
from cup_core.pareto import Normalisation, hypervolume, normalised_hypervolume
from cup_core.report import (BOOTSTRAP_SAMPLES, _bootstrap, _interval, _versus, best_under_constraints, controllability,
                             frontier_table, hypervolume_csv, hypervolume_latex, hypervolume_rows, latex_escape, method_rows,
                             reference_table, run_settings, summary)

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


def test_the_bootstrap_sweeps_each_distinct_resample_once_with_the_same_intervals(monkeypatch):
    """A resample's hypervolumes depend only on how often it drew each seed: 5 seeds give at most 126 distinct
    resamples of the 2,000, each swept once per hypervolume, every resample getting what a sweep of its own
    means gives."""
    from cup_core import report
    from cup_core.pareto import HV_SCALE, hypervolume_2d

    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"value": np.repeat(np.linspace(0, 1, 6), 5), "seed": np.tile(range(5), 6),
                         "retain_acc": rng.uniform(50, 95, 30), "ua": rng.uniform(5, 95, 30)}).iloc[:-1]  # a gap
    norm = Normalisation(ideal=(100.0, 100.0), nadir=(0.0, 0.0), intervals=5)
    calls = []
    monkeypatch.setattr(report, "hypervolume_2d", lambda *args: calls.append(args) or hypervolume_2d(*args))
    paper, normalised = _bootstrap(rows, list(range(5)), "class", None, norm)
    assert len(paper) == len(normalised) == BOOTSTRAP_SAMPLES
    assert len(calls) <= 2 * 126
    draws = np.random.default_rng(report.BOOTSTRAP_SEED).integers(0, 5, size=(BOOTSTRAP_SAMPLES, 5))
    grid = rows.pivot_table(index="value", columns="seed", values=["retain_acc", "ua"])
    for b in (0, 1, 999, BOOTSTRAP_SAMPLES - 1):  # the sweep of each resample's own means
        means = np.stack([np.nanmean(grid["retain_acc"].to_numpy()[:, draws[b]], axis=1),
                          np.nanmean(grid["ua"].to_numpy()[:, draws[b]], axis=1)], axis=-1)
        assert paper[b] == pytest.approx(hypervolume_2d(-means, np.zeros(2)) / HV_SCALE, rel=1e-12)
        assert normalised[b] == pytest.approx(hypervolume_2d(norm.minimised(means), np.full(2, norm.reference_offset)),
                                              rel=1e-12)


def test_one_seed_gives_no_interval():
    rows = pd.DataFrame({"value": [0.0], "seed": [0], "retain_acc": [90.0], "ua": [20.0]})
    paper, _ = _bootstrap(rows, [0], "class", None, Normalisation((100.0, 100.0), (0.0, 0.0), 1))
    assert _interval(paper) is None


@pytest.mark.slow
def test_summary_states_both_hypervolumes_intervals_calibration_and_verdicts(tmp_path, monkeypatch):
    from cup_core import report

    experiment = Experiment(default_config("blobs"), tmp_path)
    table = run_sweep(experiment, SweepPlan.default(("cup", "ga", "mgda"), 6, (0, 1)), resolve_device("cpu"))
    references = experiment.references()
    resampled = []
    monkeypatch.setattr(report, "_bootstrap", lambda runs, *args: resampled.append(runs) or _bootstrap(runs, *args))
    result = json.loads(json.dumps(summary(table, references, experiment.facts)))  # what report --json prints
    # each method's seeds resampled once: its pair against CUP (the same seeds) reuses them
    assert sorted(runs["method"].iloc[0] for runs in resampled) == ["cup", "ga", "mgda"]
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
    frontier = frontier_table(table, references, experiment.config.forget.kind)
    rows = frontier[frontier["method"] == "ga"][["objective_x", "objective_y"]].to_numpy()
    assert normalised_hypervolume(rows, space) == pytest.approx(ga["hypervolume_normalised"])
    # the verdict is the pair's, resampled afresh
    pair = [_bootstrap(table[table["method"] == name], [0, 1], "class", None, space)[1] for name in ("ga", "cup")]
    assert ga["versus_cup"] == json.loads(json.dumps(_versus(ga, cup, *pair)))


def test_summary_of_the_tiny_sweep(tiny_blobs):
    experiment, results = tiny_blobs
    report = read_summary(experiment)
    cup = report["methods"]["cup"]
    assert cup["points"] == len(TINY_GRID) and cup["seeds"] == [0, 1]
    assert 0 < cup["hypervolume"] <= 1
    assert set(cup["hypervolume_per_seed"]) == {0, 1}
    space = Normalisation(tuple(report["normalisation"]["ideal"]), tuple(report["normalisation"]["nadir"]),
                          report["normalisation"]["intervals"])
    for seed, value in cup["hypervolume_normalised_per_seed"].items():
        rows = results[(results["method"] == "cup") & (results["seed"] == seed)]
        assert value == pytest.approx(normalised_hypervolume(rows[["retain_acc", "ua"]].to_numpy(), space))
    assert report["forget_set"] == "class 2"
    assert report["schema"] == SCHEMA_VERSION == 2  # the metrics' definition (2: the SVC MIA)
    assert report["protocol"] == {"name": "single recipe", "lr": experiment.config.unlearn.lr}
    assert all("lr" not in row for row in cup["table"])  # a pooled report's rows have one (test_pool.py)
    json.dumps(report, allow_nan=False)  # strict JSON: NaN became null


def test_the_report_works_on_the_tables_it_is_handed_and_reads_nothing(tiny_blobs, monkeypatch):
    experiment, results = tiny_blobs
    references, facts = experiment.references(), experiment.facts
    expected = json.dumps(read_summary(experiment), sort_keys=True)

    def no_reads(*args, **kwargs):
        raise AssertionError("the report read the cache")

    for name in ("results", "references", "point_records", "reference"):
        monkeypatch.setattr(Experiment, name, no_reads)
    assert json.dumps(summary(results, references, facts), sort_keys=True) == expected
    frontier = frontier_table(results, references, facts.config.forget.kind)
    assert len(run_settings(frontier, results, facts.config.unlearn)) == len(TINY_GRID)
    assert sorted(reference_table(references, facts.config.forget.kind).index) == ["oracle", "original"]


def test_controllability_is_the_rank_correlation_and_span_of_ua():
    rows = pd.DataFrame({"value": [0.0, 0.5, 1.0, 1.5], "ua": [10.0, 20.0, 15.0, 90.0]})
    result = controllability(rows)
    assert result["spearman_value_ua"] == pytest.approx(0.8)  # ranks 1,3,2,4 against 1,2,3,4
    assert result["ua_span"] == 80.0
    flat = controllability(rows.assign(ua=50.0))
    assert flat == {"spearman_value_ua": None, "ua_span": 0.0, "ua_span_share": None}
    measured = controllability(rows, Criteria(original_ua=0.0, original_retain=99.0, target_ua=40.0, chance=10.0))
    assert measured["ua_span_share"] == pytest.approx(80.0 / 40.0)


def test_the_frontier_table_averages_the_seeds_and_marks_each_methods_front(tiny_blobs):
    experiment, results = tiny_blobs
    kind = experiment.config.forget.kind
    frontier = frontier_table(experiment.results(), experiment.references(), kind).sort_values("value")
    by_value = results.groupby("value")[["retain_acc", "ua"]].mean()
    assert list(frontier["value"]) == list(TINY_GRID) and (frontier["seeds"] == 2).all()
    np.testing.assert_allclose(frontier["objective_x"], by_value["retain_acc"])  # class-wise: (retain acc, UA)
    np.testing.assert_allclose(frontier["objective_y"], by_value["ua"])
    points = frontier[["objective_x", "objective_y"]].to_numpy()
    dominated = [any((other >= point).all() and (other > point).any() for other in points) for point in points]
    assert list(frontier["non_dominated"]) == [not flag for flag in dominated]
    references = reference_table(experiment.references(), kind)
    assert sorted(references.index) == ["oracle", "original"]
    np.testing.assert_allclose(references["objective_y"], references["ua"])


def test_a_deterministic_pair_of_methods_is_named_so_beside_its_verdict():
    method, baseline = {"hypervolume_normalised": 0.9}, {"hypervolume_normalised": 1.0}
    same = _versus(method, baseline, np.full(50, 0.9), np.full(50, 1.0))
    assert same["verdict"] == "loss" and "deterministic" in same["why"]
    noisy = _versus(method, baseline, np.linspace(0.8, 1.0, 50), np.full(50, 1.0))
    assert "why" not in noisy


# --- Picking by constraint, run settings, tables for a paper ------------------------------------------------

def _frontier(**columns) -> pd.DataFrame:
    base = {"method": ["cup", "cup", "ga", "ga"], "value": [0.0, 1.0, 1e-4, 3e-4],
            "retain_acc": [99.0, 95.0, 97.0, 80.0], "test_acc": [98.0, 93.0, 96.0, 75.0],
            "ua": [5.0, 90.0, 60.0, 100.0], "diverged": [0.0, 0.0, 0.0, 0.0]}
    table = pd.DataFrame({**base, **columns})
    return table.assign(objective_x=table["retain_acc"], objective_y=table["ua"])


def test_the_constraint_picks_the_point_that_forgets_most_among_those_that_qualify():
    frontier = _frontier()
    assert best_under_constraints(frontier, 0, 0)["ua"] == 100.0  # no constraint: the most forgetting
    best = best_under_constraints(frontier, 90, 90)
    assert (best["method"], best["value"]) == ("cup", 1.0)  # GA at 3e-4 forgets more but keeps too little
    best = best_under_constraints(frontier, 96, 0)
    assert (best["method"], best["value"]) == ("ga", 1e-4)
    assert best_under_constraints(frontier, 99.5, 0) is None
    assert best_under_constraints(frontier.iloc[:0], 0, 0) is None


def test_the_constraint_leaves_diverged_runs_out_and_breaks_ties_by_retain_accuracy():
    frontier = _frontier(diverged=[0.0, 0.0, 0.0, 0.5], ua=[90.0, 90.0, 60.0, 100.0])
    best = best_under_constraints(frontier, 0, 0)
    assert (best["method"], best["value"]) == ("cup", 0.0)  # ties with cup 1.0 on UA, retains more


def test_run_settings_give_each_point_its_learning_rate_epochs_and_seeds(tiny_blobs):
    experiment, results = tiny_blobs
    frontier = frontier_table(results, experiment.references(), experiment.config.forget.kind)
    settings = run_settings(frontier, results, experiment.config.unlearn)
    assert (settings["lr"] == experiment.config.unlearn.lr).all()  # CUP's knob is not its learning rate
    assert (settings["epochs"] == experiment.config.unlearn.epochs).all()
    assert set(settings["seed_list"]) == {"0, 1"}
    ga = pd.DataFrame({"method": ["ga"], "value": [3e-4]})
    assert run_settings(ga, ga.assign(seed=[2]), experiment.config.unlearn)["lr"].item() == 3e-4  # a learning-rate knob


def _summary(methods: dict) -> dict:
    return {"experiment": "abc123", "config": {"dataset": "digits"}, "forget_set": "class 0", "methods": methods}


def _method(label: str, knob: str, hv: float, normalised: float, calibration=None, versus=None, seeds=(0, 1)) -> dict:
    return {"label": label, "knob": knob, "points": 5, "seeds": list(seeds), "hypervolume": hv,
            "hypervolume_ci95": [hv - 0.01, hv + 0.01], "hypervolume_normalised": normalised,
            "hypervolume_normalised_ci95": None if normalised is None else [normalised - 0.1, normalised + 0.1],
            "calibration": calibration,
            "versus_cup": versus}


def test_the_hypervolume_table_in_latex_is_booktabs_with_escaped_names():
    result = _summary({
        "cup": _method("CUP", "intensity", 0.9, 0.5),
        "l1": _method("ℓ1-sparse", "ℓ1 strength", 0.8, 0.7,
                      calibration={"status": "calibrated", "runs": 6, "seconds": 3.25, "range": [0.0, 1.0]},
                      versus={"difference": 0.2, "difference_ci95": [0.1, 0.3], "verdict": "win"}),
        "neggrad+": _method("Neg_Grad & 100% #1", "retain weight β", 0.7, None,
                            calibration={"status": "fixed", "runs": 0, "seconds": 0.0, "range": [0.0, 1.0]},
                            versus={"difference": -0.1, "difference_ci95": None, "verdict": "tie"}, seeds=(0,)),
    })
    rows = hypervolume_rows(result)
    assert list(rows["method"]) == ["l1", "cup", "neggrad+"]  # best normalised first, none last
    latex = hypervolume_latex(result)
    body = latex[latex.index("\\midrule"):latex.index("\\bottomrule")].splitlines()[1:]
    assert body[0] == ("    $\\ell$1-sparse & $\\ell$1 strength & 0.8000 [0.7900, 0.8100] & 0.700 [0.600, 0.800] & "
                       "win & 6 runs, 3.2 s \\\\")
    assert body[1].startswith("    CUP & intensity & 0.9000 [0.8900, 0.9100] & 0.500 [0.400, 0.600] & --- & "
                              "none (intrinsic range)")
    assert body[2].startswith("    Neg\\_Grad \\& 100\\% \\#1 & retain weight $\\beta$ & 0.7000 [0.6900, 0.7100] & --- "
                              "& tie & fixed grid")
    assert "\\begin{tabular}{llllll}" in latex and "\\caption{" in latex
    assert latex_escape("a_b{c}~^\\") == "a\\_b\\{c\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
    table = pd.read_csv(io.StringIO(hypervolume_csv(result)))
    assert list(table["label"]) == ["ℓ1-sparse", "CUP", "Neg_Grad & 100% #1"]
    assert table.loc[0, "calibration_runs"] == 6 and table.loc[0, "difference_high"] == 0.3


def test_method_rows_are_each_methods_positions_in_knob_value_order():
    frontier = pd.DataFrame({"method": ["ga", "cup", "ga", "cup", "ga"], "value": [3e-4, 1.0, 1e-4, 0.0, 3e-4]})
    rows = method_rows(frontier)
    assert list(rows) == ["ga", "cup"]  # as the methods first appear
    assert rows["ga"].tolist() == [2, 0, 4] and rows["cup"].tolist() == [3, 1]  # equal values (two lrs) keep their order
