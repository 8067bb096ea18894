"""The New experiment page through AppTest: settings, the check and its cost, a run, Cancel, bad input, uploads."""

from __future__ import annotations

import functools
import hashlib
import tomllib

import pytest
import streamlit as st
from safetensors.torch import save

from cup_core import Experiment, SweepSettings, default_config
from cup_core.cli import main as cli_main
from ui import new_experiment
from ui.services import new, sweeps

from ..conftest import new_app

BLOBS_SETTINGS = dict(new_points=5, new_epochs_blobs=2, new_lr_blobs=0.02, new_batch_blobs=500)


def _new_page(**settings):
    """The New experiment page on blobs (fast: a full-batch MLP), with `settings` by widget key."""
    app = new_app()
    app.switch_page("pages/new.py").run()
    app.selectbox(key="new_dataset").set_value("blobs").run()
    settings = {**BLOBS_SETTINGS, **settings}
    for key in [key for key in settings if key.endswith(("_kind", "_original"))]:  # they show further widgets
        _widget(app, key).set_value(settings.pop(key))
    app.run()
    for key, value in settings.items():
        _widget(app, key).set_value(value)
    return app.run()


def _widget(app, key: str):
    for kind in ("number_input", "select_slider", "multiselect", "radio", "selectbox", "text_input", "text_area",
                 "checkbox"):
        found = [widget for widget in getattr(app, kind) if widget.key == key]
        if found:
            return found[0]
    raise KeyError(key)


def _check(app):
    return app.button(key="new_check").click().run()


def _experiments(cache) -> list[str]:
    return sorted(path.parent.name for path in cache.glob("*/config.json"))


@pytest.mark.slow
def test_the_page_checks_the_settings_shows_the_cost_and_computes_the_experiment(tmp_cache):
    app = _new_page(new_forget_kind=new_experiment.FORGET_RANDOM, new_forget_percent=20.0, new_forget_seed=1,
                    new_methods=["cup", "ws"])
    assert not app.exception
    assert not any(radio.key == "new_oracle" for radio in app.radio)  # random subsets always retrain the oracle
    app = _check(app)
    assert not app.exception and not app.error
    assert any(metric.label == "Estimated time" for metric in app.metric)
    verdict = next(md.value for md in app.markdown if md.value.startswith("Experiment `"))
    assert "compute 10 points" in verdict and "the original and the retrained oracle" in verdict
    assert not _experiments(tmp_cache)  # checking writes nothing

    app.button(key="new_start").click().run()
    assert not app.exception and not app.error
    assert any(success.value.startswith("Done: experiment") for success in app.success)
    [experiment_id] = _experiments(tmp_cache)
    config = Experiment.open(tmp_cache / experiment_id).config
    assert (config.forget.fraction, config.forget.seed, config.forget.forget_class) == (0.2, 1, None)
    assert (config.unlearn.epochs, config.unlearn.lr, config.unlearn.batch_size) == (2, 0.02, 500)
    results = Experiment.open(tmp_cache / experiment_id).results()
    assert sorted(results.groupby("method").size().items()) == [("cup", 5), ("ws", 5)]
    links = {link.value: link.proto.query_string for link in app.get("page_link")}
    assert links["Open in Explore"] == f"experiment={experiment_id}"
    assert links["Open in Compare methods"] == f"experiment={experiment_id}&methods=CUP&methods=WS&points=5&seeds=0"
    assert any(button.label == "Download sweep file (.toml)" for button in app.get("download_button"))


@pytest.mark.slow
def test_the_sweep_file_parses_names_the_experiment_and_the_cli_recomputes_nothing(tmp_cache, tmp_path, capsys):
    app = _check(_new_page())
    app.button(key="new_start").click().run()
    [experiment_id] = _experiments(tmp_cache)
    experiment = Experiment.open(tmp_cache / experiment_id)
    text = sweeps.sweep_file(experiment, ["cup"], 5, [0])  # what the page's download button holds
    settings = tomllib.loads(text)
    assert experiment_id in text
    assert settings["dataset"] == "blobs" and settings["methods"] == ["cup"] and settings["points"] == 5
    assert settings["unlearn"]["epochs"] == 2 and settings["unlearn"]["lr"] == 0.02
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    assert cli_main(["sweep", "--config", str(path), "--cache-dir", str(tmp_cache), "--quiet"]) == 0
    output = capsys.readouterr()
    assert output.out.strip() == str(experiment.root)  # the same experiment ...
    assert "(0 to compute)" in output.err  # ... and nothing left to compute


def test_bad_input_shows_the_error_and_runs_nothing(tmp_cache):
    app = new_app()
    app.switch_page("pages/new.py").run()
    app.selectbox(key="new_dataset").set_value("mnist").run()
    assert any(widget.key == "new_download" for widget in app.checkbox)
    app = _check(app)  # the data root left empty
    assert not app.exception
    assert "MNIST is read from a folder on this machine: set the data root" in app.error[0].value
    assert not [button for button in app.button if button.key == "new_start"]
    app.text_input(key="new_data_root").set_value(str(tmp_cache / "nowhere")).run()
    app = _check(app)
    assert "is not a folder" in app.error[0].value and "Download if missing" in app.error[0].value
    assert "--" not in app.error[0].value  # the page's words, not the CLI's options
    assert not [button for button in app.button if button.key == "new_start"]
    assert not any(tmp_cache.iterdir())  # nothing written, nothing run


def test_a_check_that_fails_unexpectedly_says_so_in_one_line_and_runs_nothing(tmp_cache, monkeypatch):
    def broken(job):
        raise KeyError("a bug")

    monkeypatch.setattr(new, "estimate", broken)
    app = _check(_new_page())
    assert not app.exception
    [error] = [error.value for error in app.error]
    assert error.startswith("the check failed unexpectedly (KeyError: 'a bug')") and "\n" not in error
    assert not any(button.key == "new_start" for button in app.button) and not _experiments(tmp_cache)


def test_an_uploaded_checkpoint_is_saved_by_its_hash_and_is_the_original(tmp_cache):
    weights = save(Experiment(default_config("blobs")).new_model().state_dict())
    digest = hashlib.sha256(weights).hexdigest()
    app = _new_page(new_original=new_experiment.ORIGINAL_UPLOAD)
    assert not app.exception and app.info  # asks for the file
    assert app.button(key="new_check").disabled
    app.file_uploader(key="new_checkpoint").upload("mine.safetensors", weights).run()
    assert (tmp_cache / "uploads" / f"{digest}.safetensors").read_bytes() == weights
    app.radio(key="new_oracle").set_value(new_experiment.ORACLE_SKIP).run()
    app = _check(app)
    assert not app.error
    verdict = next(md.value for md in app.markdown if md.value.startswith("Experiment `"))
    assert "your checkpoint, evaluated" in verdict and "oracle" not in verdict.split("This will")[1]
    app.button(key="new_start").click().run()
    [experiment_id] = _experiments(tmp_cache)
    experiment = Experiment.open(tmp_cache / experiment_id)
    assert experiment.config.original_sha256 == digest and not experiment.config.oracle
    assert experiment.reference("original")["checkpoint"] == f"{digest}.safetensors"
    assert list(experiment.references().index) == ["original"]


def test_a_checkpoint_of_another_shape_is_refused_with_the_library_s_message(tmp_cache):
    from cup_core.models import MLP

    weights = save(MLP(num_classes=3).state_dict())  # blobs has 5 classes
    app = _new_page(new_original=new_experiment.ORIGINAL_UPLOAD)
    app.file_uploader(key="new_checkpoint").upload("three.safetensors", weights).run()
    app = _check(app)
    assert "num_classes" in app.error[0].value
    assert not _experiments(tmp_cache)


def test_listed_indices_are_read_typed_or_from_a_file(tmp_cache):
    app = _new_page(new_forget_kind=new_experiment.FORGET_LISTED)
    assert app.button(key="new_check").disabled  # nothing listed yet
    app.text_area(key="new_indices").set_value("3, 17, x").run()
    assert "'x' is not a sample index" in app.error[0].value
    app.text_area(key="new_indices").set_value("3, 17\n42").run()
    app = _check(app)
    assert not app.error
    job = app.session_state[new_experiment.CHECK_KEY][1]
    assert job.experiment.config.forget.indices == (3, 17, 42)
    app.file_uploader(key="new_indices_file").upload("forget.json", b"[5, 6, 7]").run()
    app = _check(app)
    assert app.session_state[new_experiment.CHECK_KEY][1].experiment.config.forget.indices == (5, 6, 7)


@pytest.fixture
def interrupted_compute(monkeypatch):
    """sweeps.compute whose first call is interrupted after 3 computed points, as Streamlit interrupts a run
    when a click arrives: a StopException from the next Streamlit call, here the progress callback's. Returns
    one list per call of the progress updates it saw."""
    real, calls = sweeps.compute, []
    # One point at a time, so that 3 of the 5 are finished when the run is cut (the batched engine, the
    # default, finishes a method's points together; test_sweep covers its interruptions).
    monkeypatch.setattr(sweeps, "run_sweep", functools.partial(sweeps.run_sweep,
                                                           settings=SweepSettings(engine="sequential")))

    def compute(experiment, plan, on_progress, sources=None):
        calls.append([])

        def progress(update):
            calls[-1].append(update)
            on_progress(update)
            if len(calls) == 1 and update.computed >= 2 + 3:  # the two references, then 3 points
                st.stop()

        real(experiment, plan, progress, sources)

    monkeypatch.setattr(sweeps, "compute", compute)
    return calls


def _interrupted_run(tmp_cache):
    app = _check(_new_page())
    app.button(key="new_start").click().run()
    assert not app.exception
    assert app.button(key="new_cancel")  # the run was cut short while the sweep was running
    [experiment_id] = _experiments(tmp_cache)
    return app, Experiment.open(tmp_cache / experiment_id)


@pytest.mark.slow
def test_cancel_stops_the_sweep_for_good_and_keeps_the_finished_points(tmp_cache, interrupted_compute):
    app, experiment = _interrupted_run(tmp_cache)
    kept = sorted(path.parent.name for path in (experiment.root / "points").glob("*/record.json"))
    assert len(kept) == 3
    app.button(key="new_cancel").click().run()  # its on_click drops the job before the rerun
    assert not app.exception
    assert len(interrupted_compute) == 1  # the rerun did not start the sweep again
    assert any(warning.value.startswith("Cancelled: 3 of the 5 points") for warning in app.warning)
    assert sorted(path.parent.name for path in (experiment.root / "points").glob("*/record.json")) == kept
    assert new_experiment.RUN_KEY not in app.session_state
    app.run()  # any later run leaves it cancelled
    assert len(interrupted_compute) == 1


@pytest.mark.slow
def test_a_run_interrupted_by_anything_but_cancel_resumes_where_it_stopped(tmp_cache, interrupted_compute):
    app, experiment = _interrupted_run(tmp_cache)
    app.run()  # e.g. the user came back to the page: the job is still there
    assert len(interrupted_compute) == 2
    assert any(success.value.startswith("Done: experiment") for success in app.success)
    assert len(experiment.results()) == 5
    assert interrupted_compute[1][-1].computed == 2  # only the 2 missing points; the references and 3 were cached


def test_the_page_opens_on_the_default_data_set_s_recipe(tmp_cache):
    app = new_app()
    app.switch_page("pages/new.py").run()
    assert not app.exception
    assert app.title[0].value == "New experiment"
    assert app.selectbox(key="new_dataset").value == "digits"
    recipe = default_config("digits").unlearn
    assert (app.number_input(key="new_epochs_digits").value, app.number_input(key="new_lr_digits").value,
            app.number_input(key="new_batch_digits").value) == (recipe.epochs, recipe.lr, recipe.batch_size)
