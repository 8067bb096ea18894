"""CAGrad: against a brute-force grid oracle of the authors' formulation, duality, and its degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cup_core.rules import MGDA, CAGrad, NegGradPlus

from .._asserts import assert_non_conflicting, assert_positively_homogeneous, cosine
from ._adversarial import SCALES, pair, scaled

HYPOTHESIS = settings(deadline=None, max_examples=80, derandomize=True)

PAIRS = {
    "dim": st.integers(min_value=2, max_value=50),
    "seed": st.integers(min_value=0, max_value=2**31 - 1),
    "phi": st.floats(min_value=0.0, max_value=math.pi - 0.05),
    "exponent_f": st.floats(min_value=-2.0, max_value=2.0),
    "exponent_r": st.floats(min_value=-2.0, max_value=2.0),
}
PREFERENCES = st.floats(min_value=0.02, max_value=0.98)
CS = st.floats(min_value=0.0, max_value=5.0)


def _generated(dim, seed, phi, exponent_f, exponent_r):
    return pair(phi, norm_forget=10.0**exponent_f, norm_retain=10.0**exponent_r, dim=dim, seed=seed)


def _reference(tasks: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """The authors' CAGrad (rescale=1) for task gradients `tasks` (2, P), in numpy: g0 is their *mean*,
    F(w) = <g_w, g0> + c·‖g0‖·‖g_w‖ over the Gram matrix, d = (g0 + c‖g0‖·g_w/‖g_w‖) / (1 + c²).

    Their SLSQP is replaced by a brute-force grid over w (2001 points on [0, 1], then twice 2001 points
    around the best, down to a spacing of ~1e-10), and their 1e-8s are left out. Returns (d, min F).
    """
    mean = tasks.mean(axis=0)  # (P,)
    gram = tasks @ tasks.T  # (2, 2)
    linear = tasks @ mean  # (2,)
    radius = c * np.linalg.norm(mean)

    def objective(w: np.ndarray) -> np.ndarray:
        square = w * w * gram[0, 0] + 2 * w * (1 - w) * gram[0, 1] + (1 - w) ** 2 * gram[1, 1]
        return w * linear[0] + (1 - w) * linear[1] + radius * np.sqrt(np.maximum(square, 0.0))

    grid = np.linspace(0.0, 1.0, 2001)
    best = grid[objective(grid).argmin()]
    for width in (1 / 2000, 1 / 2000**2):
        grid = np.linspace(max(0.0, best - width), min(1.0, best + width), 2001)
        best = grid[objective(grid).argmin()]
    combined = best * tasks[0] + (1 - best) * tasks[1]  # (P,) g_w
    norm = np.linalg.norm(combined)
    direction = mean + (radius / norm * combined if norm > 0 else 0.0)
    return direction / (1 + c * c), float(objective(grid).min())


def _tasks(g_forget: torch.Tensor, g_retain: torch.Tensor, preference: float) -> np.ndarray:
    """H = (2λ·g_forget, 2(1 − λ)·g_retain): their mean is the rule's g0 = λ·g_forget + (1 − λ)·g_retain."""
    return np.stack([2 * preference * g_forget.numpy(), 2 * (1 - preference) * g_retain.numpy()])


# --- the oracle ---------------------------------------------------------------------------------------


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=0.0, max_value=math.pi - 0.2)}, preference=PREFERENCES, c=CS)
def test_property_matches_the_grid_oracle(dim, seed, phi, exponent_f, exponent_r, preference, c):
    """Away from anti-parallel gradients, where d depends steeply on w, d agrees with the oracle's to 1e-4 of
    its size (over 3,000 random draws the worst disagreement, from the grid's spacing, was 2e-6)."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    direction = CAGrad(preference, c)(g_forget=g_forget, g_retain=g_retain).numpy()
    expected, _ = _reference(_tasks(g_forget, g_retain, preference), c)
    mean = preference * g_forget.numpy() + (1 - preference) * g_retain.numpy()
    size = np.linalg.norm(mean) * (1 + c) / (1 + c * c)  # ‖d‖ ≤ this
    assert np.linalg.norm(direction - expected) <= 1e-4 * size


@pytest.mark.parametrize("c", [0.25, 0.5, 0.9, 2.0])
@pytest.mark.parametrize("name", ["conflicting", "aligned", "orthogonal", "very-unequal-norms", "random-large"])
def test_half_preference_is_the_authors_cagrad_on_the_two_gradients(name, c):
    """At λ = 1/2 the oracle's tasks are g_forget and g_retain themselves and g0 their mean, as in their code."""
    g_forget, g_retain = scaled(name, 1.0, torch.float64)
    direction = CAGrad(0.5, c)(g_forget=g_forget, g_retain=g_retain).numpy()
    expected, _ = _reference(np.stack([g_forget.numpy(), g_retain.numpy()]), c)
    size = np.linalg.norm(expected) + 1e-300
    assert np.linalg.norm(direction - expected) <= 1e-4 * size


@HYPOTHESIS
@given(**PAIRS, preference=PREFERENCES, c=CS)
# Found by an older hypothesis: parallel gradients and a tiny c put d* on the ball's boundary, up to rounding.
@example(dim=2, seed=0, phi=0.0, exponent_f=0.0, exponent_r=0.0, preference=0.5, c=8.58306884765625e-06)
def test_property_is_optimal_by_duality(dim, seed, phi, exponent_f, exponent_r, preference, c):
    """d* = (1 + c²)·d is feasible, ‖d* − g0‖ ≤ c‖g0‖, and its worse-task improvement min_i <G_i, d*> equals
    the oracle's min F (strong duality): so d* solves the primal problem, whatever w the rule picked.

    Holds near anti-parallel gradients too, where d itself is ill-conditioned."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    scaled = CAGrad(preference, c)(g_forget=g_forget, g_retain=g_retain).numpy() * (1 + c * c)  # d*
    tasks = _tasks(g_forget, g_retain, preference)
    mean = tasks.mean(axis=0)
    # d* is rounded relative to ‖g0‖, not to the ball's radius c‖g0‖: a few ulps of ‖g0‖ on top.
    assert np.linalg.norm(scaled - mean) <= (c * (1 + 1e-12) + 1e-15) * np.linalg.norm(mean) + 1e-300
    _, dual = _reference(tasks, c)
    primal = float((tasks @ scaled).min())
    size = np.linalg.norm(tasks, axis=1).max() * np.linalg.norm(mean) * (1 + c)
    assert primal <= dual + 1e-12 * size  # weak duality: the grid's F is an upper bound
    assert primal >= dual - 1e-9 * size


# --- the defining properties -------------------------------------------------------------------------


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=math.pi / 2, max_value=math.pi - 0.05)},
       preference=PREFERENCES, c=CS)
def test_property_conflict_averse(dim, seed, phi, exponent_f, exponent_r, preference, c):
    """On conflicting gradients, d* = (1 + c²)·d improves the worse task at least as much as g0 does, and
    <d, g0> ≥ 0 for every c (for c ≤ 1 even ≥ (1 − c)‖g0‖²/(1 + c²)). d is the rule's output; d* is the
    step before the authors' final 1/(1 + c²), which, applied to a positive worst-case improvement,
    could fall below g0's: the property is about the direction's geometry, not its length."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    direction = CAGrad(preference, c)(g_forget=g_forget, g_retain=g_retain)
    g1, g2 = preference * g_forget, (1 - preference) * g_retain
    mean = g1 + g2
    rounding = 1e-12 * (g1.norm().item() + g2.norm().item()) ** 2 * (1 + c)
    worst = min(torch.dot(direction, g).item() for g in (g1, g2)) * (1 + c * c)
    assert worst >= min(torch.dot(mean, g).item() for g in (g1, g2)) - rounding
    along = torch.dot(direction, mean).item()
    assert along >= max(1 - c, 0.0) * mean.norm().item() ** 2 / (1 + c * c) - rounding


@HYPOTHESIS
@given(**PAIRS, preference=PREFERENCES, c=st.floats(min_value=1.0, max_value=5.0))
def test_property_c_at_least_one_descends_both_losses(dim, seed, phi, exponent_f, exponent_r, preference, c):
    """For c ≥ 1 the ball holds d = 0, so the optimal worse-task improvement is ≥ 0: d conflicts with neither."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    assert_non_conflicting(CAGrad(preference, c), g_forget, g_retain, tolerance=1e-9)


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=0.0, max_value=math.pi)}, preference=st.floats(0.0, 1.0))
def test_property_c_zero_is_the_weighted_mean_exactly(dim, seed, phi, exponent_f, exponent_r, preference):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    direction = CAGrad(preference, c=0.0)(g_forget=g_forget, g_retain=g_retain)
    assert torch.equal(direction, preference * g_forget + (1 - preference) * g_retain)
    # NegGrad+ with β = 1 − λ is the same combination, up to the rounding of 1 − (1 − λ)
    torch.testing.assert_close(direction, NegGradPlus(beta=1 - preference)(g_forget=g_forget, g_retain=g_retain),
                               rtol=1e-15, atol=1e-15 * (g_forget.norm() + g_retain.norm()).item())


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=0.1, max_value=math.pi - 0.1)}, preference=PREFERENCES)
def test_property_large_c_turns_towards_mgda(dim, seed, phi, exponent_f, exponent_r, preference):
    """As c → ∞ the radius term dominates F, w tends to the min-norm point, and d's direction to MGDA's."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    direction = CAGrad(preference, c=1e8)(g_forget=g_forget, g_retain=g_retain)
    mgda = MGDA(preference)(g_forget=g_forget, g_retain=g_retain)
    assert cosine(direction, mgda) >= 1 - 1e-6


# --- degenerate inputs, as the docstring says --------------------------------------------------------

C_VALUES = (0.0, 0.5, 1.0, 3.0)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_a_zero_task_gives_the_weighted_mean(scale):
    for name in ("zero-forget", "zero-retain", "random-large", "conflicting"):
        g_forget, g_retain = scaled(name, scale, torch.float64)
        for c in C_VALUES:
            for preference in (0.0, 0.5, 1.0) if name.startswith("zero") else (0.0, 1.0):
                mean = preference * g_forget + (1 - preference) * g_retain
                direction = CAGrad(preference, c)(g_forget=g_forget, g_retain=g_retain)
                assert torch.equal(direction, mean / (1 + c * c)), (name, preference, c)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_no_gradient_or_balanced_anti_parallel_gives_zero(scale):
    for name in ("both-zero", "anti-parallel"):
        g_forget, g_retain = scaled(name, scale, torch.float64)  # anti-parallel: g_r = −g_f, so g0 = 0 at λ = 1/2
        for c in C_VALUES:
            assert torch.count_nonzero(CAGrad(0.5, c)(g_forget=g_forget, g_retain=g_retain)) == 0


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_parallel_gradients_step_along_them(scale):
    g_forget, g_retain = scaled("parallel", scale, torch.float64)
    for c in C_VALUES:
        for preference in (0.25, 0.5, 0.75):
            mean = preference * g_forget + (1 - preference) * g_retain
            direction = CAGrad(preference, c)(g_forget=g_forget, g_retain=g_retain)
            torch.testing.assert_close(direction, (1 + c) * mean / (1 + c * c), rtol=1e-14, atol=0)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_anti_parallel_gradients_shrink_the_mean_and_stop_from_c_one(scale):
    g_forget, g_retain = scaled("anti-parallel-unequal", scale, torch.float64)  # g_r = −2·g_f
    for c in (0.0, 0.25, 0.5, 0.9, 1.0, 1.5, 3.0):
        for preference in (0.25, 0.5, 0.75):
            mean = preference * g_forget + (1 - preference) * g_retain
            direction = CAGrad(preference, c)(g_forget=g_forget, g_retain=g_retain)
            torch.testing.assert_close(direction, max(1 - c, 0.0) * mean / (1 + c * c), rtol=1e-14,
                                       atol=1e-15 * mean.norm().item())


def test_near_anti_parallel_gradients_with_c_above_one_step_sideways():
    """The documented discontinuity: 1e-3 away from anti-parallel, c = 2 gives a step of ≈ √3·‖g0‖/5, nearly
    orthogonal to both gradients, where exactly anti-parallel gradients give 0."""
    g_forget, g_retain = pair(math.pi - 1e-3, norm_forget=1.0, norm_retain=2.0)
    mean = 0.5 * g_forget + 0.5 * g_retain
    direction = CAGrad(0.5, c=2.0)(g_forget=g_forget, g_retain=g_retain)
    assert direction.norm().item() == pytest.approx(math.sqrt(3) * mean.norm().item() / 5, rel=1e-2)
    assert abs(cosine(direction, g_forget)) < 1e-2 and abs(cosine(direction, g_retain)) < 1e-2
    assert_non_conflicting(CAGrad(0.5, c=2.0), g_forget, g_retain, tolerance=1e-12)


@pytest.mark.parametrize("name", ["conflicting", "orthogonal", "aligned", "random-large", "very-unequal-norms"])
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_positively_homogeneous_at_every_scale(name, scale):
    """No ε: d(k·g_f, k·g_r) = k·d(g_f, g_r) to rounding, from 1e-10 to 1e10."""
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for preference in (0.25, 0.5, 0.75):
        for c in (0.5, 1.0, 3.0):
            for factor in (1e-3, 3.0, 1e4):
                assert_positively_homogeneous(CAGrad(preference, c), g_forget, g_retain, factor, tolerance=1e-12)
