"""The point selected on Explore or Compare: the seeds it was computed with, whether its model is cached, its export."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cup_core import Experiment
from cup_core.config import same_knob
from cup_core.export import export_bytes

from .caching import experiment_handle, reopen, results_stamp


def seeds_at(results: pd.DataFrame, method: str, value: float) -> list[int]:
    """The seeds computed for one point (a value computed on demand may have fewer than the grid)."""
    chosen = (results["method"] == method) & same_knob(results["value"], value)
    return sorted(int(seed) for seed in results.loc[chosen, "seed"])


def point_is_cached(experiment: Experiment, method: str, value: float, seed: int) -> bool:
    """Whether the point is cached (metadata: its record, and weights of the size their header declares); the
    export itself checks the weights' hash before it hands them out."""
    return experiment.point_cached(method, value, seed)


def export_zip(experiment: Experiment, value: float, seed: int, method: str) -> bytes:
    return _export(experiment_handle(experiment), method, value, seed, results_stamp(experiment))


@st.cache_data(show_spinner=False, max_entries=16)
def _export(handle: tuple[str, str], method: str, value: float, seed: int, stamp: tuple[int, int]) -> bytes:
    return export_bytes(reopen(handle), method, value, seed)
