"""Sweeps: results.csv, reproducibility, caching, resuming, random-subset forgetting, and a real trade-off."""

from __future__ import annotations

import math
import threading

import numpy as np
import pandas as pd
import pytest
import torch

from cup_core import Experiment, SweepPlan, SweepProgress, SweepSettings, default_config, read_summary, run_sweep
from cup_core import cache
from cup_core import sweep as sweep_module
from cup_core.experiment import RESULT_COLUMNS
from cup_core.metrics import GAP_METRICS

from ._experiments import CPU, TINY_GRID, TINY_TRAIN_EPOCHS, tiny_config, tiny_sweep

REQUIRED_COLUMNS = ["method", "knob", "value", "seed", "forget_acc", "retain_acc", "test_acc", "forget_test_acc",
                    "ua", "mia_efficacy", "avg_gap", "seconds", "checkpoint"]
PERCENT_COLUMNS = ["forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua", "mia_efficacy"]
METRICS = PERCENT_COLUMNS + ["avg_gap"]


class Recorder:
    """A progress callback that keeps every report and may interrupt the sweep after `stop_after` units."""

    def __init__(self, stop_after: int | None = None):
        self.reports: list[SweepProgress] = []
        self.stop_after = stop_after

    def __call__(self, progress: SweepProgress) -> None:
        self.reports.append(progress)
        if self.stop_after is not None and progress.done >= self.stop_after:
            raise Interrupted

    @property
    def last(self) -> SweepProgress:
        return self.reports[-1]


class Interrupted(Exception):
    pass


# --- plan ------------------------------------------------------------------------------------------


def test_plan_validates_and_canonicalises_its_grid():
    plan = SweepPlan({"cup": (0.15000000000000002, 1)}, seeds=(0, 3))
    assert plan.grids == {"cup": (0.15, 1.0)}
    assert plan.points() == [("cup", 0.15, 0), ("cup", 1.0, 0), ("cup", 0.15, 3), ("cup", 1.0, 3)]
    assert SweepPlan.default(points=3).grids == {"cup": (0.0, 0.5, 1.0)}
    assert len(SweepPlan.default().points()) == 21


@pytest.mark.parametrize(("grids", "seeds", "match"), [
    ({}, (0,), "no method"),
    ({"cup": ()}, (0,), "empty"),
    ({"cup": (0.5,)}, (), "no seed"),
    ({"cup": (1.5,)}, (0,), r"\[0, 1\]"),
    ({"cup": (-0.01,)}, (0,), r"\[0, 1\]"),
    ({"cup": (math.nan,)}, (0,), "finite"),
    ({"sgd": (0.5,)}, (0,), "unknown method"),
])
def test_bad_plans_are_rejected(grids, seeds, match):
    with pytest.raises(ValueError, match=match):
        SweepPlan(grids, seeds)


def test_default_plan_rejects_an_empty_grid():
    with pytest.raises(ValueError, match="at least 1 point"):
        SweepPlan.default(points=0)


# --- the tiny sweep's tables -----------------------------------------------------------------------


def test_results_csv_has_the_required_columns_in_percent(tiny_blobs):
    experiment, results = tiny_blobs
    on_disk = pd.read_csv(experiment.root / "results.csv")
    # run_sweep returns the table it wrote (there, diverged_at_step is None for "never"; the CSV reads NaN).
    pd.testing.assert_frame_equal(on_disk, results.astype({"diverged_at_step": float}), check_dtype=False)
    pd.testing.assert_frame_equal(on_disk, experiment.results())
    assert list(on_disk.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert set(REQUIRED_COLUMNS) <= set(on_disk.columns)
    assert [f"acc_class_{k}" for k in range(5)] == list(on_disk.columns[len(RESULT_COLUMNS):])

    assert len(on_disk) == len(TINY_GRID) * 2
    assert sorted(set(on_disk["value"])) == list(TINY_GRID) and sorted(set(on_disk["seed"])) == [0, 1]
    assert (on_disk["method"] == "cup").all() and (on_disk["knob"] == "intensity").all()
    for column in PERCENT_COLUMNS:
        assert on_disk[column].between(0, 100).all(), column
    # Percent, not fractions: the model keeps most of the retained blobs whatever γ.
    assert (on_disk["retain_acc"] > 50).all() and (on_disk["test_acc"] > 50).all()
    np.testing.assert_allclose(on_disk["ua"], 100 - on_disk["forget_acc"])
    assert (on_disk["seconds"] >= 0).all() and (on_disk["steps"] > 0).all()
    assert on_disk["diverged_at_step"].isna().all()
    for checkpoint in on_disk["checkpoint"]:
        assert (experiment.root / checkpoint).is_file()


def test_references_csv_holds_the_original_and_the_oracle(tiny_blobs):
    experiment, _ = tiny_blobs
    references = pd.read_csv(experiment.root / "references.csv").set_index("role")
    assert sorted(references.index) == ["oracle", "original"]
    original, oracle = references.loc["original"], references.loc["oracle"]
    assert original["forget_acc"] > 90  # it was trained on the forget class ...
    assert oracle["forget_acc"] < 10  # ... the oracle never saw it
    assert oracle["retain_acc"] > 90 and original["retain_acc"] > 90
    assert oracle["ua"] == pytest.approx(100 - oracle["forget_acc"])


def test_avg_gap_is_the_mean_distance_to_the_oracle_row(tiny_blobs):
    experiment, results = tiny_blobs
    oracle = pd.read_csv(experiment.root / "references.csv").set_index("role").loc["oracle"]
    expected = np.mean([np.abs(results[name] - oracle[name]) for name in GAP_METRICS], axis=0)
    np.testing.assert_allclose(results["avg_gap"], expected, rtol=1e-12, atol=1e-12)
    assert results["avg_gap"].notna().all()


def test_the_cup_sweep_moves_the_model(tiny_blobs):
    experiment, results = tiny_blobs
    by_value = results[results["seed"] == 0].set_index("value")
    # γ = 0 keeps the forget class (no first-order change to the forget loss), γ = 1 forgets it.
    assert by_value.loc[0.0, "forget_acc"] > 90
    assert by_value.loc[1.0, "forget_acc"] < 10
    assert by_value[METRICS].drop_duplicates().shape[0] == len(TINY_GRID)  # every γ lands elsewhere
    original = experiment.load_reference_model("original").state_dict()
    weights = [experiment.load_model("cup", value, 0).state_dict() for value in TINY_GRID]
    for state in weights:
        assert any(not torch.equal(state[name], original[name]) for name in original)
    assert any(not torch.equal(weights[0][name], weights[-1][name]) for name in original)


# --- reproducibility and caching -------------------------------------------------------------------


@pytest.mark.slow
def test_same_config_and_seed_reproduce_in_two_caches(tmp_path):
    first, first_results = tiny_sweep(tmp_path / "one")
    second, second_results = tiny_sweep(tmp_path / "two")
    assert first.id == second.id and first.root != second.root
    pd.testing.assert_frame_equal(first_results.drop(columns="seconds"), second_results.drop(columns="seconds"))
    for value in TINY_GRID:
        assert (first.point_record("cup", value, 0)["weights_sha256"]
                == second.point_record("cup", value, 0)["weights_sha256"])


def test_rerun_computes_nothing(tmp_path):
    _, results = tiny_sweep(tmp_path)
    progress = Recorder()
    experiment, again = tiny_sweep(tmp_path, on_progress=progress)
    assert [report.computed for report in progress.reports] == [0] * (2 + len(TINY_GRID))
    assert [report.done for report in progress.reports] == list(range(1, 2 + len(TINY_GRID) + 1))
    assert progress.last.total == 2 + len(TINY_GRID) and progress.last.eta_s == 0.0
    pd.testing.assert_frame_equal(results, again)


def test_first_run_computes_everything(tmp_path):
    progress = Recorder()
    tiny_sweep(tmp_path, on_progress=progress)
    assert [report.computed for report in progress.reports] == list(range(1, 2 + len(TINY_GRID) + 1))
    assert [report.label for report in progress.reports[:2]] == ["original", "oracle"]


@pytest.mark.parametrize("engine, kept", [("sequential", [0.0, 0.25]), ("batched", [0.0, 0.25, 0.5, 0.75, 1.0])])
@pytest.mark.slow
def test_interrupted_sweep_keeps_finished_points_and_resumes_with_the_rest(tmp_path, engine, kept):
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    with pytest.raises(Interrupted):  # after the references and 2 points
        tiny_sweep(tmp_path, grid=grid, on_progress=Recorder(stop_after=2 + 2), engine=engine)
    experiment = Experiment(tiny_config(), tmp_path)
    finished = experiment.point_records()
    # The batched engine finishes a chunk's points together, and every one of them is on disk before the
    # first is reported.
    assert sorted(record["key"]["value"] for record in finished) == kept
    created = {record["key"]["value"]: record["created"] for record in finished}

    progress = Recorder()
    _, results = tiny_sweep(tmp_path, grid=grid, on_progress=progress, engine=engine)

    assert progress.last.computed == len(grid) - len(kept)
    assert [report.computed for report in progress.reports[:2 + len(kept)]] == [0] * (2 + len(kept))
    assert sorted(results["value"]) == list(grid)
    for value, timestamp in created.items():
        assert experiment.point_record("cup", value, 0)["created"] == timestamp  # not recomputed


@pytest.mark.slow
def test_a_broken_point_is_recomputed_alone(tmp_path):
    experiment, results = tiny_sweep(tmp_path)
    (experiment.point_entry("cup", 0.5, 0) / cache.RECORD_FILE).write_text("garbage")
    progress = Recorder()
    _, again = tiny_sweep(tmp_path, on_progress=progress)
    assert progress.last.computed == 1
    pd.testing.assert_frame_equal(results.drop(columns="seconds"), again.drop(columns="seconds"))


# --- random-subset forgetting ----------------------------------------------------------------------


@pytest.mark.slow
def test_random_subset_experiment(tmp_path):
    config = tiny_config(forget_fraction=0.1, forget_seed=1)
    experiment, results = tiny_sweep(tmp_path, config=config)
    assert config.forget.kind == "random"
    assert len(results) == len(TINY_GRID)
    assert results["forget_test_acc"].isna().all()
    for column in ["forget_acc", "retain_acc", "test_acc", "ua", "mia_efficacy", "avg_gap"]:
        assert results[column].notna().all(), column
    references = experiment.references()
    assert math.isnan(references.loc["oracle", "forget_test_acc"])
    # The oracle never saw the random 10 %, yet classifies most of it right: they are ordinary blob points.
    assert references.loc["oracle", "forget_acc"] > 80
    report = read_summary(experiment)
    assert "oracle" in report["hypervolume"]["objectives"][1]
    assert 0 < report["methods"]["cup"]["hypervolume"] <= 1


# --- the real default experiment -------------------------------------------------------------------


@pytest.mark.slow
def test_default_digits_experiment_spans_the_trade_off(tmp_path):
    experiment = Experiment(default_config("digits"), tmp_path)
    results = run_sweep(experiment, SweepPlan.default(), CPU)
    by_value = results.groupby("value").mean(numeric_only=True)
    assert len(by_value) == 21
    assert by_value.loc[0.0, "forget_acc"] >= 90
    assert by_value.loc[1.0, "forget_acc"] <= 20
    assert (by_value["retain_acc"] >= 95).all(), by_value["retain_acc"]


# --- rounding, the cost estimate, progress within a model ------------------------------------------


@pytest.mark.slow
def test_results_computed_under_an_older_schema_are_never_shown_nor_reused(tmp_path):
    """A cache from before the SVC attack and the authors' blobs (schema 1): its tables' rows and its records
    are refused, the experiment keeps its folder, and the next sweep recomputes everything in it."""
    import json

    from cup_core import cache as cache_module
    from cup_core.config import SCHEMA_VERSION
    from cup_core.sweep import missing_points

    experiment, table = tiny_sweep(tmp_path, grid=(0.5,))
    assert (table["schema"] == SCHEMA_VERSION).all()
    old = table.assign(schema=SCHEMA_VERSION - 1, mia_efficacy=12.5)
    (experiment.root / "results.csv").write_text(old.to_csv(index=False))
    references = pd.read_csv(experiment.root / "references.csv").assign(schema=SCHEMA_VERSION - 1, mia_efficacy=7.0)
    (experiment.root / "references.csv").write_text(references.to_csv(index=False))
    assert (experiment.results()["mia_efficacy"] != 12.5).all()  # rebuilt from the records, which are current
    assert (experiment.references()["mia_efficacy"] != 7.0).all()
    for entry in [experiment.point_entry("cup", 0.5, 0), experiment.reference_entry("original")]:
        record = json.loads((entry / cache_module.RECORD_FILE).read_text())
        (entry / cache_module.RECORD_FILE).write_text(json.dumps({**record, "schema": SCHEMA_VERSION - 1}))
    (experiment.root / "results.csv").write_text(old.to_csv(index=False))
    assert experiment.results().empty  # an old point is not a point
    assert missing_points(experiment, SweepPlan({"cup": (0.5,)})) == [("cup", 0.5, 0)]
    _, again = tiny_sweep(tmp_path, grid=(0.5,))
    assert experiment.point_record("cup", 0.5, 0)["schema"] == SCHEMA_VERSION and len(again) == 1
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), table.drop(columns="seconds"))


def test_equal_values_after_rounding_are_one_point():
    assert SweepPlan({"cup": (0.1, 0.1000000001, 0.2)}).grids == {"cup": (0.1, 0.2)}


def test_the_cost_estimate_counts_what_is_missing(tmp_path):
    from cup_core.cost import estimate_cost

    experiment = Experiment(tiny_config(), tmp_path)
    plan = SweepPlan({"cup": TINY_GRID})
    before = estimate_cost(experiment, plan, CPU)
    assert before.references == 2 and before.points == len(TINY_GRID)
    assert before.reference_seconds > 0 and before.point_seconds > 0
    assert before.total_seconds == pytest.approx(before.reference_seconds + 3 * before.point_seconds)
    sequential = estimate_cost(experiment, plan, CPU, settings=SweepSettings(engine="sequential"))  # one point at a time, timed so
    assert sequential.points == len(TINY_GRID) and sequential.point_seconds > 0
    run_sweep(experiment, SweepPlan({"cup": TINY_GRID[:1]}), CPU)
    after = estimate_cost(experiment, plan, CPU)
    assert (after.references, after.points, after.reference_seconds) == (0, len(TINY_GRID) - 1, 0.0)


def test_a_long_model_reports_progress_and_can_be_stopped_inside_it(tmp_path, monkeypatch):
    """Within a model, progress arrives per epoch or step, so that a cancel stops a long training at once (here
    with one core, so that the references train in turn)."""
    monkeypatch.setattr("cup_core.sweep.PULSE_S", 0.0)
    monkeypatch.setattr("cup_core.sweep._cores", lambda: 1)
    stopper = Recorder()

    def stop_in_the_oracle(progress: SweepProgress) -> None:
        stopper(progress)
        if progress.label.startswith("oracle: epoch 2/"):
            raise Interrupted

    experiment = Experiment(tiny_config(), tmp_path)
    with pytest.raises(Interrupted):
        run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU, stop_in_the_oracle)
    labels = [report.label for report in stopper.reports]
    epochs = TINY_TRAIN_EPOCHS
    assert labels[:2] == [f"original: epoch 1/{epochs}", f"original: epoch 2/{epochs}"] and "original" in labels
    assert cache.is_valid(experiment.reference_entry("original"), experiment.reference_key("original"))
    assert not experiment.reference_entry("oracle").exists()  # stopped inside it: nothing half-written
    steps = Recorder()
    run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU, steps)
    assert [r.label for r in steps.reports if "step" in r.label][:2] == ["cup 0.5 seed 0: step 1",
                                                                          "cup 0.5 seed 0: step 2"]
    assert steps.last.done == steps.last.total == 3


def _reference_weights(experiment: Experiment) -> dict[str, bytes]:
    return {role: experiment.reference_entry(role).joinpath(cache.WEIGHTS_FILE).read_bytes()
            for role in experiment.roles}


def test_the_oracle_trains_beside_the_original_with_the_weights_it_has_when_they_train_in_turn(tmp_path,
                                                                                              monkeypatch):
    """With two cores, a small model's oracle trains in a second thread while the original trains: the same
    weights and metrics as one after the other, and the progress still counts both."""
    trained_in: dict[str, str] = {}
    ensure_reference = sweep_module.compute.ensure_reference

    def recording(experiment, role, *args, **kwargs):
        trained_in[role] = threading.current_thread().name
        return ensure_reference(experiment, role, *args, **kwargs)

    monkeypatch.setattr(sweep_module.compute, "ensure_reference", recording)
    monkeypatch.setattr("cup_core.sweep._cores", lambda: 1)
    in_turn, _ = tiny_sweep(tmp_path / "in_turn")
    assert not trained_in["oracle"].startswith("cup-reference")
    monkeypatch.setattr("cup_core.sweep._cores", lambda: 2)
    progress = Recorder()
    threads = torch.get_num_threads()
    beside, _ = tiny_sweep(tmp_path / "beside", on_progress=progress)
    assert trained_in["oracle"].startswith("cup-reference") and trained_in["original"] == "MainThread"
    assert _reference_weights(beside) == _reference_weights(in_turn)
    assert all(beside.reference(role)["metrics"] == in_turn.reference(role)["metrics"] for role in beside.roles)
    assert [r.label for r in progress.reports if r.done <= 2 and "epoch" not in r.label] == ["original", "oracle"]
    assert torch.get_num_threads() == threads


def test_a_cancel_while_the_original_trains_stops_the_oracle_beside_it(tmp_path, monkeypatch):
    monkeypatch.setattr("cup_core.sweep.PULSE_S", 0.0)
    monkeypatch.setattr("cup_core.sweep._cores", lambda: 2)
    cancelled = threading.Event()
    ensure_reference = sweep_module.compute.ensure_reference

    def oracle_after_the_cancel(experiment, role, *args, **kwargs):
        if role == "oracle":  # the tiny oracle would otherwise finish before the original's second epoch could
            cancelled.wait(timeout=60)
        return ensure_reference(experiment, role, *args, **kwargs)

    def stop_in_the_original(progress: SweepProgress) -> None:
        if progress.label.startswith("original: epoch 2/"):
            cancelled.set()
            raise Interrupted

    monkeypatch.setattr(sweep_module.compute, "ensure_reference", oracle_after_the_cancel)

    experiment = Experiment(tiny_config(), tmp_path)
    threads = torch.get_num_threads()
    with pytest.raises(Interrupted):
        run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU, stop_in_the_original)
    assert not any(thread.name.startswith("cup-reference") for thread in threading.enumerate())  # waited for
    assert not experiment.reference_entry("oracle").exists()  # stopped inside it: nothing half-written
    assert torch.get_num_threads() == threads


def test_a_failure_of_the_oracle_beside_a_cancelled_original_is_logged(tmp_path, monkeypatch, caplog):
    """The sweep raises its own thread's error (the cancel); the oracle's own failure meanwhile is not lost."""
    monkeypatch.setattr("cup_core.sweep.PULSE_S", 0.0)
    monkeypatch.setattr("cup_core.sweep._cores", lambda: 2)
    cancelled = threading.Event()

    def failing_oracle(experiment, role, *args, **kwargs):
        cancelled.wait(timeout=60)
        raise OSError("No space left on device")

    def stop_in_the_original(progress: SweepProgress) -> None:
        if progress.label.startswith("original: epoch 2/"):
            cancelled.set()
            raise Interrupted

    ensure_reference = sweep_module.compute.ensure_reference
    monkeypatch.setattr(sweep_module.compute, "ensure_reference", lambda experiment, role, *args, **kwargs: (
        failing_oracle if role == "oracle" else ensure_reference)(experiment, role, *args, **kwargs))
    with pytest.raises(Interrupted):
        run_sweep(Experiment(tiny_config(), tmp_path), SweepPlan({"cup": (0.5,)}), CPU, stop_in_the_original)
    assert "training the oracle beside the original failed too: No space left on device" in caplog.text
