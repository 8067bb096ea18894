"""NegGrad+ (GradDiff): a convex combination of the retain and forget losses."""

from __future__ import annotations

from torch import Tensor

from ._base import GradientRule, check_unit_interval


class NegGradPlus(GradientRule):
    """Descends β · L_r + (1 − β) · L_f: NegGrad+ (Kurmanji et al., NeurIPS 2023), GradDiff up to the weighting.

    β = 0 is gradient ascent on the forget set, β = 1 fine-tuning on the retain set. Because the weights
    sum to 1, sweeping β changes the direction but keeps the step on the scale of the gradients
    (WeightedSum's weight instead grows the step without bound). Computed in float64 and cast back to
    the input's dtype. No normalisation, so degenerate inputs need no special case: zero, parallel or
    anti-parallel gradients give the exact combination (0 when they cancel), and each entry is bounded
    by the larger of the two inputs' entries, so finite inputs give a finite direction at any scale.
    """

    __slots__ = ("_beta",)

    def __init__(self, beta: float):
        object.__setattr__(self, "_beta", check_unit_interval("beta", beta))

    @property
    def beta(self) -> float:
        return self._beta

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (NegGradPlus, (self._beta,))

    def __repr__(self) -> str:
        return f"NegGradPlus(beta={self._beta!r})"

    def __str__(self) -> str:
        return f"NegGrad+ β={self._beta:g}"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        direction = self._beta * g_retain.double() + (1.0 - self._beta) * g_forget.double()  # (P,)
        return direction.to(g_forget.dtype)
