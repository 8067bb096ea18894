"""The app through Streamlit's AppTest: it renders on the default, the slider and the URL move the selection."""

from __future__ import annotations

import io

import pytest

from cup_core import Experiment, load_exported
from cup_core.methods import get_method
from ui.services import catalogue

from ..conftest import new_app


def _subheaders(app) -> list[str]:
    return [element.value for element in app.subheader]


def _metric(app, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


def test_first_open_computes_the_default_experiment_and_shows_it(first_open):
    """The page goes on from the cache once the models are computed, without the notice that said so."""
    cache, app = first_open
    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    assert (cache / experiment.id / "results.csv").is_file()
    results = experiment.results()  # other tests add other methods' points to this session's cache
    computed = results[(results["method"] == "cup") & (results["seed"] == 0)]
    assert sorted(computed["value"]) == list(get_method("cup").grid(21))  # the default grid, one seed
    assert not app.info and not app.error
    assert len(app.select_slider[0].options) == 21
    assert len(app.get("plotly_chart")) == 2  # frontier and per-class bars
    assert {m.label for m in app.metric} >= {"Forget acc", "Retain acc", "UA", "Avg gap"}


def test_explore_renders_the_default_with_slider_plot_cards_and_export(app_cache):
    app = new_app().run()
    assert not app.exception
    slider = app.select_slider[0]
    assert "Intensity" in slider.label
    assert len(slider.options) == 21
    assert len(app.get("plotly_chart")) == 2  # frontier and per-class bars
    assert {m.label for m in app.metric} >= {"Forget acc", "Retain acc", "Test acc", "UA", "MIA efficacy (SVC)", "Avg gap"}
    assert any("Export" in str(b.proto.label) for b in app.get("download_button"))
    assert not app.info  # the "computing" notice is gone once the cache is warm


def test_the_fallback_slider_and_what_it_changes_are_one_fragment(app_cache, monkeypatch):
    """A step of the server-drawn slider reruns one st.fragment (AppTest reruns whole scripts, so the fragment's
    extent is checked here and its effect in the browser by bench/browser_latency.py)."""
    import functools

    import streamlit as st

    from ui import components

    depth, drawn = [0], {}
    real_fragment = st.fragment

    def fragment(function):
        @functools.wraps(function)
        def inside(*args, **kwargs):
            depth[0] += 1
            try:
                return function(*args, **kwargs)
            finally:
                depth[0] -= 1
        return real_fragment(inside)

    def recorded(name):
        real = getattr(components, name)

        def call(*args, **kwargs):
            drawn.setdefault(name, depth[0] > 0)  # whether its first call ran inside a fragment
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(st, "fragment", fragment)
    for name in ("intensity_slider", "explore_static", "export_button", "experiment_picker"):
        monkeypatch.setattr(components, name, recorded(name))
    app = new_app().run()
    assert not app.exception and len(app.select_slider) == 1
    assert drawn == {"experiment_picker": False, "intensity_slider": True, "explore_static": True,
                     "export_button": True}


def test_moving_the_slider_changes_the_selection(app_cache):
    app = new_app().run()
    app.select_slider[0].set_value(0.0).run()
    assert "γ = 0" in _subheaders(app)
    forget_low = _metric(app, "Forget acc")
    app.select_slider[0].set_value(1.0).run()
    assert "γ = 1" in _subheaders(app)
    assert _metric(app, "Forget acc") != forget_low
    assert float(forget_low.rstrip("%")) > float(_metric(app, "Forget acc").rstrip("%"))


def test_the_url_reopens_the_same_intensity(app_cache):
    app = new_app(intensity="0.25").run()
    assert not app.exception
    assert app.select_slider[0].value == 0.25
    assert "γ = 0.25" in _subheaders(app)


@pytest.mark.parametrize("hostile", ["abc", "1e309", "-1", "0.33", "../../etc"])
def test_a_bad_intensity_in_the_url_falls_back_to_the_default(app_cache, hostile):
    default = new_app().run().select_slider[0].value
    app = new_app(intensity=hostile).run()
    assert not app.exception
    assert app.select_slider[0].value == default
    assert f"γ = {default:g}" in _subheaders(app)


@pytest.mark.slow
def test_switching_the_data_set_switches_experiment(app_cache):
    app = new_app().run()
    app.selectbox(key="dataset").set_value("blobs").run()
    assert not app.exception
    assert any("blobs" in caption.value for caption in app.caption)
    assert app.select_slider[0].options  # the blob experiment was computed and is shown


def test_export_of_the_selected_point_is_a_loadable_zip(app_cache, monkeypatch):
    """The zip is the one the page's export button hands out (its deferred data), not one built here."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    deferred = {}  # file name: the callable the download button runs on a click
    real = MediaFileManager.add_deferred

    def recording(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        deferred[file_name] = data_callable
        return real(self, data_callable, mimetype, coordinates, file_name=file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording)
    app = new_app().run()
    deferred.clear()
    app.select_slider[0].set_value(0.75).run()
    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    [(file_name, data)] = [(name, data) for name, data in deferred.items() if name.endswith(".zip")]  # not the .toml
    assert file_name == f"cup-digits-{experiment.id}-intensity0.75-seed0.zip"
    model, card = load_exported(io.BytesIO(data()))
    assert card["value"] == 0.75 and card["method"] == "cup"
    rows = Experiment.open(experiment.root).results().query("method == 'cup' and value == 0.75")
    assert card["metrics"]["forget_acc"] == pytest.approx(rows.query("seed == 0")["forget_acc"].iloc[0])
    assert f"{rows['forget_acc'].mean():.1f}%" == _metric(app, "Forget acc")  # the page shows the seeds' mean
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.fixture
def private_cache(warm_cache, tmp_path, monkeypatch):
    """A copy of the warm cache, for a test that adds points the other tests must not see."""
    import shutil

    copy = tmp_path / "cache"
    shutil.copytree(warm_cache, copy)
    monkeypatch.setenv("CUP_CACHE_DIR", str(copy))
    return copy


@pytest.mark.slow
def test_an_intensity_between_the_grid_points_is_computed_cached_and_selected(private_cache):
    app = new_app().run()
    before = len(app.select_slider[0].options)
    app.number_input(key="another_intensity").set_value(0.333).run()
    app.button(key="compute_another").click().run()
    assert not app.exception
    assert app.select_slider[0].value == pytest.approx(0.333)
    assert len(app.select_slider[0].options) == before + 1  # it joined the frontier
    assert "γ = 0.333" in _subheaders(app)
    app = new_app().run()  # a new session finds it in the cache
    assert len(app.select_slider[0].options) == before + 1
