"""Faults in the cache's content and shape (issue 18, items 5 to 7), done for real: records that pass the hash
check but lack fields, a hostile config.json among the experiments, symbolic links inside the cache. Each
prints a summary line (see conftest.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cup_core import Experiment, SweepPlan, read_summary, run_sweep
from cup_core import cache as cache_module
from cup_core.cli import main as cli
from cup_core.experiment import list_experiments

from ..conftest import new_app
from ..cup_core._experiments import CPU, tiny_config
from .conftest import record

pytestmark = pytest.mark.faults

PLAN = SweepPlan({"cup": (0.0, 0.5, 1.0)})
STABLE = ["method", "value", "seed", "forget_acc", "retain_acc", "test_acc", "ua", "avg_gap", "steps"]


def _edit_record(entry: Path, change) -> None:
    record_file = entry / cache_module.RECORD_FILE
    data = json.loads(record_file.read_text())
    change(data)
    record_file.write_text(json.dumps(data))


@pytest.mark.slow
def test_records_that_pass_the_hash_check_but_lack_fields_are_broken_and_recomputed(tmp_path, caplog, capsys):
    experiment = Experiment(tiny_config(), tmp_path)
    clean = run_sweep(experiment, PLAN, CPU)
    point = experiment.point_entry("cup", 0.5, 0)
    harms = {
        "a point's record without metrics": (point, lambda r: r.pop("metrics")),
        "a point's per-class accuracies cut short": (point, lambda r: r["metrics"]["per_class_acc"].pop()),
        "a point's steps as text": (point, lambda r: r.update(steps="fifty")),
        "the oracle's record without metrics": (experiment.reference_entry("oracle"), lambda r: r.pop("metrics")),
    }
    survived = 0
    for kind, (entry, harm) in harms.items():
        _edit_record(entry, harm)
        caplog.clear()
        # reported by `verify --check-only` (exit 1), and not counted as cached by the app, the CLI or the sweep
        assert cli(["verify", str(experiment.root), "--check-only"]) == 1, kind
        assert "broken" in capsys.readouterr().out
        read_summary(experiment)  # `report` reads what is cached without a KeyError
        with caplog.at_level("WARNING"):
            repaired = run_sweep(experiment, PLAN, CPU)
        survived += (repaired[STABLE].equals(clean[STABLE])
                     and any("recomputing a broken cache entry" in m for m in caplog.messages)
                     and cli(["verify", str(experiment.root)]) == 0)
    record("records with missing or wrong fields (hash intact): reported, recomputed", len(harms), survived,
           len(clean) - len(experiment.results()))
    assert survived == len(harms)


@pytest.mark.slow
def test_a_hostile_config_json_is_skipped_and_reported_and_every_page_still_opens(app_cache):
    hostile = app_cache / "hostile0000"
    hostile.mkdir()
    try:
        (hostile / "config.json").write_text("[" * 100_000 + "]" * 100_000)  # RecursionError in json.loads
        (app_cache / "notjson00000").mkdir()
        (app_cache / "notjson00000" / "config.json").write_text('{"dataset": {"nested": [1, 2]}}')
        assert all(item.experiment.id != "hostile0000" for item in list_experiments(app_cache))
        opened = 0
        pages = ("pages/explore.py", "pages/compare.py", "pages/experiments.py", "pages/new.py")
        for page in pages:
            app = new_app()
            app.switch_page(page).run() if page != "pages/explore.py" else app.run()
            opened += not app.exception
            if page == "pages/experiments.py":
                assert any("could not be read" in warning.value for warning in app.warning)
                assert "hostile0000" in app.text[0].value and "notjson00000" in app.text[0].value
        record("a hostile config.json among the experiments: skipped and reported, every page opens", len(pages),
               opened, 0)
        assert opened == len(pages)
    finally:
        shutil.rmtree(hostile)
        shutil.rmtree(app_cache / "notjson00000")


def test_a_sweep_never_deletes_or_writes_through_a_link_in_the_cache(tmp_path):
    experiment = Experiment(tiny_config(), tmp_path / "cache")
    run_sweep(experiment, SweepPlan({"cup": (0.0, 1.0)}), CPU)
    outside = tmp_path / "outside"

    def fresh_outside() -> list[str]:
        shutil.rmtree(outside, ignore_errors=True)
        outside.mkdir()
        (outside / "precious.txt").write_text("keep me")
        shutil.copytree(experiment.point_entry("cup", 0.0, 0), outside / "cup-0-seed0")
        (outside / "cup-0-seed0" / cache_module.WEIGHTS_FILE).write_bytes(b"broken")  # a "broken entry" to clean
        return sorted(str(p.relative_to(outside)) for p in outside.rglob("*"))

    def link(path: Path, target: Path) -> None:
        shutil.rmtree(path)
        path.symlink_to(target, target_is_directory=True)

    cases = {
        "points/ linked out of the cache": lambda: link(experiment.root / "points", outside),
        "one point's folder linked out": lambda: link(experiment.point_entry("cup", 0.0, 0), outside / "cup-0-seed0"),
        "models/ linked out of the cache": lambda: link(experiment.root / "models", outside),
    }
    survived = 0
    for kind, harm in cases.items():
        before = fresh_outside()
        backup = tmp_path / "backup"
        shutil.rmtree(backup, ignore_errors=True)
        shutil.copytree(experiment.root, backup, symlinks=True)
        harm()
        with pytest.raises(ValueError, match="symbolic link"):
            run_sweep(experiment, SweepPlan({"cup": (0.0, 0.5, 1.0)}), CPU)
        with pytest.raises(ValueError, match="symbolic link"):
            from cup_core.verify import verify_experiment
            verify_experiment(experiment)
        after = sorted(str(p.relative_to(outside)) for p in outside.rglob("*"))
        untouched = after == before and (outside / "precious.txt").read_text() == "keep me" and \
            (outside / "cup-0-seed0" / cache_module.WEIGHTS_FILE).read_bytes() == b"broken"
        survived += untouched
        assert untouched, kind
        shutil.rmtree(experiment.root)  # the link goes with it, not its target (rmtree does not follow links)
        shutil.copytree(backup, experiment.root, symlinks=True)
    # deleting an experiment whose folder is a link removes the link, never the folder it points to
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(experiment.root, elsewhere)
    shutil.rmtree(experiment.root)
    experiment.root.symlink_to(elsewhere, target_is_directory=True)
    experiment.delete()
    survived += not experiment.root.exists() and (elsewhere / "config.json").is_file()
    record("links inside the cache (points/, a point, models/, a linked experiment deleted): nothing outside "
           "touched", len(cases) + 1, survived, 0)
    assert survived == len(cases) + 1
