"""Faults done for real: SIGKILL mid-sweep, two writers at once, damaged cache files, a cache that cannot be
written, hostile URLs. Each prints a summary line (see conftest.py)."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cup_core import Experiment, SweepPlan, run_sweep
from cup_core import cache as cache_module

from ..cup_core._experiments import CPU, tiny_config
from ..conftest import REPO
from .conftest import record

pytestmark = pytest.mark.faults

GRID = ",".join(str(v / 10) for v in range(11))
SWEEP = ["-m", "cup_core", "sweep", "--dataset", "blobs", "--grid", GRID, "--seeds", "0,1", "--epochs", "20",
         "--device", "cpu", "--quiet"]
STABLE_COLUMNS = ["method", "knob", "value", "seed", "forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua",
                  "mia_efficacy", "avg_gap", "steps", "diverged_at_step", "checkpoint"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _sweep(cache_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *SWEEP, "--cache-dir", str(cache_dir)], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _valid_points(cache_dir: Path) -> set[str]:
    found = set()
    for folder in cache_dir.glob("*/points/*"):
        experiment = Experiment.open(folder.parents[1])
        key = json.loads((folder / cache_module.RECORD_FILE).read_text())["key"] \
            if (folder / cache_module.RECORD_FILE).exists() else None
        if key and cache_module.is_valid(folder, experiment.point_key(key["method"], key["value"], key["seed"])):
            found.add(folder.name)
    return found


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pd.DataFrame:
    cache_dir = tmp_path_factory.mktemp("clean")
    process = _sweep(cache_dir)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return pd.read_csv(Path(out.strip().splitlines()[-1]) / "results.csv")


@pytest.mark.slow
def test_sigkill_mid_sweep_loses_nothing_and_resumes(tmp_path, uninterrupted):
    rng = random.Random(7)
    cache_dir = tmp_path / "cache"
    trials, survived, lost = 10, 0, 0
    kept: set[str] = set()
    for _ in range(trials):
        process = _sweep(cache_dir)
        time.sleep(rng.uniform(1.0, 4.0))  # torch's import takes ~1.5 s: kills land before, during and after it
        process.send_signal(signal.SIGKILL)
        process.wait()
        now = _valid_points(cache_dir)
        lost += len(kept - now)  # a point finished before a kill must still be there, verified
        survived += kept <= now
        kept = now
    final = _sweep(cache_dir)
    out, err = final.communicate(timeout=600)
    assert final.returncode == 0, err
    results = pd.read_csv(Path(out.strip().splitlines()[-1]) / "results.csv")
    record("SIGKILL mid-sweep", trials, survived, lost)
    assert lost == 0 and survived == trials
    pd.testing.assert_frame_equal(results[STABLE_COLUMNS], uninterrupted[STABLE_COLUMNS])


@pytest.mark.slow
def test_two_concurrent_sweeps_compute_every_point_once(tmp_path, uninterrupted):
    cache_dir = tmp_path / "cache"
    script = ("import json, sys; sys.path.insert(0, %r)\n"
              "from cup_core import Experiment, SweepPlan, default_config, run_sweep, resolve_device\n"
              "from dataclasses import replace\n"
              "config = default_config('blobs'); config = replace(config, unlearn=replace(config.unlearn, epochs=20))\n"
              "last = []\n"
              "run_sweep(Experiment(config, %r), SweepPlan({'cup': tuple(v / 10 for v in range(11))}, (0, 1)),\n"
              "          resolve_device('cpu'), last.append)\n"
              "print(json.dumps(last[-1].computed))") % (str(REPO), str(cache_dir))
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    computed = [int(out.strip().splitlines()[-1]) for out, _ in outputs]
    total = 2 + 22  # the original, the oracle, 11 intensities × 2 seeds
    experiment = next(Experiment.open(folder.parent) for folder in cache_dir.glob("*/config.json"))
    results = experiment.results()
    record("two concurrent writers", 1, int(sum(computed) == total), total - 2 - len(results))
    assert sum(computed) == total  # every unit computed by exactly one of the two
    pd.testing.assert_frame_equal(results[STABLE_COLUMNS], uninterrupted[STABLE_COLUMNS])


@pytest.mark.slow
def test_damaged_cache_files_are_detected_reported_and_recomputed(tmp_path, caplog):
    experiment = Experiment(tiny_config(), tmp_path)
    plan = SweepPlan({"cup": (0.0, 0.25, 0.5, 0.75, 1.0)})
    clean = run_sweep(experiment, plan, CPU)
    points = sorted(folder for folder in (experiment.root / "points").iterdir() if folder.is_dir())
    damage = {
        "truncated weights": lambda: (points[0] / cache_module.WEIGHTS_FILE).write_bytes(
            (points[0] / cache_module.WEIGHTS_FILE).read_bytes()[:100]),
        "garbage record": lambda: (points[1] / cache_module.RECORD_FILE).write_text("{not json"),
        "half-written record": lambda: (points[2] / cache_module.RECORD_FILE).write_text('{"schema": 1, "key"'),
        "missing checkpoint": lambda: (points[3] / cache_module.WEIGHTS_FILE).unlink(),
        "results.csv from an older schema": lambda: (experiment.root / "results.csv").write_text("method,value\ncup,0\n"),
        "garbage references.csv": lambda: (experiment.root / "references.csv").write_bytes(b"\x00\xff\x00"),
    }
    survived = 0
    for kind, harm in damage.items():
        harm()
        with caplog.at_level("WARNING"):
            visible = experiment.results()  # what is still valid stays browsable, without an exception
            references = experiment.references()
        assert len(references) == 2 and len(visible) >= 1
        repaired = run_sweep(experiment, plan, CPU)
        survived += repaired[STABLE_COLUMNS].equals(clean[STABLE_COLUMNS])
    record("damaged cache files", len(damage), survived, len(clean) - len(experiment.results()))
    assert survived == len(damage)
    assert any("recomputing a broken cache entry" in message for message in caplog.messages)


def test_a_cache_that_cannot_be_written_stops_cleanly_and_stays_browsable(tmp_path, monkeypatch):
    experiment = Experiment(tiny_config(), tmp_path)
    run_sweep(experiment, SweepPlan({"cup": (0.0, 1.0)}), CPU)
    before = experiment.results()

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache_module, "atomic_write_bytes", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_sweep(experiment, SweepPlan({"cup": (0.0, 0.5, 1.0)}), CPU)
    after = experiment.results()
    record("disk full while sweeping", 1, int(after.equals(before)), len(before) - len(after))
    assert after.equals(before)
    assert not (experiment.point_entry("cup", 0.5, 0) / cache_module.RECORD_FILE).exists()


def test_the_app_reports_a_full_disk_instead_of_a_traceback(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from ui.services import sweeps

    monkeypatch.setenv("CUP_CACHE_DIR", str(tmp_path))

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sweeps, "compute", full_disk)
    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    record("disk full in the app", 1, int(not app.exception and bool(app.error)), 0)
    assert not app.exception
    assert "Cannot write to the cache" in app.error[0].value


@pytest.mark.parametrize("name, value", [("intensity", "abc"), ("intensity", "1e309"), ("intensity", "-1"),
                                         ("experiment", "../../etc/passwd"), ("dataset", "<script>"),
                                         ("forget", "class 99")])
@pytest.mark.slow
def test_hostile_urls_never_show_a_traceback(app_cache, name, value):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    app.query_params[name] = value
    app.run()
    record(f"hostile URL {name}={value!r}", 1, int(not app.exception), 0)
    assert not app.exception
    clean = AppTest.from_file(str(REPO / "app.py"), default_timeout=300).run().select_slider[0]
    # The hostile value is ignored: the page shows the default experiment at its default intensity.
    assert (app.select_slider[0].value, app.select_slider[0].options) == (clean.value, clean.options)
