"""A vs B: what one cached model does, class by class and sample by sample, to explain a point of the frontier.

Everything here reads a model from the cache (its weights checked against their SHA-256) and the experiment's
data; nothing trains. `explain` returns plain arrays (per-class accuracy, confusion matrix, which forget samples
the model still gets right, the membership attack's inputs and verdicts, a 2-D projection of the penultimate
layer's features) and caches them under the experiment, named by the weights' hash, so a recomputed point is
explained again and an unchanged one is read back in milliseconds.

(Not `inspect.py`: run as a script from inside cup_core/, that name would hide the standard library's module.)
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from . import cache
from .config import canonical_value
from .data import UnlearningData, load_unlearning_data
from .experiment import ROLES, Experiment
from .metrics import (MIA_MAX_PER_SIDE, fit_mia_attacker, mia_efficacy, per_class_accuracy, predict_proba,
                      quantile_sample, true_class_confidence)

EXPLAIN_FORMAT = 1  # bump when a stored field changes meaning: older files are computed again
PROJECTIONS = ("pca", "tsne")
EMBEDDING_MAX = 1200  # samples projected (test set, then forget set), evenly thinned beyond
FORGET_SHOWN_MAX = 400  # forget samples whose inputs are stored for the picture
DECISION_GRID = 401  # confidences at which the attacker's verdict is tabulated, 0 … 1
PCA_SEED = 0  # t-SNE's and randomised PCA's seed: the same picture every time

_PIN = re.compile(r"^(?P<method>[a-z0-9_+\-]{1,32}):(?P<value>[-+0-9.eE]{1,32}):(?P<seed>[0-9]{1,6})$")


@dataclass(frozen=True)
class Pin:
    """A model of an experiment to explain: a point (method, knob value, seed), or the original or the oracle.

    Its text form (`str(pin)`, `Pin.parse`) is what the URL holds: "original", "oracle" or "cup:0.5:0"."""

    role: Literal["point", "original", "oracle"]
    method: str | None = None
    value: float | None = None
    seed: int | None = None

    @classmethod
    def point(cls, method: str, value: float, seed: int) -> Pin:
        return cls("point", str(method), canonical_value(float(value)), int(seed))

    @classmethod
    def parse(cls, text: str | None) -> Pin | None:
        """The pin a text names, or None for anything else (a hostile or damaged URL names nothing)."""
        if not isinstance(text, str):
            return None
        if text in ROLES:
            return cls(text)  # type: ignore[arg-type]
        match = _PIN.fullmatch(text)
        if match is None:
            return None
        try:
            value = float(match["value"])
        except ValueError:
            return None
        return cls.point(match["method"], value, int(match["seed"])) if math.isfinite(value) else None

    def __str__(self) -> str:
        return self.role if self.role != "point" else f"{self.method}:{self.value:.6g}:{self.seed}"

    @property
    def slug(self) -> str:
        """A file-name part: the point folder's name, or the role."""
        return self.role if self.role != "point" else f"{self.method}-{self.value:.6g}-seed{self.seed}"


def is_cached(experiment: Experiment, pin: Pin) -> bool:
    """Whether the pinned model is in the cache (metadata only; its weights are hashed when loaded)."""
    if pin.role == "point":
        return experiment.point_cached(pin.method, pin.value, pin.seed)
    return pin.role in experiment.roles and experiment.reference_cached(pin.role)


def weights_sha256(experiment: Experiment, pin: Pin) -> str:
    """The SHA-256 its record gives the pinned model's weights; raises cache.BrokenEntry when not cached."""
    if pin.role == "point":
        return experiment.point_record(pin.method, pin.value, pin.seed)["weights_sha256"]
    return experiment.reference(pin.role)["weights_sha256"]


def load_pinned(experiment: Experiment, pin: Pin) -> nn.Module:
    """The pinned model with its weights verified (cache.load_entry); raises cache.BrokenEntry."""
    if pin.role == "point":
        return experiment.load_model(pin.method, pin.value, pin.seed)
    return experiment.load_reference_model(pin.role)


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """(N, F): the input of the model's last linear layer (its classifier head) for each sample, in eval mode."""
    heads = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no linear layer whose input could be the features")
    seen: list[torch.Tensor] = []
    hook = heads[-1].register_forward_hook(lambda _module, inputs, _output: seen.append(inputs[0].detach().cpu()))
    try:
        model.eval()
        for chunk in x.split(batch):
            model(chunk)
    finally:
        hook.remove()
    return torch.cat(seen).reshape(len(x), -1).double().numpy() if seen else np.zeros((0, 0))


def project(features: np.ndarray, projection: str = "pca") -> np.ndarray:
    """(N, 2): `features` projected by scikit-learn's PCA or t-SNE (seeded; PCA's sign fixed so that each axis's
    largest loading is positive, the same picture whatever the solver's sign)."""
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; choose one of {', '.join(PROJECTIONS)}")
    n = len(features)
    if n < 3 or features.shape[1] < 2 or not np.isfinite(features).all():
        return np.zeros((n, 2))  # too few samples, one feature, or a diverged model: nothing to spread out
    if projection == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=PCA_SEED,
                    max_iter=500).fit_transform(features)
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=PCA_SEED).fit(features)
    signs = np.sign(pca.components_[np.arange(2), np.abs(pca.components_).argmax(axis=1)])
    return pca.transform(features) * np.where(signs == 0, 1.0, signs)


def confusion_matrix(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """(C, C) int64: row = true class, column = predicted class (a sample with non-finite outputs in no column)."""
    finite = torch.isfinite(probs).all(dim=1)
    predicted, truth = probs.argmax(dim=1)[finite].numpy(), labels.cpu()[finite].numpy()
    return np.bincount(truth * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def _thinned(n: int, limit: int) -> np.ndarray:
    """Evenly spaced indices of at most `limit` of n samples (all of them when n ≤ limit)."""
    return np.arange(n) if n <= limit else np.linspace(0, n - 1, limit).round().astype(np.int64)


def explain_model(model: nn.Module, data: UnlearningData, projection: str = "pca") -> dict[str, Any]:
    """What `explain` stores, computed from a model and the experiment's data (no cache involved)."""
    num_classes = data.info.num_classes
    probs = {name: predict_proba(model, part) for name, part in
             (("forget", data.forget), ("retain", data.retain), ("test", data.test), ("full_test", data.full_test))}
    confidence = {name: true_class_confidence(probs[name], part.y) for name, part in
                  (("forget", data.forget), ("retain", data.retain), ("test", data.test))}
    members, non_members = confidence["retain"], confidence["test"]
    grid = np.linspace(0.0, 1.0, DECISION_GRID)
    verdict = np.full(DECISION_GRID, -1, dtype=np.int64)  # 1: member, 0: non-member, -1: no attacker
    attacker = fit_mia_attacker(members, non_members)
    if attacker is not None:
        verdict = attacker.predict(grid.reshape(-1, 1)).astype(np.int64)
    forget_predicted = probs["forget"].argmax(dim=1)
    forget_correct = ((forget_predicted == data.forget.y.cpu()) & torch.isfinite(probs["forget"]).all(dim=1)).numpy()
    test_at = _thinned(len(data.full_test), EMBEDDING_MAX * 2 // 3)
    forget_at = _thinned(len(data.forget), EMBEDDING_MAX - len(test_at))
    x = torch.cat([data.full_test.x[test_at], data.forget.x[forget_at]])
    features = penultimate_features(model, x.to(next(model.parameters()).device))
    return {
        "num_classes": num_classes,
        "per_class_acc": np.array(per_class_accuracy(probs["full_test"], data.full_test.y, num_classes)),
        "confusion": confusion_matrix(probs["full_test"], data.full_test.y, num_classes),
        "forget_correct": forget_correct,
        "forget_predicted": forget_predicted.numpy(),
        "forget_confidence": confidence["forget"],
        # The attack's inputs, each side stood for by at most MIA_MAX_PER_SIDE quantiles (as the attacker sees it)
        "mia_members": quantile_sample(members, min(len(members), MIA_MAX_PER_SIDE)),
        "mia_non_members": quantile_sample(non_members, min(len(non_members), MIA_MAX_PER_SIDE)),
        "mia_forget": confidence["forget"],
        "mia_grid": grid,
        "mia_verdict": verdict,
        "mia_efficacy": np.float64(mia_efficacy(members, non_members, confidence["forget"])),
        "embedding": project(features, projection),
        "embedding_labels": torch.cat([data.full_test.y[test_at], data.forget.y[forget_at]]).numpy(),
        "embedding_forget": np.concatenate([np.zeros(len(test_at), bool), np.ones(len(forget_at), bool)]),
        "projection": np.array(projection),
    }


def forget_samples(data: UnlearningData) -> dict[str, np.ndarray]:
    """The forget set's inputs for pictures (2-D points, or images (N, C, H, W)) with their labels: the first
    FORGET_SHOWN_MAX, the same samples `explain`'s forget_correct starts with."""
    shown = slice(0, FORGET_SHOWN_MAX)
    return {"x": data.forget.x[shown].numpy(), "y": data.forget.y[shown].numpy(),
            "retain_x": data.retain.x[_thinned(len(data.retain), 800)].numpy() if data.forget.x.dim() == 2 else
            np.zeros((0, 2))}


def _path(experiment: Experiment, pin: Pin, digest: str, projection: str):
    return experiment.root / "explained" / f"{pin.slug}-{digest[:16]}-{projection}-v{EXPLAIN_FORMAT}.npz"


def _read(path) -> dict[str, Any] | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            found = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, KeyError):
        return None
    return found


def explain(experiment: Experiment, pin: Pin, projection: str = "pca", data: UnlearningData | None = None,
            device: torch.device = torch.device("cpu")) -> dict[str, Any]:
    """`explain_model` of the pinned model, computed once and cached under the experiment (explained/, written
    atomically, named by the weights' hash and the projection). Raises cache.BrokenEntry when the model is not
    cached, ValueError when the data cannot be read here (a data set from a folder elsewhere)."""
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection {projection!r}; choose one of {', '.join(PROJECTIONS)}")
    digest = weights_sha256(experiment, pin)
    path = _path(experiment, pin, digest, projection)
    if (stored := _read(path)) is not None:
        return _unpacked(stored)
    with cache.locked(path):
        if (stored := _read(path)) is not None:  # another session computed it while we waited
            return _unpacked(stored)
        model = load_pinned(experiment, pin).to(device)
        data = (data or load_unlearning_data(experiment.config, experiment.sources())).to(device)
        with experiment.threads(device):
            result = explain_model(model, data, projection)
        result["weights_sha256"] = np.array(digest)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{name: np.asarray(value) for name, value in result.items()})
        cache.refuse_links(path)
        cache.atomic_write_bytes(path, buffer.getvalue())
    return _unpacked(_read(path) or {name: np.asarray(value) for name, value in result.items()})


def _unpacked(stored: dict[str, np.ndarray]) -> dict[str, Any]:
    """Arrays as stored; 0-d ones back to Python scalars and strings."""
    return {name: (value.item() if value.ndim == 0 else value) for name, value in stored.items()}


def forget_agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, int]:
    """How many forget samples both models, only A, only B or neither still classify correctly."""
    first, second = np.asarray(a["forget_correct"], bool), np.asarray(b["forget_correct"], bool)
    return {"both": int((first & second).sum()), "only A": int((first & ~second).sum()),
            "only B": int((~first & second).sum()), "neither": int((~first & ~second).sum())}
