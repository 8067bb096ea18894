"""From results.csv to frontier tables and per-method summaries (what `report` prints and the app plots)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from .experiment import Experiment
from .pareto import REFERENCE_POINT, hypervolume, non_dominated, objective_names, objectives, seed_mean


def oracle_forget_acc(experiment: Experiment) -> float | None:
    references = experiment.references()
    if "oracle" not in references.index:
        return None
    return float(references.loc["oracle", "forget_acc"])


def frontier_table(experiment: Experiment, results: pd.DataFrame | None = None) -> pd.DataFrame:
    """Seed-averaged points with their two objectives (`objective_x`, `objective_y`) and, per method,
    whether each point is non-dominated."""
    results = experiment.results() if results is None else results
    table = seed_mean(results)
    if table.empty:
        return table.assign(objective_x=pd.Series(dtype=float), objective_y=pd.Series(dtype=float),
                            non_dominated=pd.Series(dtype=bool))
    points = objectives(table, experiment.config.forget.kind, oracle_forget_acc(experiment))
    table = table.assign(objective_x=points[:, 0], objective_y=points[:, 1], non_dominated=False)
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


def summary(experiment: Experiment) -> dict[str, Any]:
    """What `report --json` prints: references, and per method its hypervolume and best points."""
    results = experiment.results()
    frontier = frontier_table(experiment, results)
    kind = experiment.config.forget.kind
    methods: dict[str, Any] = {}
    for name, rows in frontier.groupby("method"):
        per_seed = {}
        for seed, seed_rows in results[results["method"] == name].groupby("seed"):
            per_seed[int(seed)] = hypervolume(objectives(seed_rows, kind, oracle_forget_acc(experiment)))
        best = rows.loc[rows["avg_gap"].idxmin()] if rows["avg_gap"].notna().any() else None
        methods[name] = {
            "knob": rows["knob"].iloc[0],
            "points": len(rows),
            "seeds": sorted(per_seed),
            "hypervolume": hypervolume(rows[["objective_x", "objective_y"]].to_numpy()),
            "hypervolume_per_seed": per_seed,
            "non_dominated_values": rows.loc[rows["non_dominated"], "value"].tolist(),
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
        "references": {row["role"]: _clean(row.drop("role").to_dict()) for _, row in experiment.references().iterrows()},
        "methods": methods,
    }


REPORT_COLUMNS = ["value", "seeds", "forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua",
                  "mia_efficacy", "avg_gap", "seconds", "non_dominated"]


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [_clean(record) for record in rows[REPORT_COLUMNS].to_dict("records")]


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: NaN becomes None, numpy scalars become Python numbers."""
    cleaned = {}
    for key, value in record.items():
        if hasattr(value, "item"):
            value = value.item()
        cleaned[key] = None if isinstance(value, float) and math.isnan(value) else value
    return cleaned
