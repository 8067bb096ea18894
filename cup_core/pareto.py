"""Frontiers and hypervolume (spec §5); the only module that imports pymoo.

Objectives are maximised percentages. They are negated here, in one place, before pymoo sees them,
and the reference point is always explicit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

REFERENCE_POINT = (0.0, 0.0)  # spec §5: both objectives in percent, maximised, reference (0, 0)
HV_SCALE = 100.0 * 100.0  # divides the area so that hypervolume lies in [0, 1]


def objectives(table: pd.DataFrame, forget_kind: str, oracle_forget_acc: float | None = None) -> np.ndarray:
    """(N, 2) maximised objectives: (retain_acc, ua) class-wise; (retain_acc, 100 − |forget_acc − oracle's|)
    for random-subset forgetting, where forgetting more than the oracle is over-forgetting."""
    retain = table["retain_acc"].to_numpy(dtype=float)
    if forget_kind == "class":
        second = table["ua"].to_numpy(dtype=float)
    else:
        if oracle_forget_acc is None or math.isnan(oracle_forget_acc):
            raise ValueError("random-subset hypervolume needs the oracle's forget accuracy")
        second = 100.0 - np.abs(table["forget_acc"].to_numpy(dtype=float) - oracle_forget_acc)
    return np.stack([retain, second], axis=1)


def objective_names(forget_kind: str) -> tuple[str, str]:
    return ("retain accuracy (%)",
            "unlearning accuracy UA (%)" if forget_kind == "class" else "100 − |forget acc − oracle's| (%)")


def _finite_rows(points: np.ndarray) -> np.ndarray:
    return np.isfinite(points).all(axis=1) if len(points) else np.zeros(0, dtype=bool)


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates (both objectives maximised).

    Duplicated points are all marked. Rows with a NaN (a diverged run) are never non-dominated.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    mask = np.zeros(len(points), dtype=bool)
    finite = np.flatnonzero(_finite_rows(points))
    if len(finite) == 0:
        return mask
    front = NonDominatedSorting().do(-points[finite], only_non_dominated_front=True)
    mask[finite[front]] = True
    return mask


def hypervolume(points: np.ndarray, reference: tuple[float, float] = REFERENCE_POINT) -> float:
    """Area dominated by `points` and bounded by `reference`, divided by 100·100; 0 for no point."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    points = points[_finite_rows(points)]
    points = points[(points > np.asarray(reference)).all(axis=1)]  # points not beyond the reference add nothing
    if len(points) == 0:
        return 0.0
    indicator = HV(ref_point=-np.asarray(reference, dtype=float))
    return float(indicator(-points)) / HV_SCALE


def knee(points: np.ndarray) -> int | None:
    """Index of the recommended point: the non-dominated point nearest the ideal (the best value of each
    objective over the front), after scaling each objective to [0, 1] over the front; None for no point."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    front = np.flatnonzero(non_dominated(points))
    if len(front) == 0:
        return None
    candidates = points[front]
    low, high = candidates.min(axis=0), candidates.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    distance = np.linalg.norm((high - candidates) / span, axis=1)
    return int(front[np.argmin(distance)])


def staircase(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the non-dominated staircase, sorted by the first objective, for plotting."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    front = points[non_dominated(points)]
    if len(front) == 0:
        return np.zeros(0), np.zeros(0)
    front = front[np.lexsort((-front[:, 1], front[:, 0]))]  # retain ascending, then the better second
    xs, ys = [front[0, 0]], [front[0, 1]]
    for x, y in front[1:]:
        xs += [x, x]  # right along the previous level, then down to this point
        ys += [ys[-1], y]
    return np.asarray(xs), np.asarray(ys)


def seed_mean(table: pd.DataFrame, spread: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per (method, value): the mean of the numeric columns over seeds, plus `seeds` counted and, for
    each column named in `spread`, its standard deviation over seeds (`<column>_std`, ddof 0). A table pooled
    over learning rates (pool.py) has an `lr` column: one row per (method, lr, value), NaN lr kept as one."""
    if table.empty:
        return table.assign(seeds=pd.Series(dtype=int), **{f"{name}_std": pd.Series(dtype=float) for name in spread})
    keys = point_keys(table)
    numeric = table.select_dtypes("number").columns.difference(["value", "seed", "lr"])
    grouped = table.groupby(keys, as_index=False, dropna=False)  # one grouping for the three: its groups in order
    means = grouped[list(numeric)].mean()
    std = grouped[list(spread)].std(ddof=0) if spread else None
    return means.assign(seeds=grouped.size()["size"].to_numpy(),
                        **{f"{name}_std": std[name].to_numpy() for name in spread})


def point_keys(table: pd.DataFrame) -> list[str]:
    """The columns that name one seed-averaged point: (method, knob, value), and `lr` in a pooled table."""
    return ["method", "knob", "value", *(["lr"] if "lr" in table.columns else [])]


@dataclass(frozen=True)
class Normalisation:
    """The normalised objective space of multi-objective benchmarking (Ishibuchi et al. 2018), in the
    objectives' own units (maximised): `ideal` maps to 0, `nadir` to 1, and the reference point lies at
    1 + 1/H in every normalised coordinate, H being the number of grid intervals."""

    ideal: tuple[float, float]  # componentwise best of the union's non-dominated points
    nadir: tuple[float, float]  # componentwise worst of them (at least MIN_SPAN below the ideal)
    intervals: int  # H
    degenerate: bool = False  # the union's front is one point: the nadir is the worst of the methods' own fronts

    @property
    def reference_offset(self) -> float:
        return 1.0 + 1.0 / max(1, self.intervals)

    @property
    def reference(self) -> tuple[float, float]:
        """The reference point in the objectives' units."""
        ideal, span = np.asarray(self.ideal), self._span()
        return tuple(float(v) for v in ideal - self.reference_offset * span)

    def _span(self) -> np.ndarray:
        return np.asarray(self.ideal) - np.asarray(self.nadir)

    def minimised(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) maximised objectives -> normalised minimisation coordinates (ideal 0, nadir 1)."""
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        return (np.asarray(self.ideal) - points) / self._span()

    def to_dict(self) -> dict[str, list[float]]:
        return {"ideal": list(self.ideal), "nadir": list(self.nadir), "reference": list(self.reference),
                "reference_normalised": [self.reference_offset] * 2, "intervals": self.intervals,
                "degenerate": self.degenerate}


MIN_SPAN = 1.0  # percentage points: a front flat in one objective still gets a unit to normalise by


def normalisation(point_sets: list[np.ndarray], intervals: int) -> Normalisation | None:
    """Ideal and nadir over the non-dominated points of the union of `point_sets`; None if none is finite.

    Where that front is a single point (one method's run dominates every other point: the nadir would be the
    ideal), the nadir is instead the componentwise worst of each set's own non-dominated points, so that the
    box still holds every method's front, and the normalisation says it is degenerate. Either way the nadir
    lies at least MIN_SPAN below the ideal."""
    sets = [np.asarray(p, dtype=float).reshape(-1, 2) for p in point_sets]
    sets = [p[_finite_rows(p)] for p in sets]
    union = np.concatenate(sets or [np.zeros((0, 2))])
    front = union[non_dominated(union)]
    if len(front) == 0:
        return None
    ideal, nadir = front.max(axis=0), front.min(axis=0)
    degenerate = len(np.unique(front, axis=0)) < 2
    if degenerate:
        fronts = np.concatenate([p[non_dominated(p)] for p in sets if len(p)])
        nadir = fronts.min(axis=0)
    nadir = np.minimum(nadir, ideal - MIN_SPAN)
    return Normalisation(tuple(float(v) for v in ideal), tuple(float(v) for v in nadir), intervals, degenerate)


def normalised_hypervolume(points: np.ndarray, norm: Normalisation) -> float:
    """Hypervolume of `points` in `norm`'s space (reference 1 + 1/H in each coordinate): at most (1 + 1/H)²,
    reached only by a point at the ideal; points beyond the reference add nothing; 0 for no point."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    z = norm.minimised(points[_finite_rows(points)])
    reference = np.full(2, norm.reference_offset)
    z = z[(z < reference).all(axis=1)]
    if len(z) == 0:
        return 0.0
    return float(HV(ref_point=reference)(z))


def exclusive_contributions(points: np.ndarray, norm: Normalisation) -> np.ndarray:
    """Each point's exclusive share of the set's normalised hypervolume: what the set loses without it."""
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    whole = normalised_hypervolume(points, norm)
    return np.array([whole - normalised_hypervolume(np.delete(points, i, axis=0), norm) for i in range(len(points))])


def hypervolume_2d(z: np.ndarray, reference: np.ndarray) -> float:
    """Exact area dominated by minimisation points `z` (N, 2) below `reference`: the sweep that pymoo's HV
    does in two dimensions, in numpy, for the bootstrap's thousands of replicates (tested equal to HV)."""
    z = np.asarray(z, dtype=float).reshape(-1, 2)
    z = z[np.isfinite(z).all(axis=1) & (z < reference).all(axis=1)]
    if len(z) == 0:
        return 0.0
    z = z[np.lexsort((z[:, 1], z[:, 0]))]  # by the first coordinate, ties by the second
    best = np.minimum.accumulate(z[:, 1])
    keep = np.r_[True, best[1:] < best[:-1]]  # each point that lowers the staircase
    xs, ys = z[keep, 0], best[keep]
    widths = np.diff(np.r_[xs, reference[0]])
    return float(np.sum(widths * (reference[1] - ys)))
