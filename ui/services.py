"""The one place where Streamlit's caching meets cup_core: pages ask here, never train themselves."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import streamlit as st

from cup_core import Experiment, SweepPlan, SweepProgress, default_config, resolve_device, run_sweep
from cup_core.cache import cache_root
from cup_core.data import DATASETS, dataset_info
from cup_core.export import export_bytes
from cup_core.methods import get_method
from cup_core.pareto import objective_names
from cup_core.report import frontier_table, reference_table
from cup_core.sweep import missing_points

DEFAULT_DATASET = "digits"
EXPLORE_METHOD = "cup"
RANDOM_FRACTION = 0.1  # the random-subset forget set offered in the sidebar


@dataclass(frozen=True)
class ForgetChoice:
    """A forget set as the sidebar offers it; its label is also its URL form."""

    forget_class: int | None
    fraction: float | None

    @property
    def label(self) -> str:
        return f"class {self.forget_class}" if self.forget_class is not None else f"random {self.fraction:.0%}"


def datasets() -> list[str]:
    return list(DATASETS)


def forget_choices(dataset: str) -> list[ForgetChoice]:
    classes = [ForgetChoice(k, None) for k in range(dataset_info(dataset).num_classes)]
    return classes + [ForgetChoice(None, RANDOM_FRACTION)]


def default_forget(dataset: str) -> ForgetChoice:
    return ForgetChoice(dataset_info(dataset).default_forget_class, None)


def default_experiment(dataset: str, forget: ForgetChoice) -> Experiment:
    return Experiment(default_config(dataset, forget_class=forget.forget_class, forget_fraction=forget.fraction))


def experiments_for(dataset: str, forget: ForgetChoice) -> list[Experiment]:
    """The default-recipe experiment first, then every other cached experiment with this data and forget set
    (e.g. ones made by `python -m cup_core sweep` with another learning rate)."""
    default = default_experiment(dataset, forget)
    found = [default]
    for folder in sorted(cache_root().glob("*/config.json")):
        try:
            experiment = Experiment.open(folder.parent)
        except (ValueError, FileNotFoundError):
            continue
        config = experiment.config
        if (experiment.id != default.id and config.dataset == dataset
                and config.forget.forget_class == forget.forget_class and config.forget.fraction == forget.fraction):
            found.append(experiment)
    return found


def describe_recipe(experiment: Experiment, default: Experiment) -> str:
    if experiment.id == default.id:
        return "default recipe"
    recipe, base = experiment.config.unlearn, default.config.unlearn
    changed = [f"{name} {getattr(recipe, name)}" for name in recipe.__dataclass_fields__
               if getattr(recipe, name) != getattr(base, name)]
    return "unlearning " + (", ".join(changed) if changed else "as default; other original-model training")


def plan_for(experiment: Experiment) -> SweepPlan:
    return SweepPlan.default((EXPLORE_METHOD,))


def missing_count(experiment: Experiment) -> int:
    """Models of the default plan not cached yet: its points, and the original and the oracle."""
    missing = len(missing_points(experiment, plan_for(experiment)))
    for role in ("original", "oracle"):
        try:
            experiment.reference(role)
        except Exception:
            missing += 1
    return missing


def compute(experiment: Experiment, on_progress: Callable[[SweepProgress], None]) -> None:
    """Runs the default plan; points another session is computing are waited for, not duplicated."""
    run_sweep(experiment, plan_for(experiment), resolve_device(), on_progress)


@dataclass(frozen=True)
class ExplorerView:
    """Everything the Explore page shows of one experiment, read from the cache."""

    experiment_id: str
    frontier: pd.DataFrame  # seed-averaged points of the explored method, with objectives
    references: pd.DataFrame  # original and oracle, indexed by role
    results: pd.DataFrame  # one row per (value, seed) of the explored method
    knob: str
    axis_titles: tuple[str, str]
    forget_class: int | None

    @property
    def values(self) -> list[float]:
        return self.frontier["value"].tolist()

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.results["seed"].unique())

    @property
    def recommended_value(self) -> float:
        """The grid value closest to the oracle (lowest avg gap): where the slider starts."""
        gaps = self.frontier["avg_gap"]
        if gaps.notna().any():
            return float(self.frontier.loc[gaps.idxmin(), "value"])
        return float(self.frontier["value"].iloc[len(self.frontier) // 2])

    def point(self, value: float) -> pd.Series:
        return self.frontier.loc[self.frontier["value"].sub(value).abs().idxmin()]

    def reference(self, role: str) -> pd.Series | None:
        return self.references.loc[role] if role in self.references.index else None

    def per_class(self, row: pd.Series | None) -> list[float]:
        if row is None:
            return []
        columns = sorted((c for c in row.index if c.startswith("acc_class_")), key=lambda c: int(c.rsplit("_", 1)[1]))
        return [float(row[c]) for c in columns]


def _stamp(experiment: Experiment) -> tuple[int, int]:
    """Changes whenever the sweep rewrites results.csv, so cached views never go stale."""
    try:
        stat = (experiment.root / "results.csv").stat()
        return stat.st_mtime_ns, stat.st_size
    except FileNotFoundError:
        return 0, 0


@st.cache_data(show_spinner=False, max_entries=32)
def _view(root: str, experiment_id: str, stamp: tuple[int, int]) -> ExplorerView:
    experiment = Experiment.open(root)
    results = experiment.results()
    results = results[results["method"] == EXPLORE_METHOD].reset_index(drop=True)
    frontier = frontier_table(experiment, results)
    return ExplorerView(
        experiment_id=experiment_id, frontier=frontier, references=reference_table(experiment), results=results,
        knob=get_method(EXPLORE_METHOD).knob, axis_titles=objective_names(experiment.config.forget.kind),
        forget_class=experiment.config.forget.forget_class,
    )


def explorer_view(experiment: Experiment) -> ExplorerView:
    return _view(str(experiment.root), experiment.id, _stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=16)
def _export(root: str, method: str, value: float, seed: int, stamp: tuple[int, int]) -> bytes:
    return export_bytes(Experiment.open(root), method, value, seed)


def export_zip(experiment: Experiment, value: float, seed: int) -> bytes:
    return _export(str(experiment.root), EXPLORE_METHOD, value, seed, _stamp(experiment))


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "estimating…"
    return f"about {seconds:.0f} s left" if seconds >= 1 else "under a second left"
