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
import copy
import functools
import io
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
from typing import Any, Literal, Mapping

import pandas as pd
import torch
from torch import nn

from . import cache
from ._files import read_regular
from ._json import nan_if_none
from .config import SCHEMA_VERSION, ExperimentConfig, Sources, canonical_value, check_seed
from .data import experiment_info
from .device import one_thread, threads_for
from .methods import get_method
from .models import architecture_kwargs, build_model, check_architecture

log = logging.getLogger(__name__)

Role = Literal["original", "oracle"]
ROLES: tuple[Role, ...] = ("original", "oracle")

# results.csv's columns, in order; per-class test accuracies follow as acc_class_<k>. Percent units. `schema`
# is the record's (config.SCHEMA_VERSION): a table with rows of another schema is rebuilt, never shown.
RESULT_COLUMNS = ["method", "knob", "value", "seed", "forget_acc", "retain_acc", "test_acc", "forget_test_acc",
                  "ua", "mia_efficacy", "avg_gap", "seconds", "steps", "diverged_at_step", "checkpoint", "schema"]
METRIC_COLUMNS = ["forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua", "mia_efficacy"]


_INIT_LOCK = threading.Lock()
CONFIG_LIMIT = 1 << 20  # bytes: a config is about 1 KB; a bigger config.json is not one this tool wrote
SOURCES_LIMIT = 1 << 20  # bytes: sources.json names two paths
TABLE_LIMIT = 1 << 30  # bytes: results.csv is ~300 bytes a point; a bigger one is rebuilt from the records


def _number(value: Any) -> bool:
    """A finite int or float (an int such as 10**400 that no float holds is not one)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass(frozen=True)
class RecordCheck:
    """What a cached record must hold for the tables, the report and the export to read it: a record that
    passes its hash check but lacks a field is broken (reported and recomputed), not a KeyError later."""

    kind: Literal["point", "reference"]
    num_classes: int

    def __call__(self, record: dict[str, Any]) -> None:
        metrics = record.get("metrics")
        if not isinstance(metrics, dict):
            raise ValueError("no metrics")
        missing = [name for name in METRIC_COLUMNS if not (metrics.get(name) is None or _number(metrics.get(name)))
                   or name not in metrics]
        if missing:
            raise ValueError(f"metrics {', '.join(missing)} missing or not numbers")
        per_class = metrics.get("per_class_acc")
        if not (isinstance(per_class, list) and len(per_class) == self.num_classes
                and all(acc is None or _number(acc) for acc in per_class)):
            raise ValueError(f"per_class_acc is not {self.num_classes} accuracies")
        if not _number(record.get("seconds")):
            raise ValueError("seconds missing or not a number")
        if self.kind == "point":
            if not isinstance(record.get("knob"), str) or not isinstance(record.get("device"), str):
                raise ValueError("knob or device missing")
            if not (record.get("avg_gap") is None or _number(record.get("avg_gap"))):
                raise ValueError("avg_gap missing or not a number")
            if "avg_gap" not in record or "diverged_at_step" not in record:
                raise ValueError("avg_gap or diverged_at_step missing")
            if not (isinstance(record.get("steps"), int) and _number(record["steps"])) or not (
                    record["diverged_at_step"] is None or isinstance(record["diverged_at_step"], int)):
                raise ValueError("steps or diverged_at_step missing or not integers")


@dataclass(frozen=True)
class ExperimentFacts:
    """What the report (report.summary) says of an experiment besides its two tables: its names and its config,
    nothing read from the cache."""

    id: str  # the config's hash: the folder's name
    folder: str  # the experiment's folder in the cache
    config: ExperimentConfig
    num_classes: int  # of the data set: the per-class accuracies' length, and what chance level is


class Experiment:
    """Reads and names everything stored for one ExperimentConfig; computing lives in compute.py."""

    def __init__(self, config: ExperimentConfig, cache_dir: str | os.PathLike | None = None):
        self.config = config
        self.id = config.experiment_id
        self.root = cache.cache_root(cache_dir) / self.id
        self.info = experiment_info(config)

    @classmethod
    def open(cls, where: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Experiment:
        """An experiment by folder path or by id (looked up under the cache root)."""
        folder = Path(where)
        if not os.path.lexists(folder / "config.json"):
            folder = cache.cache_root(cache_dir) / str(where)
        config_file = folder / "config.json"
        if not os.path.lexists(config_file):
            raise FileNotFoundError(f"no experiment at {where!s}: give its folder (the last line `sweep` "
                                    f"printed) or its id under {cache.cache_root(cache_dir)}")
        # read_regular: a FIFO or a link to /dev/zero there is refused (ValueError naming it), never waited on
        text = read_regular(config_file, "experiment config", CONFIG_LIMIT)
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            config = ExperimentConfig.from_dict(data)
            check_architecture(experiment_info(config).architecture)  # nor is one naming an unknown data set or model
        except RecursionError:
            raise ValueError(f"{config_file}: nested too deeply to be an experiment config") from None
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            raise ValueError(f"{config_file}: {err}") from None
        experiment = cls(config, folder.parent)
        if experiment.root != folder.resolve():
            raise ValueError(f"{folder}: its config hashes to {experiment.id}, not to its folder's name; "
                             "the folder was renamed or its config edited")
        return experiment

    @property
    def facts(self) -> ExperimentFacts:
        return ExperimentFacts(self.id, str(self.root), self.config, self.info.num_classes)

    # --- names -------------------------------------------------------------------------------
    def save_config(self) -> None:
        path = self.root / "config.json"
        cache.refuse_links(path)
        if not path.exists():
            cache.atomic_write_text(path, json.dumps(self.config.to_dict(), indent=2, sort_keys=True))

    def refuse_links(self) -> None:
        """LinkInCache when the experiment's folder or its models/ or points/ folder is a symbolic link, so that a
        sweep stops before it trains rather than when it would write through the link."""
        for folder in (self.root / "models", self.points_folder):
            cache.refuse_links(folder)

    @property
    def roles(self) -> tuple[Role, ...]:
        """The reference models this experiment has: the original, and the oracle unless it was skipped."""
        return ROLES if self.config.oracle else ("original",)

    def save_sources(self, sources: Sources) -> None:
        cache.refuse_links(self.root / "sources.json")
        cache.atomic_write_text(self.root / "sources.json", json.dumps(sources.to_dict(), indent=2))

    def sources(self) -> Sources:
        """Where the last sweep found the inputs (empty for a cache from elsewhere, or a damaged file)."""
        path = self.root / "sources.json"
        if not os.path.lexists(path):
            return Sources()
        try:
            return Sources.from_dict(json.loads(read_regular(path, "sources file", SOURCES_LIMIT)))
        except (OSError, ValueError, TypeError, AttributeError, RecursionError) as err:
            log.warning("ignoring %s (%s)", path, str(err)[:300])
            return Sources()

    def delete(self) -> None:
        """Removes the experiment's folder: renamed away first (atomic), so that no reader sees half of it. A
        folder that is a symbolic link loses the link, never what it points to."""
        if self.root.is_symlink():
            self.root.unlink()
            return
        cache.refuse_links(self.root.parent)
        trash = self.root.with_name(f".deleted-{self.id}-{uuid.uuid4().hex[:8]}")
        os.replace(self.root, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def reference_entry(self, role: Role) -> Path:
        return self.root / "models" / role

    def reference_key(self, role: Role) -> dict[str, Any]:
        return {"experiment": self.id, "role": role}

    @functools.cached_property
    def points_folder(self) -> Path:
        return self.root / "points"

    def point_entry(self, method: str, value: float, seed: int) -> Path:
        return self.points_folder / f"{method}-{canonical_value(value):.6g}-seed{seed}"

    def point_key(self, method: str, value: float, seed: int) -> dict[str, Any]:
        return {"experiment": self.id, "method": method, "value": canonical_value(value), "seed": int(seed)}

    @functools.cached_property
    def point_check(self) -> RecordCheck:
        """What a point's record must hold (cache.RecordCheck); every reader and writer of points passes it."""
        return RecordCheck("point", self.info.num_classes)

    @functools.cached_property
    def reference_check(self) -> RecordCheck:
        return RecordCheck("reference", self.info.num_classes)

    def point_cached(self, method: str, value: float, seed: int, verify_weights: bool = False) -> bool:
        """cache.is_cached for one point: metadata only, or with the weights' hash checked."""
        return cache.is_cached(self.point_entry(method, value, seed), self.point_key(method, value, seed),
                               self.point_check, verify_weights)

    def reference_cached(self, role: Role, verify_weights: bool = False) -> bool:
        return cache.is_cached(self.reference_entry(role), self.reference_key(role), self.reference_check,
                               verify_weights)

    def missing_references(self, verify_weights: bool = False) -> list[Role]:
        return [role for role in self.roles if not self.reference_cached(role, verify_weights)]

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

    def trains_on_one_thread(self, device: torch.device) -> bool:
        """Whether `threads` runs one of this experiment's models on a single CPU thread."""
        return one_thread(self.parameter_count, device, (math.prod(self.info.input_shape),))

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
        """The original's or the oracle's record (metrics included), when cached; raises cache.BrokenEntry."""
        return copy.deepcopy(cache.check_entry(self.reference_entry(role), self.reference_key(role),
                                               self.reference_check))  # a copy: the cache remembers its own

    def point_record(self, method: str, value: float, seed: int) -> dict[str, Any]:
        """The point's record, when cached (weights not hashed); raises cache.BrokenEntry."""
        return copy.deepcopy(cache.check_entry(self.point_entry(method, value, seed),
                                               self.point_key(method, value, seed), self.point_check))

    def load_model(self, method: str, value: float, seed: int) -> nn.Module:
        """The point's unlearned model, weights verified; raises cache.BrokenEntry."""
        _, weights = cache.load_entry(self.point_entry(method, value, seed), self.point_key(method, value, seed),
                                      self.point_check)
        return self._model_from(weights)

    def load_reference_model(self, role: Role) -> nn.Module:
        _, weights = cache.load_entry(self.reference_entry(role), self.reference_key(role), self.reference_check)
        return self._model_from(weights)

    def _model_from(self, weights: dict[str, torch.Tensor]) -> nn.Module:
        model = self.new_model()
        model.load_state_dict(weights)
        return model.eval()

    def point_records(self) -> list[dict[str, Any]]:
        """Every cached point's record (cache.check_entry: schema, key, content, weights' size); broken ones
        are skipped (the next sweep or `verify` reports them; the sweep recomputes them)."""
        return [copy.deepcopy(record) for _, record in self.point_entries()
                if not isinstance(record, cache.BrokenEntry)]

    def point_entries(self) -> list[tuple[Path, dict[str, Any] | cache.BrokenEntry]]:
        """Every folder under points/ with its record, or the BrokenEntry saying why it is not cached."""
        found: list[tuple[Path, dict[str, Any] | cache.BrokenEntry]] = []
        for entry in sorted(self.points_folder.glob("*/")):
            try:
                found.append((entry, self.point_record_at(entry)))
            except cache.BrokenEntry as err:
                found.append((entry, err))
        return found

    def point_record_at(self, entry: Path) -> dict[str, Any]:
        """The record of the point folder `entry`, its key read from the record and checked against the name."""
        method, value, seed = point_of(entry, cache.stored_key(entry))
        expected = self.point_entry(method, value, seed)
        if entry != expected:
            raise cache.BrokenEntry(f"{entry}: its record is the point of {expected.name}")
        return cache.check_entry(entry, self.point_key(method, value, seed), self.point_check)

    def results(self) -> pd.DataFrame:
        """results.csv as a table (empty, with the right columns, before the first sweep), read once per change
        of the file (its inode, size and mtime) and handed out as a copy. It reads and never writes.

        Without results.csv (a sweep interrupted before it wrote the tables) the table is built from the point
        records; so is it when results.csv cannot be read or lacks columns (truncated, foreign, an older schema),
        reported in one line per change of the file, so that what is valid stays visible. Rewriting the file is
        the sweep's and `verify`'s (write_tables)."""
        path = self.root / "results.csv"
        if not _present(path):
            if self.points_folder.is_dir():  # an interrupted sweep: its finished points are there
                return self._table()
            return pd.DataFrame(columns=RESULT_COLUMNS)
        try:
            return _stored_results(path)
        except UNREADABLE_TABLE as err:
            _report_damage(path, "%s is unreadable (%s); showing it from the point records", err)
            return self._table()

    def references(self) -> pd.DataFrame:
        """references.csv indexed by role, read once per change of the file like results(), and like it never
        written here: an unreadable one is reported and built from the model records."""
        path = self.root / "references.csv"
        try:
            table = _stored_references(path)
        except FileNotFoundError:
            return pd.DataFrame(columns=["role", *METRIC_COLUMNS, "schema"])
        except UNREADABLE_TABLE as err:
            _report_damage(path, "%s is unreadable (%s); showing it from the model records", err)
            table = pd.DataFrame(self._reference_rows(), columns=["role", *METRIC_COLUMNS, "schema"])
        return table.set_index("role", drop=False)

    def damaged_tables(self) -> list[str]:
        """The tables that `verify` rewrites: results.csv missing while points exist (a sweep interrupted before
        it wrote them), or either table unreadable or of another schema."""
        damaged = []
        for name, read in (("results.csv", _stored_results), ("references.csv", _stored_references)):
            path = self.root / name
            if not _present(path):
                if name == "results.csv" and self.points_folder.is_dir():
                    damaged.append(name)
                continue
            try:
                read(path)
            except UNREADABLE_TABLE:
                damaged.append(name)
        return damaged

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
        """The results table built from the point records, built again only when an entry's files change (their
        identities: metadata, not bytes), so that a reader without results.csv does not parse every record on
        every read."""
        points = self.points_folder
        identity = _entries_identity(points)
        known = _tables.get(str(points))
        if known is None or known[0] != identity:
            rows = [self._result_row(record) for record in self.point_records()]  # cached records only
            table = pd.DataFrame(rows, columns=RESULT_COLUMNS + self._class_columns())
            known = (identity, table.sort_values(["method", "value", "seed"], ignore_index=True))
            _remember(str(points), known)
        return known[1].copy()

    def _reference_rows(self) -> list[dict[str, Any]]:
        rows = []
        for role in self.roles:
            try:
                rows.append({"role": role, **flatten_metrics(self.reference(role)["metrics"]), "schema": SCHEMA_VERSION})
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
            **flatten_metrics(record["metrics"]),
            "avg_gap": record["avg_gap"],
            "seconds": record["seconds"],
            "steps": record["steps"],
            "diverged_at_step": record["diverged_at_step"],
            "checkpoint": str((entry / cache.WEIGHTS_FILE).relative_to(self.root)),
            "schema": record["schema"],
        }


def point_of(entry: Path, key: Any) -> tuple[str, float, int]:
    """(method, value, seed) that a point record's key names, checked as a sweep checks what it is asked for: a
    known method, a finite knob value within the method's bounds, a seed in 0 .. 2**32 - 1. Anything else (a
    value of 10**400, a method this version does not know) makes the entry broken (cache.BrokenEntry), never
    a point that a table, the report or the app would then fail on."""
    try:
        if not isinstance(key, dict):
            raise ValueError("no key")
        if not isinstance(key.get("method"), str):
            raise ValueError(f"method {key.get('method')!r} is not a name")
        method = get_method(key["method"])
        if not _number(key.get("value")):
            raise ValueError(f"value {key.get('value')!r} is not a number")
        return method.name, method.check_value(key["value"]), check_seed(key.get("seed"), "its seed")
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise cache.BrokenEntry(f"{entry}: its record names no point this version computes ({str(err)[:200]})") \
            from None


@dataclass(frozen=True)
class CachedExperiment:
    """One experiment folder in the cache, as the experiments list shows it."""

    experiment: Experiment
    points: int  # point folders (valid or not; the next sweep checks them)
    size_bytes: int
    modified: float  # seconds since the epoch, of the newest file


@dataclass(frozen=True)
class Unreadable:
    """A folder of the cache with a config.json that does not open as an experiment, and why."""

    folder: Path
    reason: str


def open_experiments(folders: list[Path]) -> tuple[list[Experiment], list[Unreadable]]:
    """The experiments in `folders` (each holding a config.json), and the folders that do not open as one:
    one hostile or foreign config.json is skipped and reported (logged once here), never fatal."""
    found, unreadable = [], []
    for folder in folders:
        try:
            found.append(Experiment.open(folder))
        except (ValueError, FileNotFoundError, OSError) as err:
            log.warning("skipping %s: not an experiment this version can read (%s)", folder, str(err)[:300])
            unreadable.append(Unreadable(folder, str(err)[:300]))
    return found, unreadable


def experiment_folders(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders under the cache root that hold a config.json (a delete in progress, .deleted-*, excluded)."""
    return sorted(config_file.parent for config_file in cache.cache_root(cache_dir).glob("*/config.json")
                  if not config_file.parent.name.startswith("."))


def list_experiments(cache_dir: str | os.PathLike | None = None) -> list[CachedExperiment]:
    """Every experiment under the cache root, newest first; folders that are not experiments are skipped (and
    logged: see open_experiments)."""
    found = []
    for experiment in open_experiments(experiment_folders(cache_dir))[0]:
        size, newest = 0, 0.0
        for path in experiment.root.rglob("*"):
            try:
                stat = path.stat()
            except OSError:  # removed meanwhile by a sweep's atomic replace
                continue
            if path.is_file():
                size += stat.st_size
                newest = max(newest, stat.st_mtime)
        points = sum(1 for _ in experiment.points_folder.glob("*/")) if experiment.points_folder.is_dir() else 0
        found.append(CachedExperiment(experiment, points, size, newest or time.time()))
    return sorted(found, key=lambda item: item.modified, reverse=True)


def _check_schema(table: pd.DataFrame) -> None:
    """Raises ValueError when a table holds rows written under another schema (their metrics mean another thing)."""
    other = sorted({str(v) for v in table["schema"] if v != SCHEMA_VERSION})
    if other:
        raise ValueError(f"rows of schema {', '.join(other)}, computed by an older version (this one is "
                         f"{SCHEMA_VERSION}); they are recomputed")


# results.csv and references.csv as last read, by path: the file's identity (inode, size, mtime) and its table;
# and the results table built from the point records, by points/ folder: its entries' identities and the table.
_tables: dict[str, tuple[tuple, pd.DataFrame]] = {}
_tables_lock = threading.Lock()


def _remember(key: str, known: tuple[tuple, pd.DataFrame]) -> None:
    with _tables_lock:
        if len(_tables) > 256:
            _tables.clear()
        _tables[key] = known


def _entries_identity(points: Path) -> tuple:
    """Each entry's name and its two files' (inode, size, mtime): a file is written by an atomic rename, so any
    write, removal or damage of an entry changes this."""
    identity = []
    for entry in sorted(points.glob("*/")):
        for name in (cache.RECORD_FILE, cache.WEIGHTS_FILE):
            try:
                found = os.stat(entry / name)
                identity.append((entry.name, name, found.st_ino, found.st_size, found.st_mtime_ns))
            except OSError:
                identity.append((entry.name, name, None))
    return tuple(identity)


# What reading a stored table raises when the file cannot stand for the records (_stored_results, _stored_references).
UNREADABLE_TABLE = (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError)


def _present(path: Path) -> bool:
    """Whether the table is there to be read: a link to nowhere (a loop, a missing target) is, and is reported as
    unreadable when read; Path.exists() calls it missing."""
    return path.exists() or path.is_symlink()


def _stored_results(path: Path) -> pd.DataFrame:
    """results.csv as stored; ValueError (or an OSError, a parser's error) where it cannot stand for the points."""
    table = _read_table(path)
    missing = [column for column in RESULT_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"missing columns {', '.join(missing)} (another schema version?)")
    _check_schema(table)
    return table


def _stored_references(path: Path) -> pd.DataFrame:
    table = _read_table(path)
    if not {"role", *METRIC_COLUMNS, "schema"} <= set(table.columns):
        raise ValueError("missing columns (another schema version?)")
    _check_schema(table)
    return table


# The damaged tables already reported, by path and identity: a reader reports each damaged file once, not on every
# read (it reads without rewriting it; the next sweep or `verify` does that).
_reported: set[tuple[str, tuple[int, int, int] | None]] = set()


def _report_damage(path: Path, message: str, err: BaseException) -> None:
    try:
        found = os.stat(path)
        identity: tuple[int, int, int] | None = (found.st_ino, found.st_size, found.st_mtime_ns)
    except OSError:
        identity = None
    with _tables_lock:
        if (str(path), identity) in _reported:
            return
        if len(_reported) > 256:
            _reported.clear()
        _reported.add((str(path), identity))
    log.warning(message, path, err)


def _read_table(path: Path) -> pd.DataFrame:
    """The CSV at `path`, parsed once per change of the file (a sweep rewrites it by an atomic rename: a new
    inode); a copy, so that no caller can change what the next one reads."""
    found = os.stat(path)
    identity = (found.st_ino, found.st_size, found.st_mtime_ns)
    known = _tables.get(str(path))
    if known is None or known[0] != identity:
        # parsed from bytes read by read_regular: a FIFO or a device here is refused (ValueError), never waited on
        known = (identity, pd.read_csv(io.BytesIO(read_regular(path, "results table", TABLE_LIMIT))))
        _remember(str(path), known)
    return known[1].copy()


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """A record's metrics as the tables' and the model card's columns: METRIC_COLUMNS (None as NaN), then the
    per-class vector spread into acc_class_<k>, the one place where it stops being a vector."""
    flat = {name: nan_if_none(metrics[name]) for name in METRIC_COLUMNS}
    flat.update({f"acc_class_{k}": nan_if_none(acc) for k, acc in enumerate(metrics["per_class_acc"])})
    return flat


def per_class_vector(row: Mapping[str, Any]) -> list[float]:
    """A table row's per-class test accuracies in class order (NaN where missing): flatten_metrics' spread read
    back into the vector."""
    columns = [c for c in row.keys() if str(c).startswith("acc_class_")]
    return [float(row[c]) for c in sorted(columns, key=lambda c: int(c.rsplit("_", 1)[1]))]


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
            if json.loads(read_regular(folder, "sources file", SOURCES_LIMIT)).get("data_root") != sources.data_root:
                continue
            config = json.loads(read_regular(folder.parent / "config.json", "experiment config", CONFIG_LIMIT))
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(config, dict) and config.get("dataset") == experiment.config.dataset \
                and config.get("data_sha256") not in (None, experiment.config.data_sha256):
            found.append(folder.parent.name)
    return found
