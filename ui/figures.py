"""Pure Plotly builders: data in, go.Figure out. No Streamlit here, so they are tested directly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cup_core.pareto import staircase

POINTS_TRACE = "points"  # the name of the clickable trace; its customdata[0] is the knob value
COLORSCALE = "Viridis"
REFERENCE_STYLE = {
    "original": dict(symbol="diamond", color="#d62728", label="Original"),
    "oracle": dict(symbol="star", color="#2ca02c", label="Retrained oracle"),
}


def _hover(knob: str) -> str:
    return (f"<b>{knob} %{{customdata[0]:.3g}}</b><br>"
            "retain acc %{customdata[1]:.1f}%<br>UA %{customdata[2]:.1f}%<br>"
            "forget acc %{customdata[3]:.1f}%<br>test acc %{customdata[4]:.1f}%<br>"
            "MIA efficacy %{customdata[5]:.1f}%<br>avg gap %{customdata[6]:.2f}<extra></extra>")


HOVER_COLUMNS = ["value", "retain_acc", "ua", "forget_acc", "test_acc", "mia_efficacy", "avg_gap"]


def frontier_figure(frontier: pd.DataFrame, references: pd.DataFrame, *, knob: str, axis_titles: tuple[str, str],
                    selected_value: float | None = None) -> go.Figure:
    """One method's points in objective space, coloured by knob value, with its non-dominated staircase,
    the original and oracle as reference markers, and the selected point ringed.

    `frontier` has objective_x, objective_y, non_dominated and the HOVER_COLUMNS (report.frontier_table);
    `references` is report.reference_table: indexed by role, with the objectives and metrics.
    """
    fig = go.Figure()
    finite = frontier[np.isfinite(frontier[["objective_x", "objective_y"]]).all(axis=1)]
    xs, ys = staircase(finite[["objective_x", "objective_y"]].to_numpy())
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="non-dominated front",
                             line=dict(color="rgba(60,60,60,0.55)", dash="dash", width=1.5), hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=finite["objective_x"], y=finite["objective_y"], mode="markers", name=POINTS_TRACE,
        customdata=finite[HOVER_COLUMNS].to_numpy(), hovertemplate=_hover(knob), showlegend=False,
        marker=dict(size=np.where(finite["non_dominated"], 13, 10), color=finite["value"], colorscale=COLORSCALE,
                    cmin=float(frontier["value"].min()) if len(frontier) else 0.0,
                    cmax=float(frontier["value"].max()) if len(frontier) else 1.0,
                    line=dict(width=np.where(finite["non_dominated"], 1.5, 0.5).tolist(), color="#222"),
                    colorbar=dict(title=dict(text=knob), thickness=14)),
    ))
    for role, style in REFERENCE_STYLE.items():
        if role not in references.index:
            continue
        row = references.loc[role]
        x, y = float(row["objective_x"]), float(row["objective_y"])
        fig.add_trace(go.Scatter(
            x=[x], y=[y], mode="markers", name=style["label"],
            marker=dict(symbol=style["symbol"], size=15, color=style["color"], line=dict(width=1, color="#222")),
            hovertemplate=(f"<b>{style['label']}</b><br>retain acc {row['retain_acc']:.1f}%<br>"
                           f"UA {row['ua']:.1f}%<br>test acc {row['test_acc']:.1f}%<extra></extra>"),
        ))
    if selected_value is not None:
        chosen = finite[np.isclose(finite["value"], selected_value)]
        if len(chosen):
            fig.add_trace(go.Scatter(
                x=chosen["objective_x"], y=chosen["objective_y"], mode="markers", name="selected",
                marker=dict(size=24, color="rgba(0,0,0,0)", line=dict(width=3, color="#ff7f0e")), hoverinfo="skip"))
    fig.update_layout(
        xaxis_title=axis_titles[0], yaxis_title=axis_titles[1], height=470, margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0), clickmode="event+select", dragmode="pan",
    )
    return fig


def per_class_figure(original: list[float], selected: list[float], oracle: list[float],
                     forget_class: int | None, selected_label: str) -> go.Figure:
    """Test accuracy per class, grouped: original / selected / oracle; the forgotten class is marked."""
    classes = [str(k) for k in range(len(selected))]
    fig = go.Figure()
    for name, values, color in (("Original", original, "#d62728"), (selected_label, selected, "#ff7f0e"),
                                ("Retrained oracle", oracle, "#2ca02c")):
        if values:
            fig.add_trace(go.Bar(x=classes, y=[_none_if_nan(v) for v in values], name=name, marker_color=color,
                                 hovertemplate=f"{name}<br>class %{{x}}: %{{y:.1f}}%<extra></extra>"))
    if forget_class is not None:
        fig.add_vrect(x0=forget_class - 0.5, x1=forget_class + 0.5, fillcolor="rgba(120,120,120,0.15)",
                      line_width=0, annotation_text="forgotten", annotation_position="top")
    fig.update_layout(barmode="group", height=300, yaxis=dict(title="test accuracy (%)", range=[0, 105]),
                      xaxis_title="class", margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def _none_if_nan(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
