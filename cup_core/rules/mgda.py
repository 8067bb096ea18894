"""MGDA for two tasks: the min-norm point of the segment between the preference-scaled gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import PreferenceRule


class MGDA(PreferenceRule):
    """The min-norm point of the hull of λ·g_forget, (1 − λ)·g_retain (Désidéri 2012; Sener & Koltun, NeurIPS 2018).

    With g1 = λ·g_forget, g2 = (1 − λ)·g_retain and λ the preference, the two-gradient closed form of
    spec §6: α = clamp(<g2 − g1, g2> / ‖g1 − g2‖², 0, 1), d = α·g1 + (1 − α)·g2. Being the hull's
    min-norm point, d satisfies <d, g_i> ≥ ‖d‖² for both gradients: a common descent direction, or 0
    when none exists (the point is Pareto-stationary).

    What the preference does. MGDA equalises the first-order improvements of the *scaled* losses, so
    λ·<d, g_forget> = (1 − λ)·<d, g_retain> whenever α is strictly inside (0, 1): a small λ buys a
    large improvement of the forget loss, the opposite of what "preference" suggests. And the step's
    norm is at most min(λ‖g_forget‖, (1 − λ)‖g_retain‖), so it vanishes at both ends of the sweep.

    Computed in float64, cast back to the input's dtype. Degenerate inputs give finite output:

    - a zero gradient, and so λ = 0 or λ = 1, puts 0 in the hull: d = 0 exactly (α = 1 or 0 exactly).
      The spec's hull {0, g_retain} at λ = 0 has min-norm point 0, not g_retain;
    - anti-parallel gradients: 0 lies on the segment and d is 0 up to rounding (~1e-16 of their norms);
    - parallel gradients: the shorter of g1 and g2 (α clamps to 0 or 1);
    - g1 = g2, where α is 0/0: every α gives the same point, and α = 1/2 is used (also when
      ‖g1 − g2‖² underflows to 0, at norms below ~1e-160, far under any real gradient);
    - any scale: d is positively homogeneous, d(c·g_f, c·g_r) = c·d(g_f, g_r), with no ε involved.
    """

    __slots__ = ()

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        g1, g2 = self._tasks(g_forget, g_retain)  # (P,), (P,)
        difference = g2 - g1  # (P,) taken directly, not from the Gram matrix, to keep its accuracy when g1 ≈ g2
        gap = torch.dot(difference, difference)  # ‖g1 − g2‖²
        # torch.where rather than an `if` keeps this free of a GPU sync; the ratio may be ±inf, clamped next.
        ratio = torch.dot(difference, g2) / torch.where(gap > 0, gap, 1.0)
        alpha = torch.where(gap > 0, ratio, 0.5).clamp(0.0, 1.0)
        return (alpha * g1 + (1.0 - alpha) * g2).to(g_forget.dtype)
