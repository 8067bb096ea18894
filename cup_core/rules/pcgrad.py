"""PCGrad for two tasks: remove from each preference-scaled gradient its conflict with the other, then sum."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import PreferenceRule


class PCGrad(PreferenceRule):
    """Projects away the conflict between λ·g_forget and (1 − λ)·g_retain, then sums (PCGrad; Yu et al., NeurIPS 2020).

    With g1 = λ·g_forget, g2 = (1 − λ)·g_retain and λ the preference: if <g1, g2> < 0, each is
    projected onto the normal plane of the *original* other one, p1 = g1 − <g1, g2>/‖g2‖²·g2 and
    p2 = g2 − <g1, g2>/‖g1‖²·g1, and d = p1 + p2; otherwise d = g1 + g2. For two tasks this is exactly
    the reference algorithm, and deterministic: its random task order only matters from three tasks on,
    because after projecting g1 against g2 it no longer conflicts with g1 itself.

    When the gradients conflict, <d, g_i> = ‖g_i‖²·sin²φ ≥ 0 for both (φ the angle between them), so
    every step is a common descent direction. λ = 0 gives g_retain, λ = 1 gives g_forget.

    Computed in float64, cast back to the input's dtype. Degenerate inputs give finite output:

    - a zero gradient: nothing conflicts, d is the other (scaled) gradient;
    - parallel gradients (or orthogonal ones): no conflict, d = g1 + g2;
    - anti-parallel gradients: each projection removes the whole gradient, d is 0 up to rounding
      (~1e-16 of their norms);
    - any scale: d is positively homogeneous, with no ε involved.
    """

    __slots__ = ()

    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        g1, g2 = self._tasks(g_forget, g_retain)  # (P,), (P,)
        inner = torch.dot(g1, g2)
        norm2_1, norm2_2 = torch.dot(g1, g1), torch.dot(g2, g2)
        # A conflict implies both squared norms are > 0 (unless they underflow, below norms of ~1e-160); the
        # guard only keeps the branch that torch.where discards free of 0/0.
        projected_1 = g1 - inner / torch.where(norm2_2 > 0, norm2_2, 1.0) * g2  # (P,) p1 ⟂ g2
        projected_2 = g2 - inner / torch.where(norm2_1 > 0, norm2_1, 1.0) * g1  # (P,) p2 ⟂ g1
        # torch.where rather than an `if` keeps this free of a GPU sync.
        direction = torch.where(inner < 0, projected_1 + projected_2, g1 + g2)  # (P,)
        return direction.to(g_forget.dtype)
