"""What every service's st.cache_* keys an experiment by (its handle and the stamp of its results), and figures and
results built once per key and shared."""

from __future__ import annotations

import hashlib
import json
from typing import Callable

import plotly.graph_objects as go
import streamlit as st

from cup_core import Experiment, ExperimentConfig, SweepPlan


def experiment_handle(experiment: Experiment) -> tuple[str, str]:
    """What Streamlit's caches key an experiment by: its canonical config and its cache folder. An
    experiment is rebuilt from these, not reopened from disk, so one whose config could not be written
    (a full disk) still shows its empty state."""
    return experiment.config.canonical_json(), str(experiment.root.parent)


def reopen(handle: tuple[str, str]) -> Experiment:
    config_json, cache_dir = handle
    return Experiment(ExperimentConfig.from_dict(json.loads(config_json)), cache_dir)


def results_stamp(experiment: Experiment) -> tuple[int, int]:
    """Changes whenever the sweep rewrites results.csv, so cached views never go stale."""
    try:
        stat = (experiment.root / "results.csv").stat()
        return stat.st_mtime_ns, stat.st_size
    except OSError:  # missing, or a link that leads nowhere (a loop): results() reads the point records
        return 0, 0


def digest(value: tuple | SweepPlan) -> str:
    """A cache key for a plan or a tuple of points, made of plain values its repr states in full: Streamlit
    hashes a tuple of a hundred points element by element on every call of every cache it keys (tens of ms a
    Compare rerun, growing with the seeds and points), a string of the same content in one step."""
    return hashlib.sha256(repr(value).encode()).hexdigest()


@st.cache_resource(show_spinner=False, max_entries=64)
def _figure_dict(key: tuple, _build: Callable[[], go.Figure]) -> dict:
    return _build().to_dict()


def cached_figure_dict(key: tuple, build: Callable[[], go.Figure]) -> dict:
    """cached_figure's figure as the dict it is kept as, shared as it is: for a reader that changes nothing
    (scrub_payload.figure_json), no copy made."""
    return _figure_dict(key, build)


def cached_figure(key: tuple, build: Callable[[], go.Figure]) -> go.Figure:
    """`build()`'s figure, built once per `key`, which must name everything it depends on; later reruns get a
    copy (a Compare figure of six methods: ~20 ms to build, a few ms to copy). A copy, so the caller may add to it
    (the selection ring). go.Figure deep-copies the traces and layout it is given (a deep copy here as well cost
    5 ms a rerun), but takes each trace's "type" out and puts it back: each trace is handed over as a shallow copy,
    so the shared dict, which another session may be reading, is never changed. A figure drawn as it is needs
    none: see shared."""
    figure = _figure_dict(key, build)
    return go.Figure({"data": [dict(trace) for trace in figure["data"]], "layout": figure["layout"]}, _validate=False)


def view_cache(max_entries: int):
    """For a page's view (the tables and payloads read from an experiment's files, once per change of them):
    shared by every rerun and session as it is, not copied. st.cache_data unpickles a copy at every call (2 ms for
    a Compare view, called three times a rerun), so what these return is read, never changed."""
    return st.cache_resource(show_spinner=False, max_entries=max_entries)


# Entries are small (a figure, a table, a payload of at most a few hundred kB), and Explore adds one per intensity
# shown (its per-class bars): at 64, two experiments' visited values pushed Compare's figures out.
SHARED_ENTRIES = 256


@st.cache_resource(show_spinner=False, max_entries=SHARED_ENTRIES)
def _shared(key: tuple, _build: Callable[[], object]) -> object:
    return _build()


def shared(key: tuple, build: Callable[[], object]):
    """`build()`'s result, built once per `key` (which must name everything it depends on) and shared by every
    session and rerun without a copy: for what is drawn as it is, never modified (a figure st.plotly_chart
    only reads, a table st.dataframe shows, a scrubber's payload)."""
    return _shared(key, build)
