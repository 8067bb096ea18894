"""CUP: pivot between the retain and forget gradients by a fraction of their dual cone."""

from __future__ import annotations

from typing import Sequence

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
        return pivot(g_forget, g_retain, self._intensity)  # (P,)

    @classmethod
    def _directions(cls, rules: Sequence[GradientRule], g_forget: Tensor, g_retain: Tensor) -> Tensor:
        if g_forget.device.type == "cpu":
            # Row by row on a CPU: a row's vectors stay in cache, all K rows' do not (21 rows of 38k
            # parameters took 3.7 ms one at a time, 9.5 ms at once). A GPU does all rows in one launch each.
            return super()._directions(rules, g_forget, g_retain)
        intensities = torch.tensor([rule.intensity for rule in rules], dtype=torch.float64, device=g_forget.device)
        return pivot(g_forget, g_retain, intensities.unsqueeze(1))  # (K, P)


def pivot(g_forget: Tensor, g_retain: Tensor, intensity: float | Tensor) -> Tensor:
    """CUP's direction for each row of the (..., P) gradients; `intensity` is a float or a (..., 1) tensor.

    Written for few passes over the vectors (a step's cost beside the two gradients): the unit vectors
    u_r, u_f are kept as unnormalised parts and their norms, and the collinear cases choose scalar
    coefficients, so the vectors themselves are never recombined and no precision is lost. A (P,) vector
    gives the bits it always gave; a row among many can differ from it by float64 rounding (~1e-16
    relative), since a reduction over many rows splits its sums differently."""
    g_f = g_forget.double()  # (..., P)
    g_r = g_retain.double()  # (..., P)
    norm_f = _norm(g_f)  # (..., 1), as are all the coefficients below
    norm_r = _norm(g_r)
    step = _norm(g_r + g_f) / 2
    c = _dot(g_r, g_f)
    v_r = torch.addcmul(g_r, -c / (norm_f + EPS) ** 2, g_f)  # (..., P) part of g_r orthogonal to g_f
    v_f = torch.addcmul(g_f, -c / (norm_r**2 + EPS), g_r)  # (..., P) part of g_f orthogonal to g_r
    length_r = _norm(v_r) + EPS  # u_r = v_r / length_r
    length_f = _norm(v_f) + EPS  # u_f = v_f / length_f
    theta = torch.arccos(torch.clamp(_dot(v_r, v_f) / (length_r * length_f), -1.0, 1.0))
    psi = intensity * theta
    along_f = step * torch.sin(psi) / (norm_f + EPS)  # direction = along_f · g_f + along_r · v_r
    along_r = step * torch.cos(psi) / length_r
    # Collinear cases as CUP's docstring says; torch.where keeps this free of a GPU sync.
    cos_phi = c / (norm_f * norm_r).clamp_min(torch.finfo(torch.float64).tiny)
    parallel, anti_parallel = cos_phi > 1 - COLLINEAR_TOL, cos_phi < -1 + COLLINEAR_TOL
    zero = torch.zeros_like(along_f)
    along_f = torch.where(parallel, step / (norm_f + EPS), torch.where(anti_parallel, zero, along_f))
    along_r = torch.where(parallel | anti_parallel, zero, along_r)
    return torch.addcmul(along_f * g_f, along_r, v_r).to(g_forget.dtype)


def _norm(rows: Tensor) -> Tensor:
    return torch.linalg.vector_norm(rows, dim=-1, keepdim=True)


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return torch.linalg.vecdot(a, b, dim=-1).unsqueeze(-1)
