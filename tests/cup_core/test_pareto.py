"""Frontiers and hypervolume: hand-computed rectangles, a brute-force dominance oracle, the staircase."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pymoo.indicators.hv import HV

from cup_core.pareto import (
    HV_SCALE,
    REFERENCE_POINT,
    hypervolume,
    knee,
    non_dominated,
    objective_names,
    objectives,
    seed_mean,
    staircase,
)

from ._oracles import dominated_area, non_dominated_mask

NAN = math.nan


@pytest.mark.parametrize(("points", "area"), [
    pytest.param([[50, 40]], 50 * 40, id="one-rectangle"),
    pytest.param([[100, 100]], 100 * 100, id="the-whole-square"),
    # Two rectangles overlapping in [0, 40] x [0, 20]: 80·20 + 40·60 − 40·20.
    pytest.param([[80, 20], [40, 60]], 80 * 20 + 40 * 60 - 40 * 20, id="two-steps"),
    pytest.param([[80, 20], [40, 60], [30, 10], [40, 20]], 3200, id="dominated-points-add-nothing"),
    pytest.param([[80, 20], [80, 20], [40, 60], [40, 60]], 3200, id="duplicates-count-once"),
    pytest.param([[90, 10], [60, 50], [20, 90]], 90 * 10 + 60 * 40 + 20 * 40, id="three-steps"),
    pytest.param([[50, 40], [-5, 90], [70, -1]], 50 * 40, id="points-below-the-reference-add-nothing"),
    pytest.param([[50, 0], [0, 50]], 0, id="points-on-the-reference-lines-add-nothing"),
    pytest.param([[50, 40], [NAN, 90], [90, NAN]], 50 * 40, id="nan-rows-are-ignored"),
    pytest.param([[NAN, NAN]], 0, id="only-nan"),
    pytest.param(np.zeros((0, 2)), 0, id="empty"),
    pytest.param([], 0, id="empty-list"),
])
def test_hypervolume_is_the_dominated_area_over_100x100(points, area):
    assert hypervolume(np.asarray(points, dtype=float)) == pytest.approx(area / HV_SCALE, abs=1e-12)


def test_hypervolume_uses_the_given_reference_point():
    assert REFERENCE_POINT == (0.0, 0.0)
    assert hypervolume(np.array([[50.0, 40.0]]), reference=(10.0, 10.0)) == pytest.approx(40 * 30 / HV_SCALE)
    assert hypervolume(np.array([[50.0, 40.0]]), reference=(60.0, 0.0)) == 0.0


def test_hypervolume_does_not_modify_its_input():
    points = np.array([[80.0, 20.0], [40.0, 60.0]])
    hypervolume(points)
    np.testing.assert_array_equal(points, [[80.0, 20.0], [40.0, 60.0]])


@pytest.mark.parametrize("seed", range(10))
def test_hypervolume_matches_the_slab_oracle_on_random_sets(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-10, 100, size=(rng.integers(1, 30), 2))
    points[rng.random(len(points)) < 0.1] = NAN
    assert hypervolume(points) == pytest.approx(dominated_area(points) / HV_SCALE, abs=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_non_dominated_matches_the_brute_force_oracle(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    # Small integer grid: many ties, shared coordinates and exact duplicates.
    points = rng.integers(0, 6, size=(n, 2)).astype(float)
    points[rng.random(n) < 0.15, int(rng.integers(0, 2))] = NAN
    np.testing.assert_array_equal(non_dominated(points), non_dominated_mask(points))


def test_non_dominated_on_hand_made_points():
    points = np.array([[1, 2], [1, 2], [0, 0], [NAN, 5], [2, 1], [1, 1], [2, 0]], dtype=float)
    np.testing.assert_array_equal(non_dominated(points), [True, True, False, False, True, False, False])


def test_non_dominated_of_nothing_is_an_empty_mask():
    assert non_dominated(np.zeros((0, 2))).shape == (0,)
    np.testing.assert_array_equal(non_dominated(np.array([[NAN, 1.0]])), [False])


def test_staircase_walks_the_front_right_then_down():
    points = np.array([[80, 20], [40, 60], [30, 10], [60, 50]], dtype=float)
    xs, ys = staircase(points)
    np.testing.assert_array_equal(xs, [40, 60, 60, 80, 80])
    np.testing.assert_array_equal(ys, [60, 60, 50, 50, 20])


@pytest.mark.parametrize("seed", range(5))
def test_staircase_visits_every_front_point_monotonically(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 100, size=(25, 2))
    xs, ys = staircase(points)
    front = points[non_dominated_mask(points)]
    assert len(xs) == len(ys) == 2 * len(front) - 1
    assert (np.diff(xs) >= 0).all() and (np.diff(ys) <= 0).all()
    vertices = set(zip(xs[::2].tolist(), ys[::2].tolist()))
    assert vertices == set(map(tuple, front.tolist()))


def test_staircase_of_nothing_is_empty():
    xs, ys = staircase(np.zeros((0, 2)))
    assert xs.shape == ys.shape == (0,)


def _table(**columns) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_objectives_class_wise_are_retain_accuracy_and_ua():
    table = _table(retain_acc=[99.0, 90.0], ua=[5.0, 80.0], forget_acc=[95.0, 20.0])
    np.testing.assert_array_equal(objectives(table, "class"), [[99.0, 5.0], [90.0, 80.0]])
    assert objective_names("class") == ("retain accuracy (%)", "unlearning accuracy UA (%)")


def test_objectives_random_subset_penalise_distance_to_the_oracle_both_ways():
    table = _table(retain_acc=[99.0, 98.0, 97.0], ua=[0.0, 10.0, 60.0], forget_acc=[100.0, 90.0, 40.0])
    # The oracle forgets down to 90 %: 100 is under-forgetting, 40 is over-forgetting.
    np.testing.assert_allclose(objectives(table, "random", oracle_forget_acc=90.0),
                               [[99.0, 90.0], [98.0, 100.0], [97.0, 50.0]])
    assert "oracle" in objective_names("random")[1]


@pytest.mark.parametrize("oracle_forget_acc", [None, NAN])
def test_objectives_random_subset_need_the_oracle_forget_accuracy(oracle_forget_acc):
    table = _table(retain_acc=[99.0], ua=[10.0], forget_acc=[90.0])
    with pytest.raises(ValueError, match="oracle"):
        objectives(table, "random", oracle_forget_acc=oracle_forget_acc)


def test_seed_mean_averages_numeric_columns_per_value_and_counts_seeds():
    table = pd.DataFrame({
        "method": ["cup"] * 4, "knob": ["intensity"] * 4, "value": [0.0, 0.0, 1.0, 1.0], "seed": [0, 1, 0, 1],
        "retain_acc": [98.0, 96.0, 90.0, 92.0], "ua": [0.0, 10.0, 100.0, 90.0], "checkpoint": ["a", "b", "c", "d"],
    })
    means = seed_mean(table).set_index("value")
    assert means.loc[0.0, "retain_acc"] == 97.0 and means.loc[1.0, "ua"] == 95.0
    assert means.loc[0.0, "seeds"] == 2
    assert "checkpoint" not in means.columns and "seed" not in means.columns
    spread = seed_mean(table.iloc[:3], spread=("ua",)).set_index("value")  # one seed at 1.0
    assert spread.loc[0.0, "ua_std"] == 5.0 and spread.loc[1.0, "ua_std"] == 0.0  # over seeds, ddof 0
    assert list(spread["seeds"]) == [2, 1] and spread.loc[1.0, "ua"] == 100.0


# --- the normalised hypervolume (issue 12) -----------------------------------------------------------

from cup_core.pareto import (Normalisation, exclusive_contributions, hypervolume_2d, normalisation,  # noqa: E402
                             normalised_hypervolume)


def test_normalisation_takes_ideal_and_nadir_from_the_unions_non_dominated_points():
    first = np.array([[90.0, 10.0], [80.0, 50.0], [10.0, 5.0]])  # the last one is dominated
    second = np.array([[60.0, 90.0]])
    norm = normalisation([first, second], intervals=4)
    assert norm.ideal == (90.0, 90.0) and norm.nadir == (60.0, 10.0)
    assert norm.reference_offset == pytest.approx(1.25)
    assert norm.reference == pytest.approx((90 - 1.25 * 30, 90 - 1.25 * 80))


def test_normalised_hypervolume_by_hand():
    norm = Normalisation(ideal=(100.0, 100.0), nadir=(0.0, 0.0), intervals=1)  # reference 2 in each coordinate
    # (100, 0) -> (0, 1): a 2 x 1 rectangle; (50, 50) -> (0.5, 0.5): adds 0.5 x 0.5 beyond it... by hand:
    # union of [0, 2] x [1, 2] and [0.5, 2] x [0.5, 2] = 2 + 1.5 * 0.5 = 2.75
    assert normalised_hypervolume(np.array([[100.0, 0.0], [50.0, 50.0]]), norm) == pytest.approx(2.75)
    assert normalised_hypervolume(np.array([[100.0, 100.0]]), norm) == pytest.approx(4.0)  # the ideal: (1 + 1/H)²
    assert normalised_hypervolume(np.zeros((0, 2)), norm) == 0.0


def test_a_flat_front_still_normalises():
    norm = normalisation([np.array([[98.5, 100.0], [98.5, 100.0]])], intervals=5)
    assert norm.ideal[0] - norm.nadir[0] >= 1.0 and norm.ideal[1] - norm.nadir[1] >= 1.0


def test_exclusive_contributions_are_what_each_point_adds():
    norm = Normalisation(ideal=(100.0, 100.0), nadir=(0.0, 0.0), intervals=1)
    points = np.array([[100.0, 0.0], [50.0, 50.0], [40.0, 40.0]])  # the last one is dominated: contributes 0
    shares = exclusive_contributions(points, norm)
    assert shares[2] == pytest.approx(0.0)
    assert shares[1] == pytest.approx(2.75 - 2.56)  # without it, (40, 40) -> (0.6, 0.6) covers part: 2 + 1.96 − 1.4
    assert shares[0] == pytest.approx(2.75 - 1.5 * 1.5)


@pytest.mark.parametrize("seed", range(5))
def test_the_bootstraps_2d_hypervolume_equals_pymoos(seed):
    rng = np.random.default_rng(seed)
    z = rng.uniform(0, 1.3, size=(int(rng.integers(1, 15)), 2))
    z[0] = [np.nan, 0.2]
    reference = np.array([1.2, 1.2])
    finite = z[np.isfinite(z).all(axis=1) & (z < reference).all(axis=1)]
    expected = HV(ref_point=reference)(finite) if len(finite) else 0.0
    assert hypervolume_2d(z, reference) == pytest.approx(expected, abs=1e-12)


def test_knee_is_the_front_point_nearest_the_ideal():
    points = np.array([[100.0, 0.0], [99.0, 90.0], [90.0, 100.0], [80.0, 50.0]])
    assert knee(points) == 1  # scaled distances to (100, 100): (0, 1), (0.1, 0.1), (1, 0)
    assert knee(np.zeros((0, 2))) is None


def test_a_front_of_one_point_takes_its_nadir_from_the_methods_own_fronts():
    """The blob toy: CUP reaches (98.66, 100), which dominates every other method's points; a 1-point box
    around it would give every other method 0."""
    best = np.array([[98.66, 100.0], [98.0, 50.0]])
    other = np.array([[90.0, 99.0], [97.0, 60.0]])
    norm = normalisation([best, other], intervals=1)
    assert norm.degenerate and norm.to_dict()["degenerate"] is True
    assert norm.ideal == (98.66, 100.0)
    assert norm.nadir == (90.0, 60.0)  # the worst of the methods' own non-dominated points ((98, 50) is dominated)
    assert normalised_hypervolume(other, norm) > 0
    spread = normalisation([best, np.array([[99.0, 40.0]])], intervals=1)
    assert not spread.degenerate and spread.nadir == (98.0, 40.0)  # 98.66 clamped to MIN_SPAN below 99
