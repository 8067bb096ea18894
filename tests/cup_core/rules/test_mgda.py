"""MGDA: the spec's closed form against numpy, min-norm optimality against a grid, and its degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cup_core.rules import MGDA

from .._asserts import assert_non_conflicting, assert_positively_homogeneous, cosine
from ._adversarial import SCALES, pair, scaled

HYPOTHESIS = settings(deadline=None, max_examples=80, derandomize=True)

PAIRS = {
    "dim": st.integers(min_value=2, max_value=50),
    "seed": st.integers(min_value=0, max_value=2**31 - 1),
    "phi": st.floats(min_value=0.0, max_value=math.pi),
    "exponent_f": st.floats(min_value=-3.0, max_value=3.0),
    "exponent_r": st.floats(min_value=-3.0, max_value=3.0),
}
PREFERENCES = st.floats(min_value=0.0, max_value=1.0)


def _generated(dim, seed, phi, exponent_f, exponent_r):
    return pair(phi, norm_forget=10.0**exponent_f, norm_retain=10.0**exponent_r, dim=dim, seed=seed)


def _closed_form(g_forget: np.ndarray, g_retain: np.ndarray, preference: float) -> np.ndarray:
    """Spec §6 in numpy: α = clamp(<g2 − g1, g2> / ‖g1 − g2‖², 0, 1), d = α·g1 + (1 − α)·g2."""
    g1, g2 = preference * g_forget, (1 - preference) * g_retain
    gap = float(np.sum((g1 - g2) ** 2))
    alpha = 0.5 if gap == 0 else min(max(float(np.sum((g2 - g1) * g2)) / gap, 0.0), 1.0)
    return alpha * g1 + (1 - alpha) * g2


def _hull_grid_min_norm(g1: np.ndarray, g2: np.ndarray, points: int = 2001) -> float:
    """The smallest ‖α·g1 + (1 − α)·g2‖ over a grid of α in [0, 1], ends included (an upper bound on the min)."""
    alphas = np.linspace(0.0, 1.0, points)[:, None]
    return float(np.linalg.norm(alphas * g1 + (1 - alphas) * g2, axis=1).min())


@HYPOTHESIS
@given(**PAIRS, preference=PREFERENCES)
def test_property_matches_the_closed_form_in_numpy(dim, seed, phi, exponent_f, exponent_r, preference):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    direction = MGDA(preference)(g_forget=g_forget, g_retain=g_retain).numpy()
    expected = _closed_form(g_forget.numpy(), g_retain.numpy(), preference)
    scale = preference * g_forget.norm().item() + (1 - preference) * g_retain.norm().item()
    assert np.linalg.norm(direction - expected) <= 1e-13 * scale


@HYPOTHESIS
@given(**PAIRS, preference=PREFERENCES)
def test_property_is_the_min_norm_point_and_a_common_descent_direction(dim, seed, phi, exponent_f, exponent_r,
                                                                       preference):
    """<d, g_i> ≥ ‖d‖² for both scaled gradients (the optimality condition of the hull's min-norm point),
    so <d, g_i> ≥ 0; and no point of a fine grid over the hull is shorter."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    rule = MGDA(preference)
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    g1, g2 = preference * g_forget, (1 - preference) * g_retain
    rounding = 1e-13 * (g1.norm().item() + g2.norm().item()) ** 2
    square = torch.dot(direction, direction).item()
    for gradient in (g1, g2):
        assert torch.dot(direction, gradient).item() >= square - rounding
    assert direction.norm().item() <= _hull_grid_min_norm(g1.numpy(), g2.numpy()) * (1 + 1e-12) + 1e-15
    if direction.norm().item() > 1e-6 * math.sqrt(rounding):  # a non-zero step, not rounding residue
        assert_non_conflicting(rule, g_forget, g_retain, tolerance=1e-9)


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=math.pi / 2, max_value=math.pi - 0.1),
          "exponent_f": st.floats(min_value=-1.0, max_value=1.0),
          "exponent_r": st.floats(min_value=-1.0, max_value=1.0)},
       preference=st.floats(min_value=0.1, max_value=0.9))
def test_property_interior_solution_equalises_the_scaled_improvements(dim, seed, phi, exponent_f, exponent_r,
                                                                      preference):
    """When α is strictly inside (0, 1): λ·<d, g_f> = (1 − λ)·<d, g_r> = ‖d‖². A small λ means a large
    improvement of the forget loss, the opposite of what the name "preference" suggests.

    Conflicting gradients of comparable scaled norms, so that (nearly) every example has an interior α."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    g1, g2 = preference * g_forget, (1 - preference) * g_retain
    direction = MGDA(preference)(g_forget=g_forget, g_retain=g_retain)
    is_g1, is_g2 = torch.equal(direction, g1), torch.equal(direction, g2)
    diff = (g2 - g1).numpy()
    alpha = float(np.dot(diff, g2.numpy()) / np.dot(diff, diff)) if np.dot(diff, diff) > 0 else 0.5
    if 1e-6 < alpha < 1 - 1e-6 and not (is_g1 or is_g2):
        square = torch.dot(direction, direction).item()
        rounding = 1e-12 * (g1.norm().item() + g2.norm().item()) ** 2
        assert torch.dot(direction, g1).item() == pytest.approx(square, abs=rounding)
        assert torch.dot(direction, g2).item() == pytest.approx(square, abs=rounding)


def test_small_preference_leans_towards_forgetting():
    """Orthogonal unit gradients: d ∝ (1 − λ)·e_f + λ·e_r, so λ = 0.1 mostly descends the forget loss."""
    g_forget, g_retain = pair(math.pi / 2)
    direction = MGDA(0.1)(g_forget=g_forget, g_retain=g_retain)
    assert cosine(direction, g_forget) == pytest.approx(0.9 / math.hypot(0.9, 0.1), rel=1e-12)
    assert cosine(direction, g_retain) == pytest.approx(0.1 / math.hypot(0.9, 0.1), rel=1e-12)


# --- the ends of the preference range and degenerate inputs --------------------------------------------


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ["random-large", "conflicting", "aligned", "orthogonal", "very-unequal-norms"])
def test_preference_zero_or_one_puts_zero_in_the_hull_and_takes_no_step(name, scale):
    """λ = 0 makes g1 = 0: the hull {0, g_retain} has min-norm point 0 (spec §6), and so has λ = 1.
    Not g_retain: a pure retain step is FT, a pure forget step GA."""
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for preference in (0.0, 1.0):
        assert torch.count_nonzero(MGDA(preference)(g_forget=g_forget, g_retain=g_retain)) == 0


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ["zero-forget", "zero-retain", "both-zero"])
def test_a_zero_gradient_gives_exactly_zero(name, scale):
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for preference in (0.0, 0.25, 0.5, 1.0):
        assert torch.count_nonzero(MGDA(preference)(g_forget=g_forget, g_retain=g_retain)) == 0


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ["anti-parallel", "anti-parallel-unequal"])
def test_anti_parallel_gradients_give_zero_up_to_rounding(name, scale):
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for preference in (0.25, 0.5, 0.75):
        direction = MGDA(preference)(g_forget=g_forget, g_retain=g_retain)
        assert direction.norm().item() <= 1e-15 * (g_forget.norm().item() + g_retain.norm().item())


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_parallel_gradients_give_the_shorter_scaled_gradient(scale):
    g_forget, g_retain = scaled("parallel", scale, torch.float64)  # g_retain = 3·g_forget
    for preference in (0.25, 0.5, 0.75, 0.9):
        g1, g2 = preference * g_forget, (1 - preference) * g_retain
        shorter = g1 if g1.norm() <= g2.norm() else g2
        torch.testing.assert_close(MGDA(preference)(g_forget=g_forget, g_retain=g_retain), shorter,
                                   rtol=1e-15, atol=0)


def test_equal_scaled_gradients_avoid_zero_over_zero():
    g = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    # λ = 1/2 and g_f = g_r: g1 = g2, ‖g1 − g2‖ = 0 and α is 0/0; every α gives g1
    assert torch.equal(MGDA(0.5)(g_forget=g, g_retain=g), 0.5 * g)


@pytest.mark.parametrize("name", ["conflicting", "orthogonal", "aligned", "random-large", "very-unequal-norms"])
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_positively_homogeneous_at_every_scale(name, scale):
    """No ε: d(k·g_f, k·g_r) = k·d(g_f, g_r) to rounding, from 1e-10 to 1e10."""
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for preference in (0.25, 0.5, 0.75):
        for factor in (1e-3, 3.0, 1e4):
            assert_positively_homogeneous(MGDA(preference), g_forget, g_retain, factor, tolerance=1e-12)
