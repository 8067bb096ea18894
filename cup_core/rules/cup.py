"""CUP: pivot between the retain and forget gradients by a fraction of their dual cone."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientRule, check_unit_interval

EPS = 1e-6  # the spec's epsilon; the reference vectors were produced with it
COLLINEAR_TOL = 1e-12  # |cos φ| this close to 1 counts as (anti-)parallel: no pivot plane exists


class CUP(GradientRule):
    """Rotates u_r towards u_f by intensity · Θ inside the dual cone (Hwang & Lim, arXiv 2510.19226).

    The intensity γ ∈ [0, 1] picks the direction of every step: γ = 0 leaves the forget loss unchanged
    to first order (pure retain progress), γ = 1 leaves the retain loss unchanged (pure forgetting), and
    every γ in between descends both (see ../shared/cup-spec.md §2 and §3).

    The arithmetic is done in float64 and the result cast back to the input's dtype, so float32
    gradients keep the geometry to rounding. Degenerate inputs give finite output: every division
    has ε in its denominator, and collinear gradients, where the pivot plane does not exist, are
    decided explicitly (the spec's formula there is left to ε and rounding noise):

    - a zero gradient: its unit vector is 0; with g_forget = 0 the direction is s·cos(ψ)·u_r;
    - anti-parallel gradients (cos φ < −1 + 1e-12): only the orthogonal complement descends both
      losses, and it makes no progress on either, so the direction is 0 (the formula would step
      along the larger gradient and raise the other loss when the norms differ);
    - parallel gradients (cos φ > 1 − 1e-12): every intensity steps along the common gradient with
      magnitude s, a descent direction for both (the formula's orthogonal parts are rounding noise
      there, which at norms near 1e10 could point anywhere);
    - gradients whose norms are near or below ε: ε dominates the unit vectors and the result shrinks
      towards 0 instead of blowing up.
    """

    __slots__ = ("_intensity",)

    def __init__(self, intensity: float = 0.5):
        object.__setattr__(self, "_intensity", check_unit_interval("intensity", intensity))

    @property
    def intensity(self) -> float:
        return self._intensity

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (CUP, (self._intensity,))

    def __repr__(self) -> str:
        return f"CUP(intensity={self._intensity!r})"

    def __str__(self) -> str:
        return f"CUP γ={self._intensity:g}"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        g_f = g_forget.double()  # (P,)
        g_r = g_retain.double()  # (P,)
        norm_f = torch.linalg.vector_norm(g_f)
        norm_r = torch.linalg.vector_norm(g_r)
        step = torch.linalg.vector_norm((g_r + g_f) / 2)
        c = torch.dot(g_r, g_f)
        u_r = _unit(g_r - c / (norm_f + EPS) ** 2 * g_f)  # (P,) part of g_r orthogonal to g_f
        u_f = _unit(g_f - c / (norm_r**2 + EPS) * g_r)  # (P,) part of g_f orthogonal to g_r
        theta = torch.arccos(torch.clamp(torch.dot(u_r, u_f), -1.0, 1.0))
        psi = self._intensity * theta
        direction = step * (torch.sin(psi) * g_f / (norm_f + EPS) + torch.cos(psi) * u_r)  # (P,)
        # Collinear cases as the docstring says; torch.where keeps this free of a GPU sync.
        cos_phi = c / (norm_f * norm_r).clamp_min(torch.finfo(torch.float64).tiny)
        direction = torch.where(cos_phi > 1 - COLLINEAR_TOL, step * g_f / (norm_f + EPS), direction)
        direction = torch.where(cos_phi < -1 + COLLINEAR_TOL, torch.zeros_like(direction), direction)
        return direction.to(g_forget.dtype)


def _unit(v: Tensor) -> Tensor:
    return v / (torch.linalg.vector_norm(v) + EPS)
