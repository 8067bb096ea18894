"""Brute-force oracles for the frontier code: slow, obvious, and independent of pymoo and cup_core.pareto."""

from __future__ import annotations

import numpy as np


def non_dominated_mask(points: np.ndarray) -> np.ndarray:
    """True where no other finite point is ≥ in both objectives and > in one (both maximised); NaN rows False."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    finite = np.isfinite(points).all(axis=1)
    mask = np.zeros(len(points), dtype=bool)
    for i in np.flatnonzero(finite):
        mask[i] = not any(
            finite[j] and (points[j] >= points[i]).all() and (points[j] > points[i]).any()
            for j in range(len(points))
        )
    return mask


def dominated_area(points: np.ndarray, reference: tuple[float, float] = (0.0, 0.0)) -> float:
    """Area of the union of the boxes [reference, p] over the points beyond the reference (finite rows only).

    Computed slab by slab: between consecutive distinct x coordinates, the covered height is the highest y
    among the points whose x reaches past the slab.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    points = points[(points[:, 0] > reference[0]) & (points[:, 1] > reference[1])]
    xs = sorted({reference[0], *points[:, 0].tolist()})
    area = 0.0
    for left, right in zip(xs, xs[1:]):
        heights = [y - reference[1] for x, y in points if x >= right]
        area += (right - left) * max(heights, default=0.0)
    return area


def rbf_svc_decision(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, c: float,
                     gamma: float) -> np.ndarray:
    """The decision values on x_test of a soft-margin SVC with the kernel exp(-gamma·(x - x')²), 1-D inputs,
    labels 0/1: its dual solved by scipy's SLSQP (small sets only), the bias averaged over the free vectors."""
    from scipy.optimize import minimize

    x_train, x_test = np.asarray(x_train, float).ravel(), np.asarray(x_test, float).ravel()
    sign = np.where(np.asarray(y_train) == 1, 1.0, -1.0)
    kernel = np.exp(-gamma * (x_train[:, None] - x_train[None, :]) ** 2)
    q = kernel * sign[:, None] * sign[None, :]
    solution = minimize(lambda a: 0.5 * a @ q @ a - a.sum(), np.zeros(len(x_train)), jac=lambda a: q @ a - 1.0,
                        bounds=[(0.0, c)] * len(x_train), method="SLSQP", options={"ftol": 1e-12, "maxiter": 1000},
                        constraints=[{"type": "eq", "fun": lambda a: a @ sign, "jac": lambda a: sign}])
    alpha = solution.x
    free = (alpha > 1e-6 * c) & (alpha < c * (1 - 1e-6))
    bias = np.mean(sign[free] - (alpha * sign) @ kernel[:, free])
    return (alpha * sign) @ np.exp(-gamma * (x_train[:, None] - x_test[None, :]) ** 2) + bias
