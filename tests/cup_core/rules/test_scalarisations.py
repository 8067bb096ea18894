"""GA, FT, WS, NegGrad+ and NGDiff: their formulas against numpy, their limits, and NGDiff's scale invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cup_core.rules import FT, GA, NegGradPlus, NGDiff, WeightedSum
from cup_core.rules.ngdiff import EPS

from .._asserts import assert_expected_structure, assert_positively_homogeneous
from ._adversarial import ADVERSARIAL, SCALES, pair, scaled

HYPOTHESIS = settings(deadline=None, max_examples=60, derandomize=True)

DIMS = st.integers(min_value=1, max_value=50)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
EXPONENTS = st.floats(min_value=-3.0, max_value=3.0)
FRACTIONS = st.floats(min_value=0.0, max_value=1.0)
WEIGHTS = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=1e3))


def _random_pair(dim, seed, exponent_f, exponent_r):
    """Gaussian g_forget and g_retain of norms ~10^exponent (float64), and their numpy copies."""
    generator = torch.Generator().manual_seed(seed)
    g_forget = torch.randn(dim, generator=generator, dtype=torch.float64) * 10.0**exponent_f
    g_retain = torch.randn(dim, generator=generator, dtype=torch.float64) * 10.0**exponent_r
    return g_forget, g_retain


def _scale_of(*vectors) -> float:
    return max(np.abs(v.numpy()).max(initial=0.0) for v in vectors)


# --- GA and FT ---------------------------------------------------------------------------------------


@HYPOTHESIS
@given(dim=DIMS, seed=SEEDS, exponent_f=EXPONENTS, exponent_r=EXPONENTS)
def test_property_ga_and_ft_return_one_gradient_bit_for_bit(dim, seed, exponent_f, exponent_r):
    g_forget, g_retain = _random_pair(dim, seed, exponent_f, exponent_r)
    assert torch.equal(GA()(g_forget=g_forget, g_retain=g_retain), g_forget)
    assert torch.equal(FT()(g_forget=g_forget, g_retain=g_retain), g_retain)
    single_f, single_r = g_forget.float(), g_retain.float()
    assert torch.equal(GA()(g_forget=single_f, g_retain=single_r), single_f)
    assert torch.equal(FT()(g_forget=single_f, g_retain=single_r), single_r)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_ga_and_ft_copy_degenerate_inputs_unchanged(name, scale):
    g_forget, g_retain = scaled(name, scale, torch.float64)
    assert torch.equal(GA()(g_forget=g_forget, g_retain=g_retain), g_forget)
    assert torch.equal(FT()(g_forget=g_forget, g_retain=g_retain), g_retain)


# --- WS ----------------------------------------------------------------------------------------------


@HYPOTHESIS
@given(dim=DIMS, seed=SEEDS, exponent_f=EXPONENTS, exponent_r=EXPONENTS, weight=WEIGHTS)
def test_property_weighted_sum_matches_numpy(dim, seed, exponent_f, exponent_r, weight):
    g_forget, g_retain = _random_pair(dim, seed, exponent_f, exponent_r)
    expected = weight * g_forget.numpy() + g_retain.numpy()
    direction = WeightedSum(weight)(g_forget=g_forget, g_retain=g_retain).numpy()
    np.testing.assert_allclose(direction, expected, rtol=0, atol=1e-15 * (weight * _scale_of(g_forget) +
                                                                           _scale_of(g_retain)))


def test_weighted_sum_at_weight_zero_is_fine_tuning_and_grows_linearly():
    g_forget, g_retain = _random_pair(20, 1, 0.0, 0.0)
    assert torch.equal(WeightedSum(0.0)(g_forget=g_forget, g_retain=g_retain), g_retain)
    for weight in (0.5, 3.0, 1e3):
        step = WeightedSum(weight)(g_forget=g_forget, g_retain=g_retain) - g_retain
        torch.testing.assert_close(step, weight * g_forget, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_weighted_sum_of_anti_parallel_gradients_cancels_at_the_balancing_weight(scale):
    """g_r = −2·g_f: the weight 2 balances them exactly, and the direction is exactly 0 (no normalisation)."""
    g_forget, g_retain = scaled("anti-parallel-unequal", scale, torch.float64)
    assert torch.count_nonzero(WeightedSum(2.0)(g_forget=g_forget, g_retain=g_retain)) == 0


# --- NegGrad+ ----------------------------------------------------------------------------------------


@HYPOTHESIS
@given(dim=DIMS, seed=SEEDS, exponent_f=EXPONENTS, exponent_r=EXPONENTS, beta=FRACTIONS)
def test_property_neggrad_plus_matches_numpy(dim, seed, exponent_f, exponent_r, beta):
    g_forget, g_retain = _random_pair(dim, seed, exponent_f, exponent_r)
    expected = beta * g_retain.numpy() + (1 - beta) * g_forget.numpy()
    direction = NegGradPlus(beta)(g_forget=g_forget, g_retain=g_retain).numpy()
    np.testing.assert_allclose(direction, expected, rtol=0, atol=1e-15 * _scale_of(g_forget, g_retain))
    # a convex combination: no entry exceeds the larger of the two inputs' entries
    assert np.all(np.abs(direction) <= np.maximum(np.abs(g_forget.numpy()), np.abs(g_retain.numpy())) * (1 + 1e-15))


@pytest.mark.parametrize("name", ["random-large", "conflicting", "zero-forget", "huge-near-anti-parallel"])
def test_neggrad_plus_ends_are_ga_and_ft_exactly(name):
    g_forget, g_retain = scaled(name, 1.0, torch.float64)
    assert torch.equal(NegGradPlus(beta=0.0)(g_forget=g_forget, g_retain=g_retain), g_forget)
    assert torch.equal(NegGradPlus(beta=1.0)(g_forget=g_forget, g_retain=g_retain), g_retain)


@pytest.mark.parametrize("name", ["conflicting", "orthogonal", "random-large", "very-unequal-norms"])
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_weighted_sum_and_neggrad_plus_are_positively_homogeneous(name, scale):
    """No ε anywhere: d(k·g_f, k·g_r) = k·d(g_f, g_r) to rounding, from 1e-10 to 1e10."""
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for rule in (WeightedSum(0.5), WeightedSum(7.0), NegGradPlus(0.3)):
        for factor in (1e-3, 3.0, 1e4):
            assert_positively_homogeneous(rule, g_forget, g_retain, factor, tolerance=1e-14)


# --- NGDiff ------------------------------------------------------------------------------------------


@HYPOTHESIS
@given(dim=DIMS, seed=SEEDS, exponent_f=st.floats(min_value=-10.0, max_value=10.0),
       exponent_r=st.floats(min_value=-10.0, max_value=10.0))
def test_property_ngdiff_matches_numpy(dim, seed, exponent_f, exponent_r):
    """Over norms 1e-10 ... 1e10, so the ε-dominated regime is compared too."""
    g_forget, g_retain = _random_pair(dim, seed, exponent_f, exponent_r)
    f, r = g_forget.numpy(), g_retain.numpy()
    expected = f / (np.linalg.norm(f) + EPS) + r / (np.linalg.norm(r) + EPS)
    direction = NGDiff()(g_forget=g_forget, g_retain=g_retain).numpy()
    np.testing.assert_allclose(direction, expected, rtol=0, atol=1e-14)
    assert np.linalg.norm(direction) <= 2.0


@HYPOTHESIS
@given(dim=st.integers(min_value=2, max_value=50), seed=SEEDS, phi=st.floats(min_value=0.0, max_value=math.pi),
       exponent_f=st.floats(min_value=-2.0, max_value=3.0), exponent_r=st.floats(min_value=-2.0, max_value=3.0),
       factor_f=st.floats(min_value=-2.0, max_value=6.0), factor_r=st.floats(min_value=-2.0, max_value=6.0))
def test_property_ngdiff_ignores_each_gradients_scale(dim, seed, phi, exponent_f, exponent_r, factor_f, factor_r):
    """d(a·g_f, b·g_r) = d(g_f, g_r) for a, b > 0, up to ε: each term's length ‖g‖/(‖g‖ + ε) is 1 − ε/(‖g‖ + ε),
    so rescaling moves it by less than ε / (the smaller of the two norms), and the direction not at all."""
    g_forget, g_retain = pair(phi, norm_forget=10.0**exponent_f, norm_retain=10.0**exponent_r, dim=dim, seed=seed)
    a, b = 10.0**factor_f, 10.0**factor_r
    direction = NGDiff()(g_forget=g_forget, g_retain=g_retain)
    rescaled = NGDiff()(g_forget=a * g_forget, g_retain=b * g_retain)
    norm_f, norm_r = g_forget.norm().item(), g_retain.norm().item()
    bound = EPS / min(norm_f, a * norm_f) + EPS / min(norm_r, b * norm_r) + 1e-14
    assert (rescaled - direction).norm().item() <= bound


@HYPOTHESIS
@given(dim=st.integers(min_value=2, max_value=50), seed=SEEDS, phi=st.floats(min_value=0.0, max_value=math.pi),
       exponent_f=st.floats(min_value=-1.0, max_value=3.0), exponent_r=st.floats(min_value=-1.0, max_value=3.0))
def test_property_ngdiff_bisects_the_two_gradients(dim, seed, phi, exponent_f, exponent_r):
    """The sum of two (nearly) unit vectors makes equal angles with both: the losses get an equal say."""
    g_forget, g_retain = pair(phi, norm_forget=10.0**exponent_f, norm_retain=10.0**exponent_r, dim=dim, seed=seed)
    direction = NGDiff()(g_forget=g_forget, g_retain=g_retain)
    if direction.norm() > 1e-3:  # φ close to π leaves a direction made of ε and rounding
        unit_f, unit_r = g_forget / g_forget.norm(), g_retain / g_retain.norm()
        tolerance = 4 * EPS / min(g_forget.norm().item(), g_retain.norm().item()) / direction.norm().item() + 1e-12
        assert abs(torch.dot(direction, unit_f) - torch.dot(direction, unit_r)) / direction.norm() <= tolerance


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_ngdiff_degenerate_inputs_follow_the_docstring(scale):
    a = ADVERSARIAL["parallel"][0] * scale  # (P,) unit vector times scale
    shrink = scale / (scale + EPS)  # a term's length
    # a zero gradient contributes nothing; both zero give 0
    zero = torch.zeros_like(a)
    torch.testing.assert_close(NGDiff()(g_forget=zero, g_retain=a), a / (a.norm() + EPS), rtol=1e-15, atol=0)
    torch.testing.assert_close(NGDiff()(g_forget=a, g_retain=zero), a / (a.norm() + EPS), rtol=1e-15, atol=0)
    assert torch.count_nonzero(NGDiff()(g_forget=zero, g_retain=zero)) == 0
    # parallel: twice the shrunk unit vector; anti-parallel with equal norms: exactly 0
    parallel = NGDiff()(g_forget=a, g_retain=a)
    assert parallel.norm().item() == pytest.approx(2 * shrink, rel=1e-14)
    assert torch.count_nonzero(NGDiff()(g_forget=a, g_retain=-a)) == 0
    # anti-parallel with unequal norms cancels only up to ε: what is left points along the longer one, and is small
    left = NGDiff()(g_forget=a, g_retain=-2 * a)
    expected = scale / (scale + EPS) - 2 * scale / (2 * scale + EPS)  # < 0: along g_retain
    assert torch.dot(left, a).item() / scale == pytest.approx(expected, rel=1e-6, abs=1e-15)
    assert left.norm().item() <= EPS / scale + 1e-15


@pytest.mark.parametrize("name", ["conflicting", "orthogonal", "random-large", "aligned"])
def test_ngdiff_shrinks_gradients_below_epsilon_instead_of_blowing_them_up(name):
    """At norms ~1e-10 the terms have length ‖g‖/(‖g‖ + ε) ≈ 1e-4: float noise is never turned into a unit step."""
    g_forget, g_retain = scaled(name, 1e-10, torch.float64)
    direction = assert_expected_structure(NGDiff(), g_forget, g_retain)
    assert direction.norm().item() <= (g_forget.norm().item() + g_retain.norm().item()) / EPS
