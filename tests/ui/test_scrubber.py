"""The live scrubbers' server side through AppTest (which runs no JavaScript): the fallback until a browser
reports that it drew, then the component alone with its data; a reported failure brings the fallback back."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from ui import components, scrubber

from ..conftest import new_app
from .test_compare import METHODS as COMPARE_METHODS
from .test_compare import _open as _open_compare
from .test_compare import compared  # noqa: F401 (a fixture)


def _components(app) -> list:
    return app.get("bidi_component")


def test_until_a_browser_has_drawn_the_scrubber_the_page_also_draws_todays_slider(app_cache):
    app = new_app().run()
    assert not app.exception
    assert len(app.select_slider) == 1 and len(_components(app)) == 1


def test_once_live_only_the_scrubber_is_drawn_with_every_grid_value_and_the_url_follows_its_value(app_cache):
    app = new_app(intensity="0.25")
    app.session_state[scrubber.STATUS_KEY] = "ready"
    app.run()
    assert not app.exception
    assert not app.select_slider and not app.get("plotly_chart")
    (component,) = _components(app)
    data = json.loads(component.proto.json or component.proto.mixed.json)
    assert len(data["points"]) == 21 and data["values"][data["selected"]] == 0.25 and data["live"]
    assert any("Export" in str(b.proto.label) for b in app.get("download_button"))
    assert app.query_params["intensity"] in ("0.25", ["0.25"])  # the URL follows the scrubber's value


def test_a_failure_the_browser_reports_brings_back_the_slider_with_a_notice(app_cache):
    app = new_app()
    app.session_state[scrubber.STATUS_KEY] = "failed: plotly.js could not be fetched"
    app.run()
    assert not app.exception
    assert len(app.select_slider) == 1 and not _components(app)
    assert any("Live scrubbing is not available here (plotly.js could not be fetched)" in c.value for c in app.caption)


def _preload_twice() -> None:
    from ui import scrubber

    scrubber.preload()  # a fresh server's first page: while the library loads,
    scrubber.preload()  # and again before it computes the missing models, in the same run


def test_the_preload_of_plotly_is_sent_once_per_session_and_not_once_live():
    app = AppTest.from_function(_preload_twice).run()
    assert not app.exception
    assert [c.proto.component_name for c in _components(app)] == [f"{scrubber.PACKAGE}.preload"]
    assert not _components(app.run())  # the page keeps plotly.js: nothing to send again
    live = AppTest.from_function(_preload_twice)
    live.session_state[scrubber.STATUS_KEY] = "ready"
    assert not _components(live.run())


@pytest.mark.slow
def test_a_released_value_rebuilds_no_figure_the_payload_is_built_once_per_results(app_cache, monkeypatch):
    from ui import scrub_payload
    from ui.services import explore

    built = []
    original = scrub_payload.explore_payload
    monkeypatch.setattr(scrub_payload, "explore_payload", lambda *a, **k: built.append(k) or original(*a, **k))
    explore._explore_payload.clear()
    for intensity in ("0.25", "0.75", "0.5"):
        app = new_app(intensity=intensity)
        app.session_state[scrubber.STATUS_KEY] = "ready"
        app.run()
        assert not app.exception
        (component,) = _components(app)
        data = json.loads(component.proto.json or component.proto.mixed.json)
        assert data["values"][data["selected"]] == float(intensity)
        ring = data["frontier"]["data"][data["selected_trace"]]
        point = data["points"][data["selected"]]
        assert (ring["x"], ring["y"]) == ([point["x"]], [point["y"]])
        assert data["bars"]["data"][data["bar_trace"]]["name"] == f"CUP γ={float(intensity):g}"
    assert len(built) == 1 and built[0]["selected_value"] is None


def _data(component) -> dict:
    return json.loads(component.proto.json or component.proto.mixed.json)


def test_released_values_are_read_as_a_value_or_a_method_and_value():
    assert scrubber.released(0.25) == 0.25 and scrubber.released(["ws", 1, 1700000000000]) == ("ws", 1.0)
    assert scrubber.released(None) is None and scrubber.released(True) is None
    assert scrubber.released(["ws"]) is None and scrubber.released([1, 2]) is None


@pytest.mark.slow
def test_compare_until_live_draws_its_clickable_fronts_and_then_the_scrubber_alone(app_cache, compared):
    app = _open_compare(app_cache)
    assert not app.exception
    assert len(app.get("plotly_chart")) == 3 and len(_components(app)) == 1  # the fallback's fronts as well
    app.session_state[scrubber.STATUS_KEY] = "ready"
    app.run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 2  # hypervolume and controllability: the fronts are the scrubber's
    assert not any(header.value.startswith("Best overall") for header in app.subheader)  # the scrubber's heading
    data = _data(_components(app)[0])
    picker = app.selectbox(key=components.COMPARE_METHOD_KEY)
    assert data["method"] == picker.value and list(data["methods"]) == COMPARE_METHODS
    assert data["heading"] == "Best overall (lowest avg gap)"
    assert any("Export this model" in str(b.proto.label) for b in app.get("download_button"))


@pytest.mark.slow
def test_compare_picking_a_method_selects_its_point_and_a_release_selects_and_switches(app_cache, compared):
    app = _open_compare(app_cache)
    app.session_state[scrubber.STATUS_KEY] = "ready"
    app.selectbox(key=components.COMPARE_METHOD_KEY).set_value("ws").run()
    assert not app.exception
    data = _data(_components(app)[0])
    ws = data["methods"]["ws"]
    assert data["method"] == "ws" and data["heading"] == "Selected"
    assert app.session_state[components.SELECTED_KEY] == ("ws", ws["values"][data["selected"]])
    value = data["methods"]["mgda"]["values"][1]
    app.session_state[components.SELECTED_KEY] = ("mgda", value)  # what a release on MGDA's point sets
    app.run()
    assert not app.exception
    data = _data(_components(app)[0])
    assert app.selectbox(key=components.COMPARE_METHOD_KEY).value == "mgda"  # the picker follows the selection
    assert data["method"] == "mgda" and data["methods"]["mgda"]["values"][data["selected"]] == value
    app.session_state[scrubber.STATUS_KEY] = None
    app.run()  # the fallback's panel says the same
    assert any(header.value == f"Selected: MGDA, forget preference λ = {value:g}" for header in app.subheader)
