"""The contract every baseline rule keeps: validated knobs, value semantics, dtype and device, finite output.

The rules' own mathematics is tested beside them: test_scalarisations.py (GA, FT, WS, NegGrad+, NGDiff),
test_mgda.py, test_pcgrad.py and test_cagrad.py. Every rule's tests share the adversarial inputs of
_adversarial.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cup_core.rules import CUP, FT, GA, MGDA, CAGrad, NegGradPlus, NGDiff, PCGrad, WeightedSum

from .._asserts import (
    assert_expected_structure,
    assert_float32_is_float64_rounded_once,
    assert_immutable,
    assert_value_semantics,
)
from ._adversarial import ADVERSARIAL, DTYPES, SCALES, scaled

NAMESPACE = {cls.__name__: cls for cls in (GA, FT, WeightedSum, NegGradPlus, NGDiff, MGDA, PCGrad, CAGrad)}

# Every rule with a spread of its knobs, the ends of each range included.
KNOB_GRID = {
    "GA": [GA()],
    "FT": [FT()],
    "WeightedSum": [WeightedSum(weight=w) for w in (0.0, 0.5, 2.0, 100.0)],
    "NegGradPlus": [NegGradPlus(beta=b) for b in (0.0, 0.3, 1.0)],
    "NGDiff": [NGDiff()],
    "MGDA": [MGDA(preference=p) for p in (0.0, 0.25, 0.5, 1.0)],
    "PCGrad": [PCGrad(preference=p) for p in (0.0, 0.25, 0.5, 1.0)],
    "CAGrad": [CAGrad(preference=p, c=c) for p in (0.0, 0.25, 0.5, 1.0) for c in (0.0, 0.5, 1.0, 3.0)],
}
ALL_RULES = [rule for rules in KNOB_GRID.values() for rule in rules]
SAMPLES = [rules[len(rules) // 2] for rules in KNOB_GRID.values()]  # one rule of each class


def _random_pair(dim: int = 40, seed: int = 7, dtype: torch.dtype = torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(dim, generator=generator, dtype=torch.float64).to(dtype),
            torch.randn(dim, generator=generator, dtype=torch.float64).to(dtype))


# --- construction ------------------------------------------------------------------------------------

UNIT_INTERVAL_KNOBS = [
    pytest.param(lambda v: NegGradPlus(beta=v), "beta", id="NegGradPlus-beta"),
    pytest.param(lambda v: MGDA(preference=v), "preference", id="MGDA-preference"),
    pytest.param(lambda v: PCGrad(preference=v), "preference", id="PCGrad-preference"),
    pytest.param(lambda v: CAGrad(preference=v), "preference", id="CAGrad-preference"),
]
NON_NEGATIVE_KNOBS = [
    pytest.param(lambda v: WeightedSum(weight=v), "weight", id="WeightedSum-weight"),
    pytest.param(lambda v: CAGrad(preference=0.5, c=v), "c", id="CAGrad-c"),
]
NOT_NUMBERS = [None, "0.5", "strong", True, False, [0.5], object(), complex(0.5, 0.0)]


@pytest.mark.parametrize(("make", "knob"), UNIT_INTERVAL_KNOBS)
@pytest.mark.parametrize("value", [-0.1, -1e-12, 1.0000001, 2, math.nan, math.inf, -math.inf, *NOT_NUMBERS],
                         ids=repr)
def test_fraction_knob_outside_unit_interval_or_not_a_number_is_rejected(make, knob, value):
    with pytest.raises(ValueError, match=knob):
        make(value)


@pytest.mark.parametrize(("make", "knob"), NON_NEGATIVE_KNOBS)
@pytest.mark.parametrize("value", [-1e-12, -1, math.nan, math.inf, -math.inf, *NOT_NUMBERS], ids=repr)
def test_non_negative_knob_negative_infinite_or_not_a_number_is_rejected(make, knob, value):
    with pytest.raises(ValueError, match=knob):
        make(value)


@pytest.mark.parametrize(("make", "knob"), UNIT_INTERVAL_KNOBS + NON_NEGATIVE_KNOBS)
@pytest.mark.parametrize("value", [0, 0.0, -0.0, 1, 0.3, np.float64(0.7), np.float32(0.5)], ids=repr)
def test_knobs_are_stored_as_plain_floats(make, knob, value):
    rule = make(value)
    stored = getattr(rule, knob)
    assert type(stored) is float and stored == float(value)
    assert math.copysign(1.0, stored) == 1.0  # −0.0 is folded into 0.0, so R(-0.0) == R(0.0)
    assert rule == make(abs(float(value)))


def test_large_non_negative_knobs_are_accepted():
    assert WeightedSum(weight=1e6).weight == 1e6
    assert CAGrad(preference=0.5, c=10).c == 10.0


def test_knobless_rules_take_no_arguments():
    for cls in (GA, FT, NGDiff):
        with pytest.raises(TypeError):
            cls(0.5)


def test_required_knobs_have_no_default_but_cagrad_c_does():
    for cls in (WeightedSum, NegGradPlus, MGDA, PCGrad, CAGrad):
        with pytest.raises(TypeError):
            cls()
    assert CAGrad(preference=0.3).c == 0.5
    assert CAGrad(0.3) == CAGrad(preference=0.3, c=0.5)


# --- value semantics ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ALL_RULES, ids=repr)
def test_copy_pickle_and_repr_give_an_equal_rule(rule):
    assert_value_semantics(rule, NAMESPACE)


@pytest.mark.parametrize(("rule", "expected"), [
    (GA(), "GA()"),
    (FT(), "FT()"),
    (NGDiff(), "NGDiff()"),
    (WeightedSum(weight=2), "WeightedSum(weight=2.0)"),
    (NegGradPlus(beta=0.1), "NegGradPlus(beta=0.1)"),
    (MGDA(preference=1 / 3), "MGDA(preference=0.3333333333333333)"),
    (PCGrad(preference=0), "PCGrad(preference=0.0)"),
    (CAGrad(preference=0.25), "CAGrad(preference=0.25, c=0.5)"),
    (CAGrad(preference=0.25, c=2), "CAGrad(preference=0.25, c=2.0)"),
], ids=repr)
def test_repr_is_the_constructor_call(rule, expected):
    assert repr(rule) == expected


@pytest.mark.parametrize(("rule", "expected"), [
    (GA(), "GA"),
    (FT(), "FT"),
    (NGDiff(), "NGDiff"),
    (WeightedSum(weight=2), "WS w=2"),
    (NegGradPlus(beta=0.25), "NegGrad+ β=0.25"),
    (MGDA(preference=0.5), "MGDA λ=0.5"),
    (PCGrad(preference=1), "PCGrad λ=1"),
    (CAGrad(preference=0.0), "CAGrad λ=0 c=0.5"),
    (CAGrad(preference=0.75, c=2), "CAGrad λ=0.75 c=2"),
], ids=repr)
def test_str_is_a_short_legend_label(rule, expected):
    assert str(rule) == expected


def test_equality_and_hash_follow_class_and_knobs():
    assert MGDA(0.5) == MGDA(preference=0.5) and hash(MGDA(0.5)) == hash(MGDA(preference=0.5))
    assert MGDA(0.5) != PCGrad(0.5) and PCGrad(0.5) != CAGrad(0.5)
    assert GA() == GA() and GA() != FT() and NGDiff() != GA()
    assert CAGrad(0.5, c=0.5) != CAGrad(0.5, c=1.0)
    assert len({WeightedSum(1.0), WeightedSum(weight=1), NegGradPlus(1.0), FT()}) == 3


@pytest.mark.parametrize("rule", SAMPLES, ids=repr)
def test_is_immutable(rule):
    knobs = {"WeightedSum": ("weight", "_weight"), "NegGradPlus": ("beta", "_beta"),
             "MGDA": ("preference", "_preference"), "PCGrad": ("preference", "_preference"),
             "CAGrad": ("preference", "_preference", "c", "_c")}.get(type(rule).__name__, ())
    assert_immutable(rule, knobs)


# --- inputs and outputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", SAMPLES, ids=repr)
@pytest.mark.parametrize(("g_forget", "g_retain", "match"), [
    pytest.param(torch.ones(3, dtype=torch.float64), torch.ones(4, dtype=torch.float64), "same shape", id="shape"),
    pytest.param(torch.ones(3, dtype=torch.float64), torch.ones(3), "same dtype", id="dtype"),
    pytest.param(torch.ones(3), torch.empty(3, device="meta"), "same device", id="device"),
    pytest.param(torch.ones(1, 3), torch.ones(1, 3), "1-D", id="two-dimensional"),
    pytest.param(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 3]), "floating point", id="integer"),
])
def test_mismatched_inputs_are_rejected_by_the_base_class(rule, g_forget, g_retain, match):
    with pytest.raises(ValueError, match=match):
        rule(g_forget=g_forget, g_retain=g_retain)


@pytest.mark.parametrize("rule", SAMPLES, ids=repr)
def test_gradients_are_keyword_only(rule):
    g_forget, g_retain = _random_pair()
    with pytest.raises(TypeError):
        rule(g_forget, g_retain)


@pytest.mark.parametrize("rule", ALL_RULES, ids=repr)
def test_float32_in_float32_out_rounded_once(rule):
    g_forget, g_retain = _random_pair(dtype=torch.float32)
    assert_float32_is_float64_rounded_once(rule, g_forget, g_retain)


@pytest.mark.parametrize("rule", SAMPLES, ids=repr)
def test_inputs_are_neither_modified_nor_returned(rule):
    g_forget, g_retain = _random_pair()
    before = g_forget.clone(), g_retain.clone()
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    assert torch.equal(g_forget, before[0]) and torch.equal(g_retain, before[1])
    # The training loop hands views of the direction to .grad: it must not share memory with an input.
    direction.add_(1.0)
    assert torch.equal(g_forget, before[0]) and torch.equal(g_retain, before[1])


@pytest.mark.parametrize("device", [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_output_stays_on_the_input_device(device, dtype):
    g_forget, g_retain = _random_pair(dim=100, seed=3, dtype=dtype)
    for rule in ALL_RULES:
        direction = assert_expected_structure(rule, g_forget.to(device), g_retain.to(device))
        reference = rule(g_forget=g_forget, g_retain=g_retain)
        torch.testing.assert_close(direction.cpu(), reference)


# --- degenerate inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:g}")
@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_inputs_give_a_finite_direction(name, scale, dtype):
    """Zero, parallel, anti-parallel, orthogonal, near-collinear and huge-entry pairs, at 1e-10 ... 1e10."""
    g_forget, g_retain = scaled(name, scale, dtype)
    for rule in ALL_RULES:
        assert_expected_structure(rule, g_forget, g_retain)


@pytest.mark.parametrize("rules", [
    [CUP(0.0), CUP(0.3), CUP(1.0), CUP(0.5)],
    [WeightedSum(0.0), WeightedSum(2.5), WeightedSum(1.0), WeightedSum(0.1)],
    [MGDA(0.2), MGDA(0.8), MGDA(0.5), MGDA(0.5)],
    [PCGrad(0.5), PCGrad(0.1), PCGrad(0.9), PCGrad(0.3)],
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_directions_of_many_points_are_each_rules_direction(rules, dtype):
    """The batched engine's one call per step gives row k exactly what rules[k] gives row k (on CPU the
    rows go one at a time: see CUP._directions)."""
    torch.manual_seed(1)
    g_forget, g_retain = torch.randn(4, 300, dtype=dtype), torch.randn(4, 300, dtype=dtype)
    g_retain[1] = 2 * g_forget[1]  # parallel
    g_retain[2] = -g_forget[2]  # anti-parallel
    rows = type(rules[0]).directions(rules, g_forget, g_retain)
    assert rows.shape == g_forget.shape and rows.dtype == dtype
    for k, rule in enumerate(rules):
        assert torch.equal(rows[k], rule(g_forget=g_forget[k], g_retain=g_retain[k]))


def test_directions_refuse_mixed_rules_and_wrong_shapes():
    g = torch.randn(2, 5)
    with pytest.raises(ValueError, match="CUP rules only"):
        CUP.directions([CUP(0.5), WeightedSum(1.0)], g, g)
    with pytest.raises(ValueError, match=r"\(K, P\) gradients with K = 3"):
        CUP.directions([CUP(0.5)] * 3, g, g)
    with pytest.raises(ValueError, match="same shape"):
        CUP.directions([CUP(0.5)] * 2, g, torch.randn(2, 6))


def test_cup_pivot_over_rows_equals_each_row_to_rounding():
    """The GPU path: all rows in one pass, with per-row intensities; float64 rounding apart, each row's direction."""
    from cup_core.rules.cup import pivot

    torch.manual_seed(2)
    g_forget, g_retain = torch.randn(6, 1000, dtype=torch.float64), torch.randn(6, 1000, dtype=torch.float64)
    g_retain[0] = 3 * g_forget[0]
    g_retain[1] = -0.5 * g_forget[1]
    g_forget[2] = 0
    intensities = [0.0, 0.2, 0.5, 0.7, 1.0, 0.35]
    rows = pivot(g_forget, g_retain, torch.tensor(intensities, dtype=torch.float64).unsqueeze(1))
    for k, intensity in enumerate(intensities):
        alone = CUP(intensity)(g_forget=g_forget[k], g_retain=g_retain[k])
        torch.testing.assert_close(rows[k], alone, rtol=1e-13, atol=1e-15)
