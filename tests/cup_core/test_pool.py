"""Pooled learning rates (pool.py, `sweep --lrs`, `report --lrs`): one solution set per method over several
unlearning learning rates, equal budgets, methods the learning rate does not reach run once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cup_core import Experiment, SweepPlan, run_sweep
from cup_core.cli import main
from cup_core.config import Sources
from cup_core.pareto import hypervolume, objectives
from cup_core.pool import Pool, check_lrs, lr_free, member_config, member_plans, share_references, sibling_lrs
from cup_core.pool import read_summary
from cup_core.sweep_file import load_sweep_file, read_sweep_file, sweep_file_text

from ._cli import QUICK, assert_one_error, sweep
from ._experiments import CPU, tiny_config

LRS = (0.01, 0.003)  # the blob toy's Adam recipe has lr 0.01


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory):
    """The tiny class-wise blobs pooled over LRS: CUP (2 values at each lr) and GA (4 values, once), seeds 0, 1."""
    home = Experiment(tiny_config(), tmp_path_factory.mktemp("pool-cache"))
    pool = Pool.around(home, LRS)
    for index, (member, plan) in enumerate(zip(pool.members, member_plans(("cup", "ga"), 2, (0, 1), LRS))):
        if index:
            assert share_references(pool.home, member) == ["original", "oracle"]
        run_sweep(member, plan, CPU)
    return pool


def test_methods_the_learning_rate_does_not_reach():
    assert {name for name in ("cup", "ga", "ft", "rl", "ws", "ngdiff", "l1", "ssd", "scrub", "boundary_shrink")
            if lr_free(name)} == {"ga", "ft", "rl", "ngdiff", "l1", "ssd", "boundary_shrink"}


@pytest.mark.parametrize("calibrate", [True, False])
def test_every_method_gets_the_same_number_of_runs_over_the_pool(calibrate):
    lrs = (1e-3, 1e-4, 1e-5)
    plans = member_plans(("cup", "ws", "ga", "ssd"), 4, (0,), lrs, calibrate=calibrate)
    runs = {name: 0 for name in ("cup", "ws", "ga", "ssd")}
    for plan in plans:
        for name in plan.methods:
            runs[name] += len(plan.grids.get(name, ())) or plan.calibrate[name]
    assert runs == dict.fromkeys(runs, 4 * len(lrs))
    assert all("ga" not in plan.methods and "ssd" not in plan.methods for plan in plans[1:])  # once, in the first


def test_a_grid_of_a_method_the_learning_rate_does_not_reach_runs_once():
    assert [None if plan is None else plan.grids for plan in member_plans(("ga",), 3, (0,), LRS, grid=(1e-3, 1e-2))] \
        == [{"ga": (1e-3, 1e-2)}, None]
    assert [plan.grids for plan in member_plans(("cup",), 3, (0,), LRS, grid=(0.0, 1.0))] == [{"cup": (0.0, 1.0)}] * 2


@pytest.mark.parametrize("lrs, expected", [
    ((1e-3,), "at least two"), ((1e-3, 0.0), "positive"), ((1e-3, -1e-4), "positive"),
    ((1e-3, float("inf")), "positive"), ((1e-3, 0.001), "given twice"), ((1e-3, "fast"), "must be a number"),
])
def test_bad_learning_rates_are_refused(lrs, expected):
    with pytest.raises(ValueError, match=expected):
        check_lrs(lrs)


@pytest.mark.slow
def test_the_pooled_solution_set_is_the_union_of_the_members_points(tiny_pool):
    result = read_summary(tiny_pool)
    assert result["protocol"]["name"] == "pooled learning rates" and result["protocol"]["lrs"] == list(LRS)
    assert result["protocol"]["experiments"] == {f"{m.config.unlearn.lr:g}": m.id for m in tiny_pool.members}
    cup = result["methods"]["cup"]
    assert cup["points"] == 4 and sorted({row["lr"] for row in cup["table"]}) == sorted(LRS)
    # The hypervolume of the seed means per (lr, value) over both members, recomputed from their own tables.
    means = []
    for member in tiny_pool.members:
        rows = member.results()
        rows = rows[rows["method"] == "cup"]
        points = objectives(rows, "class")
        means += [points[(rows["value"] == value).to_numpy()].mean(axis=0) for value in sorted(set(rows["value"]))]
    assert cup["hypervolume"] == pytest.approx(hypervolume(np.array(means)))
    # A single member's report is another protocol, over its own points only.
    single = read_summary(tiny_pool.members[1])
    assert single["protocol"] == {"name": "single recipe", "lr": LRS[1]} and single["methods"]["cup"]["points"] == 2


@pytest.mark.slow
def test_a_method_the_learning_rate_does_not_reach_is_not_duplicated(tiny_pool):
    ga = read_summary(tiny_pool)["methods"]["ga"]
    assert ga["points"] == 4 and {row["lr"] for row in ga["table"]} == {None}  # 2 points x 2 learning rates, once
    assert ga["calibration"]["runs"] >= 2 and ga["calibration"]["per_lr"][0]["lr"] is None
    assert "ga" not in set(tiny_pool.members[1].results()["method"])
    # Its points computed again at the second learning rate (a single-recipe sweep there) still count once.
    values = tuple(sorted(set(tiny_pool.home.results().query("method == 'ga'")["value"])))
    run_sweep(tiny_pool.members[1], SweepPlan({"ga": values[:2]}, (0, 1)), CPU)
    pooled = tiny_pool.results()
    assert len(pooled[pooled["method"] == "ga"]) == 4 * 2  # 4 values x 2 seeds
    assert read_summary(tiny_pool)["methods"]["ga"]["points"] == 4


@pytest.mark.slow
def test_the_members_unlearn_one_original(tiny_pool):
    first, second = (member.reference("original") for member in tiny_pool.members)
    assert second["weights_sha256"] == first["weights_sha256"] and second["copied_from"] == tiny_pool.home.id
    assert sibling_lrs(tiny_pool.members[1]) == sorted(LRS, reverse=True)


def test_references_are_shared_only_between_siblings(tmp_path):
    one = Experiment(tiny_config(), tmp_path)
    other = Experiment(tiny_config(forget_class=1), tmp_path)
    with pytest.raises(ValueError, match="not .* at another learning rate"):
        share_references(one, other)


def test_a_pooled_sweep_file_reads_back_as_the_same_pool(tmp_path):
    config = tiny_config()
    text = sweep_file_text(config, Sources(), ["cup", "ga"], 3, [0], lrs=[1e-3, 1e-4])
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    settings = read_sweep_file(path)
    assert settings["lrs"] == [1e-3, 1e-4]
    assert load_sweep_file(path).experiment_config(Sources()).experiment_id == config.experiment_id
    assert all(member_config(config, lr).experiment_id in text.splitlines()[0] for lr in (1e-3, 1e-4))


@pytest.mark.parametrize("args, expected", [
    (["--lrs", "1e-3,abc"], "expected comma-separated numbers"),
    (["--lrs", "1e-3,0"], "must be a positive number"),
    (["--lrs", "1e-3"], "at least two learning rates"),
    (["--lrs", "1e-3,1e-3"], "given twice"),
    (["--lr", "1e-3", "--lrs", "1e-3,1e-4"], "not allowed with argument --lr"),
])
def test_bad_lrs_fail_with_one_line(args, expected, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["sweep", "--dataset", "blobs", "--cache-dir", str(tmp_path / "cache"), *args])
    out, err = capsys.readouterr()
    assert stopped.value.code == 2 and out == "" and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("content, expected", [
    ("lrs = [1e-3, 'fast']", "each item of lrs must be a number"),
    ("lrs = 1e-3", "lrs must be a list"),
    ("lrs = [1e-3, -1e-4]", "must be a positive number"),
    ("lr = 1e-3\nlrs = [1e-3, 1e-4]", "give lr or lrs, not both"),
])
def test_bad_lrs_in_a_sweep_file_fail_with_one_line(content, expected, tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text("dataset = 'blobs'\n" + content)
    code, out, err = sweep(capsys, "--config", str(path), "--cache-dir", str(tmp_path / "cache"), "--quiet")
    assert_one_error(code, out, err, expected)
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_sweep_and_report_with_lrs(tmp_path, capsys):
    cache_dir = str(tmp_path / "cache")
    code, out, err = sweep(capsys, "--dataset", "blobs", "--forget-class", "2", "--methods", "cup,ft", "--lrs",
                           "1e-2,1e-3", "--cache-dir", cache_dir, *QUICK)
    assert code == 0, err
    folders = out.strip().splitlines()
    assert len(folders) == 2 and len(set(folders)) == 2
    home = Experiment.open(folders[-1])  # the last line: the first learning rate's, holding FT's points
    assert home.config.unlearn.lr == 1e-2 and set(home.results()["method"]) == {"cup", "ft"}
    assert set(Experiment.open(folders[0]).results()["method"]) == {"cup"}
    assert main(["report", folders[0], "--lrs", "1e-2,1e-3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"]["name"] == "pooled learning rates" and result["experiment"] == home.id
    assert result["methods"]["cup"]["points"] == 4 and result["methods"]["ft"]["points"] == 4
    assert main(["report", folders[-1], "--lrs", "1e-2,1e-3"]) == 0
    assert "Protocol: pooled learning rates" in capsys.readouterr().out
    assert main(["report", folders[-1], "--lrs", "1e-2,1e-5"]) == 2
    assert "no experiment at learning rate 1e-05" in capsys.readouterr().err
