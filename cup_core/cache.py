"""The on-disk cache: atomic writes, verified entries, and a lock per entry for concurrent writers.

An entry is a folder holding `weights.safetensors` and `record.json`. The record is written last
and names the weights' SHA-256, so a reader trusts an entry only when the record parses, carries
this schema version and the expected key, and the weights match their hash. Anything else is
reported, removed and recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from filelock import FileLock
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from .config import SCHEMA_VERSION, canonical_json

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"
RECORD_FILE = "record.json"
LOCK_TIMEOUT_S = 3600  # a point on a big model can take long; a stuck lock then fails loudly


def cache_root(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: `path`, else $CUP_CACHE_DIR, else ./cache."""
    return Path(path or os.environ.get("CUP_CACHE_DIR") or "cache").expanduser().resolve()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextmanager
def locked(entry: Path) -> Iterator[None]:
    """Holds the entry's lock file (beside the entry) so that one process computes it at a time."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(entry.parent / f".{entry.name}.lock"), timeout=LOCK_TIMEOUT_S):
        yield


class BrokenEntry(Exception):
    """An entry exists but cannot be trusted; the message says why."""


def write_entry(entry: Path, key: dict[str, Any], state_dict: dict[str, torch.Tensor], payload: dict[str, Any]) -> None:
    weights = save_safetensors({name: t.detach().cpu().contiguous() for name, t in state_dict.items()})
    atomic_write_bytes(entry / WEIGHTS_FILE, weights)
    record = {"schema": SCHEMA_VERSION, "key": key, "weights_sha256": hashlib.sha256(weights).hexdigest(), **payload}
    atomic_write_text(entry / RECORD_FILE, canonical_json(record))


def read_record(entry: Path, key: dict[str, Any]) -> dict[str, Any]:
    """The entry's record after checking schema and key (not the weights); raises BrokenEntry."""
    if not entry.is_dir():
        raise BrokenEntry(f"{entry}: not computed yet")
    try:
        record = json.loads((entry / RECORD_FILE).read_text())
    except FileNotFoundError:
        raise BrokenEntry(f"{entry}: no {RECORD_FILE} (unfinished write)") from None
    except (OSError, ValueError) as err:
        raise BrokenEntry(f"{entry}: unreadable {RECORD_FILE} ({err})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION:
        raise BrokenEntry(f"{entry}: schema {record.get('schema') if isinstance(record, dict) else '?'}, "
                          f"expected {SCHEMA_VERSION}")
    if canonical_json(record.get("key")) != canonical_json(key):
        raise BrokenEntry(f"{entry}: its key does not match the requested configuration")
    return record


def read_weight_bytes(entry: Path, record: dict[str, Any]) -> bytes:
    """The entry's raw safetensors bytes, verified against the record's hash; raises BrokenEntry."""
    try:
        weights = (entry / WEIGHTS_FILE).read_bytes()
    except OSError as err:
        raise BrokenEntry(f"{entry}: weights unreadable ({err})") from None
    if hashlib.sha256(weights).hexdigest() != record.get("weights_sha256"):
        raise BrokenEntry(f"{entry}: weights do not match their recorded hash (truncated or overwritten)")
    return weights


def read_weights(entry: Path, record: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The entry's weights as tensors, verified; raises BrokenEntry."""
    weights = read_weight_bytes(entry, record)
    try:
        return load_safetensors(weights)
    except Exception as err:  # safetensors raises its own error types for malformed headers
        raise BrokenEntry(f"{entry}: weights are not a valid safetensors file ({err})") from None


def load_entry(entry: Path, key: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(record, weights) of a valid entry; raises BrokenEntry (also when it does not exist)."""
    record = read_record(entry, key)
    return record, read_weights(entry, record)


def is_valid(entry: Path, key: dict[str, Any]) -> bool:
    """Whether the entry is complete and trustworthy (weights verified)."""
    try:
        load_entry(entry, key)
        return True
    except BrokenEntry:
        return False


def valid_or_discard(entry: Path, key: dict[str, Any]) -> bool:
    """Under the entry's lock: True for a valid entry; a broken one is reported and removed (False)."""
    try:
        load_entry(entry, key)
        return True
    except BrokenEntry as err:
        if entry.exists():
            log.warning("recomputing a broken cache entry: %s", err)
            shutil.rmtree(entry)
        return False


def ensure_entry(entry: Path, key: dict[str, Any],
                 compute: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
                 ) -> tuple[dict[str, Any], dict[str, torch.Tensor], bool]:
    """(record, weights, computed): the valid cached entry, or `compute()`'s result written atomically.

    Only the holder of the entry's lock may discard a broken entry or write a new one, so two
    processes asking for the same entry compute it once and never see each other's partial writes.
    """
    with contextlib.suppress(BrokenEntry):
        return (*load_entry(entry, key), False)
    with locked(entry):
        computed = not valid_or_discard(entry, key)
        if computed:
            state_dict, payload = compute()
            write_entry(entry, key, state_dict, payload)
        return (*load_entry(entry, key), computed)
