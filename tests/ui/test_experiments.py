"""Every cached experiment in the app: the Experiments list (size, points, delete) and the sidebar picker, which
reopens any experiment from its id in the URL, even one made by the CLI on another data set, without an
oracle, whose data is not on this machine."""

from __future__ import annotations

import dataclasses

import pytest

from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep
from cup_core.cli import main as cli_main
from cup_core.config import Sources
from cup_core.experiment import list_experiments
from ui import formatting, scrub_payload
from ui.services import explore as explore_service

from ..conftest import new_app
from ..cup_core._stand_ins import write_mnist


def _blobs(cache, **forget) -> Experiment:
    """A small blobs experiment: 5 CUP points of 2 unlearning epochs (well under a second)."""
    config = default_config("blobs", **forget)
    experiment = Experiment(dataclasses.replace(config, unlearn=dataclasses.replace(config.unlearn, epochs=2)), cache)
    run_sweep(experiment, SweepPlan.default(("cup",), 5), resolve_device("cpu"))
    return experiment


def _experiments_page():
    app = new_app()
    app.switch_page("pages/experiments.py")
    return app.run()


def test_an_empty_cache_says_how_to_make_an_experiment(tmp_cache):
    app = _experiments_page()
    assert not app.exception
    assert "holds no experiment yet" in app.info[0].value


@pytest.mark.slow
def test_the_list_shows_points_and_size_and_deletes_after_confirmation(tmp_cache):
    kept, doomed = _blobs(tmp_cache), _blobs(tmp_cache, forget_class=1)
    app = _experiments_page()
    assert not app.exception
    listed = {item.experiment.id: item for item in list_experiments(tmp_cache)}
    text = "\n".join(element.value for element in [*app.markdown, *app.caption])
    for experiment in (kept, doomed):
        item = listed[experiment.id]
        assert f"`{experiment.id}`" in text
        assert f"**{item.points} points** · **{item.size_bytes / 1000:.1f} KB**" in text  # 5 blobs points: KB
    assert listed[kept.id].points == 5 and "KB" in formatting.human_size(listed[kept.id].size_bytes)
    links = [link.proto.query_string for link in app.get("page_link")]
    assert f"experiment={kept.id}" in links and f"experiment={doomed.id}" in links

    app.button(key=f"delete_{doomed.id}").click().run()
    assert "This cannot be undone" in app.warning[0].value
    assert doomed.root.is_dir()  # not before the confirmation
    app.button(key=f"keep_{doomed.id}").click().run()
    assert not app.warning and doomed.root.is_dir()
    app.button(key=f"delete_{doomed.id}").click().run()
    app.button(key=f"confirm_delete_{doomed.id}").click().run()
    assert not app.exception
    assert not doomed.root.exists() and kept.root.is_dir()
    assert f"Deleted experiment `{doomed.id}`" in app.success[0].value
    assert [link.proto.query_string for link in app.get("page_link")].count(f"experiment={kept.id}") == 2


@pytest.fixture
def cli_experiment(tmp_cache, tmp_path):
    """An MNIST experiment (a small stand-in in the official format) made by the CLI: class 3, no oracle, CUP and
    GA on 5 points; then its data folder is gone, as for a cache computed on another machine."""
    root = tmp_path / "mnist"
    write_mnist(root)
    assert cli_main(["sweep", "--dataset", "mnist", "--data-root", str(root), "--forget-class", "3", "--no-oracle",
                     "--methods", "cup,ga", "--points", "5", "--epochs", "1", "--quiet"]) == 0
    [item] = list_experiments(tmp_cache)
    experiment = item.experiment
    experiment.save_sources(Sources(data_root="/cluster/data/mnist"))  # where it was; not here
    return experiment


def _selected(app) -> list[str]:
    return [box.value for box in app.selectbox if box.key in ("dataset", "forget", "experiment")]


@pytest.mark.slow
def test_a_cli_made_experiment_reopens_from_its_url_with_what_is_cached(cli_experiment):
    app = new_app(experiment=cli_experiment.id).run()
    assert not app.exception
    assert _selected(app) == ["mnist", "class 3", cli_experiment.id]
    assert len(app.select_slider[0].options) == 5  # the cached CUP points; the rest is computed on request only
    assert "no oracle" in app.caption[0].value and cli_experiment.id in app.caption[0].value
    gap = next(metric for metric in app.metric if metric.label == "Avg gap")
    assert gap.value == "n/a" and scrub_payload.NO_ORACLE in gap.proto.delta
    assert any("skipped the retrained oracle" in caption.value for caption in app.caption)

    app.button(key="explore_compute").click().run()  # its data root is not on this machine
    assert not app.exception
    assert "/cluster/data/mnist is not a folder" in app.error[0].value
    assert len(app.select_slider[0].options) == 5  # what is cached is still shown
    assert len(cli_experiment.results()) == 10


@pytest.mark.slow
def test_the_data_root_can_be_set_for_this_machine(cli_experiment, tmp_path):
    app = new_app(experiment=cli_experiment.id).run()
    root = tmp_path / "here"
    write_mnist(root)
    app.text_input(key=f"data_root_{cli_experiment.id}").set_value(str(root)).run()
    app.button(key="save_data_root").click().run()
    assert cli_experiment.sources().data_root == str(root)
    app.button(key="explore_compute").click().run()
    assert not app.exception and not app.error
    assert len(app.select_slider[0].options) == 21  # Explore's default grid, computed from the data here


@pytest.mark.slow
def test_compare_shows_an_experiment_without_an_oracle(cli_experiment):
    app = new_app(experiment=cli_experiment.id, methods=["CUP", "GA"], points="5")
    app.switch_page("pages/compare.py").run()
    assert not app.exception
    assert _selected(app) == ["mnist", "class 3", cli_experiment.id]
    assert sorted(app.dataframe[0].value["label"]) == ["CUP", "GA"]
    assert not any(header.value.startswith("Best overall") for header in app.subheader)
    assert any("skipped the retrained oracle" in caption.value for caption in app.caption)


@pytest.mark.slow
def test_a_random_subset_experiment_says_its_hypervolume_is_over_forgetting_aware(tmp_cache):
    experiment = _blobs(tmp_cache, forget_fraction=0.1)
    explore = new_app(experiment=experiment.id).run()
    assert not explore.exception
    assert any(caption.value == explore_service.RANDOM_SUBSET_NOTE for caption in explore.caption)
    compare = new_app(experiment=experiment.id, methods=["CUP"], points="5")
    compare.switch_page("pages/compare.py").run()
    assert not compare.exception
    assert any("over-forgetting-aware hypervolume" in caption.value and "100 − |forget acc − the retrained "
               "oracle's forget acc|" in caption.value for caption in compare.caption)


