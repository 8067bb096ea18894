"""The Learn lesson's claims, checked on the runs the page shows: both base optimisers over the page's grid."""

from __future__ import annotations

import re

import pytest

from cup_core import resolve_device, run_sweep
from cup_core.trajectory import trajectory
from ui import lesson
from ui.services import learn

GRID = list(learn.LEARN_GRID)


# Its users are marked slow: two sweeps and a step record at every intensity of the slider.
@pytest.fixture(scope="module")
def learn_runs(tmp_path_factory):
    """Results tables and step records of the Learn page's two experiments (computed here, as the page does), the
    step records at every intensity the slider offers (about 40 s for both)."""
    import os

    previous = os.environ.get("CUP_CACHE_DIR")
    os.environ["CUP_CACHE_DIR"] = str(tmp_path_factory.mktemp("learn-cache"))
    try:
        tables, runs = {}, {}
        for name in learn.LEARN_OPTIMIZERS:
            experiment = learn.learn_experiment(name)
            table = run_sweep(experiment, learn.learn_plan(), resolve_device("cpu"))
            tables[name] = table[table["method"] == "cup"]
            runs[name] = {value: trajectory(experiment, "cup", value, learn.LEARN_SEED) for value in GRID}
        yield tables, runs
    finally:
        if previous is None:
            os.environ.pop("CUP_CACHE_DIR", None)
        else:
            os.environ["CUP_CACHE_DIR"] = previous


@pytest.fixture(scope="module")
def facts(learn_runs):
    tables, runs = learn_runs
    return lesson.lesson_facts(tables, runs)


def test_the_two_experiments_differ_only_in_the_base_optimiser():
    adam, sgd = (learn.learn_experiment(name).config for name in ("adam", "sgd"))
    assert adam.unlearn.optimizer == "adam" and sgd.unlearn.optimizer == "sgd" and sgd.unlearn.momentum == 0.0
    assert adam.unlearn.lr == sgd.unlearn.lr == 0.01 and adam.unlearn.epochs == sgd.unlearn.epochs == 20
    assert (adam.dataset, adam.forget, adam.train) == (sgd.dataset, sgd.forget, sgd.train)
    with pytest.raises(ValueError, match="unknown optimiser"):
        learn.learn_experiment("rmsprop")


@pytest.mark.slow
def test_every_run_the_page_shows_is_its_cached_point(learn_runs):
    """The sequential re-run behind each step record reproduces the batched sweep's point, under both optimisers
    and at every intensity (Adam's within `same_run`'s rule: it was False at γ = 0, 0.15 and 0.5 under the SGD
    tolerance, with identical metrics)."""
    _, runs = learn_runs
    assert {(name, value) for name in runs for value, run in runs[name].items()
            if not run["matches_cached_point"]} == set()


@pytest.mark.slow
def test_facts_are_read_from_the_tables(learn_runs, facts):
    tables, _ = learn_runs
    for name, table in tables.items():
        assert sorted(facts[name]["retain"]) == GRID
        assert facts[name]["kept"] == [float(v) for v in table.sort_values("value").query("retain_acc > 90")["value"]]


@pytest.mark.slow
def test_which_intensities_keep_retain_accuracy_above_90_percent(facts):
    """Tab 4's claim. Plain SGD keeps the retained classes at every intensity; Adam at every one but γ = 1."""
    assert facts["sgd"]["kept"] == GRID
    assert facts["adam"]["kept"] == GRID[:-1] and facts["adam"]["retain"][1.0] < 92
    assert all(facts["adam"]["retain"][v] > 95 for v in GRID if v <= 0.95)


@pytest.mark.slow
def test_where_forgetting_starts_under_each_optimiser(facts):
    """Tab 2's claims: γ = 0 keeps the blob under both; one notch above 0 Adam forgets it and SGD does not;
    Adam forgets from γ = 0.025, plain SGD from 0.375."""
    for name in ("adam", "sgd"):
        assert facts[name]["forget"][0.0] > 90
    assert facts["adam"]["forget"][0.025] <= lesson.FORGOTTEN and facts["sgd"]["forget"][0.025] > 90
    assert facts["adam"]["forgets_from"] == 0.025 and facts["sgd"]["forgets_from"] == 0.375
    assert facts["sgd"]["forget"][0.35] > lesson.FORGOTTEN


@pytest.mark.slow
def test_below_where_forgetting_starts_part_of_the_blob_is_still_recognised(facts):
    """Tab 6's claim, at every intensity below the threshold under both optimisers: forget accuracy stays above
    FORGOTTEN; under plain SGD it falls from γ = 0 to its lowest, 3.2 % at γ = 0.35, just below 0.375."""
    for name in ("adam", "sgd"):
        below = [v for v in GRID if v < facts[name]["forgets_from"]]
        assert facts[name]["below"] == below and below
        assert all(facts[name]["forget"][v] > lesson.FORGOTTEN for v in below), name
    sgd = facts["sgd"]
    forget_below = [sgd["forget"][v] for v in sgd["below"]]
    assert forget_below == sorted(forget_below, reverse=True)  # "falling from ... to ..."
    assert sgd["below_min_at"] == 0.35 and sgd["below_min"] == pytest.approx(3.2, abs=0.05)
    tab = dict(lesson.lesson_tabs(facts, "sgd", forget_class=2))["6 · Why γ = 0.7?"]
    assert "at every γ below 0.375" in tab and "to 3.2 % at γ = 0.35" in tab
    assert "not forgotten below" not in tab  # the old claim: 3.2 % at γ = 0.35 is all but forgotten


@pytest.mark.slow
def test_both_lesson_texts_say_plain_sgd_steps_by_minus_lr_d(facts):
    for optimizer in learn.LEARN_OPTIMIZERS:
        tabs = dict(lesson.lesson_tabs(facts, optimizer, forget_class=2))
        assert "steps by −lr·d" in tabs["2 · γ = 0"] and "steps by −lr·d" in tabs["3 · γ = 1"]
        assert "by lr·d" not in " ".join(tabs.values())
    assert "the step is −lr·d" in lesson.retain_change_caption("sgd")


@pytest.mark.parametrize(("value", "text"), [(-4e-6, "0.00"), (-0.0049, "0.00"), (0.0, "0.00"), (0.456, "0.46"),
                                             (-0.02, "-0.02")])
def test_a_cosine_prints_rounding_noise_as_zero(value, text):
    assert lesson.cosine_text(value) == text


@pytest.mark.slow
def test_the_step_caption_holds_at_every_intensity_and_step(learn_runs):
    """The caption under the pivot says both cosines are ≥ 0: on every step the page can show, at every intensity
    of the slider, under both optimisers (at γ = 1 the retain cosine is −8e-6 and printed 0.00)."""
    _, runs = learn_runs
    for name in learn.LEARN_OPTIMIZERS:
        assert sorted(runs[name]) == GRID
        for value, run in runs[name].items():
            for step in run["steps"]:
                caption = lesson.step_caption(step, len(run["steps"]), value)
                cosines = re.search(r"forget gradient is (\S+) and with the retain gradient (\S+) \(both ≥ 0", caption)
                assert cosines and all(float(c) >= 0 and not c.startswith("-") for c in cosines.groups()), caption
                assert min(step["cos_direction_forget"], step["cos_direction_retain"]) > -0.005, (name, value)


@pytest.mark.slow
def test_at_gamma_1_the_guarantee_is_about_d_not_about_adams_step(facts):
    """Tab 3's claims: plain SGD's step is −lr·d, so its first-order change is 0 and what the step caused is
    tiny; Adam's rescaled step has a first-order change well above 0 and costs retain accuracy on the way."""
    sgd, adam = facts["sgd"], facts["adam"]
    assert sgd["one_max_along_direction"] < 1e-5 and adam["one_max_along_direction"] < 1e-5
    assert sgd["one_max_change"] < 0.01 and sgd["one_end_retain"] > 95
    assert adam["one_max_first_order"] > 0.05 and adam["one_max_change"] > 0.05
    assert adam["one_min_retain"] < 80 and adam["one_end_retain"] < 92


@pytest.mark.slow
def test_sgd_first_order_prediction_is_the_direction_s(learn_runs):
    """The retain-change caption: with plain SGD the two lines coincide, at every intensity."""
    _, runs = learn_runs
    for value, run in runs["sgd"].items():
        for step in run["steps"]:
            assert step["retain_change_first_order"] == pytest.approx(step["retain_change_along_direction"],
                                                                      rel=1e-3, abs=1e-7), value


@pytest.mark.slow
def test_the_forget_loss_falls_for_every_positive_intensity(learn_runs):
    """Tab 4's 'try this' on the loss plot, for both optimisers, at every intensity of the slider."""
    _, runs = learn_runs
    for name in learn.LEARN_OPTIMIZERS:
        for value in GRID:
            if value > 0:
                steps = runs[name][value]["steps"]
                assert steps[-1]["forget_loss"] < steps[0]["forget_loss"], (name, value)


@pytest.mark.slow
def test_why_a_teacher_picks_gamma_0_7(facts):
    """Tab 6: at γ = 0.7 the blob is forgotten and the retained classes kept under both optimisers, and the
    direction keeps a clear retain component at every step."""
    for name in ("adam", "sgd"):
        assert facts[name]["forget"][0.7] <= lesson.FORGOTTEN and facts[name]["retain"][0.7] > 95
        assert facts[name]["teaching_cos_retain"][0] > 0.3


@pytest.mark.slow
def test_the_tabs_say_what_the_facts_say(facts):
    for optimizer in learn.LEARN_OPTIMIZERS:
        tabs = dict(lesson.lesson_tabs(facts, optimizer, forget_class=2))
        assert len(tabs) == 6 and "6 · Why γ = 0.7?" in tabs
        assert "from γ = 0.025" in tabs["2 · γ = 0"] and "from γ = 0.375" in tabs["2 · γ = 0"]
        assert "at every intensity under plain SGD" in tabs["4 · Why not plain gradient ascent?"]
        assert "for γ = 0 to 0.975 under Adam" in tabs["4 · Why not plain gradient ascent?"]
        assert f"ends at {facts['adam']['one_end_retain']:.1f} %" in tabs["3 · γ = 1"]
        assert "not hurt" not in " ".join(tabs.values())  # the old, wrong claim about γ = 1


@pytest.mark.parametrize(("values", "expected"), [
    ([], "at no intensity"), ([0.0, 0.5, 1.0], "at every intensity"), ([0.0, 0.5], "for γ = 0 to 0.5"),
    ([0.5], "for γ = 0.5"), ([0.0, 1.0], "for γ = 0 and 1"),
])
def test_intensities_are_named_as_ranges_of_the_grid(values, expected):
    assert lesson.intensities(values, [0.0, 0.5, 1.0]) == expected

