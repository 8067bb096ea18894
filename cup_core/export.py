"""A chosen point as a self-describing zip: weights as safetensors plus a JSON model card.

`load_exported` rebuilds the model from the card's architecture name and constructor arguments and
loads the weights with safetensors: nothing in the file is ever unpickled.
"""

from __future__ import annotations

import io
import json
import os
import platform
import zipfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from . import cache
from ._json import strict
from .experiment import Experiment, _flatten_metrics
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
            return _flatten_metrics(experiment.reference(role)["metrics"])
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
        "metrics": {**_flatten_metrics(record["metrics"]), "avg_gap": record["avg_gap"]},
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
    out = Path(out)
    cache.atomic_write_bytes(out, export_bytes(experiment, method, value, seed))
    return out


def load_exported(path: str | os.PathLike | io.BytesIO, map_location: str | torch.device = "cpu"
                  ) -> tuple[nn.Module, dict[str, Any]]:
    """(model in eval mode, card) from an exported zip; ValueError says what is wrong with a bad file."""
    try:
        with zipfile.ZipFile(path) as archive:
            card = json.loads(archive.read(CARD_NAME))
            weights = archive.read(WEIGHTS_NAME)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not an exported model zip ({err})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise ValueError(f"{path}: model card format is {card.get('format') if isinstance(card, dict) else '?'!r}, "
                         f"expected {CARD_FORMAT!r}")
    try:
        model = build_model(card["architecture"], card["architecture_kwargs"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: the model card does not describe a buildable model ({err!r})") from None
    try:
        model.load_state_dict(load_safetensors(weights))
    except Exception as err:
        raise ValueError(f"{path}: weights do not fit {card['architecture']} ({err})") from None
    return model.to(map_location).eval(), card
