"""The Learn page: the paper's toy under Adam or SGD, every grid intensity's decision regions and the recorded
trajectories the lesson draws."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from cup_core import Experiment, SweepPlan
from cup_core.config import canonical_value

from .caching import experiment_handle, reopen, results_stamp
from .catalogue import default_experiment, default_forget
from .explore import EXPLORE_METHOD, explorer_view


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

    return experiment_regions(reopen(handle), EXPLORE_METHOD, list(LEARN_GRID), LEARN_SEED)


def learn_regions(experiment: Experiment) -> dict:
    """Decision regions of the original, the oracle and every grid point (computed once, then instant)."""
    return _regions(experiment_handle(experiment), results_stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=4)
def _learn_payload(handle: tuple[str, str], stamp: tuple[int, int]) -> dict:
    from ..scrub_payload import learn_payload

    return learn_payload(_regions(handle, stamp), list(LEARN_GRID), LEARN_GRID[0], reopen(handle).info.num_classes)


def learn_scrub_payload(experiment: Experiment, value: float) -> dict:
    """The Learn scrubber's data: every grid intensity's decision regions, run-length coded, built once per change
    of the results; the selection is set on a copy."""
    from ..scrub_payload import learn_selection

    return learn_selection(_learn_payload(experiment_handle(experiment), results_stamp(experiment)), value)


@st.cache_data(show_spinner=False, max_entries=64)
def _trajectory(handle: tuple[str, str], value: float, stamp: tuple[int, int]) -> dict:
    from cup_core.trajectory import trajectory

    return trajectory(reopen(handle), EXPLORE_METHOD, value, LEARN_SEED)


def learn_trajectory(experiment: Experiment, value: float) -> dict:
    """The per-step records of the run at `value` (recorded on first use, cached on disk)."""
    return _trajectory(experiment_handle(experiment), value, results_stamp(experiment))


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
