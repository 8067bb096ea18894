"""The Learn page through AppTest: it computes the toy once, then the slider, the step and presenter mode work."""

from __future__ import annotations

from ..conftest import new_app


def _learn(**query):
    app = new_app(**query)
    app.switch_page("pages/learn.py")
    return app.run()


def _metric(app, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


def test_learn_renders_regions_pivot_and_trajectories(app_cache):
    app = _learn()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 3 + 1 + 2  # three region maps, the pivot, losses and the path
    assert len(app.tabs) == 5  # the guided lesson
    assert any(expander.label == "Glossary" for expander in app.expander)


def test_the_slider_and_the_step_change_the_pivot(app_cache):
    app = _learn()
    first = _metric(app, "pivot ψ = γ·Θ")
    app.select_slider(key="learn_intensity").set_value(0.25).run()
    assert _metric(app, "pivot ψ = γ·Θ") != first
    cone_first = _metric(app, "dual cone width Θ = π − φ")
    app.radio(key="step").set_value("last").run()
    assert not app.exception
    assert _metric(app, "dual cone width Θ = π − φ") != cone_first  # another step, other gradients


def test_presenter_mode_hides_the_lesson_and_the_glossary(app_cache):
    app = _learn(presenter="1")
    assert not app.exception
    assert len(app.tabs) == 0 and not any(expander.label == "Glossary" for expander in app.expander)
    assert len(app.get("plotly_chart")) == 6


def test_the_state_lives_in_the_url(app_cache):
    app = _learn(learn_intensity="1", step="middle")
    assert app.select_slider(key="learn_intensity").value == 1.0
    assert app.radio(key="step").value == "middle"
