"""Per-step records (Learn page): geometry in the gradients' plane, losses, accuracies, and a re-run that
reproduces the cached point exactly."""

from __future__ import annotations

import math

import pytest
import torch

from cup_core import SweepPlan, run_sweep
from cup_core.regions import decision_regions, experiment_regions
from cup_core.rules import CUP
from cup_core.trajectory import pivot_directions, plane_geometry, trajectory

from ._experiments import CPU, tiny_config


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    from cup_core import Experiment

    experiment = Experiment(tiny_config(), tmp_path_factory.mktemp("trajectory"))
    run_sweep(experiment, SweepPlan({"cup": (0.0, 0.7, 1.0)}), CPU)
    return experiment


def test_plane_geometry_of_a_known_step():
    g_retain = torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)
    g_forget = torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)  # 135° from g_retain
    direction = CUP(intensity=0.5)(g_forget=g_forget, g_retain=g_retain)
    geometry = plane_geometry(g_forget, g_retain, direction)
    assert geometry["phi"] == pytest.approx(3 * math.pi / 4)
    assert geometry["theta"] == pytest.approx(math.pi / 4)
    assert geometry["plane"]["g_retain"] == pytest.approx([2.0, 0.0])
    assert geometry["plane"]["g_forget"] == pytest.approx([-1.0, 1.0])
    assert geometry["off_plane"] == pytest.approx(0.0, abs=1e-12)
    assert geometry["psi"] == pytest.approx(0.5 * geometry["theta"], rel=1e-5)  # ψ = γ·Θ
    # γ = 0.5 bisects the cone: equal angles to both gradients.
    assert geometry["cos_direction_forget"] == pytest.approx(geometry["cos_direction_retain"], rel=1e-5)


def test_pivot_directions_from_plane_coordinates_equal_cup_in_full_space():
    torch.manual_seed(0)
    g_forget, g_retain = torch.randn(50, dtype=torch.float64), torch.randn(50, dtype=torch.float64)
    geometry = plane_geometry(g_forget, g_retain, CUP(intensity=0.3)(g_forget=g_forget, g_retain=g_retain))
    for value, planar in zip((0.0, 0.3, 1.0), pivot_directions(geometry["plane"], [0.0, 0.3, 1.0])):
        full = CUP(intensity=value)(g_forget=g_forget, g_retain=g_retain)
        assert math.hypot(*planar) == pytest.approx(full.norm().item(), rel=1e-6)
    assert pivot_directions(geometry["plane"], [0.3])[0] == pytest.approx(geometry["plane"]["direction"], rel=1e-6)


def test_trajectory_records_every_step_and_reproduces_the_cached_point(blobs):
    run = trajectory(blobs, "cup", 0.7, 0)
    record = blobs.point_record("cup", 0.7, 0)
    assert run["matches_cached_point"] is True
    assert len(run["steps"]) == record["steps"] and len(run["path"]) == record["steps"] + 1
    assert run["path"][-1]["forget_acc"] == pytest.approx(record["metrics"]["forget_acc"])
    assert run["path"][0]["forget_acc"] == pytest.approx(blobs.reference("original")["metrics"]["forget_acc"])
    for step in run["steps"]:
        assert step["cos_direction_forget"] >= -1e-4 and step["cos_direction_retain"] >= -1e-4  # CUP: the dual cone
        assert step["off_plane"] <= 1e-5 * max(step["norm_direction"], 1e-12)
    assert trajectory(blobs, "cup", 0.7, 0) == run  # the second call reads the cached JSON


@pytest.mark.parametrize("value", [0.0, 0.7, 1.0])
def test_the_per_step_retain_loss_changes_add_up_to_the_runs_change(blobs, value):
    """Σ_k [L_r(θ_k+1) − L_r(θ_k)] = L_r(cached point) − L_r(original), L_r the cross-entropy over the whole
    retain set, computed here from the two models alone: no step is lost, counted twice or measured out of turn."""
    from torch.nn import functional as F

    from cup_core.data import load_unlearning_data

    retain = load_unlearning_data(blobs.config).retain

    @torch.no_grad()
    def retain_loss(model):
        return float(F.cross_entropy(model.eval()(retain.x), retain.y))

    run = trajectory(blobs, "cup", value, 0)
    before = retain_loss(blobs.load_reference_model("original"))
    after = retain_loss(blobs.load_model("cup", value, 0))
    changes = [step["retain_loss_change"] for step in run["steps"]]
    assert len(changes) == blobs.point_record("cup", value, 0)["steps"] and all(map(math.isfinite, changes))
    assert abs(after - before) > 1e-3  # the run moved the retain loss: the sum has something to add up to
    assert math.fsum(changes) == pytest.approx(after - before, abs=1e-5)
    assert run["steps"][0]["retain_loss"] == pytest.approx(before, abs=1e-6)  # full batch: the step's own L_r


def test_records_of_an_older_format_are_recorded_again(blobs):
    import json

    from cup_core.trajectory import _entry

    run = trajectory(blobs, "cup", 1.0, 0)
    path = _entry(blobs, "cup", 1.0, 0)
    older = {**run, "format": 1, "steps": [{k: v for k, v in s.items() if k != "psi"} for s in run["steps"]]}
    path.write_text(json.dumps(older))
    assert trajectory(blobs, "cup", 1.0, 0) == run


def test_a_schema_bump_or_other_weights_record_the_steps_again(blobs, monkeypatch):
    """The records are keyed by the metrics' schema and the point's weights: a file written under another
    schema (today's before a bump) or for other weights is stale and recorded again, never returned."""
    import json

    from cup_core import trajectory as module
    from cup_core.config import SCHEMA_VERSION
    from cup_core.trajectory import _entry

    run = trajectory(blobs, "cup", 0.0, 0)
    record = blobs.point_record("cup", 0.0, 0)
    assert run["key"]["schema"] == SCHEMA_VERSION and run["key"]["weights_sha256"] == record["weights_sha256"]
    path = _entry(blobs, "cup", 0.0, 0)
    marked = {**run, "steps": run["steps"][:1]}  # what a stale file would wrongly show
    for stale_key in ({**run["key"], "schema": SCHEMA_VERSION - 1}, {**run["key"], "weights_sha256": "0" * 64}):
        path.write_text(json.dumps({**marked, "key": stale_key}))
        assert trajectory(blobs, "cup", 0.0, 0) == run
    monkeypatch.setattr(module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)  # a future bump: today's file is stale
    path.write_text(json.dumps(marked))
    bumped = trajectory(blobs, "cup", 0.0, 0)
    assert bumped["key"]["schema"] == SCHEMA_VERSION + 1 and bumped["steps"] == run["steps"]


def test_same_run_allows_what_each_engine_and_optimiser_can_differ_by():
    from cup_core.trajectory import same_run

    cached = {"w": torch.tensor([0.5, -0.3, 0.0])}
    accuracies = {"forget_acc": 0.0, "retain_acc": 98.4}
    metrics = {**accuracies, "test_acc": 97.0}

    def shifted(by):
        return {"w": cached["w"] + torch.tensor([0.0, by, 0.0])}

    assert same_run("sequential", "adam", 0.01, shifted(0.0), cached, accuracies, metrics)
    assert not same_run("sequential", "sgd", 0.01, shifted(1e-7), cached, accuracies, metrics)  # bitwise
    assert same_run("batched", "sgd", 0.01, shifted(5e-6), cached, accuracies, metrics)
    assert not same_run("batched", "sgd", 0.01, shifted(1.3e-3), cached, accuracies, metrics)
    # Adam: a rounding-decided coordinate may end 0.13·lr away (measured on the Learn toy); one full step may not.
    assert same_run("batched", "adam", 0.01, shifted(1.3e-3), cached, accuracies, metrics)
    assert not same_run("batched", "adam", 0.01, shifted(0.02), cached, accuracies, metrics)
    assert not same_run("batched", "adam", 0.01, shifted(1.3e-3), cached, {**accuracies, "retain_acc": 98.3}, metrics)


def test_decision_regions_follow_the_model(blobs):
    model = blobs.load_reference_model("original")
    grid = decision_regions(model, (-6.0, 6.0), (-6.0, 6.0), resolution=40)
    assert grid.shape == (40, 40) and set(grid.ravel()) <= set(range(5))
    regions = experiment_regions(blobs, "cup", [0.0, 1.0], resolution=40)
    forget_class = blobs.config.forget.forget_class
    original_area = (regions["references"]["original"] == forget_class).mean()
    assert original_area > 0.05
    assert (regions["points"][1.0] == forget_class).mean() < original_area  # forgetting shrinks the class's region
