"""Mathematical properties of gradient rules, written once and reused over fixed and generated inputs.

Each assert takes the rule and its two inputs (as torchjd's tests/unit/aggregation/_asserts.py does), so
a new rule gets the same checks by calling them. Angles and inner products are measured in float64
whatever the rule's dtype.

Tolerances. The spec's ε (1e-6) sits in every normalisation of CUP: (‖g_f‖ + ε)², ‖g_r‖² + ε and
‖v‖ + ε for the orthogonal parts v, whose norms are ‖g‖·sin φ (φ the angle between the gradients).
Each perturbs the exact geometry by a relative amount ε/‖g_f‖, ε/‖g_r‖² or ε/(‖g‖ sin φ), and
Θ = arccos(<u_r, u_f>) amplifies an error in its cosine by 1/sin Θ = 1/sin φ. So the exact identities
hold up to about

    δ = (ε / min(‖g_f‖, ‖g_r‖, ‖g_r‖²) + u) / sin²φ

where u ≈ 1e-14 covers float64 rounding (the orthogonal parts are differences that cancel as φ → 0 or π).
Over 20,000 random draws (dims 2..50, norms 1e-3..1e3, φ in [0.05, π − 0.05]) the worst error of the
cosine identities was 2.4·δ; the asserts allow GEOMETRY_FACTOR·δ, a factor ~3 of headroom. A float32
result is the float64 result rounded once (relative 6e-8 per element), which moves a cosine or a relative
norm by at most ~1e-7; FLOAT32_SLACK allows 10x that.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cup_core.rules import GradientRule
from cup_core.rules.cup import EPS

GEOMETRY_FACTOR = 8.0
FLOAT64_ROUNDING = 1e-14
FLOAT32_SLACK = 1e-6


def angle_between(a: Tensor, b: Tensor) -> float:
    """φ in [0, π], computed stably (atan2 of the orthogonal and parallel parts, not arccos of a cosine)."""
    a, b = a.double(), b.double()
    a_hat, b_hat = a / a.norm(), b / b.norm()
    parallel = torch.dot(a_hat, b_hat)
    orthogonal = (b_hat - parallel * a_hat).norm()
    return math.atan2(orthogonal.item(), parallel.item())


def conditioning(g_forget: Tensor, g_retain: Tensor) -> float:
    """δ of the module docstring: how far ε and rounding may move CUP from its exact geometry.

    Infinite for a zero gradient or (anti-)parallel gradients, where the geometry is undefined.
    """
    norm_f, norm_r = g_forget.double().norm().item(), g_retain.double().norm().item()
    if norm_f == 0.0 or norm_r == 0.0:
        return math.inf
    sin_phi = math.sin(angle_between(g_forget, g_retain))
    if sin_phi == 0.0:
        return math.inf
    return (EPS / min(norm_f, norm_r, norm_r**2) + FLOAT64_ROUNDING) / sin_phi**2


def geometry_tolerance(g_forget: Tensor, g_retain: Tensor) -> float:
    """Allowed error of a cosine (or of a relative norm) for these inputs; see the module docstring."""
    slack = FLOAT32_SLACK if g_forget.dtype == torch.float32 else 0.0
    return GEOMETRY_FACTOR * conditioning(g_forget, g_retain) + slack


def cosine(a: Tensor, b: Tensor) -> float:
    """cos∠(a, b) in float64; 0 when either vector is 0 (a zero step neither helps nor hurts)."""
    a, b = a.double(), b.double()
    norms = (a.norm() * b.norm()).item()
    return 0.0 if norms == 0.0 else torch.dot(a, b).item() / norms


def assert_expected_structure(rule: GradientRule, g_forget: Tensor, g_retain: Tensor) -> Tensor:
    """The direction has the inputs' shape, dtype and device and holds no NaN or Inf. Returns it."""
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    assert isinstance(direction, Tensor)
    assert direction.shape == g_forget.shape, \
        f"{rule!r}: shape {tuple(direction.shape)}, expected {tuple(g_forget.shape)}"
    assert direction.dtype == g_forget.dtype, f"{rule!r}: dtype {direction.dtype}, expected {g_forget.dtype}"
    assert direction.device == g_forget.device, f"{rule!r}: device {direction.device}, expected {g_forget.device}"
    assert torch.isfinite(direction).all(), f"{rule!r}: non-finite direction {direction}"
    return direction


def assert_non_conflicting(rule: GradientRule, g_forget: Tensor, g_retain: Tensor, tolerance: float) -> None:
    """<d, g_forget> ≥ 0 and <d, g_retain> ≥ 0: to first order, the step makes neither loss worse.

    Measured as cosines, so that `tolerance` is relative to ‖d‖·‖g‖ (an exactly orthogonal d, as at
    γ = 0 or 1, may come out a rounding error below 0).
    """
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    for name, gradient in (("g_forget", g_forget), ("g_retain", g_retain)):
        cos = cosine(direction, gradient)
        assert cos >= -tolerance, f"{rule!r}: cos∠(d, {name}) = {cos:.3e} < 0 (tolerance {tolerance:.1e})"


def assert_pure_retain_step(rule: GradientRule, g_forget: Tensor, g_retain: Tensor, tolerance: float) -> None:
    """The γ = 0 limit: d ⟂ g_forget (the forget loss does not move to first order), all progress on retain."""
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    assert abs(cosine(direction, g_forget)) <= tolerance, \
        f"{rule!r}: cos∠(d, g_forget) = {cosine(direction, g_forget):.3e}, expected 0 (tolerance {tolerance:.1e})"
    # and with Θ = π − φ, cos∠(d, g_retain) = sin Θ = sin φ: all the descent goes to the retain loss
    expected = math.sin(angle_between(g_forget, g_retain))
    assert cosine(direction, g_retain) >= expected - tolerance, \
        f"{rule!r}: cos∠(d, g_retain) = {cosine(direction, g_retain):.3e}, expected sin φ = {expected:.3e}"


def assert_pure_forget_step(rule: GradientRule, g_forget: Tensor, g_retain: Tensor, tolerance: float) -> None:
    """The γ = 1 limit: d ⟂ g_retain (no first-order damage to the retain loss), all progress on forget."""
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    assert abs(cosine(direction, g_retain)) <= tolerance, \
        f"{rule!r}: cos∠(d, g_retain) = {cosine(direction, g_retain):.3e}, expected 0 (tolerance {tolerance:.1e})"
    expected = math.sin(angle_between(g_forget, g_retain))  # cos∠(d, g_forget) = sin Θ = sin φ
    assert cosine(direction, g_forget) >= expected - tolerance, \
        f"{rule!r}: cos∠(d, g_forget) = {cosine(direction, g_forget):.3e}, expected sin φ = {expected:.3e}"


def assert_pivot_geometry(rule: GradientRule, g_forget: Tensor, g_retain: Tensor, intensity: float,
                          tolerance: float) -> None:
    """Spec §3: with Θ = π − φ, cos∠(d, g_f) = sin(γΘ), cos∠(d, g_r) = sin((1 − γ)Θ), and ‖d‖ = s = ‖(g_r + g_f)/2‖."""
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    theta = math.pi - angle_between(g_forget, g_retain)
    expected_f, expected_r = math.sin(intensity * theta), math.sin((1 - intensity) * theta)
    actual_f, actual_r = cosine(direction, g_forget), cosine(direction, g_retain)
    assert abs(actual_f - expected_f) <= tolerance, \
        f"{rule!r}: cos∠(d, g_f) = {actual_f!r}, sin(γΘ) = {expected_f!r} (tolerance {tolerance:.1e})"
    assert abs(actual_r - expected_r) <= tolerance, \
        f"{rule!r}: cos∠(d, g_r) = {actual_r!r}, sin((1 − γ)Θ) = {expected_r!r} (tolerance {tolerance:.1e})"
    step = ((g_forget.double() + g_retain.double()) / 2).norm().item()
    norm = direction.double().norm().item()
    assert abs(norm - step) <= tolerance * step, f"{rule!r}: ‖d‖ = {norm!r}, s = {step!r}"


def assert_bounded_step(rule: GradientRule, g_forget: Tensor, g_retain: Tensor) -> None:
    """‖d‖ ≤ √2 · ‖(g_r + g_f)/2‖ on *any* input: the two terms of d have norms ≤ s·|sin ψ| and ≤ s·|cos ψ|,
    because the ε in each denominator only shrinks a unit vector. So no input, however degenerate, makes
    the step blow up (a tiny gradient gives a tiny step)."""
    direction = rule(g_forget=g_forget, g_retain=g_retain)
    step = ((g_forget.double() + g_retain.double()) / 2).norm().item()
    slack = 1 + (FLOAT32_SLACK if direction.dtype == torch.float32 else 1e-12)
    assert direction.double().norm().item() <= math.sqrt(2) * step * slack, \
        f"{rule!r}: ‖d‖ = {direction.double().norm().item():.3e} exceeds √2·s = {math.sqrt(2) * step:.3e}"


def assert_positively_homogeneous(rule: GradientRule, g_forget: Tensor, g_retain: Tensor, scale: float,
                                  tolerance: float) -> None:
    """d(c·g_f, c·g_r) = c·d(g_f, g_r) for c > 0, up to `tolerance` relative to ‖c·d‖.

    Exact without ε; with ε it holds while both scaled norms stay well above ε (pass the tolerance of
    the smaller of the two scales: `geometry_tolerance` of the less well-conditioned pair).
    """
    assert scale > 0
    direction = rule(g_forget=g_forget, g_retain=g_retain).double()
    scaled = rule(g_forget=g_forget * scale, g_retain=g_retain * scale).double()
    error = (scaled - scale * direction).norm().item()
    assert error <= tolerance * scale * direction.norm().item(), \
        f"{rule!r}: ‖d(c·g) − c·d(g)‖ = {error:.3e} for c = {scale:g} (‖c·d‖ = {scale * direction.norm().item():.3e})"


# --- value semantics and dtype, shared by every rule ---------------------------------------------------


def assert_value_semantics(rule: GradientRule, namespace: dict) -> None:
    """copy, deepcopy and pickle give an equal, distinct rule with the same hash, and eval(repr(rule)) in
    `namespace` (the rule classes by name) rebuilds an equal one: repr reproduces the constructor call."""
    import copy
    import pickle

    for clone in (copy.copy(rule), copy.deepcopy(rule), pickle.loads(pickle.dumps(rule)), eval(repr(rule), namespace)):
        assert type(clone) is type(rule), f"{rule!r}: clone of type {type(clone).__name__}"
        assert clone == rule and hash(clone) == hash(rule), f"{rule!r}: clone {clone!r} differs"
        assert clone is not rule
        assert repr(clone) == repr(rule) and str(clone) == str(rule)


def assert_immutable(rule: GradientRule, names: tuple[str, ...]) -> None:
    """Setting any of `names` (knobs and the slots behind them) or a new attribute raises AttributeError
    and leaves the rule as it was."""
    before = repr(rule)
    for name in (*names, "anything_else"):
        try:
            setattr(rule, name, 0.75)
        except AttributeError:
            pass
        else:
            raise AssertionError(f"{before}: setting {name!r} did not raise")
    assert repr(rule) == before, f"{before} became {rule!r}"


def assert_float32_is_float64_rounded_once(rule: GradientRule, g_forget: Tensor, g_retain: Tensor) -> None:
    """For float32 inputs the direction is the float64 direction of the same values, rounded once to float32
    (the rules compute in float64), so float32 gradients lose nothing but the final rounding."""
    assert g_forget.dtype == g_retain.dtype == torch.float32
    single = rule(g_forget=g_forget, g_retain=g_retain)
    double = rule(g_forget=g_forget.double(), g_retain=g_retain.double())
    assert single.dtype == torch.float32
    assert torch.equal(single, double.float()), \
        f"{rule!r}: float32 result differs from the rounded float64 one by {(single.double() - double).abs().max():.3e}"
