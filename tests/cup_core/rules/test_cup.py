"""CUP: golden vectors, validation, value semantics, degenerate inputs and the geometry of spec §3."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cup_core.rules import CUP
from cup_core.rules.cup import EPS

from .._asserts import (
    angle_between,
    assert_bounded_step,
    assert_expected_structure,
    assert_non_conflicting,
    assert_pivot_geometry,
    assert_positively_homogeneous,
    assert_pure_forget_step,
    assert_pure_retain_step,
    conditioning,
    cosine,
    geometry_tolerance,
)
from ._adversarial import ADVERSARIAL, DTYPES, SCALES, pair, scaled

# A copy of the spec's shared/cup_reference_vectors.json kept in the repository, so a fresh clone tests alone.
REFERENCE_FILE = Path(__file__).resolve().with_name("cup_reference_vectors.json")
REFERENCE_CASE_COUNT = 45  # spec §2
REFERENCE_RTOL = 1e-9  # spec §2: float64 implementations must match to 1e-9 relative error

INTENSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)


# --- golden vectors --------------------------------------------------------------------------------


def _reference_cases() -> list:
    if not REFERENCE_FILE.is_file():
        return [pytest.param(None, id="reference-file-missing")]
    cases = json.loads(REFERENCE_FILE.read_text())["cases"]
    return [pytest.param(case, id=f"{i:02d}-{case['name']}-{case['intensity']}") for i, case in enumerate(cases)]


def _require_reference_file() -> None:
    if not REFERENCE_FILE.is_file():
        pytest.fail(f"CUP's golden vectors are missing: expected {REFERENCE_FILE} (a copy of the spec's "
                    "cup_reference_vectors.json, kept in the repository)")


def test_reference_file_holds_every_case():
    _require_reference_file()
    cases = json.loads(REFERENCE_FILE.read_text())["cases"]
    assert len(cases) == REFERENCE_CASE_COUNT
    assert {case["intensity"] for case in cases} == set(INTENSITIES)


@pytest.mark.parametrize("case", _reference_cases())
def test_reproduces_reference_vector(case):
    _require_reference_file()
    g_forget = torch.tensor(case["g_forget"], dtype=torch.float64)
    g_retain = torch.tensor(case["g_retain"], dtype=torch.float64)
    expected = torch.tensor(case["direction"], dtype=torch.float64)

    direction = CUP(intensity=case["intensity"])(g_forget=g_forget, g_retain=g_retain)

    assert direction.dtype == torch.float64
    error = (direction - expected).norm().item()
    assert error <= REFERENCE_RTOL * expected.norm().item(), \
        f"relative error {error / expected.norm().item():.2e} > {REFERENCE_RTOL:g}"


# --- construction, value semantics -----------------------------------------------------------------


@pytest.mark.parametrize("intensity", [-0.1, 1.0000001, 2, -1e-12, math.nan, math.inf, -math.inf])
def test_intensity_outside_unit_interval_is_rejected(intensity):
    with pytest.raises(ValueError, match="intensity"):
        CUP(intensity=intensity)


@pytest.mark.parametrize("intensity", [None, "strong", "0.5", True, False, [0.5], object(), complex(0.5, 0.0)])
def test_non_number_intensity_is_rejected(intensity):
    with pytest.raises(ValueError, match="intensity"):
        CUP(intensity=intensity)


@pytest.mark.parametrize("intensity", [0, 0.0, 1, 0.3, np.float64(0.7), np.float32(0.5)])
def test_intensity_is_stored_as_a_float(intensity):
    rule = CUP(intensity=intensity)
    assert type(rule.intensity) is float
    assert rule.intensity == float(intensity)


def test_copy_deepcopy_and_pickle_give_an_equal_rule():
    import copy
    import pickle

    rule = CUP(intensity=0.3)
    for clone in (copy.copy(rule), copy.deepcopy(rule), pickle.loads(pickle.dumps(rule))):
        assert clone == rule and clone.intensity == 0.3 and clone is not rule


def test_default_intensity_is_the_middle_of_the_cone():
    assert CUP().intensity == 0.5


def test_is_immutable():
    rule = CUP(intensity=0.25)
    with pytest.raises(AttributeError):
        rule.intensity = 0.75
    with pytest.raises(AttributeError):
        rule._intensity = 0.75
    with pytest.raises(AttributeError):
        rule.anything_else = 1
    assert rule.intensity == 0.25


@pytest.mark.parametrize("intensity", [0.0, 0.1, 1 / 3, 0.5, 1.0])
def test_repr_reproduces_the_constructor(intensity):
    rule = CUP(intensity=intensity)
    assert repr(rule).startswith("CUP(intensity=")
    rebuilt = eval(repr(rule), {"CUP": CUP})
    assert rebuilt == rule
    assert rebuilt.intensity == rule.intensity  # exactly: repr of a float round-trips


def test_str_is_a_legend_label():
    assert str(CUP(intensity=0.25)) == "CUP γ=0.25"
    assert str(CUP(intensity=1)) == "CUP γ=1"
    assert str(CUP(intensity=0.0)) == "CUP γ=0"


def test_equality_and_hash_follow_the_intensity():
    assert CUP(0.5) == CUP(intensity=0.5)
    assert hash(CUP(0.5)) == hash(CUP(intensity=0.5))
    assert CUP(0.5) != CUP(0.25)
    assert CUP(0.5) != "CUP(intensity=0.5)"
    assert len({CUP(0.5), CUP(0.5), CUP(1.0)}) == 2


# --- input validation ------------------------------------------------------------------------------

_V3 = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)


@pytest.mark.parametrize(("g_forget", "g_retain", "match"), [
    pytest.param(_V3, torch.ones(4, dtype=torch.float64), "same shape", id="length-mismatch"),
    pytest.param(_V3, _V3.float(), "same dtype", id="dtype-mismatch"),
    pytest.param(_V3.view(1, 3), _V3.view(1, 3), "1-D", id="two-dimensional"),
    pytest.param(_V3.view(1, 3), _V3, "1-D", id="one-two-dimensional"),
    pytest.param(torch.tensor(1.0), torch.tensor(2.0), "1-D", id="scalar"),
    pytest.param(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]), "floating point", id="integer"),
    pytest.param(_V3.tolist(), _V3, "torch.Tensor", id="list"),
    pytest.param(_V3, _V3.numpy(), "torch.Tensor", id="numpy"),
    pytest.param(_V3, torch.empty(3, dtype=torch.float64, device="meta"), "same device", id="device-mismatch"),
])
def test_bad_inputs_are_rejected_naming_the_problem(g_forget, g_retain, match):
    with pytest.raises(ValueError, match=match):
        CUP(0.5)(g_forget=g_forget, g_retain=g_retain)


def test_gradients_are_keyword_only():
    with pytest.raises(TypeError):
        CUP(0.5)(_V3, _V3)  # (forget, retain) vs (retain, forget) is too easy to get wrong


def test_does_not_modify_its_inputs():
    g_forget, g_retain = torch.tensor([1.0, 0.0]), torch.tensor([-0.6, 0.8])
    before = g_forget.clone(), g_retain.clone()
    CUP(0.3)(g_forget=g_forget, g_retain=g_retain)
    assert torch.equal(g_forget, before[0]) and torch.equal(g_retain, before[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_dtype_follows_the_input(dtype):
    g_forget, g_retain = torch.tensor([1.0, 0.0], dtype=dtype), torch.tensor([-0.6, 0.8], dtype=dtype)
    assert CUP(0.5)(g_forget=g_forget, g_retain=g_retain).dtype == dtype


def test_float32_is_the_float64_result_rounded_once():
    generator = torch.Generator().manual_seed(7)
    g_forget, g_retain = torch.randn(40, generator=generator), torch.randn(40, generator=generator)
    for intensity in INTENSITIES:
        single = CUP(intensity)(g_forget=g_forget, g_retain=g_retain)
        double = CUP(intensity)(g_forget=g_forget.double(), g_retain=g_retain.double())
        # The float64 result of the same (float32-representable) inputs, rounded once.
        assert torch.equal(single, double.float())


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_stays_on_the_input_device(device, dtype):
    generator = torch.Generator().manual_seed(3)
    g_forget = torch.randn(100, generator=generator, dtype=dtype).to(device)
    g_retain = torch.randn(100, generator=generator, dtype=dtype).to(device)
    for intensity in INTENSITIES:
        direction = assert_expected_structure(CUP(intensity), g_forget, g_retain)
        reference = CUP(intensity)(g_forget=g_forget.cpu(), g_retain=g_retain.cpu())
        torch.testing.assert_close(direction.cpu(), reference)


# --- fixed, seeded adversarial inputs --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_inputs_give_a_finite_bounded_direction(name, scale, dtype):
    g_forget, g_retain = scaled(name, scale, dtype)
    for intensity in INTENSITIES:
        assert_expected_structure(CUP(intensity), g_forget, g_retain)
        assert_bounded_step(CUP(intensity), g_forget, g_retain)


def _well_conditioned() -> list:
    """(case, scale, dtype) where ε and rounding leave the §3 geometry measurable: δ ≤ 1e-3."""
    params = []
    for name in ADVERSARIAL:
        for scale in SCALES:
            for dtype in DTYPES:
                g_forget, g_retain = scaled(name, scale, dtype)
                if conditioning(g_forget, g_retain) <= 1e-3:
                    params.append(pytest.param(name, scale, dtype, id=f"{name}-x{scale:g}-{dtype}"))
    return params


WELL_CONDITIONED = _well_conditioned()


def test_the_adversarial_set_has_well_conditioned_members():
    names = {param.values[0] for param in WELL_CONDITIONED}
    assert {"orthogonal", "conflicting", "aligned", "very-unequal-norms", "random-large"} <= names
    # Gradients of norm 1e-5 or 1e-10 are below ε: the geometry is not promised there.
    assert not any(param.values[1] <= 1e-5 for param in WELL_CONDITIONED)


@pytest.mark.parametrize(("name", "scale", "dtype"), WELL_CONDITIONED)
def test_adversarial_inputs_keep_the_pivot_geometry(name, scale, dtype):
    g_forget, g_retain = scaled(name, scale, dtype)
    tolerance = geometry_tolerance(g_forget, g_retain)
    for intensity in INTENSITIES:
        assert_non_conflicting(CUP(intensity), g_forget, g_retain, tolerance)
        assert_pivot_geometry(CUP(intensity), g_forget, g_retain, intensity, tolerance)
    assert_pure_retain_step(CUP(0.0), g_forget, g_retain, tolerance)
    assert_pure_forget_step(CUP(1.0), g_forget, g_retain, tolerance)


@pytest.mark.parametrize(("name", "scale", "dtype"), [p for p in WELL_CONDITIONED if p.values[2] == torch.float64])
def test_adversarial_inputs_rescale_homogeneously(name, scale, dtype):
    g_forget, g_retain = scaled(name, scale, dtype)
    for factor in (1e-2, 3.0, 1e4):
        small = min(factor, 1.0)
        tolerance = 2 * geometry_tolerance(g_forget * small, g_retain * small)
        for intensity in INTENSITIES:
            assert_positively_homogeneous(CUP(intensity), g_forget, g_retain, factor, tolerance)


# The documented behaviour on degenerate inputs (CUP's docstring).


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ["both-zero", "anti-parallel"])
def test_no_common_descent_gives_exactly_zero(name, scale):
    """Both gradients zero, or exactly opposite with equal norms: the mean gradient is 0, so s = 0 and d = 0."""
    g_forget, g_retain = scaled(name, scale, torch.float64)
    for intensity in INTENSITIES:
        direction = CUP(intensity)(g_forget=g_forget, g_retain=g_retain)
        assert torch.count_nonzero(direction) == 0, direction


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_zero_forget_gradient_steps_along_the_retain_gradient(scale):
    """g_forget = 0: u_f = 0, Θ = π/2, d = s·cos(γπ/2)·g_r/(‖g_r‖ + ε); γ = 1 gives (almost) no step."""
    g_forget, g_retain = scaled("zero-forget", scale, torch.float64)
    step = (g_retain / 2).norm()
    for intensity in INTENSITIES:
        direction = CUP(intensity)(g_forget=g_forget, g_retain=g_retain)
        expected = step * math.cos(intensity * math.pi / 2) * g_retain / (g_retain.norm() + EPS)
        torch.testing.assert_close(direction, expected, rtol=1e-12, atol=1e-15 * step.item())
    assert CUP(1.0)(g_forget=g_forget, g_retain=g_retain).norm() <= 1e-15 * step


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_zero_retain_gradient_steps_along_the_forget_gradient(scale):
    """g_retain = 0: u_r = 0, Θ = π/2, d = s·sin(γπ/2)·g_f/(‖g_f‖ + ε); γ = 0 gives no step at all."""
    g_forget, g_retain = scaled("zero-retain", scale, torch.float64)
    step = (g_forget / 2).norm()
    for intensity in INTENSITIES:
        direction = CUP(intensity)(g_forget=g_forget, g_retain=g_retain)
        expected = step * math.sin(intensity * math.pi / 2) * g_forget / (g_forget.norm() + EPS)
        torch.testing.assert_close(direction, expected, rtol=1e-12, atol=1e-15 * step.item())
    assert torch.count_nonzero(CUP(0.0)(g_forget=g_forget, g_retain=g_retain)) == 0


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
def test_parallel_gradients_step_along_the_common_gradient(scale):
    """Both orthogonal parts vanish: d is 0 or points along the shared gradient, descending both losses.

    Also at norms ~1e10, where the formula's orthogonal parts would be float64 rounding noise
    (~1e-16·‖g‖, no longer small against ε): CUP decides parallel gradients explicitly.
    """
    g_forget, g_retain = scaled("parallel", scale, torch.float64)
    for intensity in INTENSITIES:
        direction = CUP(intensity)(g_forget=g_forget, g_retain=g_retain)
        if torch.count_nonzero(direction):
            assert cosine(direction, g_forget) >= 1 - 1e-9
    if scale == 1.0:  # well above ε, every intensity takes a real step
        assert all(CUP(i)(g_forget=g_forget, g_retain=g_retain).norm() > 0.1 for i in INTENSITIES)


@pytest.mark.parametrize("scale", [1e-10, 1e-9])
@pytest.mark.parametrize("name", ["orthogonal", "conflicting", "random-large"])
def test_gradients_below_epsilon_shrink_the_step(name, scale):
    """Norms below ε: ε dominates the unit vectors and d shrinks towards 0 instead of blowing up.

    The two terms of d have norms ≤ s·‖g_f‖/ε and ≤ s·‖v‖/ε with ‖v‖ ≤ 2‖g_r‖ (v = g_r minus its
    projection on g_f), so ‖d‖ ≤ s·(‖g_f‖ + 2‖g_r‖)/ε, here at most a fifth of s.
    """
    g_forget, g_retain = scaled(name, scale, torch.float64)
    norm_f, norm_r = g_forget.norm().item(), g_retain.norm().item()
    shrink = (norm_f + 2 * norm_r) / EPS
    assert shrink < 0.2
    step = ((g_forget + g_retain) / 2).norm().item()
    for intensity in INTENSITIES:
        assert CUP(intensity)(g_forget=g_forget, g_retain=g_retain).norm().item() <= step * shrink


def test_small_retain_gradient_loosens_the_gamma_one_guarantee_quadratically():
    """The spec writes ‖g_r‖² + ε (not (‖g_r‖ + ε)²) in u_f, so at γ = 1 the step leans against g_r by
    cos∠(d, g_r) ≈ −ε·cot φ/‖g_r‖², which is no longer negligible once ‖g_r‖ ≲ 1e-2 (at 1e-3 it is −0.22).

    The γ = 0 limit has no such term: its error in cos∠(d, g_f) is linear, ≈ 2ε·|cot φ|/‖g_f‖.
    """
    phi = 2.0
    g_forget, g_retain = pair(phi, norm_forget=1.0, norm_retain=1e-2)
    lean = cosine(CUP(1.0)(g_forget=g_forget, g_retain=g_retain), g_retain)
    assert lean == pytest.approx(EPS / math.tan(phi) / 1e-2**2, rel=0.05)
    assert lean < -1e-3
    # The mirror image (a forget gradient of norm 1e-2 at γ = 0) stays far closer to orthogonal.
    mirror = cosine(CUP(0.0)(g_forget=g_retain, g_retain=g_forget), g_retain)
    assert abs(mirror) < 2e-4


def test_anti_parallel_gradients_of_unequal_norms_take_no_step():
    """With g_r = −2·g_f the spec's formula, left to ε, would take a full-size step with cos = −1 against one
    gradient; no direction but 0 descends both, and that is what CUP returns."""
    g_forget, g_retain = scaled("anti-parallel-unequal", 1.0, torch.float64)
    for intensity in INTENSITIES:
        direction = CUP(intensity)(g_forget=g_forget, g_retain=g_retain)
        assert_non_conflicting(CUP(intensity), g_forget, g_retain, tolerance=1e-6)
        assert torch.count_nonzero(direction) == 0


# --- hypothesis: the geometry of spec §3 over generated inputs ---------------------------------------

# Well-conditioned domain: ‖g_f‖ in 1e-2 .. 1e3, ‖g_r‖ in 1e-1 .. 1e3, φ kept 0.1 away from 0 and π. There
# δ (see _asserts.py) is at most ~1e-2 and mostly far smaller. ‖g_r‖ has the narrower range because ε enters
# u_f as ‖g_r‖² + ε (test_small_retain_gradient_loosens_the_gamma_one_guarantee_quadratically).
FORGET_NORM_EXPONENTS = st.floats(min_value=-2.0, max_value=3.0)
RETAIN_NORM_EXPONENTS = st.floats(min_value=-1.0, max_value=3.0)
ANGLES = st.floats(min_value=0.1, max_value=math.pi - 0.1)
CONFLICTING_ANGLES = st.floats(min_value=math.pi / 2, max_value=math.pi - 0.1)
GAMMAS = st.floats(min_value=0.0, max_value=1.0)
DIMS = st.integers(min_value=2, max_value=50)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)

PAIRS = {"dim": DIMS, "seed": SEEDS, "phi": ANGLES, "exponent_f": FORGET_NORM_EXPONENTS,
         "exponent_r": RETAIN_NORM_EXPONENTS}

HYPOTHESIS = settings(deadline=None, max_examples=150, derandomize=True)


def _generated(dim, seed, phi, exponent_f, exponent_r):
    return pair(phi, norm_forget=10.0**exponent_f, norm_retain=10.0**exponent_r, dim=dim, seed=seed)


@HYPOTHESIS
@given(**PAIRS, intensity=GAMMAS)
def test_property_non_conflicting(dim, seed, phi, exponent_f, exponent_r, intensity):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    assert_expected_structure(CUP(intensity), g_forget, g_retain)
    assert_non_conflicting(CUP(intensity), g_forget, g_retain, geometry_tolerance(g_forget, g_retain))


@HYPOTHESIS
@given(**PAIRS)
def test_property_gamma_limits(dim, seed, phi, exponent_f, exponent_r):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    tolerance = geometry_tolerance(g_forget, g_retain)
    assert_pure_retain_step(CUP(0.0), g_forget, g_retain, tolerance)
    assert_pure_forget_step(CUP(1.0), g_forget, g_retain, tolerance)


@HYPOTHESIS
@given(**PAIRS, intensity=GAMMAS)
def test_property_pivot_identity(dim, seed, phi, exponent_f, exponent_r, intensity):
    """cos∠(d, g_f) = sin(γΘ), cos∠(d, g_r) = sin((1 − γ)Θ) with Θ = π − φ, and ‖d‖ = ‖(g_f + g_r)/2‖."""
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    assert_pivot_geometry(CUP(intensity), g_forget, g_retain, intensity, geometry_tolerance(g_forget, g_retain))


@HYPOTHESIS
@given(**PAIRS, intensity=GAMMAS, factor_exponent=st.floats(min_value=-1.0, max_value=6.0))
def test_property_positively_homogeneous(dim, seed, phi, exponent_f, exponent_r, intensity, factor_exponent):
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    factor = 10.0**factor_exponent
    small = min(factor, 1.0)
    tolerance = 2 * geometry_tolerance(g_forget * small, g_retain * small)
    assert_positively_homogeneous(CUP(intensity), g_forget, g_retain, factor, tolerance)


@HYPOTHESIS
@given(**{**PAIRS, "phi": CONFLICTING_ANGLES}, gammas=st.tuples(GAMMAS, GAMMAS))
def test_property_raising_gamma_moves_progress_to_forgetting(dim, seed, phi, exponent_f, exponent_r, gammas):
    """For conflicting gradients (φ ≥ π/2, so Θ ≤ π/2) both cosines are monotone in γ (spec §3).

    For non-conflicting ones, see test_cosines_are_not_monotone_for_aligned_gradients.
    """
    low, high = sorted(gammas)
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    tolerance = 2 * geometry_tolerance(g_forget, g_retain)
    d_low = CUP(low)(g_forget=g_forget, g_retain=g_retain)
    d_high = CUP(high)(g_forget=g_forget, g_retain=g_retain)
    assert cosine(d_high, g_forget) >= cosine(d_low, g_forget) - tolerance
    assert cosine(d_high, g_retain) <= cosine(d_low, g_retain) + tolerance


@HYPOTHESIS
@given(**PAIRS, gammas=st.tuples(GAMMAS, GAMMAS))
def test_property_forget_minus_retain_cosine_is_monotone_for_every_angle(dim, seed, phi, exponent_f, exponent_r,
                                                                          gammas):
    """sin(γΘ) − sin((1 − γ)Θ) has derivative 2Θ·cos(Θ/2)·cos((γ − ½)Θ) ≥ 0 for every Θ in (0, π)."""
    low, high = sorted(gammas)
    g_forget, g_retain = _generated(dim, seed, phi, exponent_f, exponent_r)
    tolerance = 4 * geometry_tolerance(g_forget, g_retain)
    d_low = CUP(low)(g_forget=g_forget, g_retain=g_retain)
    d_high = CUP(high)(g_forget=g_forget, g_retain=g_retain)
    balance_low = cosine(d_low, g_forget) - cosine(d_low, g_retain)
    balance_high = cosine(d_high, g_forget) - cosine(d_high, g_retain)
    assert balance_high >= balance_low - tolerance


def test_cosines_are_not_monotone_for_aligned_gradients():
    """Spec §3's monotonicity is about conflicting gradients. With φ < π/2 (Θ > π/2) d turns past g_f:
    cos∠(d, g_f) = sin(γΘ) peaks at γ = π/(2Θ) < 1 and falls again (the 2d-acute golden case)."""
    g_forget, g_retain = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.6, 0.8], dtype=torch.float64)
    theta = math.pi - angle_between(g_forget, g_retain)
    assert theta > math.pi / 2
    peak = math.pi / (2 * theta)
    cos_at = {gamma: cosine(CUP(gamma)(g_forget=g_forget, g_retain=g_retain), g_forget) for gamma in (0.0, peak, 1.0)}
    assert cos_at[peak] == pytest.approx(1.0, abs=1e-5)
    assert cos_at[0.0] < cos_at[peak] and cos_at[1.0] < cos_at[peak] - 0.1
