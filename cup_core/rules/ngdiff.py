"""NGDiff: the sum of the two gradients, each normalised to (almost) unit length."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GradientRule
# The spec's ε, shared with CUP. It keeps a zero gradient (a saturated forget loss, a retain batch fitted exactly)
# from being divided by 0: its term becomes 0 and the step follows the other gradient. And below ~ε a
# gradient's term shrinks with its norm instead of being blown up to unit length, which would turn float
# noise into a full step. Sharing CUP's value makes the two rules treat tiny gradients alike.
from .cup import EPS


class NGDiff(GradientRule):
    """Adds the unit forget and retain gradients (normalised gradient difference; Jin, Bu et al., arXiv 2410.22086).

    d = g_forget / (‖g_forget‖ + ε) + g_retain / (‖g_retain‖ + ε). The paper writes it as
    g_R/‖g_R‖ − g_F/‖g_F‖ with g_F the gradient of the forget cross-entropy; our g_forget is the gradient
    of the negated cross-entropy, hence the plus. Equal-length terms give both losses the same say
    whatever their gradients' scales, and ‖d‖ ≤ 2 always. The paper pairs the direction with an
    automatic learning-rate schedule (GeN); here the learning rate is the swept knob instead.

    Computed in float64, cast back to the input's dtype. Degenerate inputs give finite output:

    - a zero gradient contributes 0, so d is the other gradient's unit vector (0 when both are zero);
    - parallel gradients give (almost) twice their common unit vector, anti-parallel ones (almost) 0;
      "almost" because ε makes each term's length ‖g‖/(‖g‖ + ε) slightly below 1, so they cancel
      exactly only when the norms are equal;
    - a gradient whose norm is near or below ε gets a term of length ≈ ‖g‖/ε < 1 rather than 1, so the
      invariance to rescaling either gradient holds only while both norms are well above ε.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (NGDiff, ())

    def __repr__(self) -> str:
        return "NGDiff()"

    def __str__(self) -> str:
        return "NGDiff"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        g_f = g_forget.double()  # (P,)
        g_r = g_retain.double()  # (P,)
        direction = g_f / (torch.linalg.vector_norm(g_f) + EPS) + g_r / (torch.linalg.vector_norm(g_r) + EPS)  # (P,)
        return direction.to(g_forget.dtype)
