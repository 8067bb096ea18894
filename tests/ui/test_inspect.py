"""The A vs B page through AppTest: it renders two cached models side by side, pins come from the URL, from the
page's pickers and from Explore's "Pin as A / B", and a hostile URL falls back to the defaults."""

from __future__ import annotations

import numpy as np
import pytest

from cup_core.explain import Pin, explain
from ui import pins
from ui.services import catalogue

from ..conftest import new_app

PAGE = "pages/inspect.py"


def _inspect(**query):
    app = new_app(**query)
    app.switch_page(PAGE)
    return app.run()


def _experiment():
    return catalogue.default_experiment("digits", catalogue.default_forget("digits"))


def _metric(app, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


def test_the_page_renders_the_default_pins_side_by_side(app_cache):
    app = _inspect()
    assert not app.exception
    experiment = _experiment()
    a, b = app.selectbox(key=pins.CHOICE_KEYS["A"]).value, app.selectbox(key=pins.CHOICE_KEYS["B"]).value
    results = experiment.results()
    best = results.loc[results["avg_gap"].idxmin()]
    assert a == str(Pin.point(best["method"], best["value"], best["seed"])) and b == "oracle"
    assert app.query_params["a"] == a and app.query_params["b"] == "oracle"  # a link reopens them
    assert [s.value for s in app.subheader] == ["Test accuracy per class",
                                                "Which forget samples each model still classifies correctly",
                                                "Membership attack", "Embedding"]
    assert len(app.get("plotly_chart")) == 1 + 2 + 1 + 2 + 2
    table = app.dataframe[0].value
    assert list(table.columns) == ["forget acc", "retain acc", "test acc", "UA", "MIA efficacy", "avg gap"]
    assert table.iloc[1]["avg gap"] == 0.0  # the oracle's gap to itself


@pytest.mark.slow
def test_a_link_reopens_its_pins_and_the_counts_match_the_library(app_cache):
    app = _inspect(a="original", b="cup:1:0")
    assert not app.exception
    assert app.selectbox(key=pins.CHOICE_KEYS["A"]).value == "original"
    assert app.selectbox(key=pins.CHOICE_KEYS["B"]).value == "cup:1:0"
    experiment = _experiment()
    original, forgotten = (explain(experiment, Pin.parse(text)) for text in ("original", "cup:1:0"))
    both = int((original["forget_correct"] & forgotten["forget_correct"]).sum())
    only_a = int((original["forget_correct"] & ~forgotten["forget_correct"]).sum())
    total = len(original["forget_correct"])
    assert _metric(app, "both still right") == f"{both} / {total}"
    assert _metric(app, "only A still right") == f"{only_a} / {total}"
    assert only_a > 0  # the original still knows the forget set; γ = 1 forgot it
    per_class = app.get("plotly_chart")[0].proto.spec
    assert "Original" in per_class and "CUP, intensity 1, seed 0" in per_class


@pytest.mark.parametrize("hostile", ["cup:0.33:0", "cup:0.5:9", "../../etc:1:0", "original\n", "x" * 500])
@pytest.mark.slow
def test_a_pin_the_experiment_lacks_falls_back_to_the_default(app_cache, hostile):
    default = _inspect().selectbox(key=pins.CHOICE_KEYS["A"]).value
    app = _inspect(a=hostile)
    assert not app.exception
    assert app.selectbox(key=pins.CHOICE_KEYS["A"]).value == default


@pytest.mark.slow
def test_choosing_a_model_updates_the_url(app_cache):
    app = _inspect()
    app.selectbox(key=pins.CHOICE_KEYS["B"]).set_value("original").run()
    assert not app.exception
    assert app.query_params["b"] == "original"
    assert app.session_state[pins.PIN_KEYS["B"]] == "original"


@pytest.mark.slow
def test_pin_as_a_and_b_on_explore_open_on_the_a_vs_b_page(app_cache):
    app = new_app().run()
    app.select_slider[0].set_value(0.25).run()
    app.button(key="pin_as_a").click().run()
    app.select_slider[0].set_value(0.75).run()
    app.button(key="pin_as_b").click().run()
    assert not app.exception
    from urllib.parse import parse_qs

    [link] = [element.proto for element in app.page_link if "A vs B" in element.proto.label]
    query = parse_qs(link.query_string)
    assert query["a"] == ["cup:0.25:0"] and query["b"] == ["cup:0.75:0"] and query["experiment"] == [_experiment().id]
    app.switch_page(PAGE).run()
    assert not app.exception
    assert app.selectbox(key=pins.CHOICE_KEYS["A"]).value == "cup:0.25:0"
    assert app.selectbox(key=pins.CHOICE_KEYS["B"]).value == "cup:0.75:0"


@pytest.mark.slow
def test_tsne_is_offered_and_cached(app_cache):
    app = _inspect(a="original", b="oracle")
    app.button_group(key="projection").set_value("tsne").run()
    assert not app.exception
    assert "t-SNE" in app.get("plotly_chart")[-1].proto.spec
    experiment = _experiment()
    assert list((experiment.root / "explained").glob("original-*-tsne-v*.npz"))
    assert np.isfinite(explain(experiment, Pin("oracle"), "tsne")["embedding"]).all()
