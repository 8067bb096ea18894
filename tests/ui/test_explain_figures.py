"""The A vs B page's figure builders, the Compare hover's run settings and the print layout, without Streamlit."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ui import figures


def test_confusion_is_coloured_by_row_share_and_labelled_with_counts():
    matrix = np.array([[8, 2, 0], [0, 0, 0], [1, 1, 2]])
    fig = figures.confusion_figure(matrix, "A: test", forget_class=0)
    heat = fig.data[0]
    np.testing.assert_allclose(np.asarray(heat.z), [[80, 20, 0], [0, 0, 0], [25, 25, 50]])  # an empty row stays 0
    np.testing.assert_array_equal(np.asarray(heat.text), matrix)
    [outline] = fig.layout.shapes
    assert (outline.y0, outline.y1) == (-0.5, 0.5)  # the forgotten class's row


def test_agreement_names_which_model_still_gets_each_sample_right():
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    assert list(figures.agreement(a, b)) == ["both", "only A", "only B", "neither"]


def test_forget_images_are_framed_by_agreement_and_counted_in_the_legend():
    images = np.random.default_rng(0).random((23, 1, 8, 8))
    a = np.arange(23) % 2 == 0
    b = np.arange(23) % 3 == 0
    fig = figures.forget_samples_figure({"x": images, "y": np.zeros(23, int)}, a, b, columns=10)
    assert isinstance(fig.data[0], go.Image) and fig.data[0].z.shape[:2] == (3 * 10 + 2, 10 * 10 + 2)
    assert len(fig.layout.shapes) == 23
    counts = {trace.name.split(" (")[0]: int(re.search(r"\((\d+)\)$", trace.name).group(1)) for trace in fig.data[1:]}
    assert counts == {"both A and B still right": 4, "only A still right": 8, "only B still right": 4,
                      "forgotten by both": 7}
    frames = {(shape.x0, shape.y0): shape.line.color for shape in fig.layout.shapes}
    assert frames[0.5, 0.5] == figures.AGREEMENT_COLOURS["both"]  # sample 0: right by both
    assert frames[10.5, 0.5] == figures.AGREEMENT_COLOURS["neither"]  # sample 1: by neither (cells are 10 wide)


def test_forget_points_of_a_2d_set_are_drawn_over_the_retained_ones():
    points = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    fig = figures.forget_samples_figure({"x": points, "y": np.zeros(3, int), "retain_x": np.zeros((5, 2))},
                                        np.array([True, False, False]), np.array([True, True, False]))
    by_name = {trace.name.split(" (")[0]: trace for trace in fig.data}
    assert len(by_name["retained samples"].x) == 5
    assert list(by_name["only B still right"].x) == [2.0] and list(by_name["forgotten by both"].y) == [5.0]


def _explained(verdict: np.ndarray) -> dict:
    rng = np.random.default_rng(1)
    return {"mia_members": rng.uniform(0.9, 1.0, 50), "mia_non_members": rng.uniform(0.5, 1.0, 50),
            "mia_forget": np.array([0.1, 0.2, np.nan]), "mia_grid": np.linspace(0, 1, len(verdict)),
            "mia_verdict": verdict, "mia_efficacy": 66.7, "num_classes": 3,
            "embedding": rng.normal(size=(6, 2)), "embedding_labels": np.array([0, 0, 1, 2, 0, 0]),
            "embedding_forget": np.array([False, False, False, False, True, True]), "projection": "pca"}


def test_the_membership_figure_shades_where_the_attacker_says_non_member():
    verdict = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1])  # non-member at low and middle confidence
    fig = figures.mia_figure(_explained(verdict), "A")
    assert [trace.name for trace in fig.data] == list(figures.MIA_COLOURS)
    shades = [(shape.x0, shape.x1) for shape in fig.layout.shapes]
    assert shades == [(0.0, pytest.approx(0.1)), (pytest.approx(0.5), pytest.approx(0.7))]
    assert "66.7%" in fig.layout.title.subtitle.text
    forget = fig.data[2]
    assert max(forget.y) == 50.0  # two finite forget samples of two, one per bin: 50 % each


def test_the_embedding_draws_each_class_and_marks_the_forget_set():
    fig = figures.embedding_figure(_explained(np.zeros(3, int)), "B", forget_class=0)
    names = [trace.name for trace in fig.data]
    assert names == ["class 0", "forget set, class 0", "class 1", "class 2"]
    forget = fig.data[1]
    assert len(forget.x) == 2 and forget.marker.symbol == "x-thin-open" and not forget.showlegend
    assert "PCA" in fig.layout.title.subtitle.text


def test_the_compare_hover_shows_every_metric_and_the_runs_settings():
    frontier = pd.DataFrame({"method": ["ga"], "knob": ["learning rate"], "value": [3e-4], "retain_acc": [90.0],
                             "ua": [80.0], "test_acc": [88.0], "mia_efficacy": [40.0], "avg_gap": [5.0],
                             "hv_contribution": [0.01], "forget_acc": [20.0], "forget_test_acc": [15.0],
                             "lr": [3e-4], "epochs": [10], "seed_list": ["0, 1"], "objective_x": [90.0],
                             "objective_y": [80.0], "objective_x_std": [0.0], "objective_y_std": [0.0],
                             "seeds": [2], "non_dominated": [True], "diverged": [0.0]})
    references = pd.DataFrame({"objective_x": [], "objective_y": []}, dtype=float)
    fig = figures.compare_figure(frontier, references, labels={"ga": "GA"}, axis_titles=("x", "y"))
    points = next(trace for trace in fig.data if trace.customdata is not None)
    used = {int(k) for k in re.findall(r"customdata\[(\d+)\]", points.hovertemplate)}
    assert used == set(range(1, len(figures.COMPARE_HOVER_COLUMNS)))  # [0] is the method, named by the label
    row = list(points.customdata[0])
    assert row[0] == "ga" and row[2] == 3e-4  # what the click handler reads
    assert row[figures.COMPARE_HOVER_COLUMNS.index("lr")] == 3e-4
    assert row[figures.COMPARE_HOVER_COLUMNS.index("seed_list")] == "0, 1"
    for words in ("forget acc", "lr", "epochs", "seeds"):
        assert words in points.hovertemplate


def test_a_paper_figure_is_white_and_sized_without_touching_the_original():
    original = go.Figure(go.Scatter(x=[1], y=[2]), layout=dict(height=300))
    printed = figures.paper_figure(original, width=500)
    assert printed.layout.template.layout.paper_bgcolor in ("white", "#fff", "#ffffff", "rgb(255,255,255)")
    assert (printed.layout.width, printed.layout.height) == (500, 300)
    assert original.layout.width is None
