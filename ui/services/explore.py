"""The Explore page: CUP's points on one experiment, read from the cache, and its scrubber's data."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from cup_core import Experiment, SweepPlan
from cup_core.config import same_knob
from cup_core.experiment import per_class_vector
from cup_core.methods import get_method
from cup_core.pareto import objective_names
from cup_core.report import frontier_table, reference_table

from .caching import experiment_handle, reopen, results_stamp, view_cache
from .selected_point import seeds_at


EXPLORE_METHOD = "cup"

RANDOM_SUBSET_NOTE = (
    "Random-subset forgetting: the vertical axis is 100 − |forget acc − the retrained oracle's forget acc| "
    "(spec §5), so forgetting more of the subset than the oracle does (over-forgetting) counts against a point "
    "just as forgetting too little does. Fronts and hypervolumes use this over-forgetting-aware objective, not UA.")


def explore_plan() -> SweepPlan:
    return SweepPlan.default((EXPLORE_METHOD,))


def canonical_intensity(value: float) -> float:
    return get_method(EXPLORE_METHOD).check_value(value)


def single_point_plan(value: float) -> SweepPlan:
    return SweepPlan({EXPLORE_METHOD: (value,)})


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
        return self.frontier[same_knob(self.frontier["value"], value)].iloc[0]

    def reference(self, role: str) -> pd.Series | None:
        return self.references.loc[role] if role in self.references.index else None

    def per_class(self, row: pd.Series | None) -> list[float]:
        return [] if row is None else per_class_vector(row)


@view_cache(max_entries=32)
def _view(handle: tuple[str, str], stamp: tuple[int, int]) -> ExplorerView:
    experiment = reopen(handle)
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
    return _view(experiment_handle(experiment), results_stamp(experiment))


@view_cache(max_entries=16)
def _explore_payload(handle: tuple[str, str], stamp: tuple[int, int]) -> dict:
    from ..scrub_payload import explore_payload

    view = _view(handle, stamp)
    return explore_payload(view.frontier, view.references, knob=view.knob, axis_titles=view.axis_titles,
                           forget_class=view.forget_class, selected_value=None,
                           has_oracle=reopen(handle).config.oracle)


def explore_scrub_payload(experiment: Experiment, value: float) -> dict:
    """The Explore scrubber's data (every grid value's point, cards and per-class bars), built once per change
    of the results; the selection is set on a copy, so a released value rebuilds no figure."""
    from ..scrub_payload import explore_selection

    return explore_selection(_explore_payload(experiment_handle(experiment), results_stamp(experiment)), value)
