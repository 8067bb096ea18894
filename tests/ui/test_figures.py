"""The Plotly builders, without Streamlit: the right traces, points and selection."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from ui import figures


def _frontier() -> pd.DataFrame:
    values = np.linspace(0, 1, 5)
    table = pd.DataFrame({
        "value": values, "retain_acc": [100, 99, 98, 97, math.nan], "ua": [0, 30, 60, 90, math.nan],
        "forget_acc": [100, 70, 40, 10, math.nan], "test_acc": [97] * 5, "mia_efficacy": [5, 30, 60, 95, math.nan],
        "avg_gap": [50, 35, 20, 5, math.nan], "non_dominated": [True, True, True, True, False],
    })
    return table.assign(objective_x=table["retain_acc"], objective_y=table["ua"])


def _references() -> pd.DataFrame:
    refs = pd.DataFrame({"role": ["original", "oracle"], "retain_acc": [100, 99.5], "ua": [0, 100],
                         "test_acc": [97, 96.5], "forget_acc": [100, 0]}).set_index("role", drop=False)
    return refs.assign(objective_x=refs["retain_acc"], objective_y=refs["ua"])


def _trace(fig, name):
    return next(trace for trace in fig.data if trace.name == name)


def test_frontier_has_points_front_references_and_selection():
    fig = figures.frontier_figure(_frontier(), _references(), knob="intensity",
                                  axis_titles=("retain", "UA"), selected_value=0.5)
    points = _trace(fig, figures.POINTS_TRACE)
    assert len(points.x) == 4  # the diverged (NaN) row is not drawn as a point
    assert [row[0] for row in points.customdata] == [0.0, 0.25, 0.5, 0.75]  # customdata[0] is the knob value
    front = _trace(fig, "non-dominated front")
    assert front.x[0] == 97 and front.y[0] == 90  # the staircase starts at the highest-UA point
    assert _trace(fig, "Original").x == (100.0,) and _trace(fig, "Retrained oracle").y == (100.0,)
    selected = _trace(fig, "selected")
    assert selected.x == (98.0,) and selected.y == (60.0,)
    assert fig.layout.xaxis.title.text == "retain" and fig.layout.clickmode == "event+select"


def test_frontier_without_selection_or_references_still_draws():
    fig = figures.frontier_figure(_frontier(), _references().iloc[0:0], knob="intensity", axis_titles=("a", "b"))
    assert [trace.name for trace in fig.data] == ["non-dominated front", figures.POINTS_TRACE]


def test_per_class_bars_group_three_models_and_mark_the_forgotten_class():
    fig = figures.per_class_figure([100, 90, 80], [0, 91, 79], [0, 92, 81], forget_class=0, selected_label="CUP γ=1")
    assert [trace.name for trace in fig.data] == ["Original", "CUP γ=1", "Retrained oracle"]
    assert list(fig.data[1].y) == [0, 91, 79]
    assert fig.layout.shapes[0].x0 == -0.5 and fig.layout.shapes[0].x1 == 0.5


def test_diverged_points_are_drawn_as_crosses_not_hidden():
    frontier = _frontier().assign(diverged=[0.0, 0.0, 0.0, 0.5, 0.0])
    fig = figures.frontier_figure(frontier, _references(), knob="intensity", axis_titles=("a", "b"))
    assert list(_trace(fig, figures.POINTS_TRACE).marker.symbol) == ["circle", "circle", "circle", "x"]


def test_learn_figures_regions_pivot_losses_and_animated_path():
    regions = np.zeros((10, 10), dtype=int)
    regions[:, 5:] = 2
    samples = {"x": np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]), "y": np.array([0, 2, 2]),
               "forget": np.array([False, True, True])}
    fig = figures.regions_figure(regions, (-1.0, 3.0), (-1.0, 3.0), samples, "Original", num_classes=5)
    assert fig.data[0].type == "heatmap" and fig.data[0].zmin == -0.5 and fig.data[0].zmax == 4.5
    assert [trace.marker.symbol for trace in fig.data[1:]] == ["circle", "x"] and len(fig.data[2].x) == 2

    plane = {"g_retain": [1.0, 0.0], "g_forget": [-1.0, 1.0], "direction": [0.0, 1.0]}
    sweep = [(0.0, [0.0, 1.0]), (0.5, [0.5, 1.0]), (1.0, [1.0, 1.0])]
    fig = figures.pivot_figure(plane, 0.5, sweep)
    chosen = next(trace for trace in fig.data if trace.name == "d at γ = 0.5")
    assert chosen.x[1] == pytest.approx(0.5 / math.hypot(0.5, 1.0))
    u_r = next(trace for trace in fig.data if (trace.name or "").startswith("u_r"))
    assert (u_r.x[1], u_r.y[1]) == pytest.approx((math.sqrt(0.5), math.sqrt(0.5)))  # ⟂ g_f = (−1, 1)

    steps = [{"step": k, "forget_loss": -k, "retain_loss": 0.1} for k in range(3)]
    assert len(figures.losses_figure({0.0: steps, 1.0: steps}).data) == 4
    changes = [{"step": k, "retain_loss_change": 0.1 * k, "retain_change_first_order": 0.05 * k,
                "retain_change_along_direction": 0.0} for k in range(3)]
    fig = figures.retain_change_figure(changes, [{"retain_acc": 99.0 - k} for k in range(4)], "γ = 1, Adam")
    assert [trace.type for trace in fig.data] == ["bar", "scatter", "scatter", "scatter"]
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == pytest.approx([0.0, 0.1, 0.2])
    assert list(fig.data[2].y) == [0.0, 0.0, 0.0] and list(fig.data[3].y) == [98.0, 97.0, 96.0]  # after each step
    path = [{"retain_acc": 99.0, "ua": 0.0}, {"retain_acc": 98.0, "ua": 50.0}, {"retain_acc": 98.0, "ua": 100.0}]
    fig = figures.path_animation(path, _references(), 1.0)
    assert len(fig.frames) == 3 and list(fig.frames[-1].data[0].y) == [0.0, 50.0, 100.0]


def test_every_method_has_its_own_colour_when_all_are_shown():
    from cup_core import METHODS

    colours = figures.method_colours(list(METHODS))
    assert len(set(colours.values())) == len(METHODS)


def _compare_frontier() -> pd.DataFrame:
    """Two methods over _frontier's points, the second seed-averaged over two seeds with one diverged run."""
    one = _frontier().assign(method="cup", knob="intensity", seeds=1, objective_x_std=0.0, objective_y_std=0.0,
                             diverged=0.0)
    two = one.assign(method="ga", knob="learning rate", value=one["value"] * 1e-3, seeds=2, objective_x_std=0.5,
                     objective_y_std=1.5, diverged=[0.0, 0.0, 0.5, 0.0, 0.0], ua=one["ua"] - 5)
    return pd.concat([one, two], ignore_index=True).assign(objective_y=lambda table: table["ua"])


def test_compare_frames_the_fronts_with_room_for_a_ring_on_a_point_at_either_end_of_an_axis():
    """The fronts' frame: a point at UA 100 (the oracle's, here) or the original at UA 0 keeps its whole marker and
    the selection's ring (radius 12 px, its line 3 px) inside the plot's height, which clipped them at 100 and 0
    before (the x axis is padded alike; its width is the page's)."""
    fig = figures.compare_figure(_compare_frontier(), _references(), labels={"cup": "CUP", "ga": "GA"},
                                 axis_titles=("retain", "UA"), selected=("cup", 0.75))
    layout = fig.layout
    plot_px = layout.height - layout.margin.t - layout.margin.b - 60  # less the x axis' ticks and title
    bottom, top = layout.yaxis.range
    room = 13.5 * (top - bottom) / plot_px  # the ring's outer radius, in UA
    assert bottom <= 0 - room and top >= 100 + room


def _hypervolume_table() -> pd.DataFrame:
    return pd.DataFrame({"method": ["cup", "ga"], "label": ["CUP", "GA"], "colour": ["#1f77b4", "#ff7f0e"],
                         "normalised": [1.1, 0.7], "normalised_low": [1.0, math.nan],
                         "normalised_high": [1.15, math.nan], "vs CUP": ["—", "loss"]})


@pytest.mark.parametrize("build", [
    lambda: figures.frontier_figure(_frontier().assign(diverged=[0.0, 0.5, 0.0, 0.0, 0.0]), _references(),
                                    knob="intensity", axis_titles=("retain", "UA"), selected_value=0.5),
    lambda: figures.per_class_figure([100, 90, math.nan], [0, 91, 79], [0, 92, 81], forget_class=0,
                                     selected_label="CUP γ=1"),
    lambda: figures.per_class_figure([100, 90], [95, 91], [], forget_class=None, selected_label="CUP γ=0"),
    lambda: figures.compare_figure(_compare_frontier(), _references(), labels={"cup": "CUP", "ga": "GA"},
                                   axis_titles=("retain", "UA"), selected=("ga", 0.5e-3)),
    lambda: figures.hypervolume_figure(_hypervolume_table(), maximum=1.21),
    lambda: figures.controllability_figure(_compare_frontier(), {"cup": "CUP", "ga": "GA"},
                                           {"cup": np.linspace(0, 1, 5), "ga": np.linspace(0, 1, 5)}),
], ids=["frontier", "per class", "per class, no oracle", "compare", "hypervolume", "controllability"])
def test_a_figure_written_unchecked_is_what_plotlys_validation_makes_of_it(build):
    """The builders write plotly.js's JSON without plotly.py's checks (figures._figure): Plotly's validation of the
    same figure must accept every property and change nothing that reaches the browser."""
    import json

    import plotly.graph_objects as go
    import plotly.io as pio

    fig = build()
    checked = go.Figure(fig.to_dict())  # raises on a property plotly.js does not have or a value it does not take
    assert json.loads(pio.to_json(fig, validate=False)) == json.loads(pio.to_json(checked))


@pytest.mark.slow
def test_the_per_class_bars_name_every_class(export_browser):
    """Classes are categories: as numbers, plotly.js labelled every second one of ten (rendered by kaleido)."""
    from ui import static_export

    ten = [90.0 - k for k in range(10)]
    figure = figures.per_class_figure(ten, ten, ten, forget_class=3, selected_label="CUP γ=0.5")
    svg = static_export.export_figures({"bars": figure}, formats=("svg",))["bars", "svg"].decode()
    labels = re.findall(r'<g class="xtick">.*?<text[^>]*>([^<]*)</text>', svg)
    assert labels == [str(k) for k in range(10)]
