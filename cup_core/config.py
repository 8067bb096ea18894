"""Experiment configuration: frozen dataclasses whose canonical JSON is what cache keys hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

# Bump when a cached entry's meaning or layout changes: old entries then miss and are recomputed.
SCHEMA_VERSION = 1

OptimizerName = Literal["sgd", "adam"]


@dataclass(frozen=True)
class TrainRecipe:
    """How the original model (all training data) and the oracle (retain set only) are trained."""

    epochs: int = 30  # passes over the training set
    lr: float = 1e-3  # learning rate of the base optimiser
    batch_size: int = 64  # samples per step; larger than the set means full-batch
    optimizer: OptimizerName = "adam"  # "adam" or "sgd"
    momentum: float = 0.9  # SGD momentum (ignored by Adam)
    weight_decay: float = 0.0  # L2 weight decay of the base optimiser
    seed: int = 0  # initialisation and shuffling of the original and the oracle


@dataclass(frozen=True)
class UnlearnRecipe:
    """How one unlearning run steps: the base optimiser that consumes each method's direction.

    The defaults are the paper's classification setup; `data.default_config` gives each embedded data
    set the recipe that shows its trade-off best.
    """

    epochs: int = 5  # passes over the zipped (forget, retain) batches: min(#forget batches, #retain batches) steps each
    lr: float = 1e-3  # learning rate of the base optimiser
    batch_size: int = 256  # samples per forget batch and per retain batch
    optimizer: OptimizerName = "sgd"  # the paper's classification runs use SGD with momentum
    momentum: float = 0.9  # SGD momentum (ignored by Adam)
    weight_decay: float = 5e-4  # the paper's weight decay

    def describe(self) -> str:
        return f"{self.epochs} epochs, {self.optimizer.upper()} lr {self.lr:g}, batch {self.batch_size}"


@dataclass(frozen=True)
class ForgetSet:
    """Which training samples are to be forgotten: a whole class, or a seeded random fraction."""

    forget_class: int | None = 0  # class-wise forgetting of this class
    fraction: float | None = None  # random-subset forgetting of this share of the training set
    seed: int = 0  # which random subset (random-subset forgetting only)

    @property
    def kind(self) -> Literal["class", "random"]:
        return "class" if self.forget_class is not None else "random"

    def describe(self) -> str:
        if self.kind == "class":
            return f"class {self.forget_class}"
        return f"random {self.fraction:.0%} of the training set (seed {self.seed})"


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's models and points, except the swept knob and seed."""

    dataset: str = "digits"  # "blobs" or "digits"
    forget: ForgetSet = field(default_factory=ForgetSet)
    split_seed: int = 0  # the fixed train/test split (and the blobs' sampling)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    unlearn: UnlearnRecipe = field(default_factory=UnlearnRecipe)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        try:
            return cls(
                dataset=data["dataset"],
                forget=ForgetSet(**data["forget"]),
                split_seed=data["split_seed"],
                train=TrainRecipe(**data["train"]),
                unlearn=UnlearnRecipe(**data["unlearn"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not an experiment config ({err}); was it written by another version?") from None

    def canonical_json(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def experiment_id(self) -> str:
        """Short hash of the canonical config and the schema version: the experiment's folder name."""
        return stable_hash({"schema": SCHEMA_VERSION, "config": self.to_dict()})


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no spaces, so that equal data always hash equally."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(data: Any, length: int = 12) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:length]


def canonical_value(value: float) -> float:
    """Knob values keep 6 significant digits, so that 0.15000000000000002 and 0.15 are one point
    while learning rates such as 3.16228e-06 stay distinct."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a knob value must be a finite number, got {value!r}")
    return float(f"{value:.6g}") + 0.0  # + 0.0 turns -0.0 into 0.0
