"""PCGrad: the reference algorithm in numpy, the projected parts' geometry, and its degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cup_core.rules import PCGrad

from .._asserts import angle_between, assert_non_conflicting, assert_positively_homogeneous
from ._adversarial import SCALES, pair, scaled

HYPOTHESIS = settings(deadline=None, max_examples=80, derandomize=True)

PAIRS = {
    "dim": st.integers(min_value=2, max_value=50),
    "seed": st.integers(min_value=0, max_value=2**31 - 1),
    "phi": st.floats(min_value=0.0, max_value=math.pi - 0.05),
    "exponent_f": st.floats(min_value=-3.0, max_value=3.0),
    "exponent_r": st.floats(min_value=-3.0, max_value=3.0),
}
PREFERENCES = st.floats(min_value=0.0, max_value=1.0)


def _generated(dim, seed, phi, exponent_f, exponent_r):
    return pair(phi, norm_forget=10.0**exponent_f, norm_retain=10.0**exponent_r, dim=dim, seed=seed)


def _reference_parts(g1: np.ndarray, g2: np.ndarray) -> list[np.ndarray]:
    """Yu et al.'s loop for two tasks: each task's copy is projected against every *original* other
    gradient it still conflicts with, in both orders; the parts come out the same either way.

    A gradient whose squared norm underflows to 0 (hypothesis finds λ = 5e-324) is not projected against:
    the rule's guard does the same in effect, its term being below 1e-300 of the other gradient.
    """
    tasks = [g1, g2]
    parts = []
    for i in range(2):
        orders = []
        for order in ([0, 1], [1, 0]):
            part = tasks[i].copy()
            for j in order:
                inner = float(np.dot(part, tasks[j]))
                if j != i and inner < 0 and np.dot(tasks[j], tasks[j]) > 0:
                    part = part - inner / float(np.dot(tasks[j], tasks[j])) * tasks[j]
            orders.append(part)
        np.testing.assert_allclose(orders[0], orders[1], rtol=0, atol=0)
        parts.append(orders[0])
    return parts


@HYPOTHESIS
@given(**PAIRS, preference=PREFERENCES)
def test_property_matches_the_reference_loop(dim, seed, phi, exponent_f, exponent_r, preference):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    g1, g2 = preference * g_forget.numpy(), (1 - preference) * g_retain.numpy()
    parts = _reference_parts(g1, g2)
    direction = PCGrad(preference)(g_forget=g_forget, g_retain=g_retain).numpy()
    scale = np.linalg.norm(g1) + np.linalg.norm(g2)
    assert np.linalg.norm(direction - (parts[0] + parts[1])) <= 1e-13 * scale
    # each projected part no longer conflicts with the other original gradient
    rounding = 1e-13 * scale**2
    assert np.dot(parts[0], g2) >= -rounding and np.dot(parts[1], g1) >= -rounding


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=math.pi / 2 + 1e-3, max_value=math.pi - 0.05)},
       preference=st.floats(min_value=0.01, max_value=0.99))
def test_property_conflicting_gradients_give_a_common_descent_direction(dim, seed, phi, exponent_f, exponent_r,
                                                                        preference):
    """With <g1, g2> < 0, p1 ⟂ g2 and p2 ⟂ g1, so <d, g_i> = <p_i, g_i> = ‖g_i‖²·sin²φ ≥ 0 for both."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    rule = PCGrad(preference)
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    g1, g2 = preference * g_forget, (1 - preference) * g_retain
    sin_squared = math.sin(angle_between(g1, g2)) ** 2
    rounding = 1e-12 * (g1.norm().item() + g2.norm().item()) ** 2
    for gradient in (g1, g2):
        expected = gradient.norm().item() ** 2 * sin_squared
        assert torch.dot(direction, gradient).item() == pytest.approx(expected, abs=rounding)
    assert_non_conflicting(rule, g_forget, g_retain, tolerance=1e-9)


@HYPOTHESIS
@given(**{**PAIRS, "phi": st.floats(min_value=0.0, max_value=math.pi / 2)}, preference=PREFERENCES)
def test_property_non_conflicting_gradients_are_summed_unchanged(dim, seed, phi, exponent_f, exponent_r, preference):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    g1, g2 = preference * g_forget, (1 - preference) * g_retain
    if torch.dot(g1, g2) >= 0:  # φ = π/2 may round to a tiny negative inner product
        assert torch.equal(PCGrad(preference)(g_forget=g_forget, g_retain=g_retain), g1 + g2)


@pytest.mark.parametrize("name", ["random-large", "conflicting", "aligned", "very-unequal-norms"])
def test_preference_ends_give_one_gradient(name):
    g_forget, g_retain = scaled(name, 1.0, torch.float64)
    assert torch.equal(PCGrad(0.0)(g_forget=g_forget, g_retain=g_retain), g_retain)
    assert torch.equal(PCGrad(1.0)(g_forget=g_forget, g_retain=g_retain), g_forget)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_degenerate_inputs_follow_the_docstring(scale):
    for preference in (0.25, 0.5, 0.75):
        rule = PCGrad(preference)
        # a zero gradient: nothing to project, d is the other scaled gradient
        g_forget, g_retain = scaled("zero-forget", scale, torch.float64)
        assert torch.equal(rule(g_forget=g_forget, g_retain=g_retain), (1 - preference) * g_retain)
        g_forget, g_retain = scaled("zero-retain", scale, torch.float64)
        assert torch.equal(rule(g_forget=g_forget, g_retain=g_retain), preference * g_forget)
        # parallel: no conflict, the sum
        g_forget, g_retain = scaled("parallel", scale, torch.float64)
        expected = preference * g_forget + (1 - preference) * g_retain
        assert torch.equal(rule(g_forget=g_forget, g_retain=g_retain), expected)
        # anti-parallel: each projection removes everything, 0 up to rounding
        for name in ("anti-parallel", "anti-parallel-unequal"):
            g_forget, g_retain = scaled(name, scale, torch.float64)
            direction = rule(g_forget=g_forget, g_retain=g_retain)
            assert direction.norm().item() <= 1e-15 * (g_forget.norm().item() + g_retain.norm().item())


@pytest.mark.parametrize("name", ["conflicting", "orthogonal", "aligned", "random-large", "very-unequal-norms"])
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_positively_homogeneous_at_every_scale(name, scale):
    """No ε: d(k·g_f, k·g_r) = k·d(g_f, g_r) to rounding, from 1e-10 to 1e10."""
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for preference in (0.25, 0.5, 0.75):
        for factor in (1e-3, 3.0, 1e4):
            assert_positively_homogeneous(PCGrad(preference), g_forget, g_retain, factor, tolerance=1e-12)
