"""Widgets that own their session_state key (and, where it helps sharing, their URL query parameter)."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from cup_core import Experiment, SweepProgress

from . import services

INTENSITY_KEY = "intensity"
CHART_KEY = "frontier_chart"


def experiment_picker() -> Experiment:
    """Sidebar: data set, forget set and recipe; all three live in the URL so a link reopens them."""
    st.sidebar.header("Experiment")
    names = services.datasets()
    dataset = st.sidebar.selectbox("Data set", names, index=names.index(services.DEFAULT_DATASET), key="dataset",
                                   bind="query-params",
                                   help="blobs: the paper's 2-D toy (MLP); digits: scikit-learn's 8×8 digits (small CNN)")
    choices = {choice.label: choice for choice in services.forget_choices(dataset)}
    forget = choices[st.sidebar.selectbox(
        "Forget", list(choices), index=list(choices).index(services.default_forget(dataset).label), key="forget",
        bind="query-params", help="a whole class (class-wise forgetting) or a seeded random subset")]
    candidates = services.experiments_for(dataset, forget)
    by_id = {experiment.id: experiment for experiment in candidates}
    chosen = st.sidebar.selectbox("Experiment", list(by_id), key="experiment", bind="query-params",
                                  help="the default recipe first; experiments made with other unlearning settings "
                                       "(e.g. by the CLI) follow")
    st.sidebar.caption(services.describe_recipe(by_id[chosen], candidates[0]))
    return by_id[chosen]


def compute_with_progress(experiment: Experiment) -> None:
    bar = st.progress(0.0, text="starting…")

    def on_progress(progress: SweepProgress) -> None:
        bar.progress(progress.done / progress.total,
                     text=f"{progress.done}/{progress.total} models · {services.format_seconds(progress.eta_s)} "
                          f"· last: {progress.label}")

    services.compute(experiment, on_progress)
    bar.empty()


def intensity_slider(values: list[float], default: float, knob: str) -> float:
    """The knob's slider over the grid values; returns the chosen value."""
    if st.session_state.get(INTENSITY_KEY) not in values:
        st.session_state.pop(INTENSITY_KEY, None)  # a value from another experiment's grid
    return st.select_slider(
        f"Intensity γ ({knob})", options=values, value=default, key=INTENSITY_KEY, bind="query-params",
        format_func=lambda v: f"{v:g}",
        help="γ = 0: every step is pure retain progress; γ = 1: pure forgetting, orthogonal to the retain gradient. "
             "Click a point in the plot to jump to it.")


def select_clicked_point() -> None:
    """on_select callback of the frontier chart: a clicked point moves the slider."""
    selection = st.session_state.get(CHART_KEY)
    points = getattr(selection, "selection", {}).get("points", []) if selection else []
    for point in points:
        data = point.get("customdata")  # a list, or a dict keyed "0", "1", ... as the browser sends it
        if data:
            st.session_state[INTENSITY_KEY] = float(data["0"] if isinstance(data, dict) else data[0])
            return


def metric_cards(point: pd.Series, original: pd.Series | None, oracle: pd.Series | None) -> None:
    """The selected point's metrics, each with its change against the original and the oracle."""
    cards = [("Forget acc", "forget_acc", "inverse"), ("Retain acc", "retain_acc", "normal"),
             ("Test acc", "test_acc", "normal"), ("UA", "ua", "normal"),
             ("MIA efficacy", "mia_efficacy", "normal"), ("Avg gap", "avg_gap", "inverse")]
    columns = st.columns(2)
    for index, (label, name, colour) in enumerate(cards):
        value = point[name]
        with columns[index % 2]:
            base = None if original is None or name not in original else original[name]
            st.metric(label, _fmt(value, name),
                      delta=None if base is None or _nan(base) or _nan(value) else f"{value - base:+.1f} vs original",
                      delta_color=colour, border=True)
            if oracle is not None and name in oracle and not (_nan(oracle[name]) or _nan(value)):
                st.caption(f"oracle {_fmt(oracle[name], name)} · gap {value - oracle[name]:+.1f}")


def _nan(value: float) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: float, name: str) -> str:
    if _nan(value):
        return "n/a"
    return f"{value:.2f}" if name == "avg_gap" else f"{value:.1f}%"
