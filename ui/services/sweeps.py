"""What a plan still lacks (its calibrations resolved against the cache) and computing it: a page never trains, it
asks here."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import streamlit as st

from cup_core import Experiment, SweepPlan, SweepProgress, resolve_device, run_sweep
from cup_core.config import Sources
from cup_core.sweep import missing_points, resolve_plan

from .caching import digest, experiment_handle, reopen, results_stamp


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


@st.cache_data(show_spinner=False, max_entries=64)
def _resolved(handle: tuple[str, str], stamp: tuple[int, int], plan_key: str, _plan: SweepPlan) -> SweepPlan:
    return resolve_plan(reopen(handle), _plan)  # _plan: keyed by its digest, plan_key (see caching.digest)


def resolved_plan(experiment: Experiment, plan: SweepPlan) -> SweepPlan:
    """`plan` with the calibrations the cache already answers turned into grids (read once per cache state)."""
    if not plan.calibrate:
        return plan
    return _resolved(experiment_handle(experiment), results_stamp(experiment), digest(plan), plan)


def pending_calibrations(experiment: Experiment, plan: SweepPlan) -> list[str]:
    """Methods whose calibration still needs runs computed."""
    return list(resolved_plan(experiment, plan).calibrate)


def save_data_root(experiment: Experiment, data_root: str) -> None:
    """Records where this experiment's data is on this machine (sources.json; not part of its id)."""
    experiment.save_sources(replace(experiment.sources(), data_root=data_root or None))


def sweep_file(experiment: Experiment, methods: list[str], points: int, seeds: list[int], calibrate: bool = True) -> str:
    """A TOML file for `python -m cup_core sweep --config FILE` that recomputes this experiment elsewhere."""
    from cup_core.sweep_file import sweep_file_text

    return sweep_file_text(experiment.config, experiment.sources(), list(methods), int(points), list(seeds), calibrate)
