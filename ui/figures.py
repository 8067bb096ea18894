"""Pure Plotly builders: data in, go.Figure out. No Streamlit here, so they are tested directly. The figures that
Explore and Compare draw are written as plotly.js's JSON without plotly.py's checks (`_figure`); the Learn and
Inspect figures, built once per lesson or pair, keep plotly.py's objects."""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cup_core.config import same_knob
from cup_core.pareto import staircase
from cup_core.report import method_rows, objective_points

POINTS_TRACE = "points"  # the name of the clickable trace; its customdata[0] is the knob value
# The named scale's stops as plotly.py's validation writes them (plotly.js's own "Viridis" differs slightly)
COLORSCALE = [list(stop) for stop in go.scatter.Marker(colorscale="Viridis").colorscale]
REFERENCE_STYLE = {
    "original": dict(symbol="diamond", color="#d62728", label="Original"),
    "oracle": dict(symbol="star", color="#2ca02c", label="Retrained oracle"),
}


def _figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from traces and layout written as plotly.js takes them, not checked by plotly.py: its check of every
    property took most of a Compare page's first build (the six-method fronts figure on digits: 47 ms checked, 12 ms
    as written here). The tests check each builder's figure against what plotly.py's validation makes of it."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def _titled(title: str, **axis) -> dict:
    return {"title": {"text": title}, **axis}


def _symbols(rows: pd.DataFrame) -> list[str]:
    """A cross for a point whose run diverged (in any seed), a dot otherwise."""
    diverged = rows["diverged"] if "diverged" in rows else pd.Series(0.0, index=rows.index)
    return ["x" if share > 0 else "circle" for share in diverged.fillna(0.0)]


def _hover(knob: str) -> str:
    return (f"<b>{knob} %{{customdata[0]:.3g}}</b><br>"
            "retain acc %{customdata[1]:.1f}%<br>UA %{customdata[2]:.1f}%<br>"
            "forget acc %{customdata[3]:.1f}%<br>test acc %{customdata[4]:.1f}%<br>"
            "SVC MIA efficacy %{customdata[5]:.1f}%<br>avg gap %{customdata[6]:.2f}<extra></extra>")


HOVER_COLUMNS = ["value", "retain_acc", "ua", "forget_acc", "test_acc", "mia_efficacy", "avg_gap"]


def frontier_figure(frontier: pd.DataFrame, references: pd.DataFrame, *, knob: str, axis_titles: tuple[str, str],
                    selected_value: float | None = None) -> go.Figure:
    """One method's points in objective space, coloured by knob value, with its non-dominated staircase,
    the original and oracle as reference markers, and the selected point ringed.

    `frontier` has objective_x, objective_y, non_dominated and the HOVER_COLUMNS (report.frontier_table);
    `references` is report.reference_table: indexed by role, with the objectives and metrics.
    """
    finite = frontier[np.isfinite(frontier[["objective_x", "objective_y"]]).all(axis=1)]
    xs, ys = staircase(finite[["objective_x", "objective_y"]].to_numpy())
    data = [dict(type="scatter", x=xs, y=ys, mode="lines", name="non-dominated front",
                 line=dict(color="rgba(60,60,60,0.55)", dash="dash", width=1.5), hoverinfo="skip"),
            dict(type="scatter", x=finite["objective_x"].to_numpy(), y=finite["objective_y"].to_numpy(), mode="markers",
                 name=POINTS_TRACE, customdata=finite[HOVER_COLUMNS].to_numpy(), hovertemplate=_hover(knob),
                 showlegend=False,
                 marker=dict(size=np.where(finite["non_dominated"], 13, 10), color=finite["value"].to_numpy(),
                             colorscale=COLORSCALE, symbol=_symbols(finite),
                             cmin=float(frontier["value"].min()) if len(frontier) else 0.0,
                             cmax=float(frontier["value"].max()) if len(frontier) else 1.0,
                             line=dict(width=np.where(finite["non_dominated"], 1.5, 0.5).tolist(), color="#222"),
                             colorbar=dict(title=dict(text=knob), thickness=14)))]
    for role, style in REFERENCE_STYLE.items():
        if role not in references.index:
            continue
        row = references.loc[role]
        data.append(dict(
            type="scatter", x=[float(row["objective_x"])], y=[float(row["objective_y"])], mode="markers",
            name=style["label"],
            marker=dict(symbol=style["symbol"], size=15, color=style["color"], line=dict(width=1, color="#222")),
            hovertemplate=(f"<b>{style['label']}</b><br>retain acc {row['retain_acc']:.1f}%<br>"
                           f"UA {row['ua']:.1f}%<br>test acc {row['test_acc']:.1f}%<extra></extra>")))
    fig = _figure(data, dict(
        xaxis=_titled(axis_titles[0]), yaxis=_titled(axis_titles[1]), height=470, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0), clickmode="event+select", dragmode="pan"))
    return ring_value(fig, frontier, selected_value)


def ring_value(fig: go.Figure, frontier: pd.DataFrame, value: float | None) -> go.Figure:
    """frontier_figure's `fig` with the point at knob `value` ringed, as the last trace (the figure without the
    ring can then be built once and ringed at each move of the slider)."""
    if value is not None:
        finite = frontier[np.isfinite(frontier[["objective_x", "objective_y"]]).all(axis=1)]
        chosen = finite[same_knob(finite["value"], value)]
        if len(chosen):
            fig.add_trace(dict(
                type="scatter", x=chosen["objective_x"].to_numpy(), y=chosen["objective_y"].to_numpy(),
                mode="markers", name="selected", hoverinfo="skip",
                marker=dict(size=24, color="rgba(0,0,0,0)", line=dict(width=3, color="#ff7f0e"))))
    return fig


def per_class_figure(original: list[float], selected: list[float], oracle: list[float],
                     forget_class: int | None, selected_label: str) -> go.Figure:
    """Test accuracy per class, grouped: original / selected / oracle; the forgotten class is marked."""
    classes = [str(k) for k in range(len(selected))]
    data = [dict(type="bar", x=classes, y=[_none_if_nan(v) for v in values], name=name, marker=dict(color=color),
                 hovertemplate=per_class_hover(name))
            for name, values, color in (("Original", original, "#d62728"), (selected_label, selected, "#ff7f0e"),
                                        ("Retrained oracle", oracle, "#2ca02c")) if values]
    layout = dict(barmode="group", height=300, yaxis=_titled("test accuracy (%)", range=[0, 105]),
                  xaxis=_titled("class", type="category"), margin=dict(l=10, r=10, t=30, b=10),  # every class named
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    if forget_class is not None:  # a band over the class's bars, the whole height of the plot
        layout["shapes"] = [dict(type="rect", xref="x", yref="y domain", x0=forget_class - 0.5, x1=forget_class + 0.5,
                                 y0=0, y1=1, fillcolor="rgba(120,120,120,0.15)", line=dict(width=0))]
        layout["annotations"] = [dict(text="forgotten", showarrow=False, xref="x", yref="y domain",
                                      x=float(forget_class), xanchor="center", y=1, yanchor="top")]
    return _figure(data, layout)


def per_class_hover(name: str) -> str:
    """The hover text of one of per_class_figure's bar traces."""
    return f"{name}<br>class %{{x}}: %{{y:.1f}}%<extra></extra>"


def _none_if_nan(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


# One colour per method, so that every method of `--methods all` (15) is told apart on one plot.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#393b79", "#ad494a", "#637939", "#e7ba52", "#7b4173", "#3182bd"]
COMPARE_HOVER = ("<b>%{customdata[0]}</b> · %{customdata[1]} %{customdata[2]:.4g}<br>"
                 "retain acc %{customdata[3]:.1f}%<br>UA %{customdata[4]:.1f}%<br>test acc %{customdata[5]:.1f}%<br>"
                 "SVC MIA efficacy %{customdata[6]:.1f}%<br>avg gap %{customdata[7]:.2f}<br>"
                 "exclusive share of its method's normalised HV %{customdata[8]:.4f}<br>"
                 "forget acc %{customdata[9]:.1f}% · forget-class test acc %{customdata[10]:.1f}%<br>"
                 "run: lr %{customdata[11]:.3g}, %{customdata[12]} epochs, seeds %{customdata[13]}<extra></extra>")
# customdata[0] is the method's name (the click handler reads it and [2]); the rest, in order, from the frontier
# (lr, epochs, seed_list: report.run_settings; a frontier without them shows blanks)
COMPARE_HOVER_COLUMNS = ["label", "knob", "value", "retain_acc", "ua", "test_acc", "mia_efficacy", "avg_gap",
                         "hv_contribution", "forget_acc", "forget_test_acc", "lr", "epochs", "seed_list"]


def method_colours(methods: list[str]) -> dict[str, str]:
    return {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(methods)}


def compare_figure(frontier: pd.DataFrame, references: pd.DataFrame, *, labels: dict[str, str],
                   axis_titles: tuple[str, str], selected: tuple[str, float] | None = None) -> go.Figure:
    """Every method's seed-averaged points (error bars: std over seeds) and its non-dominated staircase,
    overlaid, with the original and the oracle. Clickable points carry customdata [method, knob, value, ...]."""
    data = []
    colours = method_colours(list(labels))
    # whole columns once, then each method's rows of them (method_rows)
    by_method, points = method_rows(frontier), objective_points(frontier)
    hover = frontier.reindex(columns=COMPARE_HOVER_COLUMNS[1:]).to_numpy(dtype=object)
    symbols, front = np.array(_symbols(frontier), dtype=object), frontier["non_dominated"].to_numpy(dtype=bool)
    seeds = frontier["seeds"].to_numpy()
    spread = {axis: frontier[f"objective_{axis}_std"].to_numpy(dtype=float) for axis in ("x", "y")}
    for name, label in labels.items():
        rows = by_method.get(name, np.zeros(0, dtype=int))
        rows = rows[np.isfinite(points[rows]).all(axis=1)]
        if not len(rows):
            continue
        xs, ys = staircase(points[rows])
        data.append(dict(type="scatter", x=xs, y=ys, mode="lines", legendgroup=name, showlegend=False, hoverinfo="skip",
                         line=dict(color=colours[name], width=1.5, dash="dot")))
        several_seeds = bool((seeds[rows] > 1).any())
        data.append(dict(
            type="scatter", x=points[rows, 0], y=points[rows, 1], mode="markers", name=label, legendgroup=name,
            customdata=np.column_stack([np.full(len(rows), name), hover[rows]]),
            hovertemplate=COMPARE_HOVER.replace("%{customdata[0]}", label),
            marker=dict(color=colours[name], size=np.where(front[rows], 11, 7), symbol=symbols[rows].tolist(),
                        line=dict(width=np.where(front[rows], 1.2, 0).tolist(), color="#222")),
            error_x=dict(array=spread["x"][rows], visible=several_seeds, thickness=1),
            error_y=dict(array=spread["y"][rows], visible=several_seeds, thickness=1)))
    for role, style in REFERENCE_STYLE.items():
        if role in references.index:
            row = references.loc[role]
            data.append(dict(
                type="scatter", x=[float(row["objective_x"])], y=[float(row["objective_y"])], mode="markers",
                name=style["label"],
                marker=dict(symbol=style["symbol"], size=15, color=style["color"], line=dict(width=1, color="#222")),
                hovertemplate=f"<b>{style['label']}</b><br>retain acc {row['retain_acc']:.1f}%<br>"
                              f"UA {row['ua']:.1f}%<extra></extra>"))
    fig = _figure(data, dict(
        xaxis=_titled(axis_titles[0], range=front_range(frontier, references)),
        yaxis=_titled(axis_titles[1], range=front_range(frontier, references, column="objective_y")), height=520,
        margin=dict(l=10, r=10, t=30, b=10), clickmode="event+select", dragmode="pan",
        legend=dict(orientation="v", x=1.01, y=1)))
    return ring_selected(fig, frontier, selected)


def ring_selected(fig: go.Figure, frontier: pd.DataFrame, selected: tuple[str, float] | None) -> go.Figure:
    """`fig` with a ring around the selected (method, value) point, as the last trace (a figure without the ring
    can then be built once and ringed at each click)."""
    if selected is not None:
        rows = frontier[(frontier["method"] == selected[0]) & same_knob(frontier["value"], selected[1])]
        if len(rows):
            fig.add_trace(dict(type="scatter", x=rows["objective_x"].to_numpy(), y=rows["objective_y"].to_numpy(),
                               mode="markers", name="selected", hoverinfo="skip",
                               marker=dict(size=24, color="rgba(0,0,0,0)", line=dict(width=3, color="#111"))))
    return fig


def front_range(frontier: pd.DataFrame, references: pd.DataFrame, margin: float = 1.0,
                column: str = "objective_x") -> list[float]:
    """The axis range (of `column`) that shows every method's non-dominated points and the references, not the
    far-off collapsed runs that would squash the fronts into one strip (double-click the plot to see all). Its
    pad (5 % of the span, `margin` at least) is room for the markers and the selection's ring: not clamped to
    [0, 100], where a point at UA 100 or the original at UA 0 would lose half its marker to the axis."""
    values = pd.concat([frontier.loc[frontier["non_dominated"], column], references.get(column, pd.Series())])
    values = values[np.isfinite(values)]
    if values.empty:
        return [0.0, 100.5]
    low, high = float(values.min()), float(values.max())
    pad = max(margin, 0.05 * (high - low))
    return [low - pad, high + pad]


def hypervolume_figure(table: pd.DataFrame, maximum: float | None = None) -> go.Figure:
    """Horizontal bars of the normalised hypervolume per method, largest on top, with the bootstrap 95 %
    interval as error bars; the axis runs to the largest possible value, (1 + 1/H)²."""
    table = table.sort_values("normalised", na_position="first")
    value = table["normalised"].fillna(0.0)
    has_interval = table["normalised_low"].notna()
    bars = dict(
        type="bar", x=value.to_numpy(dtype=float), y=table["label"].tolist(), orientation="h",
        marker=dict(color=table["colour"].tolist()),
        error_x=dict(type="data", symmetric=False, visible=bool(has_interval.any()),
                     array=(table["normalised_high"] - value).where(has_interval, 0.0).clip(lower=0).tolist(),
                     arrayminus=(value - table["normalised_low"]).where(has_interval, 0.0).clip(lower=0).tolist()),
        customdata=table[["vs CUP"]].to_numpy(dtype=object),
        hovertemplate="%{y}: %{x:.3f} (vs CUP: %{customdata[0]})<extra></extra>")
    return _figure([bars], dict(height=max(220, 34 * len(table)), margin=dict(l=10, r=10, t=10, b=10),
                                xaxis=_titled("normalised HV (bars: 95 % interval)",
                                              range=[0, float(maximum or value.max() or 1.0) * 1.02])))


def controllability_figure(frontier: pd.DataFrame, labels: dict[str, str], positions: dict[str, np.ndarray]) -> go.Figure:
    """UA (solid) and retain accuracy (dotted) against each method's knob mapped to [0, 1]: a smooth
    rise is a knob that steers; a step or a flat line is one that jumps or saturates."""
    layout = _side_by_side(("unlearning accuracy UA (%)", "retain accuracy (%)"))
    for axis in ("xaxis", "xaxis2"):
        layout[axis].update(_titled("knob position (0 = low end of the grid, 1 = high end)", range=[-0.03, 1.03]))
    layout.update(height=380, margin=dict(l=10, r=10, t=40, b=10))
    colours = method_colours(list(labels))
    by_method = method_rows(frontier)
    columns = {name: frontier[name].to_numpy() for name in ("value", "ua", "retain_acc")}
    data = []
    for name, label in labels.items():
        rows = by_method.get(name, np.zeros(0, dtype=int))
        if not len(rows):
            continue
        for axes, metric in ((("x", "y"), "ua"), (("x2", "y2"), "retain_acc")):
            data.append(dict(
                type="scatter", x=np.asarray(positions[name]), y=columns[metric][rows], xaxis=axes[0], yaxis=axes[1],
                mode="lines+markers", name=label, legendgroup=name, showlegend=metric == "ua",
                line=dict(color=colours[name]), marker=dict(size=5), customdata=columns["value"][rows],
                hovertemplate=f"{label}<br>knob %{{customdata:.4g}}<br>{metric} %{{y:.1f}}<extra></extra>"))
    return _figure(data, layout)


@functools.cache
def _panels(titles: tuple[str, ...]) -> dict:
    from plotly.subplots import make_subplots

    layout = make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.08).layout
    return {key: value for key, value in layout.to_plotly_json().items() if key != "template"}


def _side_by_side(titles: tuple[str, ...]) -> dict:
    """The layout of plots side by side (their axes' domains and titles), as plotly's make_subplots lays it out: a
    copy, for the caller to add to."""
    return copy.deepcopy(_panels(titles))


CLASS_COLOURS = ["#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
                 "#dbdb8d", "#9edae5"]
POINT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]


def regions_figure(regions: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float],
                   samples: dict, title: str, num_classes: int, max_points: int = 600) -> go.Figure:
    """Predicted class over the plane (pale) with the training samples on top; forget samples are crosses."""
    # A stepped colour scale: class k fills the band [k, k + 1] / num_classes, one flat colour per class.
    scale = [[(k + edge) / num_classes, CLASS_COLOURS[k]] for k in range(num_classes) for edge in (0, 1)]
    fig = go.Figure(go.Heatmap(
        z=regions, x=np.linspace(*x_range, regions.shape[1]), y=np.linspace(*y_range, regions.shape[0]),
        zmin=-0.5, zmax=num_classes - 0.5, colorscale=scale, showscale=False, hoverinfo="skip"))
    step = max(1, len(samples["y"]) // max_points)
    x, labels, forget = samples["x"][::step], samples["y"][::step], samples["forget"][::step]
    for is_forget, symbol, name in ((False, "circle", "retain samples"), (True, "x", "forget samples")):
        chosen = forget == is_forget
        fig.add_trace(go.Scatter(
            x=x[chosen, 0], y=x[chosen, 1], mode="markers", name=name, showlegend=False,
            marker=dict(symbol=symbol, size=6 if is_forget else 4, line=dict(width=0.5, color="#333"),
                        color=[POINT_COLOURS[k] for k in labels[chosen]]),
            hovertemplate=f"{name}<br>class %{{text}}<extra></extra>", text=[str(k) for k in labels[chosen]]))
    fig.update_layout(title=dict(text=title, x=0.5, font=dict(size=14)), height=330,
                      margin=dict(l=5, r=5, t=36, b=5), xaxis=dict(visible=False, range=list(x_range)),
                      yaxis=dict(visible=False, range=list(y_range), scaleanchor="x"))
    return fig


def _unit2(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


def pivot_figure(plane: dict, intensity: float, sweep: list[tuple[float, list[float]]]) -> go.Figure:
    """One step in the plane of its two gradients, every vector drawn at unit length: g_r and g_f, the edges
    u_r (⟂ g_f) and u_f (⟂ g_r) of the dual cone (shaded), and CUP's direction for every intensity of
    `sweep` (faint) with the chosen one bold. Descending means moving against a gradient, so the cone
    holds the directions d with ⟨d, g_r⟩ ≥ 0 and ⟨d, g_f⟩ ≥ 0, the optimiser stepping along −d."""
    g_r, g_f = np.asarray(plane["g_retain"], float), np.asarray(plane["g_forget"], float)
    u_r = _unit2(g_r - (g_r @ g_f) / max(g_f @ g_f, 1e-300) * g_f)
    u_f = _unit2(g_f - (g_f @ g_r) / max(g_r @ g_r, 1e-300) * g_r)
    arc = np.array([_unit2(d) for _, d in sweep])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.r_[0, arc[:, 0], 0], y=np.r_[0, arc[:, 1], 0], fill="toself", mode="lines",
                             fillcolor="rgba(44,160,44,0.12)", line=dict(width=0), name="dual cone", hoverinfo="skip"))
    for value, d in sweep:
        unit = _unit2(d)
        fig.add_trace(go.Scatter(x=[0, unit[0]], y=[0, unit[1]], mode="lines", showlegend=False, hoverinfo="skip",
                                 line=dict(color="rgba(255,127,14,0.25)", width=1)))
    vectors = [("g_r (retain gradient)", _unit2(g_r), "#1f77b4", "solid"), ("g_f (forget gradient)", _unit2(g_f), "#d62728", "solid"),
               ("u_r: keeps the forget loss", u_r, "#1f77b4", "dot"), ("u_f: keeps the retain loss", u_f, "#d62728", "dot")]
    chosen = _unit2(min(sweep, key=lambda item: abs(item[0] - intensity))[1])
    vectors.append((f"d at γ = {intensity:g}", chosen, "#ff7f0e", "solid"))
    for name, vector, colour, dash in vectors:
        fig.add_trace(go.Scatter(x=[0, vector[0]], y=[0, vector[1]], mode="lines+markers", name=name,
                                 line=dict(color=colour, width=4 if name.startswith("d ") else 2.5, dash=dash),
                                 marker=dict(size=[0, 9], symbol="circle"), hoverinfo="name"))
    fig.update_layout(height=420, margin=dict(l=5, r=5, t=10, b=5), legend=dict(x=1.02, y=1),
                      xaxis=dict(range=[-1.15, 1.15], zeroline=True, showticklabels=False),
                      yaxis=dict(range=[-1.15, 1.15], zeroline=True, showticklabels=False, scaleanchor="x"))
    return fig


def losses_figure(runs: dict[float, list[dict]]) -> go.Figure:
    """Forget loss (−CE on the forget batch, lower = more forgotten) and retain loss per step, one line per γ."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("forget loss (−CE, minimised)", "retain loss (CE)"))
    colours = {value: f"rgba({int(68 + 180 * value)}, {int(1 + 150 * value)}, {int(84 + 50 * (1 - value))}, 1)"
               for value in runs}
    for value, steps in runs.items():
        xs = [s["step"] for s in steps]
        for column, name in ((1, "forget_loss"), (2, "retain_loss")):
            fig.add_trace(go.Scatter(x=xs, y=[s[name] for s in steps], mode="lines", name=f"γ = {value:g}",
                                     legendgroup=str(value), showlegend=column == 1,
                                     line=dict(color=colours[value], width=2)), row=1, col=column)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def retain_change_figure(steps: list[dict], path: list[dict], title: str) -> go.Figure:
    """Per step of one run: the change of the retain loss the step caused (bars), its first-order prediction for
    the step taken (line) and for a plain step along the method's direction (dotted), with retain accuracy after
    each step on a second axis."""
    from plotly.subplots import make_subplots

    xs = [s["step"] + 1 for s in steps]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=xs, y=[s["retain_loss_change"] for s in steps], name="change caused",
                         marker_color="rgba(31,119,180,0.75)"))
    fig.add_trace(go.Scatter(x=xs, y=[s["retain_change_first_order"] for s in steps], mode="lines+markers",
                             name="first order, step taken ⟨g_r, Δθ⟩", line=dict(color="#ff7f0e", width=2)))
    fig.add_trace(go.Scatter(x=xs, y=[s["retain_change_along_direction"] for s in steps], mode="lines",
                             name="first order along d, −lr·⟨g_r, d⟩", line=dict(color="#2ca02c", width=2, dash="dot")))
    fig.add_trace(go.Scatter(x=xs, y=[p["retain_acc"] for p in path[1:]], mode="lines", name="retain acc after (%)",
                             line=dict(color="rgba(120,120,120,0.7)", width=1.5, dash="dash")), secondary_y=True)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="change of the retain loss", secondary_y=False, zeroline=True)
    fig.update_yaxes(title_text="retain acc (%)", secondary_y=True, range=[0, 101], showgrid=False, tickmode="array",
                     tickvals=[0, 25, 50, 75, 100])
    fig.update_layout(title=dict(text=title, x=0, font=dict(size=14)), height=340, barmode="overlay",
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def path_animation(path: list[dict], references: pd.DataFrame, intensity: float) -> go.Figure:
    """The run's path in (retain accuracy, UA) space, animated step by step (Plotly frames)."""
    xs = [p["retain_acc"] for p in path]
    ys = [p["ua"] for p in path]
    fig = go.Figure(
        data=[go.Scatter(x=xs[:1], y=ys[:1], mode="lines+markers", name=f"γ = {intensity:g}",
                         line=dict(color="#ff7f0e"), marker=dict(size=6)),
              go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(255,127,14,0.2)", dash="dot"),
                         showlegend=False, hoverinfo="skip")],
        frames=[go.Frame(data=[go.Scatter(x=xs[:k + 1], y=ys[:k + 1])], traces=[0], name=str(k))
                for k in range(len(xs))])
    for role, style in REFERENCE_STYLE.items():
        if role in references.index:
            row = references.loc[role]
            fig.add_trace(go.Scatter(x=[row["retain_acc"]], y=[row["ua"]], mode="markers", name=style["label"],
                                     marker=dict(symbol=style["symbol"], size=14, color=style["color"])))
    low = min(xs + [float(references["retain_acc"].min())] if len(references) else xs)
    fig.update_layout(
        height=360, margin=dict(l=10, r=10, t=10, b=10), xaxis=dict(title="retain accuracy (%)", range=[low - 2, 101]),
        yaxis=dict(title="unlearning accuracy UA (%)", range=[-5, 105]),
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.25, xanchor="left", buttons=[
            dict(label="▶ Play", method="animate", args=[None, dict(frame=dict(duration=180, redraw=False),
                                                                      fromcurrent=False, transition=dict(duration=0))]),
            dict(label="❚❚ Pause", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0))])])],
        sliders=[dict(steps=[dict(method="animate", label=str(k), args=[[str(k)], dict(mode="immediate",
                       frame=dict(duration=0, redraw=False))]) for k in range(len(xs))],
                      currentvalue=dict(prefix="step "), x=0.25, len=0.75, y=-0.18)])
    return fig


# --- A vs B: explain a point (cup_core.explain's arrays in, figures out) ---------------------------------------

PAIR_COLOURS = {"A": "#1f77b4", "B": "#ff7f0e"}
# Which model still classifies a forget sample correctly: both, only A, only B, neither (forgotten by both).
AGREEMENT_COLOURS = {"both": "#7f7f7f", "only A": PAIR_COLOURS["A"], "only B": PAIR_COLOURS["B"], "neither": "#2ca02c"}


def _panel_title(title: str, subtitle: str = "") -> dict:
    """A half-width panel's title: left-aligned (a centred one is clipped in a narrow column), details below."""
    return dict(text=title, subtitle=dict(text=subtitle, font=dict(size=11, color="#666")), x=0, xanchor="left",
                font=dict(size=14))


def pair_per_class_figure(per_class: dict[str, list[float]], forget_class: int | None) -> go.Figure:
    """Test accuracy per class of each pinned model (label -> accuracies), side by side; the forgotten class shaded."""
    fig = go.Figure()
    for index, (label, values) in enumerate(per_class.items()):
        fig.add_trace(go.Bar(x=[str(k) for k in range(len(values))], y=[_none_if_nan(float(v)) for v in values],
                             name=label, marker_color=list(PAIR_COLOURS.values())[index % 2],
                             hovertemplate=f"{label}<br>class %{{x}}: %{{y:.1f}}%<extra></extra>"))
    if forget_class is not None:
        fig.add_vrect(x0=forget_class - 0.5, x1=forget_class + 0.5, fillcolor="rgba(120,120,120,0.15)",
                      line_width=0, annotation_text="forgotten", annotation_position="top")
    fig.update_layout(barmode="group", height=300, yaxis=dict(title="test accuracy (%)", range=[0, 105]),
                      xaxis=dict(title="class", type="category"), margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def confusion_figure(matrix: np.ndarray, title: str, forget_class: int | None = None) -> go.Figure:
    """The test set's confusion matrix: rows the true class, columns the predicted one, coloured by the share of
    the row (%), each cell labelled with its count."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(100.0 * matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    classes = [str(k) for k in range(len(matrix))]
    fig = go.Figure(go.Heatmap(
        z=share, x=classes, y=classes, zmin=0, zmax=100, colorscale="Blues", text=matrix, texttemplate="%{text}",
        colorbar=dict(title=dict(text="% of row"), thickness=12),
        hovertemplate="true %{y} → predicted %{x}: %{text} samples (%{z:.1f}% of class %{y})<extra></extra>"))
    if forget_class is not None:
        fig.add_shape(type="rect", x0=-0.5, x1=len(matrix) - 0.5, y0=forget_class - 0.5, y1=forget_class + 0.5,
                      line=dict(color="#d62728", width=2))
    fig.update_layout(title=_panel_title(title, "test set: rows true class, columns predicted"), height=380,
                      margin=dict(l=10, r=10, t=60, b=10), xaxis=dict(title="predicted class", type="category"),
                      yaxis=dict(title="true class", autorange="reversed", type="category", scaleanchor="x"))
    return fig


def agreement(correct_a: np.ndarray, correct_b: np.ndarray) -> np.ndarray:
    """(N,) each forget sample's AGREEMENT_COLOURS key."""
    first, second = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    return np.where(first & second, "both", np.where(first, "only A", np.where(second, "only B", "neither")))


def _mosaic(images: np.ndarray, columns: int, gap: int = 2) -> tuple[np.ndarray, int, int]:
    """(H', W', 3) uint8 grid of (N, C, H, W) images scaled to 0 … 255 (white gaps), with the cell height and width."""
    n, channels, height, width = images.shape
    low, high = float(images.min()), float(images.max())
    scaled = (images - low) / (high - low) if high > low else np.zeros_like(images)
    rgb = np.repeat(scaled, 3, axis=1) if channels == 1 else scaled[:, :3]
    rows = math.ceil(n / columns)
    cell_h, cell_w = height + gap, width + gap
    canvas = np.ones((rows * cell_h + gap, columns * cell_w + gap, 3))
    for index in range(n):
        row, column = divmod(index, columns)
        top, left = gap + row * cell_h, gap + column * cell_w
        canvas[top:top + height, left:left + width] = 1.0 - rgb[index].transpose(1, 2, 0) if channels == 1 else \
            rgb[index].transpose(1, 2, 0)
    return (canvas * 255).round().astype(np.uint8), cell_h, cell_w


def forget_samples_figure(samples: dict, correct_a: np.ndarray, correct_b: np.ndarray,
                          labels: tuple[str, str] = ("A", "B"), columns: int = 20) -> go.Figure:
    """The forget samples, marked by which pinned model still classifies each correctly (both, only A, only B,
    neither). 2-D inputs are drawn as points over the retained samples (grey); images as a grid, each framed in
    its colour (digits: dark strokes on white)."""
    n = min(len(samples["x"]), len(correct_a), len(correct_b))
    x, status = samples["x"][:n], agreement(correct_a[:n], correct_b[:n])
    names = {"both": f"both {labels[0]} and {labels[1]} still right", "only A": f"only {labels[0]} still right",
             "only B": f"only {labels[1]} still right", "neither": "forgotten by both"}
    fig = go.Figure()
    if x.ndim == 2:
        retain = samples.get("retain_x", np.zeros((0, 2)))
        if len(retain):
            fig.add_trace(go.Scatter(x=retain[:, 0], y=retain[:, 1], mode="markers", name="retained samples",
                                     marker=dict(size=3, color="rgba(150,150,150,0.35)"), hoverinfo="skip"))
        for key, colour in AGREEMENT_COLOURS.items():
            chosen = status == key
            fig.add_trace(go.Scatter(x=x[chosen, 0], y=x[chosen, 1], mode="markers", name=f"{names[key]} ({chosen.sum()})",
                                     marker=dict(size=7, color=colour, line=dict(width=0.5, color="#222")),
                                     hovertemplate=f"{names[key]}<br>(%{{x:.2f}}, %{{y:.2f}})<extra></extra>"))
        fig.update_layout(height=420, yaxis=dict(scaleanchor="x"))
    else:
        image, cell_h, cell_w = _mosaic(x, columns)
        fig.add_trace(go.Image(z=image, hoverinfo="skip"))
        for key, colour in AGREEMENT_COLOURS.items():  # a frame around each sample, one legend entry per status
            chosen = np.flatnonzero(status == key)
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{names[key]} ({len(chosen)})",
                                     marker=dict(symbol="square-open", size=12, color=colour, line=dict(width=2))))
            for index in chosen:
                row, column = divmod(int(index), columns)
                fig.add_shape(type="rect", x0=column * cell_w + 0.5, x1=(column + 1) * cell_w + 1.5,
                              y0=row * cell_h + 0.5, y1=(row + 1) * cell_h + 1.5, line=dict(color=colour, width=2))
        rows = math.ceil(n / columns)
        fig.update_layout(height=min(900, 70 + rows * 36), xaxis=dict(visible=False),
                          yaxis=dict(visible=False, scaleanchor="x"))
    fig.update_layout(margin=dict(l=5, r=5, t=10, b=5), plot_bgcolor="white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0))
    return fig


MIA_COLOURS = {"members (retain)": "#1f77b4", "non-members (test)": "#ff7f0e", "forget set": "#d62728"}


def mia_figure(result: dict, title: str, bins: int = 40) -> go.Figure:
    """The membership attack's one feature, the true-class confidence, for members (retain), non-members (test)
    and the forget set, as densities; shaded where the SVC attacker (fit on members against non-members) says
    "non-member". Efficacy is the forget set's share in the shade."""
    fig = go.Figure()
    edges = np.linspace(0.0, 1.0, bins + 1)
    for (name, colour), key in zip(MIA_COLOURS.items(), ("mia_members", "mia_non_members", "mia_forget")):
        values = np.asarray(result[key], dtype=float)
        values = values[np.isfinite(values)]
        counts, _ = np.histogram(values, bins=edges)
        density = counts / max(len(values), 1) * 100
        fig.add_trace(go.Scatter(x=np.repeat(edges, 2)[1:-1], y=np.repeat(density, 2), mode="lines", name=name,
                                 line=dict(color=colour, width=2, dash="dot" if key == "mia_forget" else "solid"),
                                 fill="tozeroy" if key == "mia_forget" else None,
                                 fillcolor="rgba(214,39,40,0.12)" if key == "mia_forget" else None,
                                 hovertemplate=f"{name}<br>confidence %{{x:.3f}}: %{{y:.1f}}% of samples<extra></extra>"))
    grid, verdict = np.asarray(result["mia_grid"], float), np.asarray(result["mia_verdict"])
    for start, stop in _runs(verdict == 0):
        fig.add_vrect(x0=grid[start], x1=grid[stop - 1], fillcolor="rgba(120,120,120,0.13)", line_width=0, layer="below")
    efficacy = result["mia_efficacy"]
    fig.update_layout(
        title=_panel_title(title, "MIA efficacy " + ("n/a" if efficacy is None or math.isnan(efficacy) else
                                                      f"{efficacy:.1f}%") + " of the forget set called non-member"),
        height=350, margin=dict(l=10, r=10, t=60, b=10), yaxis=dict(title="% of the set", rangemode="tozero"),
        xaxis=dict(title="confidence in the true class (shaded: the attacker says non-member)", range=[0, 1]),
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    return fig


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in `mask`."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]]).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return list(zip(changes[::2].tolist(), changes[1::2].tolist()))


def embedding_figure(result: dict, title: str, forget_class: int | None = None) -> go.Figure:
    """The penultimate layer's features projected to 2-D (PCA or t-SNE), test samples coloured by class, forget
    samples as crosses in their class's colour."""
    coords, labels = np.asarray(result["embedding"]), np.asarray(result["embedding_labels"])
    forget = np.asarray(result["embedding_forget"], bool)
    fig = go.Figure()
    for k in range(int(result["num_classes"])):
        for is_forget in (False, True):
            chosen = (labels == k) & (forget == is_forget)
            if not chosen.any():
                continue
            name = f"forget set, class {k}" if is_forget else f"class {k}"
            fig.add_trace(go.Scatter(
                x=coords[chosen, 0], y=coords[chosen, 1], mode="markers", name=name, legendgroup=str(k),
                showlegend=not is_forget or not ((labels == k) & ~forget).any(),
                marker=dict(color=POINT_COLOURS[k % len(POINT_COLOURS)], size=8 if is_forget else 5,
                            symbol="x-thin-open" if is_forget else "circle", opacity=1.0 if is_forget else 0.6,
                            line=dict(width=1.5 if is_forget else 0, color=POINT_COLOURS[k % len(POINT_COLOURS)])),
                hovertemplate=f"{name}<extra></extra>"))
    projection = "t-SNE" if result.get("projection") == "tsne" else "PCA"
    fig.update_layout(title=_panel_title(title, f"{projection} of the penultimate layer's features"),
                      height=470, margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(title="test set · × forget set", orientation="h", yanchor="top", y=-0.2, x=0),
                      xaxis=dict(title=f"{projection} 1", zeroline=False), yaxis=dict(title=f"{projection} 2", zeroline=False))
    return fig


def paper_figure(fig: go.Figure, width: int = 760, height: int | None = None) -> go.Figure:
    """A copy of `fig` for a paper: white background, a fixed size, no interaction chrome (static export)."""
    out = go.Figure(fig)
    out.update_layout(template="plotly_white", width=width, height=height or fig.layout.height or 450,
                      font=dict(family="Helvetica, Arial, sans-serif", size=12), dragmode=False)
    return out
