"""GA: gradient ascent on the forget set, the forget gradient alone."""

from __future__ import annotations

from torch import Tensor

from ._base import GradientRule


class GA(GradientRule):
    """Steps along the forget gradient alone, ignoring the retain set (gradient ascent; Thudi et al., EuroS&P 2022).

    The forget loss is the negated cross-entropy, so descending it is gradient ascent on the forget set's
    cross-entropy. GA has no knob of its own: its trade-off is set by the learning rate (or the number of
    epochs), which the sweep varies. The direction is a copy of g_forget, bit for bit, so it is finite
    exactly when the input is; zero, parallel or anti-parallel gradients and any scale change nothing.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (GA, ())

    def __repr__(self) -> str:
        return "GA()"

    def __str__(self) -> str:
        return "GA"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        # A copy, not the input itself: the training loop hands views of the direction to .grad.
        return g_forget.clone()  # (P,)
