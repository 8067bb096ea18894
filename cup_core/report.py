"""From results.csv to frontier tables and per-method summaries (what `report` prints and the app plots)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._json import strict
from .experiment import Experiment
from .methods import METHODS
from .pareto import REFERENCE_POINT, hypervolume, knee, non_dominated, objective_names, objectives, seed_mean


def oracle_forget_acc(experiment: Experiment) -> float | None:
    references = experiment.references()
    if "oracle" not in references.index:
        return None
    return float(references.loc["oracle", "forget_acc"])


def frontier_table(experiment: Experiment, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Seed-averaged points with their two objectives (`objective_x`, `objective_y`, averaged over seeds,
    with `objective_x_std`, `objective_y_std`) and, per method, whether each point is non-dominated."""
    results = experiment.results() if results is None else results
    if results.empty:
        empty = {name: pd.Series(dtype=float) for name in
                 ("objective_x", "objective_y", "objective_x_std", "objective_y_std", "seeds", "diverged")}
        return results.assign(**empty, non_dominated=pd.Series(dtype=bool))
    points = objectives(results, experiment.config.forget.kind, oracle_forget_acc(experiment))
    results = results.assign(objective_x=points[:, 0], objective_y=points[:, 1],
                             diverged=results["diverged_at_step"].notna().astype(float))  # mean: share of seeds
    table = seed_mean(results)
    spread = (results.groupby(["method", "knob", "value"])[["objective_x", "objective_y"]].std(ddof=0)
              .add_suffix("_std").reset_index())
    table = table.merge(spread, on=["method", "knob", "value"]).assign(non_dominated=False)
    for _, rows in table.groupby("method"):
        table.loc[rows.index, "non_dominated"] = non_dominated(rows[["objective_x", "objective_y"]].to_numpy())
    return table


def reference_table(experiment: Experiment) -> pd.DataFrame:
    """The original's and the oracle's metrics, indexed by role, placed in the same objective space."""
    references = experiment.references()
    if references.empty:
        return references.assign(objective_x=pd.Series(dtype=float), objective_y=pd.Series(dtype=float))
    points = objectives(references, experiment.config.forget.kind, oracle_forget_acc(experiment))
    return references.assign(objective_x=points[:, 0], objective_y=points[:, 1])


def summary(experiment: Experiment, results: pd.DataFrame | None = None) -> dict[str, Any]:
    """What `report --json` prints: references, and per method its hypervolume and best points.

    `results` restricts it to some of the experiment's points (the app compares equal grids)."""
    results = experiment.results() if results is None else results
    frontier = frontier_table(experiment, results)
    kind = experiment.config.forget.kind
    methods: dict[str, Any] = {}
    for name, rows in frontier.groupby("method"):
        per_seed = {}
        for seed, seed_rows in results[results["method"] == name].groupby("seed"):
            per_seed[int(seed)] = hypervolume(objectives(seed_rows, kind, oracle_forget_acc(experiment)))
        best = rows.loc[rows["avg_gap"].idxmin()] if rows["avg_gap"].notna().any() else None
        knee_at = knee(rows[["objective_x", "objective_y"]].to_numpy())
        methods[name] = {
            "label": METHODS[name].label if name in METHODS else name,
            "knob": rows["knob"].iloc[0],
            "points": len(rows),
            "seeds": sorted(per_seed),
            "hypervolume": hypervolume(rows[["objective_x", "objective_y"]].to_numpy()),
            "hypervolume_mean": float(np.mean(list(per_seed.values()))),
            "hypervolume_std": float(np.std(list(per_seed.values()))),
            "hypervolume_per_seed": per_seed,
            "controllability": controllability(rows),
            "non_dominated_values": rows.loc[rows["non_dominated"], "value"].tolist(),
            "recommended_value": None if knee_at is None else float(rows["value"].iloc[knee_at]),
            "best_avg_gap": None if best is None else {"value": float(best["value"]), "avg_gap": float(best["avg_gap"])},
            "mean_seconds": float(rows["seconds"].mean()),
            "table": _records(rows),
        }
    return {
        "experiment": experiment.id,
        "folder": str(experiment.root),
        "config": experiment.config.to_dict(),
        "forget_set": experiment.config.forget.describe(),
        "hypervolume": {"objectives": list(objective_names(kind)), "reference_point": list(REFERENCE_POINT),
                        "scale": "area / (100 · 100)", "over": "seed-averaged points"},
        "references": {row["role"]: strict(row.drop("role").to_dict()) for _, row in experiment.references().iterrows()},
        "methods": methods,
    }


def controllability(rows: pd.DataFrame) -> dict[str, float | None]:
    """How the knob moves forgetting: Spearman's ρ between knob value and ua (±1: monotone), and the span
    of ua (percentage points) that the grid covers. ρ is None where ua or the knob does not vary."""
    from scipy.stats import spearmanr  # here: scipy.stats costs a quarter of the app's first import otherwise

    finite = rows[np.isfinite(rows["ua"])]
    span = float(finite["ua"].max() - finite["ua"].min()) if len(finite) else 0.0
    rho = None
    if len(finite) >= 2 and finite["ua"].nunique() > 1 and finite["value"].nunique() > 1:
        rho = float(spearmanr(finite["value"], finite["ua"]).statistic)
    return {"spearman_value_ua": rho, "ua_span": span}


REPORT_COLUMNS = ["value", "seeds", "forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua",
                  "mia_efficacy", "avg_gap", "seconds", "non_dominated"]


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [strict(record) for record in rows[REPORT_COLUMNS].to_dict("records")]
