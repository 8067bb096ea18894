"""An experiment's folder: where it lives, reopening it, its tables before and after a sweep, listing, deleting."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from cup_core import Experiment, SweepPlan, read_summary
from cup_core.experiment import METRIC_COLUMNS, RESULT_COLUMNS, flatten_metrics, per_class_vector

from ._experiments import TINY_GRID, tiny_config, tiny_sweep


def test_experiments_live_under_the_default_cache_root(tmp_cache):
    experiment, _ = tiny_sweep(None, grid=(0.5,))
    assert experiment.root == tmp_cache.resolve() / experiment.id
    assert (experiment.root / "config.json").is_file()
    reopened = Experiment.open(experiment.id)  # by id, under $CUP_CACHE_DIR
    assert reopened.config == experiment.config and reopened.root == experiment.root
    assert Experiment.open(experiment.root).id == experiment.id  # by folder
    assert len(reopened.results()) == 1


def test_open_refuses_a_renamed_or_missing_experiment(tmp_cache):
    experiment, _ = tiny_sweep(None, grid=(0.5,))
    renamed = experiment.root.with_name("somethingelse")
    experiment.root.rename(renamed)
    with pytest.raises(ValueError, match="hashes to"):
        Experiment.open(renamed)
    with pytest.raises(FileNotFoundError):
        Experiment.open(experiment.id)


def test_an_experiment_before_its_first_sweep_has_empty_tables(tmp_cache):
    experiment = Experiment(tiny_config())
    assert experiment.results().empty and list(experiment.results().columns) == RESULT_COLUMNS
    assert experiment.references().empty
    assert experiment.point_records() == []


def test_an_interrupted_sweeps_points_show_without_results_csv_and_damage_counts_as_missing(tmp_path):
    from cup_core import cache as cache_module
    from cup_core.sweep import missing_points

    experiment, table = tiny_sweep(tmp_path)
    (experiment.root / "results.csv").unlink()  # killed before the tables were written
    assert len(experiment.results()) == len(table)
    entry = experiment.point_entry("cup", TINY_GRID[0], 0)
    (entry / cache_module.WEIGHTS_FILE).write_bytes(b"truncated")
    assert missing_points(experiment, SweepPlan({"cup": TINY_GRID})) == [("cup", TINY_GRID[0], 0)]


def test_reading_the_tables_never_writes_them_and_verify_rebuilds_them(tmp_path, caplog):
    """A missing results.csv and an unreadable references.csv are shown from the records, the damage reported once
    per change of the file, and left as they are: rewriting them is `verify`'s (and the next sweep's)."""
    import pandas as pd

    from cup_core.verify import verify_experiment

    experiment, table = tiny_sweep(tmp_path)
    (experiment.root / "results.csv").unlink()
    (experiment.root / "references.csv").write_bytes(b"\x00\xff\x00")
    with caplog.at_level("WARNING"):
        for _ in range(2):
            pd.testing.assert_frame_equal(experiment.results(), table)
            assert sorted(experiment.references().index) == ["oracle", "original"]
    assert not (experiment.root / "results.csv").exists()
    assert (experiment.root / "references.csv").read_bytes() == b"\x00\xff\x00"
    assert sum("references.csv is unreadable" in message for message in caplog.messages) == 1
    assert experiment.damaged_tables() == ["results.csv", "references.csv"]
    verified = verify_experiment(experiment)
    assert verified.ok and verified.tables_rebuilt and experiment.damaged_tables() == []
    assert len(pd.read_csv(experiment.root / "results.csv")) == len(table)
    assert sorted(pd.read_csv(experiment.root / "references.csv")["role"]) == ["oracle", "original"]


def test_a_table_shown_from_the_records_is_built_again_only_when_an_entry_changes(tmp_path, monkeypatch):
    experiment, table = tiny_sweep(tmp_path)
    (experiment.root / "results.csv").unlink()
    built = []
    records = experiment.point_records
    monkeypatch.setattr(experiment, "point_records", lambda: built.append(1) or records())
    pd.testing.assert_frame_equal(experiment.results(), table)
    first = len(built)  # 0: the sweep's last write built this table already
    for _ in range(2):
        pd.testing.assert_frame_equal(experiment.results(), table)
    assert len(built) == first  # reruns of a page read metadata, not every record
    shutil.rmtree(experiment.point_entry("cup", 0.5, 0))  # a removed point
    assert sorted(experiment.results()["value"]) == [0.0, 1.0] and len(built) == first + 1
    record = experiment.point_entry("cup", 1.0, 0) / "record.json"
    record.write_text(record.read_text() + " ")  # a record changed in place
    experiment.results()
    assert len(built) == first + 2


@pytest.mark.slow
def test_the_experiments_list_and_delete(tmp_cache):
    from cup_core.experiment import list_experiments

    assert list_experiments() == []
    first, _ = tiny_sweep(None, grid=(0.0, 1.0))
    second, _ = tiny_sweep(None, config=tiny_config(forget_class=1), grid=(0.5,))
    (tmp_cache / "not-an-experiment").mkdir()  # stray folders are skipped, not listed
    listed = {item.experiment.id: item for item in list_experiments()}
    assert set(listed) == {first.id, second.id}
    assert listed[first.id].points == 2 and listed[second.id].points == 1
    on_disk = sum(path.stat().st_size for path in first.root.rglob("*") if path.is_file())
    assert listed[first.id].size_bytes == on_disk > 0
    first.delete()
    assert not first.root.exists() and [item.experiment.id for item in list_experiments()] == [second.id]
    assert not any(path.name.startswith(".deleted") for path in tmp_cache.iterdir())


def test_an_experiment_without_an_oracle(tmp_path):
    from dataclasses import replace

    experiment, table = tiny_sweep(tmp_path, config=replace(tiny_config(), oracle=False))
    assert experiment.roles == ("original",) and not experiment.reference_entry("oracle").exists()
    assert list(experiment.references()["role"]) == ["original"] and table["avg_gap"].isna().all()
    assert read_summary(experiment)["methods"]["cup"]["hypervolume"] > 0  # class-wise: needs no oracle


def test_the_per_class_vector_is_spread_into_columns_once_and_read_back_in_class_order():
    metrics = {name: 1.0 for name in METRIC_COLUMNS} | {"per_class_acc": [float(k) for k in range(12)]}
    metrics["per_class_acc"][3] = None  # a class without test samples
    flat = flatten_metrics(metrics)
    assert [name for name in flat if name.startswith("acc_class_")] == [f"acc_class_{k}" for k in range(12)]
    row = pd.Series(dict(reversed(list(flat.items()))))  # acc_class_10 before acc_class_2 as text
    vector = per_class_vector(row)
    assert vector[:3] + vector[4:] == [0.0, 1.0, 2.0] + [float(k) for k in range(4, 12)] and np.isnan(vector[3])
