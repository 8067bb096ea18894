"""The Learn page through AppTest: it computes the toy once (with both base optimisers), then the slider, the
step, the optimiser switch and presenter mode work."""

from __future__ import annotations

import pytest

from ..conftest import new_app

# every test opens the page, and its first open computes the toy under both optimisers (seconds)
pytestmark = pytest.mark.slow


def _learn(**query):
    app = new_app(**query)
    app.switch_page("pages/learn.py")
    return app.run()


def _metric(app, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


def test_learn_renders_regions_pivot_and_trajectories(app_cache):
    app = _learn()
    assert not app.exception
    # three region maps, the pivot, the retain-loss changes, losses and the path
    assert len(app.get("plotly_chart")) == 3 + 1 + 1 + 2
    assert len(app.tabs) == 6  # the guided lesson
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
    assert len(app.get("plotly_chart")) == 7


def test_the_state_lives_in_the_url(app_cache):
    app = _learn(learn_intensity="1", step="middle")
    assert app.select_slider(key="learn_intensity").value == 1.0
    assert app.radio(key="step").value == "middle"


def test_the_optimiser_switch_shows_the_other_run(app_cache):
    app = _learn(learn_intensity="1", step="last")
    assert app.radio(key="learn_optimizer").value == "adam"
    assert "Adam" in next(c.value for c in app.caption if "full-batch steps" in c.value)
    adam_cone = _metric(app, "dual cone width Θ = π − φ")
    app.radio(key="learn_optimizer").set_value("sgd").run()
    assert not app.exception
    assert "steps of SGD without momentum" in next(c.value for c in app.caption if "full-batch steps" in c.value)
    assert _metric(app, "dual cone width Θ = π − φ") != adam_cone  # the same step of another run
    assert _learn(learn_optimizer="SGD").radio(key="learn_optimizer").value == "sgd"  # a link reopens the SGD run
