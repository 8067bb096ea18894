"""FT: fine-tuning on the retain set, the retain gradient alone."""

from __future__ import annotations

from torch import Tensor

from ._base import GradientRule


class FT(GradientRule):
    """Steps along the retain gradient alone: fine-tuning on the retain set (Golatkar et al., CVPR 2020).

    Forgetting comes only from catastrophic forgetting of what the retain set does not support. FT has no
    knob of its own: its trade-off is set by the learning rate (or the number of epochs), which the sweep
    varies. The direction is a copy of g_retain, bit for bit, so it is finite exactly when the input is;
    zero, parallel or anti-parallel gradients and any scale change nothing.
    """

    __slots__ = ()

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (FT, ())

    def __repr__(self) -> str:
        return "FT()"

    def __str__(self) -> str:
        return "FT"

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        # A copy, not the input itself: the training loop hands views of the direction to .grad.
        return g_retain.clone()  # (P,)
