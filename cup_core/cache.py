"""The on-disk cache: atomic writes, verified entries, and a lock per entry for concurrent writers.

An entry is a folder holding `weights.safetensors` and `record.json`. The record is written last
and names the weights' SHA-256. An entry is *cached* when its record parses, carries this schema
version and the expected key, holds every field its readers need (the caller's `check`), and its
weights file is a regular file of the size its safetensors header declares: metadata only, so
knowing what is cached costs a few stats and small reads, never the weights' bytes (remembered per
inode, size and mtime). The weights' SHA-256 is checked when they are written, whenever they are
loaded to be used (`load_entry`, `read_weight_bytes`), and by `is_cached(..., verify_weights=True)`,
which a sweep and `python -m cup_core verify` use. A broken entry is reported, removed and recomputed.

Nothing is written or deleted through a symbolic link: the cache root is resolved, so a link on an
entry's path can only be inside the cache, pointing anywhere (a copied or mounted cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from filelock import FileLock
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from ._files import open_regular, read_regular
from .config import SCHEMA_VERSION, canonical_json

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"
RECORD_FILE = "record.json"
LOCK_TIMEOUT_S = 3600  # a point on a big model can take long; a stuck lock then fails loudly
RECORD_LIMIT = 1 << 20  # bytes: a record is a few KB; a bigger file is not one this cache wrote
HEADER_LIMIT = 100 << 20  # bytes: safetensors' own bound on a header

RecordCheck = Callable[[dict[str, Any]], None]  # raises ValueError naming what a record lacks; hashable


def cache_root(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: `path`, else $CUP_CACHE_DIR, else ./cache."""
    return Path(path or os.environ.get("CUP_CACHE_DIR") or "cache").expanduser().resolve()


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`. The file is private
    (0600, mkstemp's) unless `mode` is given (a user's file replaced keeps its own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
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


class LinkInCache(ValueError):
    """A write or delete in the cache would go through a symbolic link, so it could touch what is outside."""


def refuse_links(path: Path) -> None:
    """Raises LinkInCache when `path` or a folder above it is a symbolic link. Cache roots are resolved
    (cache_root), so a link found here lies inside the cache and may point anywhere: a sweep must not
    delete or write through it."""
    path = Path(os.path.abspath(path))
    for part in (path, *path.parents):
        if part.is_symlink():
            raise LinkInCache(f"{part} is a symbolic link (to {os.readlink(part)}); the cache never writes or "
                              "deletes through one. Replace the link with a copy of the folder it points to, "
                              "or remove it")


@contextmanager
def locked(entry: Path) -> Iterator[None]:
    """Holds the entry's lock file (beside the entry) so that one process computes it at a time."""
    lock = entry.parent / f".{entry.name}.lock"
    refuse_links(lock)  # a planted lock link: filelock would open (before 3.20.1, truncate) what it points to
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock), timeout=LOCK_TIMEOUT_S):
        yield


class BrokenEntry(Exception):
    """An entry exists but cannot be trusted; the message says why."""


def write_entry(entry: Path, key: dict[str, Any], state_dict: dict[str, torch.Tensor], payload: dict[str, Any],
                check: RecordCheck | None = None) -> None:
    weights = save_safetensors({name: t.detach().cpu().contiguous() for name, t in state_dict.items()})
    record = {"schema": SCHEMA_VERSION, "key": key, "weights_sha256": hashlib.sha256(weights).hexdigest(), **payload}
    if check is not None:
        check(record)  # a record its readers could not use is a bug here, not a cache entry
    refuse_links(entry)
    atomic_write_bytes(entry / WEIGHTS_FILE, weights)
    atomic_write_text(entry / RECORD_FILE, canonical_json(record))


def _regular_stat(path: Path | str) -> os.stat_result | None:
    """The file's stat when it is a regular file (following a link), else None (missing, a folder, a FIFO...)."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found if stat.S_ISREG(found.st_mode) else None


def _parse_record(entry: Path, key: dict[str, Any], check: RecordCheck | None,
                  found: os.stat_result | None) -> dict[str, Any]:
    if not entry.is_dir():
        raise BrokenEntry(f"{entry}: not computed yet")
    if found is None:
        if (entry / RECORD_FILE).exists():
            raise BrokenEntry(f"{entry}: {RECORD_FILE} is not a regular file")
        raise BrokenEntry(f"{entry}: no {RECORD_FILE} (unfinished write)")
    if found.st_size > RECORD_LIMIT:
        raise BrokenEntry(f"{entry}: {RECORD_FILE} is {found.st_size} bytes, too big to be a record")
    if not (entry / RECORD_FILE).exists():
        raise BrokenEntry(f"{entry}: no {RECORD_FILE} (unfinished write)")
    try:
        record = json.loads(read_regular(entry / RECORD_FILE, "record", RECORD_LIMIT))
    except (OSError, ValueError, RecursionError) as err:
        raise BrokenEntry(f"{entry}: unreadable {RECORD_FILE} ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(record, dict) or record.get("schema") != SCHEMA_VERSION:
        raise BrokenEntry(f"{entry}: schema {record.get('schema') if isinstance(record, dict) else '?'}, "
                          f"expected {SCHEMA_VERSION}")
    if canonical_json(record.get("key")) != canonical_json(key):
        raise BrokenEntry(f"{entry}: its key does not match the requested configuration")
    digest = record.get("weights_sha256")
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise BrokenEntry(f"{entry}: {RECORD_FILE} has no weights hash")
    if check is not None:
        try:
            check(record)
        except (ValueError, TypeError, KeyError) as err:
            raise BrokenEntry(f"{entry}: {RECORD_FILE} is incomplete ({err})") from None
    return record


def stored_key(entry: Path) -> Any:
    """The key an entry's record names (to find out which point a folder holds); raises BrokenEntry."""
    record_stat = _regular_stat(entry / RECORD_FILE)
    if record_stat is None or record_stat.st_size > RECORD_LIMIT:
        raise BrokenEntry(f"{entry}: no readable {RECORD_FILE}")
    try:
        record = json.loads(read_regular(entry / RECORD_FILE, "record", RECORD_LIMIT))
    except (OSError, ValueError, RecursionError) as err:
        raise BrokenEntry(f"{entry}: unreadable {RECORD_FILE} ({type(err).__name__})") from None
    if not isinstance(record, dict):
        raise BrokenEntry(f"{entry}: {RECORD_FILE} is not a record")
    return record.get("key")


def read_record(entry: Path, key: dict[str, Any], check: RecordCheck | None = None) -> dict[str, Any]:
    """The entry's record after checking schema, key and (with `check`) content, not the weights; raises
    BrokenEntry."""
    return _parse_record(entry, key, check, _regular_stat(entry / RECORD_FILE))


def _declared_size(path: Path) -> int:
    """The length a safetensors file must have, from its header (8 bytes of length, then the JSON header)."""
    with open_regular(path, "weights") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 0 < length <= HEADER_LIMIT:
            raise ValueError("no safetensors header")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError("no safetensors header")
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    if not all(isinstance(end, int) and end >= 0 for end in ends):
        raise ValueError("a bad tensor offset in the safetensors header")
    return 8 + length + max(ends, default=0)


# What is known of each entry, by (folder, key, check): its files' identity (inode, size, mtime of the record
# and of the weights), its record, and whether the weights' hash was checked at that identity. A rewrite is
# an atomic rename (a new inode), a damaged file changes size or mtime: either makes the entry checked again.
_known: dict[tuple[str, str, RecordCheck | None], tuple[tuple[int, ...], dict[str, Any], bool]] = {}
_known_lock = threading.Lock()
_KNOWN_LIMIT = 100_000  # entries remembered per process (a few hundred bytes each)


def _identity(record: os.stat_result | None, weights: os.stat_result | None) -> tuple[int, ...] | None:
    if record is None or weights is None:
        return None
    return (record.st_ino, record.st_size, record.st_mtime_ns, weights.st_ino, weights.st_size, weights.st_mtime_ns)


def check_entry(entry: Path, key: dict[str, Any], check: RecordCheck | None = None,
                verify_weights: bool = False) -> dict[str, Any]:
    """The record of a cached entry (see the module's docstring); raises BrokenEntry saying what is wrong.
    With `verify_weights`, the weights' SHA-256 is checked too (once per change of the files). The record is
    the one remembered for the next call: read it, do not change it."""
    folder = os.fspath(entry)  # text joins: pathlib's cost more than the two stats on a Compare rerun's 200 points
    record_stat = _regular_stat(os.path.join(folder, RECORD_FILE))
    weights_stat = _regular_stat(os.path.join(folder, WEIGHTS_FILE))
    identity = _identity(record_stat, weights_stat)
    memo = (folder, canonical_json(key), check)
    known = _known.get(memo)
    if identity is not None and known is not None and known[0] == identity and (known[2] or not verify_weights):
        return known[1]
    record = _parse_record(entry, key, check, record_stat)
    if weights_stat is None:
        raise BrokenEntry(f"{entry}: {WEIGHTS_FILE} is missing or not a regular file")
    try:
        declared = _declared_size(entry / WEIGHTS_FILE)
    except (OSError, ValueError, KeyError, IndexError, TypeError, RecursionError) as err:
        raise BrokenEntry(f"{entry}: weights are not a valid safetensors file ({err})") from None
    if declared != weights_stat.st_size:
        raise BrokenEntry(f"{entry}: weights are {weights_stat.st_size} bytes, their header declares {declared} "
                          "(truncated or overwritten)")
    if verify_weights:
        read_weight_bytes(entry, record)
    with _known_lock:
        if len(_known) >= _KNOWN_LIMIT:
            _known.clear()
        _known[memo] = (identity, record, verify_weights)
    return record


def is_cached(entry: Path, key: dict[str, Any], check: RecordCheck | None = None,
              verify_weights: bool = False) -> bool:
    """Whether the entry is cached: the one definition that the app, the CLI and the sweep share (a sweep
    also verifies the weights' hash before it trusts an entry it will not recompute)."""
    try:
        check_entry(entry, key, check, verify_weights)
        return True
    except BrokenEntry:
        return False


def read_weight_bytes(entry: Path, record: dict[str, Any]) -> bytes:
    """The entry's raw safetensors bytes, verified against the record's hash; raises BrokenEntry."""
    if _regular_stat(entry / WEIGHTS_FILE) is None:  # a FIFO or a device would never end
        raise BrokenEntry(f"{entry}: {WEIGHTS_FILE} is missing or not a regular file")
    try:
        with open_regular(entry / WEIGHTS_FILE, "weights") as handle:
            weights = handle.read()
    except (OSError, ValueError) as err:
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


def load_entry(entry: Path, key: dict[str, Any], check: RecordCheck | None = None
               ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(record, weights) of a valid entry, the weights' hash checked; raises BrokenEntry (also when it does
    not exist)."""
    record = read_record(entry, key, check)
    return record, read_weights(entry, record)


def is_valid(entry: Path, key: dict[str, Any], check: RecordCheck | None = None) -> bool:
    """Whether the entry is cached with its weights' hash verified: is_cached(..., verify_weights=True)."""
    return is_cached(entry, key, check, verify_weights=True)


def discard(entry: Path, reason: object, action: str = "recomputing") -> None:
    """Reports and removes a broken entry (the caller holds its lock); never through a link."""
    if entry.exists() or entry.is_symlink():
        refuse_links(entry)
        log.warning("%s a broken cache entry: %s", action, reason)
        shutil.rmtree(entry)


def valid_or_discard(entry: Path, key: dict[str, Any], check: RecordCheck | None = None) -> bool:
    """Under the entry's lock: True for a valid entry (hash verified); a broken one is reported and removed."""
    try:
        check_entry(entry, key, check, verify_weights=True)
        return True
    except BrokenEntry as err:
        discard(entry, err)
        return False


def ensure_entry(entry: Path, key: dict[str, Any],
                 compute: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
                 check: RecordCheck | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor], bool]:
    """(record, weights, computed): the valid cached entry, or `compute()`'s result written atomically.

    Only the holder of the entry's lock may discard a broken entry or write a new one, so two
    processes asking for the same entry compute it once and never see each other's partial writes.
    """
    with contextlib.suppress(BrokenEntry):
        return (*load_entry(entry, key, check), False)
    with locked(entry):
        computed = not valid_or_discard(entry, key, check)
        if computed:
            state_dict, payload = compute()
            write_entry(entry, key, state_dict, payload, check)
        return (*load_entry(entry, key, check), computed)
