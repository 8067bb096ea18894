"""The one place where Streamlit's caching meets cup_core: pages ask here, never train themselves."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cup_core import Experiment, ExperimentConfig, ForgetSet, SweepPlan, SweepProgress, default_config, resolve_device, run_sweep
from cup_core.config import Sources, canonical_value
from cup_core.experiment import Unreadable
from cup_core.cache import atomic_write_bytes, cache_root, refuse_links
from cup_core.checkpoints import SAFETENSORS_SUFFIXES, TORCH_SUFFIXES
from cup_core.data import DATASETS, dataset_info
from cup_core.export import export_bytes
from cup_core.methods import get_method
from cup_core.pareto import objective_names
from cup_core.pool import Pool, member_plans, share_references, sibling_lrs
from cup_core.report import contributions, frontier_table, reference_table, run_settings, summary
from cup_core.sweep import missing_points, resolve_plan

DEFAULT_DATASET = "digits"
EXPLORE_METHOD = "cup"
RANDOM_FRACTION = 0.1  # the random-subset forget set offered in the sidebar
RANDOM_SUBSET_NOTE = (
    "Random-subset forgetting: the vertical axis is 100 − |forget acc − the retrained oracle's forget acc| "
    "(spec §5), so forgetting more of the subset than the oracle does (over-forgetting) counts against a point "
    "just as forgetting too little does. Fronts and hypervolumes use this over-forgetting-aware objective, not UA.")


# --- Which experiments there are ----------------------------------------------------------------------

def forget_label(forget: ForgetSet) -> str:
    """A forget set's name in the sidebar, which is also its URL form ("class 0", "random 10%")."""
    if forget.indices is not None:
        return forget.describe()
    if forget.kind == "class":
        return f"class {forget.forget_class}"
    label = f"random {forget.fraction * 100:g}%"
    return label if forget.seed == 0 else f"{label} seed {forget.seed}"


def _scan(root: Path) -> tuple[tuple[str, int], ...]:
    """Each experiment folder's name and its config's mtime: changes when an experiment is made or deleted."""
    found = []
    for config_file in root.glob("*/config.json"):
        if config_file.parent.name.startswith("."):  # being deleted (Experiment.delete renames first)
            continue
        try:
            found.append((config_file.parent.name, config_file.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(found))


@st.cache_resource(show_spinner=False, max_entries=8)
def _experiments_in(root: str, scan: tuple[tuple[str, int], ...]) -> tuple[list[Experiment], list[Unreadable]]:
    from cup_core.experiment import open_experiments

    ordered = sorted(scan, key=lambda entry: (entry[1], entry[0]))
    return open_experiments([Path(root) / name for name, _ in ordered])


def cached_experiments() -> list[Experiment]:
    """Every experiment in the cache, oldest first, so that a new one never becomes a sidebar's default (a URL
    leaves defaults out); opened once per change of the cache's folder list. Folders that do not open as an
    experiment (a foreign or hostile config.json) are left out: see unreadable_experiments."""
    root = cache_root()
    return _experiments_in(str(root), _scan(root))[0]


def unreadable_experiments() -> list[Unreadable]:
    """The cache's folders whose config.json does not open as an experiment, and why (the Experiments page)."""
    root = cache_root()
    return _experiments_in(str(root), _scan(root))[1]


def cached_experiment(experiment_id: str | None) -> Experiment | None:
    return next((e for e in cached_experiments() if e.id == experiment_id), None) if experiment_id else None


def find_experiment(experiment_id: str | None) -> Experiment | None:
    """A cached experiment by id, or the default experiment of an embedded set and forget set the sidebar
    offers (computed on first open, so it need not be cached yet)."""
    found = cached_experiment(experiment_id)
    if found is not None or not experiment_id:
        return found
    for name, info in DATASETS.items():
        if info.embedded:
            for forget in forget_choices(name).values():
                candidate = default_experiment(name, forget)
                if candidate.id == experiment_id:
                    return candidate
    return None


def datasets() -> list[str]:
    """The default data set, the other embedded ones, and every other one that has a cached experiment."""
    cached = {experiment.config.dataset for experiment in cached_experiments()}
    others = [name for name, info in DATASETS.items() if (info.embedded or name in cached) and name != DEFAULT_DATASET]
    return [DEFAULT_DATASET, *others]


def dataset_title(name: str) -> str:
    from cup_core.vision import VISION_DATASETS

    return VISION_DATASETS[name].title if name in VISION_DATASETS else name


def forget_choices(dataset: str) -> dict[str, ForgetSet]:
    """By label, the default first: every class and a random 10 % of an embedded set, then the forget sets of
    cached experiments."""
    default = default_forget(dataset)
    choices: dict[str, ForgetSet] = {forget_label(default): default}
    info = dataset_info(dataset)
    if info.embedded:
        for k in range(info.num_classes):
            choices.setdefault(f"class {k}", ForgetSet(forget_class=k))
        random = ForgetSet(forget_class=None, fraction=RANDOM_FRACTION)
        choices.setdefault(forget_label(random), random)
    others = [e.config.forget for e in cached_experiments() if e.config.dataset == dataset]
    for forget in sorted(others, key=lambda f: (f.kind != "class", f.forget_class or 0, forget_label(f))):
        choices.setdefault(forget_label(forget), forget)
    return choices


def default_forget(dataset: str) -> ForgetSet:
    info = dataset_info(dataset)
    if info.embedded:
        return ForgetSet(forget_class=info.default_forget_class)
    oldest = next((e.config.forget for e in cached_experiments() if e.config.dataset == dataset), None)
    return oldest or ForgetSet(forget_class=info.default_forget_class)


def default_experiment(dataset: str, forget: ForgetSet) -> Experiment:
    return Experiment(replace(default_config(dataset), forget=forget))


def experiments_for(dataset: str, forget: ForgetSet) -> list[Experiment]:
    """An embedded set's default-recipe experiment first, then every cached experiment with this data and
    forget set (other recipes, models, checkpoints, no oracle; e.g. made by `python -m cup_core sweep`)."""
    found = [default_experiment(dataset, forget)] if dataset_info(dataset).embedded else []
    ids = {experiment.id for experiment in found}
    for experiment in cached_experiments():
        config = experiment.config
        if experiment.id not in ids and config.dataset == dataset and config.forget == forget:
            found.append(experiment)
    return found


def describe_variant(experiment: Experiment) -> str:
    """How an experiment differs from its data set's default one: model, original, oracle, recipes."""
    config = experiment.config
    base = default_config(config.dataset)
    changed = []
    if config.model is not None:
        changed.append(f"model {config.model}")
    if config.original_sha256 is not None:
        changed.append(f"original: your checkpoint (sha256 {config.original_sha256[:12]}…)")
    if not config.oracle:
        changed.append("no oracle")
    if config.image_size is not None:
        changed.append(f"{config.image_size}×{config.image_size} images, {len(config.classes or ())} classes")
    changed += [f"unlearning {name} {getattr(config.unlearn, name)}" for name in config.unlearn.__dataclass_fields__
                if getattr(config.unlearn, name) != getattr(base.unlearn, name)]
    changed.append(describe_training(experiment))
    return ", ".join(part for part in changed if part) or "default recipe"


def describe_training(experiment: Experiment) -> str:
    """How the original's and the oracle's training and the split differ from the data set's default ("" if not)."""
    config = experiment.config
    base = default_config(config.dataset)
    changed = [f"training {name} {getattr(config.train, name)}" for name in config.train.__dataclass_fields__
               if getattr(config.train, name) != getattr(base.train, name)]
    if config.split_seed != base.split_seed:
        changed.append(f"split seed {config.split_seed}")
    return ", ".join(changed)


def describe_model(experiment: Experiment) -> str:
    config = experiment.config
    name = experiment.architecture + (" (the data set's default)" if config.model is None else "")
    return name + (", original from your checkpoint" if config.original_sha256 else "")


def describe_experiment(experiment: Experiment) -> str:
    """One line: data set, forget set, model, oracle; the pages' captions and the experiments list."""
    config = experiment.config
    oracle = "retrained oracle" if config.oracle else "no oracle"
    return f"{dataset_title(config.dataset)} · forget {config.forget.describe()} · {describe_model(experiment)} · {oracle}"


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
    """Models of `plan` not cached yet: its points (all of a calibration still pending, an upper bound), and the
    original and (unless skipped) the oracle. What the CLI and the sweep call cached (cache.is_cached), from
    metadata only: a few stats per model on a rerun (their records are read once per change); the sweep checks
    the weights' hashes before it trusts them."""
    return missing_points_count(experiment, plan) + len(experiment.missing_references())


def missing_points_count(experiment: Experiment, plan: SweepPlan) -> int:
    """Points of `plan` not cached yet (all of a calibration still pending)."""
    plan = resolved_plan(experiment, plan)
    return len(missing_points(experiment, plan)) + sum(plan.calibrate.values()) * len(plan.seeds)


def compute(experiment: Experiment, plan: SweepPlan, on_progress: Callable[[SweepProgress], None],
            sources: Sources | None = None) -> None:
    """Runs `plan`; points another session is computing are waited for, not duplicated. `sources` default to
    where the experiment's last sweep found its data. ValueError (from the library's checks) says what is
    missing, before anything trains; an `on_progress` that raises stops the sweep with finished points kept."""
    run_sweep(experiment, plan, resolve_device(), on_progress, sources=sources)


@dataclass(frozen=True)
class ExplorerView:
    """Everything the Explore page shows of one experiment, read from the cache."""

    frontier: pd.DataFrame  # seed-averaged points of the explored method, with objectives
    references: pd.DataFrame  # original and oracle, indexed by role
    results: pd.DataFrame  # one row per (value, seed) of the explored method
    knob: str
    axis_titles: tuple[str, str]
    forget_class: int | None
    key: tuple = ()  # what the view is a function of (the experiment and its files' stamp): figures built from it

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
    references, kind = experiment.references(), experiment.config.forget.kind
    frontier = frontier_table(results, references, kind)
    return ExplorerView(
        frontier=frontier, references=reference_table(references, kind), results=results,
        knob=get_method(EXPLORE_METHOD).knob, axis_titles=objective_names(experiment.config.forget.kind),
        forget_class=experiment.config.forget.forget_class, key=(handle, stamp),
    )


def explorer_view(experiment: Experiment) -> ExplorerView:
    return _view(_handle(experiment), _stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=16)
def _explore_payload(handle: tuple[str, str], stamp: tuple[int, int]) -> dict:
    from .scrub_payload import explore_payload

    view = _view(handle, stamp)
    return explore_payload(view.frontier, view.references, knob=view.knob, axis_titles=view.axis_titles,
                           forget_class=view.forget_class, selected_value=None,
                           has_oracle=_reopen(handle).config.oracle)


def explore_scrub_payload(experiment: Experiment, value: float) -> dict:
    """The Explore scrubber's data (every grid value's point, cards and per-class bars), built once per change
    of the results; the selection is set on a copy, so a released value rebuilds no figure."""
    from .scrub_payload import explore_selection

    return explore_selection(_explore_payload(_handle(experiment), _stamp(experiment)), value)


def point_is_cached(experiment: Experiment, method: str, value: float, seed: int) -> bool:
    """Whether the point is cached (metadata: its record, and weights of the size their header declares); the
    export itself checks the weights' hash before it hands them out."""
    return experiment.point_cached(method, value, seed)


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
    # What the view is a function of (the experiments' stamps, the points' digest), read once with it: a key for
    # the figures built from it that cannot name other files or points than the view's own.
    key: tuple = ()


def _digest(value: tuple | SweepPlan) -> str:
    """A cache key for a plan or a tuple of points, made of plain values its repr states in full: Streamlit
    hashes a tuple of a hundred points element by element on every call of every cache it keys (tens of ms a
    Compare rerun, growing with the seeds and points), a string of the same content in one step."""
    return hashlib.sha256(repr(value).encode()).hexdigest()


@st.cache_data(show_spinner=False, max_entries=16)
def _compare(handle: tuple[str, str], stamp: tuple[int, int], points_key: str,
             _points: tuple[tuple[str, float, int], ...]) -> CompareView:
    experiment = _reopen(handle)  # _points: keyed by their digest, points_key (see _digest)
    results = experiment.results()
    wanted = pd.MultiIndex.from_tuples(_points, names=["method", "value", "seed"])
    results = results[pd.MultiIndex.from_frame(results[["method", "value", "seed"]]).isin(wanted)].reset_index(drop=True)
    references, kind = experiment.references(), experiment.config.forget.kind
    frontier = frontier_table(results, references, kind)
    report = summary(results, references, experiment.facts, frontier=frontier)
    frontier = run_settings(frontier, results, experiment.config.unlearn)  # the hover's lr, epochs, seeds
    return CompareView(frontier=frontier.assign(hv_contribution=contributions(frontier, report["normalisation"])),
                       references=reference_table(references, kind), results=results, summary=report,
                       axis_titles=objective_names(experiment.config.forget.kind), key=(handle, stamp, points_key))


def compare_view(experiment: Experiment, plan: SweepPlan) -> CompareView:
    """The plan's points only, so that every method is judged on the same number of values and the same seeds
    (a calibrated method's once its search is cached: see `resolved_plan`)."""
    handle, stamp = _handle(experiment), _stamp(experiment)
    resolved = _resolved(handle, stamp, _digest(plan), plan) if plan.calibrate else plan
    points = tuple(resolved.points())
    return _compare(handle, stamp, _digest(points), points)


def compare_labels(view: CompareView, shown: list[str]) -> dict[str, str]:
    """The fronts' legend: each method's label, "(does not move)" added where it leaves the original as it is."""
    return {name: method_label(name) + (" (does not move)" if view.summary["methods"][name]["moves"] is False else "")
            for name in shown}


def _compare_payload(experiment: Experiment, plan: SweepPlan, shown: tuple[str, ...]) -> dict:
    from .scrub_payload import compare_payload

    view = compare_view(experiment, plan)
    key = (view.key, shown)  # the page's view key

    def build() -> dict:
        return compare_payload(view.frontier[view.frontier["method"].isin(shown)], view.references,
                               labels=compare_labels(view, list(shown)), axis_titles=view.axis_titles,
                               has_oracle=experiment.config.oracle, fronts=fronts_figure(key, view, list(shown)))

    return shared(("compare_payload", *key), build)


def fronts_figure(key: tuple, view: CompareView, shown: list[str]) -> go.Figure:
    """Compare's fronts of the `shown` methods without the selection's ring, built once per `key` (the page's view
    key: what `view` and `shown` are a function of), a copy each call: the fallback chart rings it, the
    scrubber's payload is made from it rather than from a second build."""
    from .figures import compare_figure

    return cached_figure(("fronts", *key), lambda: compare_figure(
        view.frontier[view.frontier["method"].isin(shown)], view.references, labels=compare_labels(view, shown),
        axis_titles=view.axis_titles))


def compare_scrub_payload(experiment: Experiment, plan: SweepPlan, shown: list[str], method: str,
                          selected: tuple[str, float] | None, clicked: bool) -> dict:
    """The Compare scrubber's data: every shown method's points and cards, built once per view and methods
    (not copied per click), with the scrubbed method and its selected index."""
    from .scrub_payload import compare_selected

    return compare_selected(_compare_payload(experiment, plan, tuple(shown)), method, selected, clicked)


def compare_starts(experiment: Experiment, plan: SweepPlan, shown: list[str]) -> dict[str, float]:
    """Per shown method, the knob value its slider starts at: where picking the method moves the selection."""
    from .scrub_payload import compare_start

    payload = _compare_payload(experiment, plan, tuple(shown))
    return {name: compare_start(payload, name) for name in payload["methods"]}


def compare_plan(methods: list[str], points: int, seeds: list[int], calibrate: bool = True) -> SweepPlan:
    return SweepPlan.default(tuple(methods), points, tuple(seeds), calibrate=calibrate)


@st.cache_data(show_spinner=False, max_entries=16)
def _siblings(handle: tuple[str, str], scan: tuple[tuple[str, int], ...]) -> list[float]:
    return sibling_lrs(_reopen(handle))


def pool_lrs(experiment: Experiment) -> list[float]:
    """The learning rates of the cached experiments that differ from this one only in the unlearning lr, its own
    included (pool.sibling_lrs): their configs read once per change of the cache's folder list (_scan), so a
    sibling made a moment ago is offered at once."""
    return _siblings(_handle(experiment), _scan(experiment.root.parent))


def compare_members(experiment: Experiment, methods: list[str], points: int, seeds: list[int], calibrate: bool,
                    lrs: tuple[float, ...] = ()) -> list[tuple[Experiment, SweepPlan]]:
    """What the Compare page computes and shows: [(experiment, its plan)] under one recipe; with `lrs` (this
    experiment's lr first), each pool member and its plan (pool.member_plans: equal budgets), members with
    nothing to run left out. The members get this experiment's original and oracle where they have none."""
    if not lrs:
        return [(experiment, compare_plan(methods, points, seeds, calibrate))]
    pool = Pool.around(experiment, lrs)
    found = []
    for member, plan in zip(pool.members, member_plans(tuple(methods), points, tuple(seeds), pool.lrs, calibrate)):
        if plan is not None:
            if member is not pool.home:
                share_references(pool.home, member)  # nothing to do once they have them (metadata reads)
            found.append((member, plan))
    return found


@st.cache_data(show_spinner=False, max_entries=16)
def _compare_pooled(handles: tuple[tuple[str, str], ...], stamps: tuple, lrs: tuple[float, ...], points_key: str,
                    _points: tuple[tuple[str, float, int, float], ...]) -> CompareView:
    pool = Pool.around(_reopen(handles[0]), lrs)  # _points: keyed by their digest, points_key
    results = pool.results()
    keys = pd.MultiIndex.from_frame(results[["method", "value", "seed"]].assign(lr=results["lr"].fillna(-1.0)))
    results = results[keys.isin(pd.MultiIndex.from_tuples(_points))].reset_index(drop=True)
    references, kind = pool.home.references(), pool.home.config.forget.kind
    frontier = frontier_table(results, references, kind)
    report = summary(results, references, pool.home.facts, frontier=frontier, protocol=pool.protocol())
    return CompareView(frontier=frontier.assign(hv_contribution=contributions(frontier, report["normalisation"])),
                       references=reference_table(references, kind), results=results, summary=report,
                       axis_titles=objective_names(pool.home.config.forget.kind),
                       key=(handles, stamps, lrs, points_key))


def _pooled_points(members: list[tuple[Experiment, SweepPlan]]) -> tuple[tuple[str, float, int, float], ...]:
    """Every member's plan points with their learning rate (-1: a method that uses none, pool.Pool.results)."""
    return tuple((method, value, seed, -1.0 if not get_method(method).uses_recipe_lr else member.config.unlearn.lr)
                 for member, plan in members for method, value, seed in resolved_plan(member, plan).points())


def pooled_compare_view(members: list[tuple[Experiment, SweepPlan]], lrs: tuple[float, ...]) -> CompareView:
    """compare_view over a pool: each method's points at every learning rate as one solution set, restricted
    to the members' plans (equal budgets; summary's `protocol` says "pooled learning rates")."""
    points = _pooled_points(members)
    return _compare_pooled(tuple(_handle(m) for m, _ in members), tuple(_stamp(m) for m, _ in members), tuple(lrs),
                           _digest(points), points)


@st.cache_data(show_spinner=False, max_entries=64)
def _resolved(handle: tuple[str, str], stamp: tuple[int, int], plan_key: str, _plan: SweepPlan) -> SweepPlan:
    return resolve_plan(_reopen(handle), _plan)  # _plan: keyed by its digest, plan_key (see _digest)


def resolved_plan(experiment: Experiment, plan: SweepPlan) -> SweepPlan:
    """`plan` with the calibrations the cache already answers turned into grids (read once per cache state)."""
    return _resolved(_handle(experiment), _stamp(experiment), _digest(plan), plan) if plan.calibrate else plan


def pending_calibrations(experiment: Experiment, plan: SweepPlan) -> list[str]:
    """Methods whose calibration still needs runs computed."""
    return list(resolved_plan(experiment, plan).calibrate)


def describe_calibration(calibration: dict | None) -> str:
    if calibration is None:
        return "none needed (intrinsic range)"
    low, high = calibration["range"]
    if calibration["status"] == "fixed":
        return f"fixed grid {low:.3g} … {high:.3g}"
    outcome = {"calibrated": "", "no_upper": ", never forgets nor breaks: its own maximum",
               "no_effect": ", moves nothing", "saturated": ", forgets even at its weakest",
               "reverse": ", forgets less as it grows"}.get(calibration["status"], "")
    return f"{low:.3g} … {high:.3g}{outcome}"


def range_notes(summary: dict, shown: list[str]) -> list[str]:
    """One line per shown method whose grid cannot sweep from "barely moves" to "forgotten" on this experiment,
    saying why (its calibration's outcome), and one for knobs that barely change forgetting at all."""
    notes = []
    for name in shown:
        method = summary["methods"][name]
        why = (method.get("calibration") or {}).get("why")
        if why and method.get("moves") is not False:
            notes.append(f"{method_label(name)} {why}.")
        share = method["controllability"].get("ua_span_share")
        if not why and share is not None and share < STEERS and method.get("moves") is not False:
            notes.append(f"{method_label(name)}'s knob barely steers forgetting here: its grid covers "
                         f"{method['controllability']['ua_span']:.1f} points of UA, {share:.0%} of the span from "
                         "the original to the target (the oracle's UA).")
    return notes


STEERS = 0.1  # a grid whose UA span is below this share of the reachable span does not steer forgetting


def describe_protocol(protocol: dict, points: int) -> str:
    """The protocol a Compare table used (report.summary's `protocol`), in a few words."""
    if protocol["name"] == "single recipe":
        return f"single recipe (unlearning learning rate {protocol['lr']:g})"
    lrs = protocol["lrs"]
    return (f"pooled learning rates: each method's points at {', '.join(f'{lr:g}' for lr in lrs)} form one solution "
            f"set ({points} values at each); methods whose knob is the learning rate, or that use none, run once "
            f"with {points * len(lrs)} values")


def more_seeds(seeds: list[int], wanted: int = 5) -> list[int]:
    """The seeds to offer when intervals are too wide to separate methods: up to `wanted`, the given ones kept."""
    extra = [seed for seed in range(max(seeds, default=0) + wanted + 1) if seed not in seeds]
    return sorted(seeds + extra[:max(0, wanted - len(seeds))])


@st.cache_resource(show_spinner=False, max_entries=64)
def _figure_dict(key: tuple, _build: Callable[[], go.Figure]) -> dict:
    return _build().to_dict()


def cached_figure(key: tuple, build: Callable[[], go.Figure]) -> go.Figure:
    """`build()`'s figure, built (and validated by Plotly) once per `key`, which must name everything it
    depends on; later reruns get a copy without Plotly's validation, which costs more than the rest of a
    rerun (a Compare figure of six methods: ~100 ms to build, a few ms to copy). A copy, so the caller may
    add to it (the selection ring); a figure drawn as it is needs none: see shared."""
    return go.Figure(copy.deepcopy(_figure_dict(key, build)), _validate=False)


@st.cache_resource(show_spinner=False, max_entries=64)
def _shared(key: tuple, _build: Callable[[], object]) -> object:
    return _build()


def shared(key: tuple, build: Callable[[], object]):
    """`build()`'s result, built once per `key` (which must name everything it depends on) and shared by every
    session and rerun without a copy: for what is drawn as it is, never modified (a figure st.plotly_chart
    only reads, a table st.dataframe shows, a scrubber's payload)."""
    return _shared(key, build)


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


def format_duration(seconds: float) -> str:
    """A rough human duration: "about 14 s", "about 3 min", "about 1.5 h"."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "estimating…"
    return f"about {seconds:.0f} s left" if seconds >= 1 else "under a second left"


def save_data_root(experiment: Experiment, data_root: str) -> None:
    """Records where this experiment's data is on this machine (sources.json; not part of its id)."""
    experiment.save_sources(replace(experiment.sources(), data_root=data_root or None))


def compare_query(experiment: Experiment, methods, points: int, seeds) -> dict:
    """The Compare page's URL parameters for this experiment, methods, grid and seeds (as its sidebar writes them)."""
    return {"experiment": experiment.id, "methods": [method_label(name) for name in methods],
            "points": str(points), "seeds": [str(seed) for seed in seeds]}


def sweep_file(experiment: Experiment, methods: list[str], points: int, seeds: list[int], calibrate: bool = True) -> str:
    """A TOML file for `python -m cup_core sweep --config FILE` that recomputes this experiment elsewhere."""
    from cup_core.sweep_file import sweep_file_text

    return sweep_file_text(experiment.config, experiment.sources(), list(methods), int(points), list(seeds), calibrate)


# --- The experiments list ------------------------------------------------------------------------------

def list_cached():
    """Every cached experiment with its points, size and last change, newest first (experiment.list_experiments)."""
    from cup_core.experiment import list_experiments

    return list_experiments()


def delete_experiment(experiment_id: str) -> None:
    """Removes a cached experiment's folder (renamed away first, so no reader sees half of it)."""
    experiment = cached_experiment(experiment_id)
    if experiment is not None:
        experiment.delete()


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def human_age(modified: float, now: float | None = None) -> str:
    seconds = max(0.0, (time.time() if now is None else now) - modified)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} days ago"


# --- A new experiment ----------------------------------------------------------------------------------

UPLOADS = "uploads"  # folder under the cache root: users' checkpoints, named by their SHA-256
CHECKPOINT_SUFFIXES = SAFETENSORS_SUFFIXES + TORCH_SUFFIXES
COMPARE_POINTS = (5, 11, 21)  # grid sizes the Compare page offers, so a new experiment opens there as made


@dataclass(frozen=True)
class NewExperiment:
    """What the New experiment page asks for, as plain values; equal requests are one job (and one estimate)."""

    dataset: str
    data_root: str | None = None  # torchvision and ImageFolder sets only
    download: bool = False
    image_size: int | None = None  # ImageFolder only
    model: str | None = None  # None: the data set's default architecture
    checkpoint: str | None = None  # a saved upload: the original model
    forget_class: int | None = None
    forget_fraction: float | None = None
    forget_seed: int = 0
    forget_indices: tuple[int, ...] | None = None
    oracle: bool = True
    methods: tuple[str, ...] = ("cup",)
    points: int = 11
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None  # unlearning recipe; None: the data set's
    lr: float | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class Job:
    """A checked request: the experiment it makes, where its inputs are, and the points to compute."""

    request: NewExperiment
    experiment: Experiment
    sources: Sources
    plan: SweepPlan


_FORM_WORDS = [  # the library's messages name the CLI's options; the New experiment page names its own fields
    ("; --download (needs internet) creates it and fetches the files",
     "; tick “Download if missing” (needs internet) to create it and fetch the files"),
    ("Pass --download (needs internet) to fetch the official files there.",
     "Tick “Download if missing” (needs internet) to fetch the official files there."),
    ("point --data-root at its folder", "give its folder as the data root"),
    ("give its file with --checkpoint", "upload its file as the checkpoint"),
    ("(--image-size, e.g. 32 or 224)", "(e.g. 32 or 224)"),
    ("--data-root", "the data root"), ("--download", "“Download if missing”"), ("--image-size", "the image size"),
    ("--checkpoint", "the checkpoint"),
]


def form_message(message: str) -> str:
    """A library message in the New experiment page's words."""
    for cli, form in _FORM_WORDS:
        message = message.replace(cli, form)
    return message


def make_job(request: NewExperiment) -> Job:
    """The experiment a request describes, checked as far as building it goes; ValueError says what is wrong.
    Reads the data folder of a torchvision set (resolve_config) but writes nothing."""
    from cup_core.sweep_file import experiment_config

    sources = Sources(data_root=(request.data_root or "").strip() or None, checkpoint=request.checkpoint,
                      download=request.download)
    if not dataset_info(request.dataset).embedded and sources.data_root is None:
        raise ValueError(f"{dataset_title(request.dataset)} is read from a folder on this machine: fill in the data "
                         "root" + ("" if request.dataset == "imagefolder" else
                                   " (tick “Download if missing” to fetch the data there, which needs internet)"))
    if not request.methods:
        raise ValueError("choose at least one method")
    if not request.seeds:
        raise ValueError("choose at least one seed")
    settings = {name: getattr(request, name) for name in (
        "dataset", "image_size", "model", "forget_class", "forget_fraction", "forget_seed", "forget_indices",
        "oracle", "epochs", "lr", "batch_size")}
    with check_limits():
        config = experiment_config(settings, sources)
    plan = SweepPlan.default(tuple(request.methods), request.points, tuple(request.seeds))
    return Job(request, Experiment(config), sources, plan)


CHECK_SECONDS = 300  # the New page's Check reads the data within this time...
CHECK_MEMORY_SHARE = 0.5  # ... and this share of the machine's memory: beyond, the command line is the tool


def check_limits():
    """The New page's Check reads a data root within a time and a memory limit (vision.read_limits): a tree too big
    to read here is refused in one line rather than read for minutes by a server whose browser may have gone."""
    import os

    from cup_core.vision import read_limits

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return read_limits(CHECK_SECONDS, int(CHECK_MEMORY_SHARE * memory))


def estimate(job: Job):
    """cost.estimate_cost on this machine's device: a few real steps timed (about a second on digits)."""
    from cup_core.cost import estimate_cost

    with check_limits():
        return estimate_cost(job.experiment, job.plan, resolve_device(), job.sources)


def earlier_experiments_of_other_content(job: Job) -> list[str]:
    """Cached experiments made from this job's data root when its files had other content (see experiment.py)."""
    from cup_core.experiment import made_from_other_content

    if (job.experiment.root / "config.json").exists():
        return []
    return made_from_other_content(job.experiment, job.sources)


def device_name() -> str:
    return str(resolve_device())


def save_upload(data: bytes, name: str) -> Path:
    """A user's checkpoint, saved once under the cache root as uploads/<sha256><suffix> (atomically), so that
    the experiment's sources point at a file that stays."""
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{name}: a checkpoint is a .safetensors or .pt/.pth file")
    path = cache_root() / UPLOADS / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    refuse_links(path)  # uploads/ or the file linked elsewhere: never written through (LinkInCache, a ValueError)
    if not path.is_file() or path.stat().st_size != len(data):
        atomic_write_bytes(path, data)
    return path


def read_index_upload(data: bytes, name: str) -> tuple[int, ...]:
    """An uploaded index file (.txt, .csv, .json or .npy) read by data.read_indices, its messages naming the file."""
    import tempfile

    from cup_core.data import read_indices

    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"indices{suffix}"
        path.write_bytes(data)
        try:
            return read_indices(path)
        except ValueError as err:
            raise ValueError(str(err).replace(str(path), name)) from None


@st.cache_resource(show_spinner=False)
def torchvision_models() -> list[str]:
    from torchvision import models

    return sorted(models.list_models(module=models))


# --- Learn ---------------------------------------------------------------------------------------------

LEARN_GRID = tuple(canonical_value(k / 40) for k in range(41))  # dense enough that the slider feels continuous
LEARN_RUNS = (0.0, 0.25, 0.5, 0.75, 1.0)  # intensities whose losses are drawn together
LEARN_SEED = 0


# The lesson's base optimisers: name -> label (which is also the URL's value).
LEARN_OPTIMIZERS = {"adam": "Adam", "sgd": "SGD"}


def learn_experiment(optimizer: str = "adam") -> Experiment:
    """The paper's toy: the authors' five blobs, class 2 forgotten, CUP with the toy's recipe (20 full-batch
    Adam steps, lr 0.01), or the same steps with plain SGD (no momentum, the same lr), whose step is −lr·d."""
    experiment = default_experiment("blobs", default_forget("blobs"))
    if optimizer not in LEARN_OPTIMIZERS:
        raise ValueError(f"unknown optimiser {optimizer!r}; choose one of {', '.join(LEARN_OPTIMIZERS)}")
    if optimizer == "adam":
        return experiment
    unlearn = replace(experiment.config.unlearn, optimizer="sgd", momentum=0.0)
    return Experiment(replace(experiment.config, unlearn=unlearn))


def learn_plan() -> SweepPlan:
    return SweepPlan({EXPLORE_METHOD: LEARN_GRID}, (LEARN_SEED,))


@st.cache_data(show_spinner=False, max_entries=4)
def _regions(handle: tuple[str, str], stamp: tuple[int, int]) -> dict:
    from cup_core.regions import experiment_regions

    return experiment_regions(_reopen(handle), EXPLORE_METHOD, list(LEARN_GRID), LEARN_SEED)


def learn_regions(experiment: Experiment) -> dict:
    """Decision regions of the original, the oracle and every grid point (computed once, then instant)."""
    return _regions(_handle(experiment), _stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=4)
def _learn_payload(handle: tuple[str, str], stamp: tuple[int, int]) -> dict:
    from .scrub_payload import learn_payload

    return learn_payload(_regions(handle, stamp), list(LEARN_GRID), LEARN_GRID[0], _reopen(handle).info.num_classes)


def learn_scrub_payload(experiment: Experiment, value: float) -> dict:
    """The Learn scrubber's data: every grid intensity's decision regions, run-length coded, built once per change
    of the results; the selection is set on a copy."""
    from .scrub_payload import learn_selection

    return learn_selection(_learn_payload(_handle(experiment), _stamp(experiment)), value)


@st.cache_data(show_spinner=False, max_entries=64)
def _trajectory(handle: tuple[str, str], value: float, stamp: tuple[int, int]) -> dict:
    from cup_core.trajectory import trajectory

    return trajectory(_reopen(handle), EXPLORE_METHOD, value, LEARN_SEED)


def learn_trajectory(experiment: Experiment, value: float) -> dict:
    """The per-step records of the run at `value` (recorded on first use, cached on disk)."""
    return _trajectory(_handle(experiment), value, _stamp(experiment))


def learn_lesson_facts() -> dict:
    """What the lesson's texts say, measured on both optimisers' cached runs (see ui/lesson.py)."""
    from ui.lesson import lesson_facts

    experiments = {name: learn_experiment(name) for name in LEARN_OPTIMIZERS}
    results = {name: explorer_view(experiment).results for name, experiment in experiments.items()}
    runs = {name: {value: learn_trajectory(experiment, value) for value in (0.7, 1.0)}
            for name, experiment in experiments.items()}
    return lesson_facts(results, runs)


def pivot_sweep(plane: dict) -> list[tuple[float, list[float]]]:
    """CUP's direction at every grid intensity for one recorded step."""
    from cup_core.trajectory import pivot_directions

    return list(zip(LEARN_GRID, pivot_directions(plane, list(LEARN_GRID))))


# --- A vs B: explain a point -----------------------------------------------------------------------------

def pin_choices(experiment: Experiment) -> dict[str, str]:
    """Every model of the experiment that can be pinned, by its pin text (what the URL holds) -> its label: the
    original, the oracle, then every cached point by method, knob value and seed."""
    from cup_core.explain import Pin

    choices = {role: REFERENCE_LABELS[role] for role in experiment.roles if experiment.reference_cached(role)}
    results = experiment.results()
    for row in results.sort_values(["method", "value", "seed"]).itertuples():
        pin = Pin.point(row.method, row.value, row.seed)
        choices[str(pin)] = pin_label(pin, row.knob)
    return choices


REFERENCE_LABELS = {"original": "Original", "oracle": "Retrained oracle"}


def pin_label(pin, knob: str | None = None) -> str:
    """"CUP, intensity 0.5, seed 0", "Original", "Retrained oracle"."""
    if pin.role != "point":
        return REFERENCE_LABELS[pin.role]
    try:
        method = get_method(pin.method)
        label, knob = method.label, knob or method.knob
    except ValueError:
        label = pin.method
    return f"{label}, {knob or 'value'} {pin.value:.4g}, seed {pin.seed}"


def default_pins(experiment: Experiment, choices: dict[str, str]) -> tuple[str, str]:
    """A: the cached point closest to the oracle (lowest avg gap), else the original; B: the oracle, else the
    original."""
    from cup_core.explain import Pin

    results = experiment.results()
    gaps = results["avg_gap"].astype(float) if len(results) else pd.Series(dtype=float)
    a = "original"
    if gaps.notna().any():
        best = results.loc[gaps.idxmin()]
        a = str(Pin.point(best["method"], best["value"], best["seed"]))
    elif len(results):
        first = results.iloc[0]
        a = str(Pin.point(first["method"], first["value"], first["seed"]))
    b = "oracle" if "oracle" in choices else "original"
    return (a if a in choices else next(iter(choices), "original")), b


@st.cache_data(show_spinner=False, max_entries=32)
def _explained(handle: tuple[str, str], pin_text: str, weights_sha256: str, projection: str) -> dict:
    from cup_core.explain import Pin, explain

    return explain(_reopen(handle), Pin.parse(pin_text), projection)


def explained(experiment: Experiment, pin, projection: str = "pca") -> dict:
    """cup_core.explain's arrays for a pinned model: read from (or computed into) the experiment's explained/
    folder, and kept in memory keyed by the weights' hash, so a recomputed checkpoint is never explained stale.
    Raises cache.BrokenEntry for a model that is not cached, ValueError when its data is not on this machine."""
    from cup_core.explain import weights_sha256

    return _explained(_handle(experiment), str(pin), weights_sha256(experiment, pin), projection)


@st.cache_data(show_spinner=False, max_entries=8)
def _forget_samples(handle: tuple[str, str]) -> dict:
    from cup_core.data import load_unlearning_data
    from cup_core.explain import forget_samples

    experiment = _reopen(handle)
    return forget_samples(load_unlearning_data(experiment.config, experiment.sources()))


def forget_samples(experiment: Experiment) -> dict:
    """The forget set's inputs to draw (2-D points or images) in the order explain's forget_correct has them."""
    return _forget_samples(_handle(experiment))


def pinned_metrics(experiment: Experiment, pin) -> pd.Series | None:
    """The pinned model's recorded metrics (results.csv's row, or references.csv's), or None."""
    if pin.role != "point":
        from cup_core.metrics import avg_gap

        references = experiment.references()
        if pin.role not in references.index:
            return None
        row = references.loc[pin.role].copy()
        # references.csv has no gap: the original's is measured like a point's, the oracle's is 0 by definition
        row["avg_gap"] = avg_gap(row, references.loc["oracle"]) if "oracle" in references.index else float("nan")
        return row
    results = experiment.results()
    rows = results[(results["method"] == pin.method) & (results["value"] - pin.value).abs().lt(1e-12)
                   & (results["seed"] == pin.seed)]
    return rows.iloc[0] if len(rows) else None
