"""Files a user hands over as bytes (the app's uploads): a checkpoint kept in the cache under its hash, an index
list read as data.read_indices reads a file, every message naming the file as the user called it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from .cache import atomic_write_bytes, cache_root, refuse_links
from .checkpoints import SAFETENSORS_SUFFIXES, TORCH_SUFFIXES

UPLOADS = "uploads"  # folder under the cache root: users' checkpoints, named by their SHA-256
CHECKPOINT_SUFFIXES = SAFETENSORS_SUFFIXES + TORCH_SUFFIXES


def save_checkpoint(data: bytes, name: str, root: str | os.PathLike | None = None) -> Path:
    """A user's checkpoint, saved once under the cache root (`root`, else cache.cache_root()) as
    uploads/<sha256><suffix> (atomically), so that an experiment's sources point at a file that stays."""
    suffix = Path(name).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{name}: a checkpoint is a .safetensors or .pt/.pth file")
    path = cache_root(root) / UPLOADS / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    refuse_links(path)  # uploads/ or the file linked elsewhere: never written through (LinkInCache, a ValueError)
    if not path.is_file() or path.stat().st_size != len(data):
        atomic_write_bytes(path, data)
    return path


def read_indices_bytes(data: bytes, name: str) -> tuple[int, ...]:
    """An index file's content (.txt, .csv, .json or .npy, by `name`'s suffix) read by data.read_indices, its
    messages naming the file `name`."""
    from .data import read_indices

    suffix = Path(name).suffix.lower()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"indices{suffix}"
        path.write_bytes(data)
        try:
            return read_indices(path)
        except ValueError as err:
            raise ValueError(str(err).replace(str(path), name)) from None
