"""A vs B: the models of an experiment that can be pinned, their recorded metrics and their explanations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cup_core import Experiment
from cup_core.config import same_knob
from cup_core.methods import get_method

from .caching import experiment_handle, reopen


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

    return explain(reopen(handle), Pin.parse(pin_text), projection)


def explained(experiment: Experiment, pin, projection: str = "pca") -> dict:
    """cup_core.explain's arrays for a pinned model: read from (or computed into) the experiment's explained/
    folder, and kept in memory keyed by the weights' hash, so a recomputed checkpoint is never explained stale.
    Raises cache.BrokenEntry for a model that is not cached, ValueError when its data is not on this machine."""
    from cup_core.explain import weights_sha256

    return _explained(experiment_handle(experiment), str(pin), weights_sha256(experiment, pin), projection)


@st.cache_data(show_spinner=False, max_entries=8)
def _forget_samples(handle: tuple[str, str]) -> dict:
    from cup_core.data import load_unlearning_data
    from cup_core.explain import forget_samples

    experiment = reopen(handle)
    return forget_samples(load_unlearning_data(experiment.config, experiment.sources()))


def forget_samples(experiment: Experiment) -> dict:
    """The forget set's inputs to draw (2-D points or images) in the order explain's forget_correct has them."""
    return _forget_samples(experiment_handle(experiment))


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
    rows = results[(results["method"] == pin.method) & same_knob(results["value"], pin.value)
                   & (results["seed"] == pin.seed)]
    return rows.iloc[0] if len(rows) else None
