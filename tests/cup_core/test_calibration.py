"""Knob calibration (calibration.py): the search on fake methods whose response to their knob is known,
the grid laid from it, and a real calibrated sweep that moves the model where the fixed grid does not."""

import math

import pytest

from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep
from cup_core.calibration import MAX_RUNS, Criteria, Response, budget, search, values
from cup_core.methods import Method, get_method
from cup_core.sweep import cached_calibrations, resolve_plan


def fake(scale="log", knob_range=(1e-5, 3e-4), bounds=(0.0, float("inf"))) -> Method:
    return Method("fake", "Fake", "learning rate", knob_range, lambda v: None, bounds, scale=scale,
                  knob_is_lr=scale == "log", calibrate=True)


def threshold_response(moves_from: float, upper_from: float, log: list | None = None):
    """A method that starts moving the model at `moves_from` and forgets (or breaks) from `upper_from` on."""
    def respond(value: float) -> Response:
        if log is not None:
            log.append(value)
        return Response(moved=value >= moves_from, upper=value >= upper_from, seconds=1.0)
    return respond


def test_search_brackets_both_boundaries_of_a_log_knob_within_its_runs():
    runs = []
    calibration = search(fake(), threshold_response(4e-5, 2e-3, runs), MAX_RUNS)
    assert calibration.status == "calibrated"
    assert len(runs) == len(calibration.runs) <= MAX_RUNS
    low, high = calibration.range
    assert low < 4e-5 <= high and 2e-3 <= high  # the grid spans "barely moves" to "forgotten"
    assert math.log10(high / 2e-3) <= 0.5  # the upper end found to half a decade
    assert math.log10(4e-5 / low) <= 0.6  # and the lower one
    assert calibration.seconds == pytest.approx(len(runs))


def test_search_expands_beyond_the_default_range_when_the_knob_does_too_little():
    calibration = search(fake(), threshold_response(1e-3, 1e-2), MAX_RUNS)  # the default top 3e-4 does nothing
    assert calibration.status == "calibrated"
    assert calibration.range[1] >= 1e-2 and calibration.range[0] < 1e-3


def test_search_expands_downwards_when_the_bottom_already_moves():
    calibration = search(fake(), threshold_response(1e-7, 1e-4), MAX_RUNS)
    assert calibration.range[0] < 1e-5  # below the default bottom
    assert min(calibration.runs) < 1e-5


def test_a_method_that_never_moves_is_reported_as_such():
    calibration = search(fake(), lambda v: Response(moved=False, upper=False, seconds=0.5), MAX_RUNS)
    assert calibration.status == "no_effect"


def test_a_method_that_moves_but_never_forgets_has_its_own_maximum_as_the_top():
    calibration = search(fake(), threshold_response(1e-5, math.inf), MAX_RUNS)
    assert calibration.status == "no_upper"
    assert calibration.range[1] == pytest.approx(3e-4 * 100)  # two decades of expansion


def test_a_linear_knob_from_zero_keeps_zero_and_grows_its_top():
    method = fake(scale="linear", knob_range=(0.0, 2.0))
    calibration = search(method, threshold_response(0.0, 5.0), MAX_RUNS)
    assert 0.0 in calibration.runs
    assert calibration.range[0] == 0.0 and 5.0 <= calibration.range[1] <= 8.0


def test_the_search_respects_the_knobs_bounds():
    method = fake(knob_range=(0.01, 1.0), bounds=(0.0, 1.0))  # SalUn's share
    calibration = search(method, threshold_response(0.05, math.inf), MAX_RUNS)
    assert max(calibration.runs) <= 1.0


def test_a_run_not_cached_leaves_the_replay_pending_with_the_runs_found():
    answers = iter([Response(True, False, 1.0), Response(False, False, 1.0)])
    calibration = search(fake(), lambda v: next(answers, None), MAX_RUNS)
    assert calibration.status == "pending" and len(calibration.runs) == 2


def test_the_search_is_deterministic():
    respond = threshold_response(3e-5, 5e-4)
    assert search(fake(), respond, 6) == search(fake(), respond, 6)


@pytest.mark.parametrize("points", [2, 4, 5, 11, 21])
def test_values_are_the_runs_plus_gap_fills_inside_the_range(points):
    method = fake()
    calibration = search(method, threshold_response(4e-5, 2e-3), budget(points))
    chosen = values(method, calibration, points)
    assert len(chosen) == points == len(set(chosen))
    assert set(calibration.runs) <= set(chosen)
    fills = set(chosen) - set(calibration.runs)
    assert all(calibration.range[0] <= v <= calibration.range[1] for v in fills)


def test_budget_is_half_the_points_at_most_eight():
    assert [budget(n) for n in (2, 4, 11, 21, 41)] == [2, 2, 6, 8, 8]


def test_criteria_measure_against_the_original_and_the_oracle():
    measure = Criteria(original_ua=0.0, original_retain=99.0, target_ua=100.0, chance=10.0)
    assert not measure.respond({"ua": 1.0, "retain_acc": 98.5}, False, 0.0).moved
    assert measure.respond({"ua": 3.0, "retain_acc": 99.0}, False, 0.0).moved
    assert measure.respond({"ua": 96.0, "retain_acc": 98.0}, False, 0.0).upper  # forgotten
    assert measure.respond({"ua": 20.0, "retain_acc": 40.0}, False, 0.0).upper  # retain collapsed
    assert measure.respond({"ua": 1.0, "retain_acc": 99.0}, True, 0.0).upper  # diverged
    random_subset = Criteria(original_ua=0.0, original_retain=99.0, target_ua=2.5, chance=10.0)
    assert random_subset.respond({"ua": 0.7, "retain_acc": 99.0}, False, 0.0).moved  # a small span: one sample


@pytest.mark.slow
def test_calibrated_ga_moves_the_blob_toy_where_the_fixed_grid_does_not(tmp_path):
    experiment = Experiment(default_config("blobs"), tmp_path)
    device = resolve_device("cpu")
    fixed = run_sweep(experiment, SweepPlan.default(("ga",), 4, calibrate=False), device)
    plan = SweepPlan.default(("ga",), 6)
    table = run_sweep(experiment, plan, device)
    resolved = resolve_plan(experiment, plan)
    assert not resolved.calibrate  # every search answered by the cache
    grid = set(resolved.grids["ga"])
    calibrated = table[(table["method"] == "ga") & table["value"].isin(grid)]
    assert len(calibrated) == 6
    fixed_span = fixed.loc[fixed["method"] == "ga", "ua"].agg(lambda s: s.max() - s.min())
    assert calibrated["ua"].max() - calibrated["ua"].min() > max(50.0, 5 * fixed_span)
    replayed = cached_calibrations(experiment, plan)["ga"]
    assert replayed.status != "pending" and set(replayed.runs) <= grid  # the search's runs are grid points
    assert get_method("ga").calibrate and not get_method("cup").calibrate


def test_a_method_at_its_upper_end_from_the_first_run_still_gets_all_its_values():
    """A broken original (at chance) is 'forgotten' at once: one run decides, and the grid still has its size."""
    method = fake()
    calibration = search(method, lambda v: Response(moved=False, upper=True, seconds=0.1), budget(4))
    chosen = values(method, calibration, 4)
    assert len(chosen) == 4 and calibration.range[0] <= min(chosen) and max(chosen) <= calibration.range[1]


def decreasing() -> Method:
    """SSD's kind of knob: a larger value does less."""
    return Method("fake", "Fake", "selection weighting", (1.0, 100.0), lambda v: None, (1.0, float("inf")),
                  scale="log", calibrate=True, decreasing=True)


def test_a_decreasing_knob_is_searched_backwards_and_reported_in_its_own_values():
    """Moves the model below α = 300, forgets below α = 5: the range spans both, in α, low end first."""
    runs = []

    def respond(value: float) -> Response:
        runs.append(value)
        return Response(moved=value <= 300.0, upper=value <= 5.0, seconds=1.0)

    calibration = search(decreasing(), respond, MAX_RUNS)
    assert calibration.status == "calibrated"
    assert list(calibration.runs) == runs and runs[0] == 1.0  # the strongest end first, as a top is
    low, high = calibration.range
    assert 1.0 <= low <= 5.0 and 300.0 < high  # from "forgotten" to "barely moves"
    assert math.log10(5.0 / low) <= 0.5 and math.log10(high / 300.0) <= 0.6
    grid = values(decreasing(), calibration, 11)
    assert len(grid) == 11 and list(grid) == sorted(grid) and set(calibration.runs) <= set(grid)
    assert all(decreasing().bounds[0] <= v for v in grid)


def test_a_decreasing_knob_that_never_forgets_stops_at_its_strongest_bound():
    calibration = search(decreasing(), lambda v: Response(moved=v <= 10.0, upper=False, seconds=0.0), MAX_RUNS)
    assert calibration.status == "no_upper"
    assert calibration.range[0] == 1.0 and calibration.range[1] > 10.0


def test_a_decreasing_knob_must_be_log_spaced():
    with pytest.raises(ValueError, match="log-spaced"):
        Method("fake", "Fake", "w", (1.0, 10.0), lambda v: None, scale="linear", decreasing=True)


def test_a_method_that_forgets_even_at_its_weakest_value_is_saturated_not_calibrated():
    """WS on the blob toy: its first run (the default top) and its anchored bottom (w = 0) both forget."""
    method = fake(scale="linear", knob_range=(0.0, 2.0))
    calibration = search(method, lambda v: Response(moved=True, upper=True, seconds=0.1), MAX_RUNS)
    assert calibration.status == "saturated" and calibration.range == (0.0, 2.0)
    assert "weakest" in calibration.to_dict()["why"]
    assert len(values(method, calibration, 6)) == 6


def test_a_knob_that_forgets_less_as_it_grows_is_reported_as_reverse():
    """ℓ1 on the blob toy: strength 0 forgets most; more strength keeps the model closer to the original."""
    def respond(value: float) -> Response:
        progress = max(0.0, 0.5 - 100 * value)
        return Response(moved=True, upper=False, seconds=0.1, progress=progress)
    calibration = search(fake(scale="linear", knob_range=(0.0, 4e-3)), respond, MAX_RUNS)
    assert calibration.status == "reverse"
    assert "less" in calibration.to_dict()["why"]
    assert search(fake(), threshold_response(4e-5, 1.0), MAX_RUNS).status == "no_upper"  # progress unknown: not reverse


def test_criteria_report_the_progress_towards_the_target():
    measure = Criteria(original_ua=0.0, original_retain=99.0, target_ua=40.0, chance=10.0)
    assert measure.respond({"ua": 10.0, "retain_acc": 98.0}, False, 0.0).progress == pytest.approx(0.25)
