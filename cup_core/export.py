"""A chosen point as a self-describing zip: weights as safetensors plus a JSON model card.

`load_exported` rebuilds the model from the card's architecture name and constructor arguments and
loads the weights with safetensors: nothing in the file is ever unpickled.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import operator
import os
import platform
import stat
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from . import cache
from ._files import GiB, MiB, open_regular
from ._json import strict
from .experiment import Experiment, flatten_metrics
from .methods import get_method
from .models import build_model

WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "model_card.json"
CARD_FORMAT = "cup-explorer-model/1"
_VERSIONED_PACKAGES = ("torch", "safetensors", "numpy", "scikit-learn", "pymoo")


def model_card(experiment: Experiment, method: str, value: float, seed: int) -> dict[str, Any]:
    """The card of a cached point; raises cache.BrokenEntry when the point is not (validly) cached."""
    record = experiment.point_record(method, value, seed)
    config = experiment.config
    info = experiment.info

    def reference_metrics(role: str) -> dict[str, Any] | None:
        try:
            return flatten_metrics(experiment.reference(role)["metrics"])
        except cache.BrokenEntry:
            return None

    return {
        "format": CARD_FORMAT,
        "method": method,
        "knob": get_method(method).knob,
        "value": record["key"]["value"],
        "seed": seed,
        "dataset": config.dataset,
        "num_classes": info.num_classes,
        "forget_set": {**config.forget.__dict__, "kind": config.forget.kind, "description": config.forget.describe()},
        "architecture": experiment.architecture,
        "architecture_kwargs": experiment.architecture_kwargs,
        "input_shape": list(info.input_shape),
        "preprocessing": info.preprocessing,
        # config.SCHEMA_VERSION the metrics were computed under (2: mia_efficacy is the SVC MIA): a number
        # exported today is never read as one of an older definition.
        "schema": record["schema"],
        "metrics": {**flatten_metrics(record["metrics"]), "avg_gap": record["avg_gap"]},
        "original_metrics": reference_metrics("original"),
        "oracle_metrics": reference_metrics("oracle"),
        "unlearning": {"steps": record["steps"], "seconds": record["seconds"],
                       "diverged_at_step": record["diverged_at_step"], "device": record["device"]},
        "experiment_id": experiment.id,
        "config": config.to_dict(),
        "weights_sha256": record["weights_sha256"],
        "versions": {"python": platform.python_version(), **_package_versions()},
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def export_bytes(experiment: Experiment, method: str, value: float, seed: int) -> bytes:
    """The zip for one point, in memory (the app serves it as a download)."""
    card = model_card(experiment, method, value, seed)
    weights = cache.read_weight_bytes(experiment.point_entry(method, value, seed), card)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(WEIGHTS_NAME, weights)
        archive.writestr(CARD_NAME, json.dumps(strict(card), indent=2, allow_nan=False))  # NaN is not JSON: null
    return buffer.getvalue()


def export_point(experiment: Experiment, method: str, value: float, seed: int, out: str | os.PathLike) -> Path:
    """Writes the point's zip to `out`: a new path or a regular file (replaced atomically). A folder, a symlink, a
    FIFO or a device is refused (the atomic rename would replace a link or a pipe with a file); ValueError."""
    out = Path(out)
    try:
        status = os.lstat(out)
    except FileNotFoundError:
        status = None
    except OSError as err:
        raise ValueError(f"cannot write {out} ({err.strerror or err})") from None
    if status is not None and not stat.S_ISREG(status.st_mode):
        if stat.S_ISDIR(status.st_mode):
            raise ValueError(f"{out} is a folder; give the zip's file name, e.g. {out / 'point.zip'}")
        kind = "a symlink" if stat.S_ISLNK(status.st_mode) else "not a regular file (a FIFO, device or socket)"
        raise ValueError(f"{out} is {kind}; give a new path or a regular file to replace")
    cache_dir = experiment.root.parent.resolve()
    try:
        inside = (out.parent.resolve() / out.name).is_relative_to(cache_dir)
    except (OSError, RuntimeError) as err:  # a folder that is a link loop (RuntimeError before Python 3.13)
        raise ValueError(f"cannot write {out} ({err})") from None
    if inside:
        raise ValueError(f"{out} is inside the cache ({cache_dir}), whose files the tool manages; write the zip "
                         "somewhere else")
    data = export_bytes(experiment, method, value, seed)
    try:
        cache.atomic_write_bytes(out, data, None if status is None else stat.S_IMODE(status.st_mode))
    except OSError as err:  # not the cache: the user's own path
        raise ValueError(f"cannot write {out} ({err.strerror or err})") from None
    return out


MAX_CARD_BYTES = 1 * MiB  # a card is a few KB
MAX_HEADER_BYTES = 100 * MiB  # safetensors' own bound on a header
MAX_WEIGHTS_BYTES = 8 * GiB
MAX_INFLATION = 100  # safetensors weights barely compress; a member declaring more than this is a zip bomb
MAX_ARCHIVE_BYTES = MAX_WEIGHTS_BYTES + MAX_CARD_BYTES + MiB


def load_exported(path: str | os.PathLike | io.BytesIO, map_location: str | torch.device = "cpu"
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, card) from an exported zip; ValueError, and only ValueError, says what is wrong with a
    bad file. Before anything is allocated, the members' declared sizes are bounded and the model the card
    describes is built without storage (on the meta device) and checked against the weights' shapes."""
    where = "the exported zip" if isinstance(path, io.IOBase) else path  # how messages name it
    with contextlib.ExitStack() as stack:
        source = path if isinstance(path, io.IOBase) else \
            stack.enter_context(open_regular(path, "exported model", MAX_ARCHIVE_BYTES))
        with _zip_errors(where):
            archive = stack.enter_context(zipfile.ZipFile(source))
            card = json.loads(_member(archive, where, CARD_NAME, MAX_CARD_BYTES))
            with archive.open(WEIGHTS_NAME) as stream:  # the safetensors header first, a few KB inflated
                head = stream.read(8)
                head += stream.read(min(int.from_bytes(head.ljust(8, b"\0"), "little"), MAX_HEADER_BYTES))
            declared = archive.getinfo(WEIGHTS_NAME).file_size
        if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
            raise ValueError(f"{where}: model card format is {card.get('format') if isinstance(card, dict) else '?'!r}, "
                             f"expected {CARD_FORMAT!r}")
        # The header must account for the member's declared size exactly and fit the card's model, both before
        # the member is inflated: what is read and allocated is what the card's shapes need, never more.
        shapes = _safetensors_shapes(where, head, declared)
        try:
            with torch.device("meta"):  # parameters without storage: a card asking for 10^10 of them costs nothing
                skeleton = build_model(card["architecture"], card["architecture_kwargs"])
        except Exception as err:
            raise ValueError(f"{where}: the model card does not describe a buildable model ({type(err).__name__}: "
                             f"{err})") from None
        expected = {name: tuple(tensor.shape) for name, tensor in skeleton.state_dict().items()}
        if expected != shapes:
            differ = sorted(name for name in expected.keys() | shapes.keys() if expected.get(name) != shapes.get(name))
            raise ValueError(f"{where}: the weights do not fit the card's {card['architecture']} "
                             f"({', '.join(differ[:3])}{' …' if len(differ) > 3 else ''} differ)")
        with _zip_errors(where):
            weights = _member(archive, where, WEIGHTS_NAME, MAX_WEIGHTS_BYTES)
        if len(weights) != declared or not weights.startswith(head):
            raise ValueError(f"{where}: {WEIGHTS_NAME} changed while it was read")
    try:
        model = build_model(card["architecture"], card["architecture_kwargs"])
        model.load_state_dict(load_safetensors(weights))
    except Exception as err:
        raise ValueError(f"{where}: weights do not fit {card['architecture']} ({type(err).__name__}: {err})") from None
    return model.to(map_location).eval(), card


class _TooLarge(ValueError):
    """A member whose declared size is refused (its message is complete)."""


@contextlib.contextmanager
def _zip_errors(where: object) -> Iterator[None]:
    """Whatever reading the zip raises (BadZipFile, zlib.error, encrypted or unsupported members, EOFError, OSError,
    a missing member, a card nested too deeply), as one ValueError naming the file."""
    try:
        yield
    except _TooLarge:
        raise
    except RecursionError:
        raise ValueError(f"{where}: its model card is nested too deeply; not an exported model zip") from None
    except Exception as err:
        raise ValueError(f"{where}: not an exported model zip ({type(err).__name__}: {err})") from None


def _member(archive: zipfile.ZipFile, where: object, name: str, max_bytes: int) -> bytes:
    """A member's bytes, its declared size bounded before it is inflated (zipfile reads no more than it declares)."""
    info = archive.getinfo(name)  # KeyError: no such member
    if info.file_size > max_bytes or info.file_size > MAX_INFLATION * max(info.compress_size, 1) + 64 * 1024:
        raise _TooLarge(f"{where}: member {name} declares {info.file_size:,} bytes "
                         f"({info.compress_size:,} compressed); refused as too large for an exported model")
    return archive.read(info)


# Bytes per element of each safetensors dtype (its specification's names).
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
                "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8, "C64": 8}


def _safetensors_shapes(path: object, weights: bytes, size: int) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from a safetensors file's header, after checking that the header accounts for the
    file exactly: its tensors' data_offsets follow one another from 0, each spans its shape's elements times its
    dtype's size, and the last ends where the file (`size` bytes; `weights` may be its start, the header) does. A
    header declaring data that is not there (a 504-byte file claiming 245 MB of weights) is refused here, before
    anything is inflated or the model built."""
    try:
        length = int.from_bytes(weights[:8], "little")
        if not 2 <= length <= min(len(weights), size) - 8:
            raise ValueError("header length out of range")
        header = json.loads(weights[8:8 + length])
        if not isinstance(header, dict):
            raise ValueError("the header is not a table of tensors")
        tensors = sorted(((entry["data_offsets"], name, entry) for name, entry in header.items()
                          if name != "__metadata__"), key=lambda item: tuple(item[0]))
        end = 0
        for (start, stop), name, entry in tensors:
            shape = tuple(operator.index(n) for n in entry["shape"])
            if entry["dtype"] not in _DTYPE_BYTES or any(n < 0 for n in shape):
                raise ValueError(f"tensor {name[:80]!r} has dtype {str(entry['dtype'])[:20]!r} and shape {shape}")
            if operator.index(start) != end or operator.index(stop) - start != math.prod(shape) * _DTYPE_BYTES[entry["dtype"]]:
                raise ValueError(f"tensor {name[:80]!r}'s data_offsets [{start}, {stop}] do not follow the one before "
                                 "or do not span its shape")
            end = stop
        if 8 + length + end != size:
            raise ValueError(f"the header declares {end:,} bytes of tensor data, the file holds "
                             f"{size - 8 - length:,}")
        return {name: tuple(int(n) for n in entry["shape"]) for _, name, entry in tensors}
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as err:
        raise ValueError(f"{path}: {WEIGHTS_NAME} is not a safetensors file ({err})") from None
