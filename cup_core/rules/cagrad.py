"""CAGrad for two tasks: the conflict-averse direction around the preference-weighted mean gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import PreferenceRule, check_non_negative
from .cup import COLLINEAR_TOL


class CAGrad(PreferenceRule):
    """Maximises the worse task's gain near g0 = λ·g_forget + (1 − λ)·g_retain (CAGrad; Liu et al., NeurIPS 2021).

    The tasks are G1 = λ·g_forget and G2 = (1 − λ)·g_retain (λ the preference), g0 = G1 + G2. CAGrad's
    direction solves  max_d min_i <G_i, d>  subject to  ‖d − g0‖ ≤ c·‖g0‖, through its dual: with
    g_w = w·G1 + (1 − w)·G2, find w in [0, 1] minimising F(w) = <g_w, g0> + c·‖g0‖·‖g_w‖, then
    d* = g0 + c·‖g0‖/‖g_w‖ · g_w. Like the authors' code (rescale=1), the rule returns d = d*/(1 + c²),
    which keeps the step's length comparable across c. d* improves the worse task at least as much as
    g0 does (g0 lies in the ball), and the weighted mean loss never ascends: for c ≤ 1 the ball gives
    <d*, g0> ≥ (1 − c)·‖g0‖²; for c ≥ 1 the ball holds 0, so the worse task's improvement is ≥ 0 (d
    descends both losses to first order) and <d*, g0> = <d*, G1> + <d*, G2> ≥ 0.

    Normalisation. The authors centre the ball on the *mean* of their task gradients H_i; here
    g0 = G1 + G2, which is that mean for H = (2λ·g_forget, 2(1 − λ)·g_retain). The min over tasks is
    unchanged by scaling all tasks together, so this is the authors' CAGrad on those H, and at λ = 1/2
    it is their CAGrad on (g_forget, g_retain) exactly: g0 is then their mean gradient. c = 0 gives
    d = g0 exactly, the preference-weighted GradDiff direction NegGradPlus(beta=1 − λ). As c grows, w
    tends to the min-norm point and d's direction to MGDA(λ)'s, while its length shrinks like 1/c.

    The 1-D dual is solved in closed form: along the line g_w runs on, F is a linear term plus c‖g0‖
    times the distance to the origin, convex, with one stationary point where it has one; that point
    clamped to the segment is the minimiser. Unlike the authors' code, no 1e-8 is added to norms or
    square roots: those terms dominate once gradients are small (at norms of 1e-10, √(‖g0‖² + 1e-8) is
    1e4 times ‖g0‖) and would make the rule depend on the gradients' scale; zero norms are guarded instead.

    Computed in float64, cast back to the input's dtype. Degenerate inputs give finite output, and d is
    positively homogeneous at every scale:

    - g0 = 0 (both gradients zero, or G1 = −G2): the ball is a point, d = 0;
    - one task gradient zero (so λ = 0 or 1, or a zero input): every d improves that task by exactly 0,
      so any d in the ball with <d, g0> ≥ 0 is optimal; the rule returns the c = 0 direction, g0 (the
      other task's gradient), divided by 1 + c² as always;
    - parallel gradients: d = (1 + c)·g0/(1 + c²), along the common gradient;
    - anti-parallel gradients (cos < −1 + 1e-12, as in CUP): the best worst-case improvement is along
      the line, d = max(1 − c, 0)·g0/(1 + c²). For c > 1 the optimum is not unique (any d ⟂ g0 in the
      ball does as well as 0) and the dual's g_w is 0, whose direction would be rounding noise; 0 is
      the one choice that favours no direction. Near (not exactly) anti-parallel gradients and c > 1
      give a sideways step of length ≈ √(c² − 1)·‖g0‖/(1 + c²) instead: the optimum is discontinuous there.
    """

    __slots__ = ("_c",)

    def __init__(self, preference: float, c: float = 0.5):
        super().__init__(preference)
        object.__setattr__(self, "_c", check_non_negative("c", c))

    @property
    def c(self) -> float:
        return self._c

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (CAGrad, (self._preference, self._c))

    def __repr__(self) -> str:
        return f"CAGrad(preference={self._preference!r}, c={self._c!r})"

    def __str__(self) -> str:
        return f"CAGrad λ={self._preference:g} c={self._c:g}"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        task_f, task_r = self._tasks(g_forget, g_retain)  # (P,) G1, (P,) G2
        mean = task_f + task_r  # (P,) g0
        radius = self._c * torch.linalg.vector_norm(mean)  # √φ = c‖g0‖
        weight = _dual_weight(task_f, task_r, mean, radius)
        combined = weight * task_f + (1.0 - weight) * task_r  # (P,) g_w, from the tasks to keep G1 exact at w = 1
        norm_w = torch.linalg.vector_norm(combined)
        direction = mean + radius / torch.where(norm_w > 0, norm_w, 1.0) * combined  # (P,) d*
        # The cases the docstring decides explicitly; torch.where keeps them free of a GPU sync.
        norm_f, norm_r = torch.linalg.vector_norm(task_f), torch.linalg.vector_norm(task_r)
        product = norm_f * norm_r
        cos_phi = torch.dot(task_f, task_r) / torch.where(product > 0, product, 1.0)
        direction = torch.where(cos_phi < -1 + COLLINEAR_TOL, max(1.0 - self._c, 0.0) * mean, direction)
        direction = torch.where((norm_f == 0) | (norm_r == 0), mean, direction)
        return (direction / (1.0 + self._c**2)).to(g_forget.dtype)


def _dual_weight(task_f: Tensor, task_r: Tensor, mean: Tensor, radius: Tensor) -> Tensor:
    """The w in [0, 1] minimising F(w) = <g_w, g0> + radius·‖g_w‖, g_w = w·G1 + (1 − w)·G2.

    Parametrise the line through G2 and G1 by τ, the signed distance along its unit direction â from p,
    its point closest to the origin: g = p + τ·â, and F = <p, g0> + ρ·τ + radius·√(δ² + τ²) with
    ρ = <â, g0>, δ = ‖p‖. F' = 0 at τ* = −ρ·δ/√(radius² − ρ²) when radius > |ρ|; otherwise F is
    monotone and decreases towards τ → −sign(ρ)·∞. F is convex, so clamping to the segment is exact.
    """
    edge = task_f - task_r  # (P,) g_w = G2 + w·edge
    length = torch.linalg.vector_norm(edge)
    safe_length = torch.where(length > 0, length, 1.0)  # G1 = G2: F is constant, w is moot
    along = edge / safe_length  # (P,) â
    offset_r = torch.dot(task_r, along)  # τ of G2; τ of G1 is offset_r + length
    foot = task_r - offset_r * along  # (P,) p, taken from the vectors: the Gram form loses it to cancellation
    height = torch.linalg.vector_norm(foot)  # δ
    slope = torch.dot(along, mean)  # ρ
    room = (radius - slope.abs()) * (radius + slope.abs())  # radius² − ρ², factored against cancellation
    stationary = -slope * height / torch.where(room > 0, room, 1.0).sqrt()
    unbounded = torch.where(slope > 0, -torch.inf, torch.inf)  # slope = 0 here means F is constant
    tau = torch.where(room > 0, stationary, unbounded)
    weight = ((tau - offset_r) / safe_length).clamp(0.0, 1.0)  # ±inf clamp to the ends
    return torch.where(length > 0, weight, 0.5)
