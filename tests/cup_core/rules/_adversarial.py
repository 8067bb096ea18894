"""The fixed, seeded adversarial gradient pairs that every rule's tests run over (zero, parallel, anti-parallel,
orthogonal, near-collinear, very unequal norms, ...), and the scales and dtypes they are tried at."""

from __future__ import annotations

import math

import torch


def plane(dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two orthonormal float64 vectors of R^dim."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, generator=generator, dtype=torch.float64)
    b = torch.randn(dim, generator=generator, dtype=torch.float64)
    a = a / a.norm()
    b = b - torch.dot(a, b) * a
    return a, b / b.norm()


def pair(phi: float, norm_forget: float = 1.0, norm_retain: float = 1.0, dim: int = 10, seed: int = 0):
    """g_forget and g_retain with the given norms at angle φ."""
    a, b = plane(dim, seed)
    return norm_forget * a, norm_retain * (math.cos(phi) * a + math.sin(phi) * b)


def _adversarial_pairs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    a, b = plane(10, seed=0)
    zero = torch.zeros(10, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    return {
        "zero-forget": (zero, 1.5 * b),
        "zero-retain": (2.0 * a, zero),
        "both-zero": (zero, zero),
        "parallel": (a, 3.0 * a),
        "anti-parallel": (1.7 * a, -1.7 * a),
        "anti-parallel-unequal": (a, -2.0 * a),
        "orthogonal": (a, 2.0 * b),
        "near-collinear": pair(1e-3),
        "near-anti-collinear": pair(math.pi - 1e-3),
        "conflicting": pair(2.5, norm_forget=0.5, norm_retain=2.0, seed=2),
        "aligned": pair(0.5, norm_forget=3.0, norm_retain=0.7, seed=3),
        "very-unequal-norms": pair(2.0, norm_forget=1e3, norm_retain=1.0, seed=4),
        "random-large": (torch.randn(2000, generator=generator, dtype=torch.float64),
                         torch.randn(2000, generator=generator, dtype=torch.float64)),
        # Found by a random search: <u_r, u_f> rounds to 1 + 2^-52 here, so Θ needs the clamp before arccos.
        "huge-near-anti-parallel": (torch.tensor([-1.2199475589491315e18, 2.2526227413460714e17], dtype=torch.float64),
                                    torch.tensor([9.510265283061052e17, -1.7560625504376013e17], dtype=torch.float64)),
    }


ADVERSARIAL = _adversarial_pairs()
SCALES = (1e-10, 1e-5, 1.0, 1e5, 1e10)
DTYPES = (torch.float64, torch.float32)


def scaled(name: str, scale: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair called `name` times `scale`, scaled in float64 and then rounded once to `dtype`."""
    g_forget, g_retain = ADVERSARIAL[name]
    return (g_forget * scale).to(dtype), (g_retain * scale).to(dtype)
