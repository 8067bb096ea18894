"""WS: the weighted sum of the forget and retain losses, the paper's multi-objective baseline."""

from __future__ import annotations

from torch import Tensor

from ._base import GradientRule, check_non_negative


class WeightedSum(GradientRule):
    """Descends weight·L_f + L_r: d = weight·g_forget + g_retain (the MOO baseline of Hwang & Lim, arXiv 2510.19226).

    Linear scalarisation with the retain loss as the unit: weight = 0 is fine-tuning, and a larger weight
    leans further towards forgetting, without bound. Computed in float64 and cast back to the input's
    dtype. The sum is taken as it is, with no normalisation, so degenerate inputs need no special case:
    zero, parallel or anti-parallel gradients give the exact weighted sum (0 when they cancel), and the
    direction is finite whenever weight · ‖g_forget‖ + ‖g_retain‖ is representable in the input dtype
    (float32 overflows only past ~3e38, e.g. weight 1e3 with entries of 1e35).
    """

    __slots__ = ("_weight",)

    def __init__(self, weight: float):
        object.__setattr__(self, "_weight", check_non_negative("weight", weight))

    @property
    def weight(self) -> float:
        return self._weight

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (WeightedSum, (self._weight,))

    def __repr__(self) -> str:
        return f"WeightedSum(weight={self._weight!r})"

    def __str__(self) -> str:
        return f"WS w={self._weight:g}"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        direction = self._weight * g_forget.double() + g_retain.double()  # (P,)
        return direction.to(g_forget.dtype)
