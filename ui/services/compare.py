"""The Compare page: every method's points on one experiment (or pooled over learning rates), read from the cache,
its plans, figures, scrubber's data and the notes under its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from cup_core import Experiment, SweepPlan
from cup_core.methods import get_method
from cup_core.pareto import objective_names
from cup_core.pool import Pool, member_plans, share_references, sibling_lrs
from cup_core.report import (BOOTSTRAP_SAMPLES, contributions, frontier_table, method_rows, reference_table,
                              run_settings, summary)

from .caching import (cached_figure, cached_figure_dict, digest, experiment_handle, reopen, results_stamp, shared,
                      view_cache)
from .catalogue import cache_scan, method_label
from .sweeps import resolved_plan


COMPARE_POINTS = (5, 11, 21)  # grid sizes the Compare page offers, so a new experiment opens there as made


@dataclass(frozen=True)
class CompareView:
    """Everything the Compare page shows of one experiment's methods, read from the cache."""

    frontier: pd.DataFrame  # seed-averaged points of every method, with objectives and their spread
    references: pd.DataFrame
    results: pd.DataFrame  # every point of every method (the CSV download)
    summary: dict  # report.summary: hypervolumes, controllability, recommended points
    axis_titles: tuple[str, str]
    # What the view is a function of (the experiments' stamps, the digest of the points shown), read once with it: a
    # key for the figures built from it that cannot name other files or points than the view's own.
    key: tuple = ()


def _point_index(results: pd.DataFrame, pooled: bool) -> pd.MultiIndex:
    """Each row's point as a view names it: (method, value, seed), and in a pool its lr (-1: a method that uses
    none)."""
    names = results[["method", "value", "seed"]]
    return pd.MultiIndex.from_frame(names.assign(lr=results["lr"].fillna(-1.0)) if pooled else names)


@view_cache(max_entries=16)
def _held(handles: tuple[tuple[str, str], ...], stamps: tuple, lrs: tuple[float, ...]) -> frozenset:
    """The points the results tables hold (of a pool at `lrs`, else of the one experiment), once per change."""
    home = reopen(handles[0])
    return frozenset(_point_index(Pool.around(home, lrs).results() if lrs else home.results(), bool(lrs)))


def _shown_points(handles: tuple[tuple[str, str], ...], stamps: tuple, lrs: tuple[float, ...],
                  planned: tuple[tuple, ...]) -> tuple[tuple, ...]:
    """The planned points that are computed: a view is a function of these alone, so plans that differ only in
    points not computed yet (a seed just added, before its models are) share one view and its figures."""
    held = _held(handles, stamps, lrs)
    return tuple(point for point in planned if point in held)


@view_cache(max_entries=16)
def _compare(handle: tuple[str, str], stamp: tuple[int, int], points_key: str,
             _points: tuple[tuple[str, float, int], ...]) -> CompareView:
    experiment = reopen(handle)  # _points: keyed by their digest, points_key (see caching.digest)
    results = experiment.results()
    results = results[_point_index(results, pooled=False).isin(_points)].reset_index(drop=True)
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
    handle, stamp = experiment_handle(experiment), results_stamp(experiment)
    points = _shown_points((handle,), (stamp,), (), tuple(resolved_plan(experiment, plan).points()))
    return _compare(handle, stamp, digest(points), points)


def compare_labels(view: CompareView, shown: list[str]) -> dict[str, str]:
    """The fronts' legend: each method's label, "(does not move)" added where it leaves the original as it is."""
    return {name: method_label(name) + (" (does not move)" if view.summary["methods"][name]["moves"] is False else "")
            for name in shown}


def _compare_payload(experiment: Experiment, plan: SweepPlan, shown: tuple[str, ...]) -> dict:
    from ..scrub_payload import compare_payload

    view = compare_view(experiment, plan)
    key = (view.key, shown)  # the page's view key

    def build() -> dict:
        return compare_payload(view.frontier[view.frontier["method"].isin(shown)], view.references,
                               labels=compare_labels(view, list(shown)), axis_titles=view.axis_titles,
                               has_oracle=experiment.config.oracle,
                               fronts=cached_figure_dict(("fronts", *key), _fronts(view, list(shown))))

    return shared(("compare_payload", *key), build)


def _fronts(view: CompareView, shown: list[str]) -> Callable[[], go.Figure]:
    from ..figures import compare_figure

    return lambda: compare_figure(view.frontier[view.frontier["method"].isin(shown)], view.references,
                                  labels=compare_labels(view, shown), axis_titles=view.axis_titles)


def fronts_figure(key: tuple, view: CompareView, shown: list[str]) -> go.Figure:
    """Compare's fronts of the `shown` methods without the selection's ring, built once per `key` (the page's view
    key: what `view` and `shown` are a function of), a copy each call: the fallback chart rings it, the
    scrubber's payload is made from the same build (its dict, not copied)."""
    return cached_figure(("fronts", *key), _fronts(view, shown))


def compare_scrub_payload(experiment: Experiment, plan: SweepPlan, shown: list[str], method: str,
                          selected: tuple[str, float] | None, clicked: bool) -> dict:
    """The Compare scrubber's data: every shown method's points and cards, built once per view and methods
    (not copied per click), with the scrubbed method and its selected index."""
    from ..scrub_payload import compare_selected

    return compare_selected(_compare_payload(experiment, plan, tuple(shown)), method, selected, clicked)


def compare_starts(experiment: Experiment, plan: SweepPlan, shown: list[str]) -> dict[str, float]:
    """Per shown method, the knob value its slider starts at: where picking the method moves the selection."""
    from ..scrub_payload import compare_start

    payload = _compare_payload(experiment, plan, tuple(shown))
    return {name: compare_start(payload, name) for name in payload["methods"]}


def compare_plan(methods: list[str], points: int, seeds: list[int], calibrate: bool = True) -> SweepPlan:
    return SweepPlan.default(tuple(methods), points, tuple(seeds), calibrate=calibrate)


@st.cache_data(show_spinner=False, max_entries=16)
def _siblings(handle: tuple[str, str], scan: tuple[tuple[str, int], ...]) -> list[float]:
    return sibling_lrs(reopen(handle))


def pool_lrs(experiment: Experiment) -> list[float]:
    """The learning rates of the cached experiments that differ from this one only in the unlearning lr, its own
    included (pool.sibling_lrs): their configs read once per change of the cache's folder list (cache_scan), so a
    sibling made a moment ago is offered at once."""
    return _siblings(experiment_handle(experiment), cache_scan(experiment.root.parent))


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


@view_cache(max_entries=16)
def _compare_pooled(handles: tuple[tuple[str, str], ...], stamps: tuple, lrs: tuple[float, ...], points_key: str,
                    _points: tuple[tuple[str, float, int, float], ...]) -> CompareView:
    pool = Pool.around(reopen(handles[0]), lrs)  # _points: keyed by their digest, points_key
    results = pool.results()
    results = results[_point_index(results, pooled=True).isin(_points)].reset_index(drop=True)
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
    handles, stamps = tuple(experiment_handle(m) for m, _ in members), tuple(results_stamp(m) for m, _ in members)
    points = _shown_points(handles, stamps, tuple(lrs), _pooled_points(members))
    return _compare_pooled(handles, stamps, tuple(lrs), digest(points), points)


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


def deterministic_verdicts(summary: dict, shown: list[str]) -> list[str]:
    """The shown methods whose verdict against CUP compares deterministic runs: every seed gave the same points, so
    the interval has no width (report._versus says why); not those with no interval at all (one seed in common)."""
    verdicts = {name: summary["methods"][name]["versus_cup"] or {} for name in shown}
    return [name for name, versus in verdicts.items() if "why" in versus and versus["difference_ci95"] is not None]


def bootstrap_words(seeds: int) -> str:
    """How the intervals resample `seeds` seeds, in a few words: a resample is how often it draws each seed, so
    few seeds give few distinct ones (C(2S − 1, S): 3 for 2 seeds, 10 for 3, 126 for 5)."""
    if seeds < 2:
        return "bootstrap over seeds, which needs two at least: one seed gives no interval"
    return (f"bootstrap over seeds ({BOOTSTRAP_SAMPLES:,} resamples; {seeds} seeds give at most "
            f"{math.comb(2 * seeds - 1, seeds)} distinct ones)")


def more_seeds(seeds: list[int], wanted: int = 5) -> list[int]:
    """The seeds to offer when intervals are too wide to separate methods: up to `wanted`, the given ones kept."""
    extra = [seed for seed in range(max(seeds, default=0) + wanted + 1) if seed not in seeds]
    return sorted(seeds + extra[:max(0, wanted - len(seeds))])


def knob_positions(frontier: pd.DataFrame, methods: list[str]) -> dict:
    """Each method's knob values (sorted) mapped to [0, 1], for the controllability view."""
    by_method, values = method_rows(frontier), frontier["value"].to_numpy(dtype=float)
    return {name: get_method(name).position(values[by_method.get(name, np.zeros(0, dtype=int))]) for name in methods}


def compare_query(experiment: Experiment, methods, points: int, seeds) -> dict:
    """The Compare page's URL parameters for this experiment, methods, grid and seeds (as its sidebar writes them)."""
    return {"experiment": experiment.id, "methods": [method_label(name) for name in methods],
            "points": str(points), "seeds": [str(seed) for seed in seeds]}
