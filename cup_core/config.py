"""Experiment configuration: frozen dataclasses whose canonical JSON is what cache keys hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# Bump when a cached entry's meaning or layout changes: older entries (and tables rows) are then reported
# and recomputed in their experiment's folder. 2: mia_efficacy is the literature's SVC attack, and blobs
# the CUP authors' toy data.
SCHEMA_VERSION = 2
# The first release's schema, hashed into every experiment id. Fixed: a bump recomputes an experiment's
# entries in its own folder rather than orphan the folder under a new id.
ID_SCHEMA = 1

OptimizerName = Literal["sgd", "adam"]


def _floats(recipe: Any, what: str, *names: str) -> None:
    """Number fields as floats: 1 and 1.0 (an integer in a sweep file) must hash as one experiment. NaN and
    infinities are refused here, naming the setting (the config's JSON, which the id hashes, has no form for them)."""
    for name in names:
        value = getattr(recipe, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer beyond float's range
                value = math.inf
            if not math.isfinite(value):
                raise ValueError(f"{what} {name.replace('_', ' ')} must be a finite number, got {value!r}")
            object.__setattr__(recipe, name, value)


# The largest float32: weights, learning rates and gradient weights are float32 tensors; a rate or weight beyond this
# is infinite there (one engine would record a diverged run at step 0, another at step 1, torch's optimiser refuse it).
FLOAT32_MAX = 3.4028234663852886e38
# Counts (epochs, batch sizes) beyond this are no setting anyone means; torch's sizes are 64-bit and overflow first.
MAX_COUNT = 2**31 - 1
OPTIMIZERS = ("sgd", "adam")
MAX_IMAGE_SIZE = 4096  # pixels a side: an ImageFolder experiment's resize


def _check_recipe(recipe: Any, table: str) -> None:
    """A recipe's settings, checked where it is made (a sweep file, the CLI, the New page, a cached config.json):
    ValueError naming the setting and what it takes."""
    for name in ("epochs", "batch_size"):
        value = getattr(recipe, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{table} {name.replace('_', '-')} must be a whole number, got {value!r}")
        if value < 1:
            raise ValueError(f"{table} {name.replace('_', '-')} must be at least 1, got {value}")
        if value > MAX_COUNT:
            raise ValueError(f"{table} {name.replace('_', '-')} must be at most {MAX_COUNT:,}, got {value:,}")
    for name in ("lr", "momentum", "weight_decay"):
        value = getattr(recipe, name)
        if not isinstance(value, float):
            raise ValueError(f"{table} {name.replace('_', ' ')} must be a number, got {value!r}")
    if not 0 < recipe.lr <= FLOAT32_MAX:
        raise ValueError(f"{table} lr must be a positive number at most {FLOAT32_MAX:.4g} (float32's largest), got "
                         f"{recipe.lr:g}")
    for name in ("momentum", "weight_decay"):
        if not 0 <= getattr(recipe, name) <= FLOAT32_MAX:
            raise ValueError(f"{table} {name.replace('_', ' ')} must be between 0 and {FLOAT32_MAX:.4g} (float32's "
                             f"largest), got {getattr(recipe, name):g}")
    if recipe.optimizer not in OPTIMIZERS:
        raise ValueError(f"{table} optimizer must be sgd or adam, got {str(recipe.optimizer)[:40]!r}")


# Seeds seed torch's generators and scikit-learn's random_state (the split), which takes 0 .. 2**32 - 1; results.csv
# and the app's tables keep them as 64-bit integers. One bound for every seed keeps the pipeline whole.
MAX_SEED = 2**32 - 1


def check_seed(value: Any, what: str) -> int:
    """`value` as a seed; ValueError naming `what` when it is not an integer in 0 .. MAX_SEED."""
    try:
        seed = operator.index(value)  # int and numpy integers; not floats, strings or bools
    except TypeError:
        seed = None
    if seed is None or isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{what} must be between 0 and {MAX_SEED:,} (2**32 - 1), got {seed}")
    return seed


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

    def __post_init__(self) -> None:
        _floats(self, "training", "lr", "momentum", "weight_decay")
        _check_recipe(self, "train")
        check_seed(self.seed, "the training seed")


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

    def __post_init__(self) -> None:
        _floats(self, "unlearning", "lr", "momentum", "weight_decay")
        _check_recipe(self, "unlearn")

    def describe(self) -> str:
        epochs = f"{self.epochs} epoch{'' if self.epochs == 1 else 's'}"
        return f"{epochs}, {self.optimizer.upper()} lr {self.lr:g}, batch {self.batch_size}"


@dataclass(frozen=True)
class ForgetSet:
    """Which training samples are to be forgotten: a whole class, a seeded random fraction, or listed indices.

    Listed indices count as random-subset forgetting for the metrics and the hypervolume (spec §5): the forget
    set shares its classes with the retain set."""

    forget_class: int | None = 0  # class-wise forgetting of this class
    fraction: float | None = None  # random-subset forgetting of this share of the training set
    seed: int = 0  # which random subset (random-subset forgetting only)
    indices: tuple[int, ...] | None = None  # positions in the training split (e.g. from --forget-indices FILE)

    def __post_init__(self) -> None:
        if self.forget_class is not None and (not isinstance(self.forget_class, int) or
                                              isinstance(self.forget_class, bool) or self.forget_class < 0):
            raise ValueError(f"the forget class must be a class number (0, 1, ...), got {self.forget_class!r}")
        if self.fraction is not None:
            _floats(self, "the forget", "fraction")
            if not isinstance(self.fraction, float):
                raise ValueError(f"the forget fraction must be a number, got {self.fraction!r}")
        check_seed(self.seed, "the forget seed")
        if self.indices is not None:
            if self.forget_class is not None or self.fraction is not None:
                raise ValueError("a listed forget set has no class or fraction: give forget_class=None")
            object.__setattr__(self, "indices", tuple(sorted(int(i) for i in self.indices)))

    @property
    def kind(self) -> Literal["class", "random"]:
        return "class" if self.forget_class is not None else "random"

    def describe(self) -> str:
        if self.kind == "class":
            return f"class {self.forget_class}"
        if self.indices is not None:
            return f"{len(self.indices):,} listed samples (indices {stable_hash(list(self.indices), 8)})"
        return f"random {self.fraction:.0%} of the training set (seed {self.seed})"


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines an experiment's models and points, except the swept knob and seed.

    Where the inputs live on a machine (the data root, the checkpoint's path) is not part of it: see
    `Sources`. A user's checkpoint enters by its SHA-256, so the same weights anywhere are one experiment."""

    dataset: str = "digits"  # an embedded set ("blobs", "digits") or a torchvision one (see data.DATASETS)
    forget: ForgetSet = field(default_factory=ForgetSet)
    split_seed: int = 0  # the fixed train/test split (and the blobs' sampling)
    train: TrainRecipe = field(default_factory=TrainRecipe)
    unlearn: UnlearnRecipe = field(default_factory=UnlearnRecipe)
    model: str | None = None  # architecture name (models.py); None: the data set's default
    original_sha256: str | None = None  # the user's checkpoint that is the original; None: trained by `train`
    oracle: bool = True  # False: no retrained oracle (class-wise only; gap metrics are then empty)
    image_size: int | None = None  # ImageFolder only: images are resized and centre-cropped to this size
    classes: tuple[str, ...] | None = None  # ImageFolder only: the class folders, in label order
    split: str | None = None  # torchvision sets: which files or folders were the train and test splits
    # Data read from a data root: the SHA-256 of its files' paths and contents (vision.content_sha256), so that
    # relabelled or cleaned files are another experiment. None for the embedded sets, whose content the code and
    # the split seed fix (their ids are the first release's), and for experiments made before it was recorded.
    data_sha256: str | None = None

    def __post_init__(self) -> None:
        check_seed(self.split_seed, "the split seed")
        # Types checked here, so that a config.json from elsewhere is refused when opened rather than failing (or
        # showing its strings as something else) later; what the names mean is checked by data.experiment_info.
        for name in ("dataset", "model", "original_sha256", "split", "data_sha256"):
            value = getattr(self, name)
            if not (isinstance(value, str) or (value is None and name != "dataset")):
                raise ValueError(f"{name} must be a name, got {str(value)[:80]!r}")
        for name in ("original_sha256", "data_sha256"):
            value = getattr(self, name)
            if value is not None and not (len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
                raise ValueError(f"{name} must be a SHA-256 in hex, got {value[:80]!r}")
        if not isinstance(self.oracle, bool):
            raise ValueError(f"oracle must be true or false, got {self.oracle!r}")
        if self.image_size is not None and not (isinstance(self.image_size, int) and not isinstance(self.image_size, bool)
                                                and 1 <= self.image_size <= MAX_IMAGE_SIZE):
            raise ValueError(f"the image size must be a whole number of pixels from 1 to {MAX_IMAGE_SIZE}, got "
                             f"{str(self.image_size)[:80]!r}")
        if self.classes is not None:
            if isinstance(self.classes, str) or not all(isinstance(name, str) for name in self.classes):
                raise ValueError("classes must be a list of class folder names")
            object.__setattr__(self, "classes", tuple(self.classes))

    def to_dict(self) -> dict[str, Any]:
        """Fields added after the first release are left out at their defaults, so that the experiments
        cached before them keep their ids."""
        data = dataclasses.asdict(self)
        for name, default in _LATER_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        if data["forget"]["indices"] is None:
            del data["forget"]["indices"]
        else:
            data["forget"]["indices"] = list(data["forget"]["indices"])
        if data.get("classes") is not None:
            data["classes"] = list(data["classes"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        try:
            return cls(
                dataset=data["dataset"],
                forget=ForgetSet(**data["forget"]),
                split_seed=data["split_seed"],
                train=TrainRecipe(**data["train"]),
                unlearn=UnlearnRecipe(**data["unlearn"]),
                **{name: data[name] for name in _LATER_DEFAULTS if name in data},
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"not an experiment config ({err}); was it written by another version?") from None

    def canonical_json(self) -> str:
        return canonical_json(self.to_dict())

    @property
    def experiment_id(self) -> str:
        """Short hash of the canonical config (and ID_SCHEMA): the experiment's folder name."""
        return stable_hash({"schema": ID_SCHEMA, "config": self.to_dict()})


_FIRST_RELEASE_FIELDS = ("dataset", "forget", "split_seed", "train", "unlearn")
_LATER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ExperimentConfig) if f.name not in _FIRST_RELEASE_FIELDS}


@dataclass(frozen=True)
class Sources:
    """Where an experiment's inputs are on this machine. Not part of its identity, so a cache computed on a
    cluster opens on a laptop; each sweep records the ones it used beside the experiment (sources.json)."""

    data_root: str | None = None  # folder of a torchvision data set or an ImageFolder tree
    checkpoint: str | None = None  # the user's original weights (.safetensors or .pt)
    download: bool = False  # let torchvision fetch a missing data set into data_root (needs internet)

    def __post_init__(self) -> None:
        # Absolute, so that sources.json, another working directory and Ray's workers all find the files.
        for name in ("data_root", "checkpoint"):
            value = getattr(self, name)
            if value:
                try:
                    object.__setattr__(self, name, str(Path(value).expanduser().resolve()))
                except (RuntimeError, OSError) as err:  # a symlink loop (RuntimeError before Python 3.13)
                    raise ValueError(f"{value}: cannot resolve the {name.replace('_', ' ')} ({err}); give the "
                                     "path of a real folder or file, not a link that loops") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sources:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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


def same_knob(values, value: float):
    """Where `values` (a knob value, or a table's column of them: canonical, as every table holds them) is the
    knob value `value`: exact equality once `value` is canonical, the one way knob values are matched. A value
    that is no knob value (NaN, infinite) matches nothing."""
    value = float(value)
    return values == (canonical_value(value) if math.isfinite(value) else value)
