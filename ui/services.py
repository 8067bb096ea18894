"""The one place where Streamlit's caching meets cup_core: pages ask here, never train themselves."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import streamlit as st

from cup_core import Experiment, ExperimentConfig, SweepPlan, SweepProgress, default_config, resolve_device, run_sweep
from cup_core.config import canonical_value
from cup_core.cache import BrokenEntry, cache_root, is_valid
from cup_core.data import DATASETS, dataset_info
from cup_core.export import export_bytes
from cup_core.experiment import ROLES
from cup_core.methods import get_method
from cup_core.pareto import objective_names
from cup_core.report import frontier_table, reference_table, summary
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
        if experiment.id != default.id and config.dataset == dataset and config.forget == default.config.forget:
            found.append(experiment)
    return found


def describe_recipe(experiment: Experiment, default: Experiment) -> str:
    if experiment.id == default.id:
        return "default recipe"
    config, base = experiment.config, default.config
    changed = [f"unlearning {name} {getattr(config.unlearn, name)}" for name in config.unlearn.__dataclass_fields__
               if getattr(config.unlearn, name) != getattr(base.unlearn, name)]
    changed += [f"training {name} {getattr(config.train, name)}" for name in config.train.__dataclass_fields__
                if getattr(config.train, name) != getattr(base.train, name)]
    if config.split_seed != base.split_seed:
        changed.append(f"split seed {config.split_seed}")
    return ", ".join(changed)


def explore_plan() -> SweepPlan:
    return SweepPlan.default((EXPLORE_METHOD,))


def seeds_at(results: pd.DataFrame, method: str, value: float) -> list[int]:
    """The seeds computed for one point (a value computed on demand may have fewer than the grid)."""
    chosen = (results["method"] == method) & (results["value"] - value).abs().lt(1e-12)
    return sorted(int(seed) for seed in results.loc[chosen, "seed"])


def canonical_intensity(value: float) -> float:
    return get_method(EXPLORE_METHOD).check_value(value)


def single_point_plan(value: float) -> SweepPlan:
    return SweepPlan({EXPLORE_METHOD: (value,)})


def missing_count(experiment: Experiment, plan: SweepPlan) -> int:
    """Models of `plan` not cached yet: its points, and the original and the oracle."""
    missing = len(missing_points(experiment, plan))
    for role in ROLES:
        try:
            experiment.reference(role)
        except BrokenEntry:
            missing += 1
    return missing


def compute(experiment: Experiment, plan: SweepPlan, on_progress: Callable[[SweepProgress], None]) -> None:
    """Runs `plan`; points another session is computing are waited for, not duplicated."""
    run_sweep(experiment, plan, resolve_device(), on_progress)


@dataclass(frozen=True)
class ExplorerView:
    """Everything the Explore page shows of one experiment, read from the cache."""

    frontier: pd.DataFrame  # seed-averaged points of the explored method, with objectives
    references: pd.DataFrame  # original and oracle, indexed by role
    results: pd.DataFrame  # one row per (value, seed) of the explored method
    knob: str
    axis_titles: tuple[str, str]
    forget_class: int | None

    @property
    def values(self) -> list[float]:
        return self.frontier["value"].tolist()

    def seeds_at(self, value: float) -> list[int]:
        return seeds_at(self.results, EXPLORE_METHOD, value)

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


def _handle(experiment: Experiment) -> tuple[str, str]:
    """What Streamlit's caches key an experiment by: its canonical config and its cache folder. An
    experiment is rebuilt from these, not reopened from disk, so one whose config could not be written
    (a full disk) still shows its empty state."""
    return experiment.config.canonical_json(), str(experiment.root.parent)


def _reopen(handle: tuple[str, str]) -> Experiment:
    config_json, cache_dir = handle
    return Experiment(ExperimentConfig.from_dict(json.loads(config_json)), cache_dir)


def _stamp(experiment: Experiment) -> tuple[int, int]:
    """Changes whenever the sweep rewrites results.csv, so cached views never go stale."""
    try:
        stat = (experiment.root / "results.csv").stat()
        return stat.st_mtime_ns, stat.st_size
    except FileNotFoundError:
        return 0, 0


@st.cache_data(show_spinner=False, max_entries=32)
def _view(handle: tuple[str, str], stamp: tuple[int, int]) -> ExplorerView:
    experiment = _reopen(handle)
    results = experiment.results()
    results = results[results["method"] == EXPLORE_METHOD].reset_index(drop=True)
    frontier = frontier_table(experiment, results)
    return ExplorerView(
        frontier=frontier, references=reference_table(experiment), results=results,
        knob=get_method(EXPLORE_METHOD).knob, axis_titles=objective_names(experiment.config.forget.kind),
        forget_class=experiment.config.forget.forget_class,
    )


def explorer_view(experiment: Experiment) -> ExplorerView:
    return _view(_handle(experiment), _stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=256)
def _point_is_valid(handle: tuple[str, str], method: str, value: float, seed: int, stamp: tuple[int, int]) -> bool:
    experiment = _reopen(handle)
    return is_valid(experiment.point_entry(method, value, seed), experiment.point_key(method, value, seed))


def point_is_valid(experiment: Experiment, method: str, value: float, seed: int) -> bool:
    """Whether the point's checkpoint is there and matches its hash (checked once per cache state)."""
    return _point_is_valid(_handle(experiment), method, value, seed, _stamp(experiment))


def export_zip(experiment: Experiment, value: float, seed: int, method: str = EXPLORE_METHOD) -> bytes:
    return _export(_handle(experiment), method, value, seed, _stamp(experiment))


@dataclass(frozen=True)
class CompareView:
    """Everything the Compare page shows of one experiment's methods, read from the cache."""

    frontier: pd.DataFrame  # seed-averaged points of every method, with objectives and their spread
    references: pd.DataFrame
    results: pd.DataFrame  # every point of every method (the CSV download)
    summary: dict  # report.summary: hypervolumes, controllability, recommended points
    axis_titles: tuple[str, str]


@st.cache_data(show_spinner=False, max_entries=16)
def _compare(handle: tuple[str, str], stamp: tuple[int, int], points: tuple[tuple[str, float, int], ...]) -> CompareView:
    experiment = _reopen(handle)
    results = experiment.results()
    wanted = pd.MultiIndex.from_tuples(points, names=["method", "value", "seed"])
    results = results[pd.MultiIndex.from_frame(results[["method", "value", "seed"]]).isin(wanted)].reset_index(drop=True)
    return CompareView(frontier=frontier_table(experiment, results), references=reference_table(experiment),
                       results=results, summary=summary(experiment, results),
                       axis_titles=objective_names(experiment.config.forget.kind))


def compare_view(experiment: Experiment, plan: SweepPlan) -> CompareView:
    """The plan's points only, so that every method is judged on a grid of the same size and the same seeds."""
    return _compare(_handle(experiment), _stamp(experiment), tuple(plan.points()))


def compare_plan(methods: list[str], points: int, seeds: list[int]) -> SweepPlan:
    return SweepPlan.default(tuple(methods), points, tuple(seeds))


def method_label(name: str) -> str:
    return get_method(name).label


def method_about(name: str) -> str:
    method = get_method(name)
    return f"{method.label}: {method.about} (knob: {method.knob})"


def knob_positions(frontier: pd.DataFrame, methods: list[str]) -> dict:
    """Each method's knob values (sorted) mapped to [0, 1], for the controllability view."""
    return {name: get_method(name).position(frontier.loc[frontier["method"] == name, "value"].sort_values().to_numpy())
            for name in methods}


@st.cache_data(show_spinner=False, max_entries=16)
def _export(handle: tuple[str, str], method: str, value: float, seed: int, stamp: tuple[int, int]) -> bytes:
    return export_bytes(_reopen(handle), method, value, seed)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "estimating…"
    return f"about {seconds:.0f} s left" if seconds >= 1 else "under a second left"


# --- Learn ---------------------------------------------------------------------------------------------

LEARN_GRID = tuple(canonical_value(k / 40) for k in range(41))  # dense enough that the slider feels continuous
LEARN_RUNS = (0.0, 0.25, 0.5, 0.75, 1.0)  # intensities whose losses are drawn together
LEARN_SEED = 0


def learn_experiment() -> Experiment:
    """The paper's toy: five 2-D blobs, class 2 forgotten, CUP with the toy's Adam recipe."""
    return default_experiment("blobs", default_forget("blobs"))


def learn_plan() -> SweepPlan:
    return SweepPlan({EXPLORE_METHOD: LEARN_GRID}, (LEARN_SEED,))


@st.cache_data(show_spinner=False, max_entries=4)
def _regions(handle: tuple[str, str], stamp: tuple[int, int]) -> dict:
    from cup_core.regions import experiment_regions

    return experiment_regions(_reopen(handle), EXPLORE_METHOD, list(LEARN_GRID), LEARN_SEED)


def learn_regions(experiment: Experiment) -> dict:
    """Decision regions of the original, the oracle and every grid point (computed once, then instant)."""
    return _regions(_handle(experiment), _stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=64)
def _trajectory(handle: tuple[str, str], value: float, stamp: tuple[int, int]) -> dict:
    from cup_core.trajectory import trajectory

    return trajectory(_reopen(handle), EXPLORE_METHOD, value, LEARN_SEED)


def learn_trajectory(experiment: Experiment, value: float) -> dict:
    """The per-step records of the run at `value` (recorded on first use, cached on disk)."""
    return _trajectory(_handle(experiment), value, _stamp(experiment))


def pivot_sweep(plane: dict) -> list[tuple[float, list[float]]]:
    """CUP's direction at every grid intensity for one recorded step."""
    from cup_core.trajectory import pivot_directions

    return list(zip(LEARN_GRID, pivot_directions(plane, list(LEARN_GRID))))
