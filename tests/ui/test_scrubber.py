"""The live scrubbers' server side through AppTest (which runs no JavaScript): the fallback until a browser
reports that it drew, then the component alone with its data; a reported failure brings the fallback back."""

from __future__ import annotations

import json

from ui import scrubber

from ..conftest import new_app


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


def test_a_released_value_rebuilds_no_figure_the_payload_is_built_once_per_results(app_cache, monkeypatch):
    from ui import scrub_payload, services

    built = []
    original = scrub_payload.explore_payload
    monkeypatch.setattr(scrub_payload, "explore_payload", lambda *a, **k: built.append(k) or original(*a, **k))
    services._explore_payload.clear()
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
