"""What the live scrubbers (ui/scrubber.py) send to the browser once: pure functions, data in, JSON-ready dicts out.

Every text the browser shows while scrubbing is formatted here, by the same functions as the server-drawn
metric cards, so the live page and the fallback page say the same thing about a point."""

from __future__ import annotations

import copy
import hashlib
import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from cup_core.experiment import per_class_vector
from cup_core.report import method_rows

from . import figures
from .glossary import GLOSSARY

# (label, column, which way is better): the metric cards of Explore and Compare, in their order.
CARDS = [("Forget acc", "forget_acc", "inverse"), ("Retain acc", "retain_acc", "normal"),
         ("Test acc", "test_acc", "normal"), ("UA", "ua", "normal"),
         ("MIA efficacy (SVC)", "mia_efficacy", "normal"), ("Avg gap", "avg_gap", "inverse")]
POINT_COLUMNS = ["value", "objective_x", "objective_y", *(name for _, name, _ in CARDS)]  # what a point's payload reads
NO_ORACLE = "no oracle"  # what a gap card says beneath "n/a" when the experiment skipped the oracle


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_metric(value, name: str) -> str:
    if is_missing(value):
        return "n/a"
    return f"{value:.2f}" if name == "avg_gap" else f"{value:.1f}%"


def signed(change: float) -> str:
    """A change at one decimal with its sign, or "0.0" where none shows at that precision: a "+0.0" reads as a rise
    (and draws an arrow up)."""
    shown = f"{change:+.1f}"
    return "0.0" if shown in ("+0.0", "-0.0") else shown


def card_texts(point: pd.Series | dict, original: pd.Series | dict | None, oracle: pd.Series | dict | None,
               has_oracle: bool = True) -> list[dict]:
    """One dict per metric card: label, value, delta against the original (and whether it is good news), the
    oracle line and the help text; what metric_cards draws with st.metric and the scrubbers with HTML. A delta
    with a sign gets an arrow; one without (no change at the shown precision: `signed`, or no oracle) gets none."""
    cards = []
    for label, name, colour in CARDS:
        value = point[name]
        if name == "avg_gap" and not has_oracle:
            cards.append({"label": label, "value": "n/a", "delta": NO_ORACLE, "tone": "off", "caption": "",
                          "help": GLOSSARY[label] + " This experiment skipped the oracle, so there is no gap to measure."})
            continue
        base = None if original is None or name not in original else original[name]
        delta, tone = None, "off"
        if not (base is None or is_missing(base) or is_missing(value)):
            change = value - base
            shown = signed(change)
            delta = f"{shown} vs original"
            better = change < 0 if colour == "inverse" else change > 0
            tone = "off" if shown == "0.0" else ("good" if better else "bad")
        caption = ""
        if oracle is not None and name in oracle and not (is_missing(oracle[name]) or is_missing(value)):
            caption = f"oracle {format_metric(oracle[name], name)} · gap {signed(value - oracle[name])}"
        cards.append({"label": label, "value": format_metric(value, name), "delta": delta, "tone": tone,
                      "caption": caption, "help": GLOSSARY[label]})
    return cards


def per_class(row: pd.Series | None) -> list[float | None]:
    """A point's per-class test accuracies in class order (None where missing)."""
    if row is None:
        return []
    return [None if is_missing(accuracy) else accuracy for accuracy in per_class_vector(row)]


def figure_json(fig: go.Figure | dict) -> dict:
    """A figure as plotly.js takes it, without plotly.py's default template: the browser applies the app's theme.
    `fig` may be a figure's dict (caching.cached_figure_dict's), read and not changed: no copy of it is made."""
    # written as it is: each builder is tested against plotly.py's validation
    figure = fig if isinstance(fig, dict) else fig.to_plotly_json()
    return json.loads(pio.json.to_json_plotly({**figure, "layout": {**figure["layout"], "template": _NO_TEMPLATE}}))


_NO_TEMPLATE = pio.templates["none"].to_plotly_json()


def trace_index(figure: dict, name: str) -> int:
    """The index of the trace called `name`, appended empty (to be filled by the browser) if there is none."""
    for index, trace in enumerate(figure["data"]):
        if trace.get("name") == name:
            return index
    figure["data"].append({"type": "scatter", "x": [], "y": [], "mode": "markers", "name": name,
                           "showlegend": False, "hoverinfo": "skip",
                           "marker": {"size": 24, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#ff7f0e"}}})
    return len(figure["data"]) - 1


def nearest(values: list[float], value: float) -> int:
    """The index of the grid value nearest to `value`."""
    return int(np.argmin([abs(v - value) for v in values]))


def explore_payload(frontier: pd.DataFrame, references: pd.DataFrame, *, knob: str, axis_titles: tuple[str, str],
                    forget_class: int | None, selected_value: float | None, has_oracle: bool) -> dict:
    """Everything the Explore scrubber needs, once: the frontier and per-class figures with the selection drawn,
    and, for every grid value, its point on the frontier, its metric cards and its per-class accuracies.
    Built at the first grid value when `selected_value` is None; explore_selection moves the selection."""
    frontier = frontier.sort_values("value").reset_index(drop=True)
    original = references.loc["original"] if "original" in references.index else None
    oracle = references.loc["oracle"] if "oracle" in references.index else None
    values = [float(v) for v in frontier["value"]]
    selected = 0 if selected_value is None else nearest(values, selected_value)
    chosen = frontier.iloc[selected]
    frontier_fig = figure_json(figures.frontier_figure(frontier, references, knob=knob, axis_titles=axis_titles,
                                                       selected_value=values[selected]))
    bars = figure_json(figures.per_class_figure(per_class(original), per_class(chosen), per_class(oracle),
                                                forget_class, selected_label=f"CUP γ={values[selected]:g}"))
    points = []
    for _, row in frontier.iterrows():
        finite = bool(np.isfinite([row["objective_x"], row["objective_y"]]).all())
        points.append({"value": float(row["value"]), "label": f"γ = {row['value']:g}",
                       "bar_label": f"CUP γ={row['value']:g}",
                       "x": float(row["objective_x"]) if finite else None,
                       "y": float(row["objective_y"]) if finite else None,
                       "cards": card_texts(row, original, oracle, has_oracle), "per_class": per_class(row)})
    return {"knob": knob, "label": "Intensity γ", "values": values, "selected": selected,
            "points": points, "frontier": frontier_fig, "bars": bars,
            "selected_trace": trace_index(frontier_fig, "selected"),
            "bar_trace": trace_index(bars, f"CUP γ={values[selected]:g}")}


def _with_trace(figure: dict, index: int, **changes) -> dict:
    """A copy of `figure` whose trace `index` has `changes`; the other traces and the layout are shared."""
    data = list(figure["data"])
    data[index] = {**data[index], **changes}
    return {**figure, "data": data}


def explore_selection(payload: dict, selected_value: float) -> dict:
    """`payload` (explore_payload's) with the grid value nearest `selected_value` selected: its index, the ring
    on the frontier and the per-class bars. A shallow copy sharing everything else, so the payload is built
    (and its figures validated) once per change of the results, whatever value a release chooses."""
    selected = nearest(payload["values"], selected_value)
    if selected == payload["selected"]:
        return payload
    point = payload["points"][selected]
    ring = [] if point["x"] is None else [point["x"]], [] if point["y"] is None else [point["y"]]
    frontier = _with_trace(payload["frontier"], payload["selected_trace"], x=ring[0], y=ring[1])
    label = point["bar_label"]
    changes = {"y": point["per_class"], "name": label}
    if "hovertemplate" in payload["bars"]["data"][payload["bar_trace"]]:
        changes["hovertemplate"] = figures.per_class_hover(label)
    bars = _with_trace(payload["bars"], payload["bar_trace"], **changes)
    return {**payload, "selected": selected, "frontier": frontier, "bars": bars}


def run_lengths(grid: np.ndarray) -> list[int]:
    """A grid of small class numbers, row-major, as [class, count, class, count, ...]: decision regions are a
    few flat areas, so this is about a hundredth of the cells."""
    flat = np.asarray(grid).reshape(-1)
    if flat.size == 0:
        return []
    starts = np.r_[0, np.flatnonzero(flat[1:] != flat[:-1]) + 1]
    counts = np.diff(np.r_[starts, flat.size])
    return np.column_stack([flat[starts], counts]).reshape(-1).astype(int).tolist()


def learn_payload(regions: dict, values: list[float], selected_value: float, num_classes: int,
                  max_points: int = 600) -> dict:
    """The Learn scrubber's data, once: the original's, the oracle's and every intensity's decision regions
    (run-length coded), the samples drawn over them and the colours of figures.regions_figure."""
    selected = nearest(values, selected_value)
    samples = regions["samples"]
    step = max(1, len(samples["y"]) // max_points)  # the same thinning as figures.regions_figure
    first = np.asarray(regions["references"]["original"])
    return {"label": "Intensity γ", "values": [float(v) for v in values], "selected": selected,
            "shape": list(first.shape), "x_range": [float(v) for v in regions["x_range"]],
            "y_range": [float(v) for v in regions["y_range"]], "num_classes": int(num_classes),
            "references": {role: run_lengths(grid) for role, grid in regions["references"].items()},
            "titles": {"original": "Original", "oracle": "Retrained oracle"},
            "points": [run_lengths(regions["points"][value]) for value in values],
            "samples": {"x": np.round(samples["x"][::step], 3).tolist(), "y": samples["y"][::step].astype(int).tolist(),
                        "forget": samples["forget"][::step].astype(bool).tolist()},
            "class_colours": figures.CLASS_COLOURS, "point_colours": figures.POINT_COLOURS}


def learn_selection(payload: dict, selected_value: float) -> dict:
    """`payload` (learn_payload's) with the intensity nearest `selected_value` selected (a shallow copy)."""
    return {**payload, "selected": nearest(payload["values"], selected_value)}


def pivot_payload(step: dict, intensity: float, sweep: list[tuple[float, list[float]]], run_value: float) -> dict:
    """The live pivot figure of one recorded step: the figure at `intensity`, and CUP's direction at every grid
    intensity for this step's gradients, so the bold arrow turns in the browser while the slider moves."""
    fig = figure_json(figures.pivot_figure(step["plane"], intensity, sweep))
    directions = []
    for _, d in sweep:
        norm = float(np.hypot(*d))
        directions.append([float(d[0]) / norm, float(d[1]) / norm] if norm > 0 else [0.0, 0.0])
    bold = next(i for i, trace in enumerate(fig["data"]) if str(trace.get("name", "")).startswith("d at γ"))
    return {"figure": fig, "bold_trace": bold, "values": [float(v) for v, _ in sweep], "directions": directions,
            "selected": nearest([v for v, _ in sweep], intensity),
            "phi": math.degrees(step["phi"]), "theta": math.degrees(step["theta"]), "run_value": float(run_value),
            "help": {"theta": GLOSSARY["Dual cone"], "psi": GLOSSARY["Pivot"]}}


RING = {"type": "scatter", "x": [], "y": [], "mode": "markers", "name": "selected", "showlegend": False,
        "hoverinfo": "skip", "marker": {"size": 24, "color": "rgba(0,0,0,0)", "line": {"width": 3, "color": "#111"}}}


def compare_payload(frontier: pd.DataFrame, references: pd.DataFrame, *, labels: dict[str, str],
                    axis_titles: tuple[str, str], has_oracle: bool, fronts: go.Figure | dict | None = None) -> dict:
    """Everything the Compare scrubber needs whatever is selected, once per view: the fronts figure (the
    ring trace empty, placed by the browser) and, per method, its knob values in order with their places on
    the slider (log-spaced knobs on a log scale: Method.position) and each value's point and metric cards.
    The cards' help texts, the same for every point, are sent once (`card_help`). `fronts`: that figure
    (figures.compare_figure of the same arguments, or its dict) where the caller has it built already."""
    from cup_core.methods import get_method

    figure = figure_json(fronts if fronts is not None else
                         figures.compare_figure(frontier, references, labels=labels, axis_titles=axis_titles))
    figure["data"].append(copy.deepcopy(RING))
    methods, card_help = {}, []
    # plain dicts, once: a Series' item costs more than the card (report.method_rows: each method's rows)
    records, gaps = frontier[POINT_COLUMNS].to_dict("records"), frontier["avg_gap"].to_numpy(dtype=float)
    original, oracle = (references.loc[role].to_dict() if role in references.index else None
                        for role in ("original", "oracle"))
    by_method = method_rows(frontier)
    for name in labels:
        rows = by_method.get(name, np.zeros(0, dtype=int))
        if not len(rows):
            continue
        method = get_method(name)
        values = [float(records[index]["value"]) for index in rows]
        points = []
        for row in (records[index] for index in rows):
            finite = bool(np.isfinite([row["objective_x"], row["objective_y"]]).all())
            cards = card_texts(row, original, oracle, has_oracle)
            card_help = [card.pop("help") for card in cards]
            points.append({"value": float(row["value"]), "text": f"{row['value']:.3g}",
                           "label": f"{method.label}, {method.knob} = {row['value']:g}",
                           "x": float(row["objective_x"]) if finite else None,
                           "y": float(row["objective_y"]) if finite else None, "cards": cards})
        methods[name] = {"label": method.label, "knob": method.knob, "values": values,
                         "positions": [float(p) for p in method.position(np.array(values))], "points": points,
                         "start": _start(gaps[rows])}
    payload = {"methods": methods, "figure": figure, "ring_trace": len(figure["data"]) - 1, "card_help": card_help}
    payload["signature"] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return payload


def _start(gaps: np.ndarray) -> int:
    """Where a method's slider starts when the selection is elsewhere: its point closest to the oracle (lowest
    avg gap), else its middle value (`gaps`: its points' avg gaps in knob-value order)."""
    return int(np.nanargmin(gaps)) if np.isfinite(gaps).any() else len(gaps) // 2


def compare_start(payload: dict, method: str) -> float:
    """The knob value a method's slider starts at (see _start): where picking the method moves the selection."""
    entry = payload["methods"][method]
    return entry["values"][entry["start"]]


def compare_selected(payload: dict, method: str, selected: tuple[str, float] | None, clicked: bool) -> dict:
    """`payload` (not copied: it may be a cached object) with the scrubbed method and its selected index: the
    selected point where it is this method's, else the method's start; `heading` names how it was chosen, as
    the server-drawn panel does."""
    entry = payload["methods"][method]
    if selected is not None and selected[0] == method:
        index = int(np.argmin([abs(v - selected[1]) for v in entry["values"]]))
    else:
        index = entry["start"]
    heading = ("Selected" if clicked else "Best overall (lowest avg gap)") if selected is not None else "Not selected yet"
    return {**payload, "method": method, "selected": index, "heading": heading}
