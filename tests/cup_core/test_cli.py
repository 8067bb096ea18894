"""`python -m cup_core` as a user runs it: a real subprocess, a temporary cache, the documented outputs."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from cup_core import load_exported
from cup_core.config import SCHEMA_VERSION
from cup_core.cli import main

from ._oracles import dominated_area

REPO = Path(__file__).resolve().parents[2]
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
SEEDS = (0, 1)
# Mini-batches (not the blobs' full batch) so that the seeds shuffle differently and their points differ.
SWEEP_ARGS = ["--dataset", "blobs", "--grid", ",".join(map(str, GRID)), "--seeds", ",".join(map(str, SEEDS)),
              "--epochs", "3", "--batch-size", "256", "--device", "cpu", "--quiet"]
STEPS = 3 * 2  # epochs x ceil(400 forget samples / 256)
TIMEOUT_S = 300


def _env(cache_dir: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "CUP_CACHE_DIR": str(cache_dir)}


def cup_core(*args: str, cache_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cup_core", *args], cwd=cwd, env=_env(cache_dir),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """(experiment folder, cache dir, work dir) after one tiny blobs sweep through the CLI."""
    work = tmp_path_factory.mktemp("cli")
    cache_dir = work / "cache"
    run = cup_core("sweep", *SWEEP_ARGS, "--cache-dir", str(cache_dir), cache_dir=work / "not-this-one", cwd=work)
    assert run.returncode == 0, run.stderr
    return Path(run.stdout.strip().splitlines()[-1]), cache_dir, work


@pytest.mark.slow
def test_sweep_prints_the_experiment_folder_last(swept):
    folder, cache_dir, work = swept
    assert folder.is_dir() and folder.parent == cache_dir.resolve()  # --cache-dir wins over $CUP_CACHE_DIR
    assert not (work / "not-this-one").exists()
    assert (folder / "results.csv").is_file() and (folder / "references.csv").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["dataset"] == "blobs" and config["unlearn"]["epochs"] == 3 and config["unlearn"]["batch_size"] == 256
    with open(folder / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((float(r["value"]), int(r["seed"])) for r in rows) == sorted((v, s) for v in GRID for s in SEEDS)
    assert all(int(r["steps"]) == STEPS for r in rows)
    by_seed = {seed: [r["forget_acc"] for r in rows if int(r["seed"]) == seed] for seed in SEEDS}
    assert by_seed[0] != by_seed[1]  # the seeds matter


@pytest.mark.slow
def test_sweep_again_computes_nothing(swept):
    folder, cache_dir, work = swept
    before = (folder / "results.csv").read_text()
    run = cup_core("sweep", *SWEEP_ARGS, cache_dir=cache_dir, cwd=work)  # the cache through $CUP_CACHE_DIR this time
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip().splitlines()[-1]) == folder
    assert "(0 to compute)" in run.stderr
    assert (folder / "results.csv").read_text() == before


def _independent_hypervolume(results_csv: Path, method: str = "cup") -> float:
    """Seed-mean of (retain_acc, ua) per knob value, then the dominated area by slabs, over 100·100."""
    sums = defaultdict(lambda: [0.0, 0.0, 0])
    with open(results_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["method"] == method:
                total = sums[float(row["value"])]
                total[0] += float(row["retain_acc"])
                total[1] += float(row["ua"])
                total[2] += 1
    means = [(retain / n, ua / n) for retain, ua, n in sums.values()]
    return dominated_area(means) / (100 * 100)


@pytest.mark.slow
def test_report_json_hypervolume_matches_an_independent_computation(swept):
    folder, cache_dir, work = swept
    run = cup_core("report", str(folder), "--json", cache_dir=cache_dir, cwd=work)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    cup = report["methods"]["cup"]
    expected = _independent_hypervolume(folder / "results.csv")
    assert 0 < expected <= 1
    # Discriminating data: averaging over seeds changes the area, so a per-seed shortcut would be caught.
    assert all(abs(expected - per_seed) > 1e-6 for per_seed in cup["hypervolume_per_seed"].values())
    assert cup["hypervolume"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert cup["points"] == len(GRID) and cup["seeds"] == list(SEEDS)
    assert [row["value"] for row in cup["table"]] == list(GRID)
    assert report["experiment"] == folder.name and report["schema"] == SCHEMA_VERSION
    assert set(report["references"]) == {"original", "oracle"}
    assert report["hypervolume"]["reference_point"] == [0.0, 0.0]


@pytest.mark.slow
def test_report_prints_a_table(swept):
    folder, cache_dir, work = swept
    run = cup_core("report", folder.name, cache_dir=cache_dir, cwd=work)  # by id, under $CUP_CACHE_DIR
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"experiment {folder.name}: blobs, forget class 2")
    assert lines[0].endswith(f"(metrics schema {SCHEMA_VERSION}: mia_efficacy is the SVC MIA)")
    assert any(line.strip().startswith("original") for line in lines)
    assert any(line.strip().startswith("oracle") for line in lines)
    assert any(line.startswith("CUP (intensity): hypervolume (paper's)") and "normalised" in line for line in lines)
    assert any("seed-averaged points, seeds [0, 1]" in line for line in lines)
    assert any("intrinsic range: no calibration" in line for line in lines)
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["intensity", "seeds"])
    table = [line.split() for line in lines[header + 1:header + 1 + len(GRID)]]
    assert [float(row[0]) for row in table] == list(GRID)
    assert all(row[1] == str(len(SEEDS)) for row in table)


@pytest.mark.slow
def test_report_as_latex_is_a_booktabs_table_of_both_hypervolumes(swept):
    folder, cache_dir, work = swept
    run = cup_core("report", folder.name, "--format", "latex", cache_dir=cache_dir, cwd=work)
    assert run.returncode == 0, run.stderr
    latex = run.stdout
    assert latex.startswith("\\begin{table}") and latex.rstrip().endswith("\\end{table}")
    assert latex.index("\\toprule") < latex.index("\\midrule") < latex.index("\\bottomrule")
    row = next(line for line in latex.splitlines() if line.strip().startswith("CUP &"))
    cells = [cell.strip() for cell in row.rstrip(" \\").split("&")]
    report = json.loads(cup_core("report", folder.name, "--json", cache_dir=cache_dir, cwd=work).stdout)
    cup = report["methods"]["cup"]
    low, high = cup["hypervolume_ci95"]
    assert cells[:2] == ["CUP", "intensity"]
    assert cells[2] == f"{cup['hypervolume']:.4f} [{low:.4f}, {high:.4f}]"  # two seeds: an interval
    assert cells[5] == "none (intrinsic range)"
    assert "95 \\%" in latex and "\\label{tab:hypervolume-" in latex  # the caption's % is escaped


@pytest.mark.slow
def test_report_as_csv_has_one_row_per_method(swept):
    folder, cache_dir, work = swept
    run = cup_core("report", folder.name, "--format", "csv", cache_dir=cache_dir, cwd=work)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(run.stdout.splitlines()))
    assert [row["method"] for row in rows] == ["cup"]
    report = json.loads(cup_core("report", folder.name, "--json", cache_dir=cache_dir, cwd=work).stdout)
    cup = report["methods"]["cup"]
    assert float(rows[0]["hypervolume"]) == pytest.approx(cup["hypervolume"])
    assert [float(rows[0]["normalised_low"]), float(rows[0]["normalised_high"])] == pytest.approx(
        cup["hypervolume_normalised_ci95"])


@pytest.mark.slow
def test_export_writes_a_loadable_zip(swept):
    folder, cache_dir, work = swept
    out = work / "exports" / "point.zip"
    run = cup_core("export", str(folder), "--value", "0.5", "--seed", "1", "--out", str(out),
                   cache_dir=cache_dir, cwd=work)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip().splitlines()[-1]) == out
    model, card = load_exported(out)
    assert (card["method"], card["value"], card["seed"], card["experiment_id"]) == ("cup", 0.5, 1, folder.name)
    assert sum(p.numel() for p in model.parameters()) > 0


# --- errors ----------------------------------------------------------------------------------------

# Each is a real `python -m cup_core` run (about 2 s of imports apiece).
BAD_SWEEPS = {
    "unknown-dataset": ["--dataset", "cifar10"],
    "class-out-of-range": ["--dataset", "blobs", "--forget-class", "5"],
    "empty-grid": ["--dataset", "blobs", "--grid", ""],
    "intensity-outside-unit-interval": ["--dataset", "blobs", "--grid", "0,1.5"],
    "zero-points": ["--dataset", "blobs", "--points", "0"],
    "bad-device": ["--dataset", "blobs", "--device", "banana"],
}
# The same contract checked in-process through cli.main (no imports to pay for).
MORE_BAD_SWEEPS = {
    "negative-class": ["--dataset", "digits", "--forget-class", "-1"],
    "intensity-below-zero": ["--dataset", "blobs", "--grid=-0.1,0.5"],  # `--grid -0.1` would read as an option
    "nan-intensity": ["--dataset", "blobs", "--grid", "nan"],
    "unsupported-device": ["--dataset", "blobs", "--device", "meta"],
    "bad-fraction": ["--dataset", "blobs", "--forget-fraction", "1.5"],
    "zero-epochs": ["--dataset", "blobs", "--epochs", "0"],
    "negative-lr": ["--dataset", "blobs", "--lr=-0.1"],
    "unknown-method": ["--dataset", "blobs", "--methods", "nope"],
    "no-seed": ["--dataset", "blobs", "--seeds="],
}
CONCURRENT = 3  # runs at a time: more only thrashes two cores


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """(work dir, name -> (returncode, stdout, stderr)) of every BAD_SWEEPS command."""
    work = tmp_path_factory.mktemp("cli-errors")
    results, names = {}, list(BAD_SWEEPS)
    for start in range(0, len(names), CONCURRENT):
        processes = {
            name: subprocess.Popen([sys.executable, "-m", "cup_core", "sweep", *BAD_SWEEPS[name], "--quiet"],
                                   cwd=work, env=_env(work / "cache"), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
            for name in names[start:start + CONCURRENT]
        }
        for name, process in processes.items():
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
            results[name] = (process.returncode, stdout, stderr)
    return work, results


def _assert_one_error_line(returncode: int, stdout: str, stderr: str) -> None:
    assert returncode != 0
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", BAD_SWEEPS)
def test_bad_sweep_arguments_fail_with_one_error_line(bad_runs, name):
    work, results = bad_runs
    _assert_one_error_line(*results[name])
    assert not (work / "cache").exists()  # failed before touching the cache


@pytest.mark.parametrize("name", MORE_BAD_SWEEPS)
def test_more_bad_sweep_arguments_fail_with_one_error_line(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUP_CACHE_DIR", str(tmp_path / "cache"))
    returncode = main(["sweep", *MORE_BAD_SWEEPS[name], "--quiet"])
    captured = capsys.readouterr()
    _assert_one_error_line(returncode, captured.out, captured.err)
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_report_of_a_missing_experiment_fails_with_one_error_line(tmp_path):
    run = cup_core("report", "0123456789ab", cache_dir=tmp_path, cwd=tmp_path)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: no experiment")


@pytest.mark.slow
def test_export_of_a_point_not_swept_fails_with_one_error_line(swept):
    folder, cache_dir, work = swept
    out = work / "never.zip"
    run = cup_core("export", str(folder), "--value", "0.3", "--out", str(out), cache_dir=cache_dir, cwd=work)
    assert run.returncode != 0
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: no valid point")
    assert "cached values: 0, 0.25, 0.5, 0.75, 1" in run.stderr
    assert not out.exists()


@pytest.mark.slow
def test_sweep_of_all_methods_reports_every_method(tmp_path):
    sweep = cup_core("sweep", "--dataset", "blobs", "--methods", "all", "--points", "2", "--seeds", "0,1",
                     "--epochs", "2", "--batch-size", "256", "--device", "cpu", "--quiet",
                     cache_dir=tmp_path / "cache", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    folder = sweep.stdout.strip().splitlines()[-1]
    report = cup_core("report", folder, "--json", cache_dir=tmp_path / "cache", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    methods = json.loads(report.stdout)["methods"]
    assert set(methods) == {"cup", "ga", "ft", "rl", "ws", "neggrad+", "ngdiff", "salun", "l1", "mgda", "pcgrad",
                            "cagrad", "scrub", "ssd", "boundary_shrink"}
    for name, method in methods.items():
        per_seed = list(method["hypervolume_per_seed"].values())
        assert len(per_seed) == 2 and method["points"] == 2, name
        assert method["hypervolume_mean"] == pytest.approx(sum(per_seed) / 2)
        assert method["hypervolume_std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2)
        assert set(method["controllability"]) == {"spearman_value_ua", "ua_span", "ua_span_share"}
        assert method["best_avg_gap"]["avg_gap"] >= 0 and method["mean_seconds"] > 0
    grid_with_all = cup_core("sweep", "--methods", "all", "--grid", "0,1", cache_dir=tmp_path / "cache", cwd=tmp_path)
    assert grid_with_all.returncode == 2 and "--grid applies to a single method" in grid_with_all.stderr
