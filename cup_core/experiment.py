"""An experiment's folder in the cache: its config, its reference models, its points and results.csv.

Layout (under the cache root):

    <experiment_id>/config.json            the canonical ExperimentConfig
    <experiment_id>/sources.json           where the last sweep found the data and checkpoint (not hashed)
    <experiment_id>/models/original/       weights.safetensors + record.json (see cache.py)
    <experiment_id>/models/oracle/
    <experiment_id>/points/<method>-<value>-seed<seed>/
    <experiment_id>/results.csv            one row per point, rebuilt from the point records
    <experiment_id>/references.csv         the original's and the oracle's metrics
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import torch
from torch import nn

from . import cache
from ._json import nan_if_none
from .config import SCHEMA_VERSION, ExperimentConfig, Sources, canonical_value
from .data import experiment_info
from .device import threads_for
from .models import architecture_kwargs, build_model

log = logging.getLogger(__name__)

Role = Literal["original", "oracle"]
ROLES: tuple[Role, ...] = ("original", "oracle")

# results.csv's columns, in order; per-class test accuracies follow as acc_class_<k>. Percent units. `schema`
# is the record's (config.SCHEMA_VERSION): a table with rows of another schema is rebuilt, never shown.
RESULT_COLUMNS = ["method", "knob", "value", "seed", "forget_acc", "retain_acc", "test_acc", "forget_test_acc",
                  "ua", "mia_efficacy", "avg_gap", "seconds", "steps", "diverged_at_step", "checkpoint", "schema"]
METRIC_COLUMNS = ["forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua", "mia_efficacy"]


_INIT_LOCK = threading.Lock()


class Experiment:
    """Reads and names everything stored for one ExperimentConfig; computing lives in sweep.py."""

    def __init__(self, config: ExperimentConfig, cache_dir: str | os.PathLike | None = None):
        self.config = config
        self.id = config.experiment_id
        self.root = cache.cache_root(cache_dir) / self.id
        self.info = experiment_info(config)

    @classmethod
    def open(cls, where: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Experiment:
        """An experiment by folder path or by id (looked up under the cache root)."""
        folder = Path(where)
        if not (folder / "config.json").is_file():
            folder = cache.cache_root(cache_dir) / str(where)
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"no experiment at {where!s}: give its folder (the last line `sweep` "
                                    f"printed) or its id under {cache.cache_root(cache_dir)}")
        try:
            config = ExperimentConfig.from_dict(json.loads(config_file.read_text()))
        except ValueError as err:
            raise ValueError(f"{config_file}: {err}") from None
        experiment = cls(config, folder.parent)
        if experiment.root != folder.resolve():
            raise ValueError(f"{folder}: its config hashes to {experiment.id}, not to its folder's name; "
                             "the folder was renamed or its config edited")
        return experiment

    # --- names -------------------------------------------------------------------------------
    def save_config(self) -> None:
        path = self.root / "config.json"
        if not path.exists():
            cache.atomic_write_text(path, json.dumps(self.config.to_dict(), indent=2, sort_keys=True))

    @property
    def roles(self) -> tuple[Role, ...]:
        """The reference models this experiment has: the original, and the oracle unless it was skipped."""
        return ROLES if self.config.oracle else ("original",)

    def save_sources(self, sources: Sources) -> None:
        cache.atomic_write_text(self.root / "sources.json", json.dumps(sources.to_dict(), indent=2))

    def sources(self) -> Sources:
        """Where the last sweep found the inputs (empty for a cache from elsewhere, or a damaged file)."""
        try:
            return Sources.from_dict(json.loads((self.root / "sources.json").read_text()))
        except (OSError, ValueError, TypeError, AttributeError):
            return Sources()

    def delete(self) -> None:
        """Removes the experiment's folder: renamed away first (atomic), so that no reader sees half of it."""
        trash = self.root.with_name(f".deleted-{self.id}-{uuid.uuid4().hex[:8]}")
        os.replace(self.root, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def reference_entry(self, role: Role) -> Path:
        return self.root / "models" / role

    def reference_key(self, role: Role) -> dict[str, Any]:
        return {"experiment": self.id, "role": role}

    def point_entry(self, method: str, value: float, seed: int) -> Path:
        return self.root / "points" / f"{method}-{canonical_value(value):.6g}-seed{seed}"

    def point_key(self, method: str, value: float, seed: int) -> dict[str, Any]:
        return {"experiment": self.id, "method": method, "value": canonical_value(value), "seed": int(seed)}

    @property
    def architecture(self) -> str:
        return self.info.architecture

    @property
    def architecture_kwargs(self) -> dict[str, Any]:
        return architecture_kwargs(self.info)

    @functools.cached_property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.new_model().parameters())

    def threads(self, device: torch.device, models: int = 1) -> contextlib.AbstractContextManager[None]:
        """The CPU-thread policy (device.threads_for) for this experiment's model and inputs: what everything
        that trains or evaluates its models runs under. `models` stacked together (the batched engine) count
        as one model that many times wider, each sample passing through all of them."""
        return threads_for(models * self.parameter_count, device, (models * math.prod(self.info.input_shape),))

    def new_model(self, seed: int | None = None) -> nn.Module:
        """A fresh model; with `seed`, initialised from that seed whatever other threads (app sessions) draw
        meanwhile: every initialisation holds one lock, and a seeded one runs on a forked generator."""
        with _INIT_LOCK:
            if seed is None:
                return build_model(self.architecture, self.architecture_kwargs)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return build_model(self.architecture, self.architecture_kwargs)

    # --- reading -----------------------------------------------------------------------------
    def reference(self, role: Role) -> dict[str, Any]:
        """The original's or the oracle's record (metrics included); raises cache.BrokenEntry."""
        return cache.read_record(self.reference_entry(role), self.reference_key(role))

    def point_record(self, method: str, value: float, seed: int) -> dict[str, Any]:
        return cache.read_record(self.point_entry(method, value, seed), self.point_key(method, value, seed))

    def load_model(self, method: str, value: float, seed: int) -> nn.Module:
        """The point's unlearned model, weights verified; raises cache.BrokenEntry."""
        _, weights = cache.load_entry(self.point_entry(method, value, seed), self.point_key(method, value, seed))
        return self._model_from(weights)

    def load_reference_model(self, role: Role) -> nn.Module:
        _, weights = cache.load_entry(self.reference_entry(role), self.reference_key(role))
        return self._model_from(weights)

    def _model_from(self, weights: dict[str, torch.Tensor]) -> nn.Module:
        model = self.new_model()
        model.load_state_dict(weights)
        return model.eval()

    def point_records(self) -> list[dict[str, Any]]:
        """Every point record whose schema and key check out and whose weights file is there; broken ones
        are skipped (the next sweep reports and recomputes them)."""
        records = []
        for entry in sorted((self.root / "points").glob("*/")):
            try:
                key = json.loads((entry / cache.RECORD_FILE).read_text())["key"]
                record = cache.read_record(entry, self.point_key(key["method"], key["value"], key["seed"]))
            except (OSError, ValueError, KeyError, TypeError, cache.BrokenEntry):
                continue
            if entry == self.point_entry(key["method"], key["value"], key["seed"]) and \
                    (entry / cache.WEIGHTS_FILE).is_file():
                records.append(record)
        return records

    def results(self) -> pd.DataFrame:
        """results.csv as a table (empty, with the right columns, before the first sweep).

        A results.csv that cannot be read or lacks columns (truncated, foreign, an older schema) is
        reported in one line and rebuilt from the point records, so what is valid stays visible."""
        path = self.root / "results.csv"
        if not path.exists():
            if (self.root / "points").is_dir():  # an interrupted sweep: its finished points are there
                return self.write_tables(missing_ok=True)
            return pd.DataFrame(columns=RESULT_COLUMNS)
        try:
            table = pd.read_csv(path)
            missing = [column for column in RESULT_COLUMNS if column not in table.columns]
            if missing:
                raise ValueError(f"missing columns {', '.join(missing)} (another schema version?)")
            _check_schema(table)
            return table
        except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            log.warning("%s is unreadable (%s); rebuilding it from the point records", path, err)
            return self.write_tables(missing_ok=True)

    def references(self) -> pd.DataFrame:
        path = self.root / "references.csv"
        try:
            table = pd.read_csv(path)
            if not {"role", *METRIC_COLUMNS, "schema"} <= set(table.columns):
                raise ValueError("missing columns (another schema version?)")
            _check_schema(table)
        except FileNotFoundError:
            return pd.DataFrame(columns=["role", *METRIC_COLUMNS, "schema"])
        except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            log.warning("%s is unreadable (%s); rebuilding it from the model records", path, err)
            self.write_tables(missing_ok=True)
            table = pd.DataFrame(self._reference_rows(), columns=["role", *METRIC_COLUMNS, "schema"])
        return table.set_index("role", drop=False)

    # --- writing -----------------------------------------------------------------------------
    def write_tables(self, missing_ok: bool = False) -> pd.DataFrame:
        """Rebuilds results.csv and references.csv from the records and writes them atomically.

        With `missing_ok`, a cache that cannot be written (read-only, full) still gets the table back.
        The records are read under the tables' lock, so an older snapshot never overwrites a newer one."""
        try:
            self.save_config()  # again: a sweep that outlived a delete leaves a whole experiment, not an orphan
            with cache.locked(self.root / "results.csv"):
                table = self._table()
                cache.atomic_write_text(self.root / "results.csv", table.to_csv(index=False))
                cache.atomic_write_text(self.root / "references.csv",
                                        pd.DataFrame(self._reference_rows()).to_csv(index=False))
        except OSError as err:
            if not missing_ok:
                raise
            log.warning("cannot rewrite the tables in %s (%s); showing them from the records", self.root, err)
            table = self._table()
        return table

    def _table(self) -> pd.DataFrame:
        rows = [self._result_row(record) for record in self.point_records()]
        table = pd.DataFrame(rows, columns=RESULT_COLUMNS + self._class_columns())
        return table.sort_values(["method", "value", "seed"], ignore_index=True)

    def _reference_rows(self) -> list[dict[str, Any]]:
        rows = []
        for role in self.roles:
            try:
                rows.append({"role": role, **_flatten_metrics(self.reference(role)["metrics"]), "schema": SCHEMA_VERSION})
            except cache.BrokenEntry:
                continue
        return rows

    def _class_columns(self) -> list[str]:
        return [f"acc_class_{k}" for k in range(self.info.num_classes)]

    def _result_row(self, record: dict[str, Any]) -> dict[str, Any]:
        key = record["key"]
        entry = self.point_entry(key["method"], key["value"], key["seed"])
        return {
            "method": key["method"],
            "knob": record["knob"],
            "value": key["value"],
            "seed": key["seed"],
            **_flatten_metrics(record["metrics"]),
            "avg_gap": record["avg_gap"],
            "seconds": record["seconds"],
            "steps": record["steps"],
            "diverged_at_step": record["diverged_at_step"],
            "checkpoint": str((entry / cache.WEIGHTS_FILE).relative_to(self.root)),
            "schema": record["schema"],
        }


@dataclass(frozen=True)
class CachedExperiment:
    """One experiment folder in the cache, as the experiments list shows it."""

    experiment: Experiment
    points: int  # point folders (valid or not; the next sweep checks them)
    size_bytes: int
    modified: float  # seconds since the epoch, of the newest file


def list_experiments(cache_dir: str | os.PathLike | None = None) -> list[CachedExperiment]:
    """Every experiment under the cache root, newest first; folders that are not experiments are skipped."""
    found = []
    for config_file in cache.cache_root(cache_dir).glob("*/config.json"):
        if config_file.parent.name.startswith("."):  # .deleted-*: a delete in progress
            continue
        try:
            experiment = Experiment.open(config_file.parent)
        except (ValueError, FileNotFoundError, OSError):
            continue
        size, newest = 0, 0.0
        for path in experiment.root.rglob("*"):
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile by a sweep's atomic replace
                continue
            if path.is_file():
                size += stat.st_size
                newest = max(newest, stat.st_mtime)
        points = sum(1 for _ in (experiment.root / "points").glob("*/")) if (experiment.root / "points").is_dir() else 0
        found.append(CachedExperiment(experiment, points, size, newest or time.time()))
    return sorted(found, key=lambda item: item.modified, reverse=True)


def _check_schema(table: pd.DataFrame) -> None:
    """Raises ValueError when a table holds rows written under another schema (their metrics mean another thing)."""
    other = sorted({str(v) for v in table["schema"] if v != SCHEMA_VERSION})
    if other:
        raise ValueError(f"rows of schema {', '.join(other)}, computed by an older version (this one is "
                         f"{SCHEMA_VERSION}); they are recomputed")


def _flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    flat = {name: nan_if_none(metrics[name]) for name in METRIC_COLUMNS}
    flat.update({f"acc_class_{k}": nan_if_none(acc) for k, acc in enumerate(metrics["per_class_acc"])})
    return flat


def made_from_other_content(experiment: Experiment, sources: Sources) -> list[str]:
    """Ids of the cached experiments made from the same data root as `experiment` (their sources.json) whose data
    had other content: the files there changed since (relabelled, cleaned, replaced), so this is a new experiment."""
    if experiment.config.data_sha256 is None or not sources.data_root:
        return []
    found = []
    for folder in sorted(experiment.root.parent.glob("*/sources.json")):
        if folder.parent.name.startswith(".") or folder.parent == experiment.root:
            continue
        try:
            if json.loads(folder.read_text()).get("data_root") != sources.data_root:
                continue
            config = json.loads((folder.parent / "config.json").read_text())
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(config, dict) and config.get("dataset") == experiment.config.dataset \
                and config.get("data_sha256") not in (None, experiment.config.data_sha256):
            found.append(folder.parent.name)
    return found
