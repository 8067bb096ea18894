"""A sweep's settings: one frozen dataclass, built from the CLI's options, a sweep file or the New experiment
page, and checked once, where it is made.

Each front end words a bad setting its own way: the library raises `SettingError`, whose message names
settings through placeholders, and `str()` words them as the CLI's options (`--data-root`), the library's
default front end; the app passes its own field labels to `SettingError.worded`. No front end rewrites
another's sentences.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Mapping

# Imported by the modules that train and load data, so it imports them only inside the functions that use them.
from .config import OPTIMIZERS, ExperimentConfig, Sources, check_seed

ENGINES = ("auto", "batched", "sequential")  # sweep.resolve_engine says what each does
EXECUTORS = ("local", "ray")
DEFAULT_POINTS = 21  # grid points per method when the user does not say
DEFAULT_MAX_MEMORY = 2 * 1024**3  # bytes the batched engine's stacked models, gradients and optimiser states may take
RECIPE_TABLES = ("train", "unlearn")  # whole recipes a sweep file may set as tables
UNLEARN_OVERRIDES = ("epochs", "lr", "batch_size", "optimizer")  # flat settings that override the [unlearn] table
_SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}


class _CliNames:
    """A setting's name as the `sweep` command's option."""

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):  # copy's and pickle's probes are not settings
            raise AttributeError(name)
        return "--" + name.replace("_", "-")


CLI_NAMES = _CliNames()


class SettingError(ValueError):
    """A setting that is wrong or missing. `template` is a sentence that names settings as {setting.NAME} and
    takes what it quotes (paths, values) as keyword arguments, so a quoted path with braces stays as it is."""

    def __init__(self, template: str, **quoted: Any) -> None:
        self.template, self.quoted = template, quoted
        super().__init__(self.worded(CLI_NAMES))

    def worded(self, names: Any) -> str:
        """The message with each setting named by `names` (an object whose attribute NAME is its word)."""
        return self.template.format(setting=names, **self.quoted)

    def __reduce__(self):  # a Ray task's error crosses processes with its template
        return _rebuild, (self.template, self.quoted)


def _rebuild(template: str, quoted: dict[str, Any]) -> SettingError:
    return SettingError(template, **quoted)


def memory_size(text: str | int) -> int:
    """A memory budget as bytes: an integer, or a size such as 512M or 4G."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        text = str(text)
        try:
            number, unit = (text[:-1], _SIZE_UNITS[text[-1].upper()]) if text[-1:].upper() in _SIZE_UNITS else (text, 1)
            value = int(float(number) * unit)  # inf: OverflowError; nan: ValueError
        except (ValueError, IndexError, OverflowError):
            raise SettingError("{setting.max_memory}: expected a size such as 512M or 4G, got {text!r}",
                               text=text) from None
    if value <= 0:
        raise SettingError("{setting.max_memory}: the memory budget must be positive, got {text!r}", text=text)
    return value


@dataclass(frozen=True)
class SweepSettings:
    """Everything a sweep is asked: which experiment, which points, and where and how to compute them.

    Unset (None) experiment settings take the data set's defaults. Equal settings are one request (the app
    checks and estimates a request once); recipe tables are kept as sorted (key, value) pairs so that the
    object hashes."""

    # The experiment (its id hashes what these resolve to; see config.py)
    dataset: str = "digits"  # one of data.DATASETS
    data_root: str | None = None  # folder of a torchvision data set or an ImageFolder tree (embedded sets: none)
    download: bool = False  # let torchvision fetch a missing data set into data_root (needs internet)
    image_size: int | None = None  # ImageFolder only: images are resized and centre-cropped to this many pixels
    split_seed: int = 0  # the train/test split of blobs, digits and an ImageFolder tree without train/ and test/
    forget_class: int | None = None  # forget this whole class; with no forget setting, the data set's default class
    forget_fraction: float | None = None  # or forget a seeded random share of the training set, in (0, 1)
    forget_seed: int = 0  # which random subset (with forget_fraction)
    forget_indices: str | tuple[int, ...] | None = None  # or the training samples listed in a file, or the indices
    model: str | None = None  # architecture (models.ARCHITECTURES or torchvision:<name>); None: the data set's
    checkpoint: str | None = None  # the user's trained original (.safetensors, or a .pt state dict) for `model`
    oracle: bool = True  # retrain the oracle on the retain set (class-wise forgetting can skip it)
    train: tuple[tuple[str, Any], ...] = ()  # TrainRecipe fields to override
    unlearn: tuple[tuple[str, Any], ...] = ()  # UnlearnRecipe fields to override (the flat settings below win)
    epochs: int | None = None  # unlearning epochs; None: the data set's recipe
    lr: float | None = None  # unlearning learning rate; None: the recipe's
    lrs: tuple[float, ...] | None = None  # or pool each method over these learning rates (pool.py), one experiment each
    batch_size: int | None = None  # unlearning batch size (forget and retain batches)
    optimizer: str | None = None  # unlearning base optimiser, one of config.OPTIMIZERS; None: the recipe's
    # The points
    methods: tuple[str, ...] = ("cup",)  # method names (methods.METHODS)
    grid: tuple[float, ...] | None = None  # the knob values of a single method; None: `points` values per method
    points: int = DEFAULT_POINTS  # values per method, calibrated on the experiment where a knob has no intrinsic range
    seeds: tuple[int, ...] = (0,)  # unlearning seeds
    calibrate: bool = True  # False: lay each grid evenly over the method's fixed default range
    # Where and how to compute them
    device: str = "auto"  # auto, cpu, cuda or cuda:N; on Ray, each task's (auto: a GPU where the cluster has one)
    engine: str = "auto"  # one of ENGINES
    executor: str = "local"  # one of EXECUTORS: this process, or one Ray task per point
    ray_address: str | None = None  # the Ray cluster to join; None: $RAY_ADDRESS, a cluster here, or a new one
    max_memory: int = DEFAULT_MAX_MEMORY  # bytes per chunk of batched points
    cache_dir: str | None = None  # None: $CUP_CACHE_DIR or ./cache

    def __post_init__(self) -> None:
        from .data import check_data_root
        from .methods import METHODS, get_method

        check_data_root(self.dataset, self.data_root)  # an unknown data set is said first, then a missing root
        forgets = [name for name in ("forget_class", "forget_fraction", "forget_indices")
                   if getattr(self, name) is not None]
        if len(forgets) > 1:
            raise SettingError("give one forget set, not " + " and ".join(f"{{setting.{name}}}" for name in forgets))
        if not self.methods:
            raise SettingError("no method chosen in {setting.methods}; choose at least one of: {known}",
                               known=", ".join(METHODS))
        for name in self.methods:
            get_method(name)
        if self.grid is not None:
            if len(self.methods) != 1:
                raise SettingError("{setting.grid} applies to a single method; use {setting.points} with several")
            if not self.grid:
                raise SettingError("{setting.grid} is empty; give comma-separated values such as 0,0.5,1")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise SettingError("{setting.points} must be a whole number of at least 1, got {points!r}",
                               points=self.points)
        if not self.seeds:
            raise SettingError("no seed chosen in {setting.seeds}; choose at least one unlearning seed")
        object.__setattr__(self, "seeds", tuple(check_seed(seed, "an unlearning seed") for seed in self.seeds))
        if self.lrs is not None:
            from .pool import check_lrs

            if self.lr is not None:
                raise SettingError("give {setting.lr} or {setting.lrs}, not both (lrs pools several learning rates)")
            object.__setattr__(self, "lrs", check_lrs(self.lrs))
        for name, choices in (("engine", ENGINES), ("executor", EXECUTORS), ("optimizer", OPTIMIZERS)):
            value = getattr(self, name)
            if value is not None and value not in choices:
                raise SettingError(f"{{setting.{name}}} must be one of {', '.join(choices)}, got {{value!r}}",
                                   value=value)
        object.__setattr__(self, "max_memory", memory_size(self.max_memory))  # 4G and 4294967296 are one setting

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SweepSettings:
        """Settings from plain values (a sweep file's keys, the CLI's options): lists become tuples, a comma list
        or 'all' of methods their names, one seed a tuple, a recipe table sorted pairs."""
        from .methods import parse_methods

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingError("unknown setting {names}; known: {known}", names=", ".join(unknown),
                               known=", ".join(sorted(known)))
        settings = dict(values)
        methods = settings.get("methods")
        if isinstance(methods, str):
            settings["methods"] = parse_methods(methods)
        elif isinstance(methods, (list, tuple)):
            settings["methods"] = parse_methods(",".join(methods))
        if isinstance(settings.get("seeds"), int):
            settings["seeds"] = (settings["seeds"],)
        for name in ("seeds", "grid", "lrs", "forget_indices"):
            if isinstance(settings.get(name), list):
                settings[name] = tuple(settings[name])
        for table in RECIPE_TABLES:
            if isinstance(settings.get(table), Mapping):
                settings[table] = tuple(sorted(settings[table].items()))
        return cls(**settings)

    @property
    def sources(self) -> Sources:
        """Where the inputs are on this machine (not part of the experiment's identity)."""
        return Sources(data_root=(self.data_root or "").strip() or None, checkpoint=self.checkpoint,
                       download=self.download)

    def experiment_config(self, sources: Sources | None = None) -> ExperimentConfig:
        """The experiment these settings describe, with what its data files decide recorded (it reads the data
        of a torchvision set or an ImageFolder, downloading it where asked); ValueError says what is wrong."""
        from .checkpoints import file_sha256
        from .data import default_config, read_indices, resolve_config

        sources = self.sources if sources is None else sources
        indices = self.forget_indices
        if isinstance(indices, (str, os.PathLike)):
            indices = read_indices(indices)
        indices = None if indices is None else tuple(indices)
        original_sha256 = file_sha256(sources.checkpoint) if sources.checkpoint else None
        config = default_config(self.dataset, forget_class=self.forget_class, forget_fraction=self.forget_fraction,
                                forget_seed=self.forget_seed, forget_indices=indices,
                                model=self.model, original_sha256=original_sha256, oracle=self.oracle,
                                image_size=self.image_size)
        recipes = {table: dataclasses.replace(getattr(config, table), **dict(getattr(self, table)))
                   for table in RECIPE_TABLES}
        overrides = {name: getattr(self, name) for name in UNLEARN_OVERRIDES if getattr(self, name) is not None}
        recipes["unlearn"] = dataclasses.replace(recipes["unlearn"], **overrides)  # each recipe checks its settings
        config = dataclasses.replace(config, split_seed=self.split_seed, **recipes)
        return resolve_config(config, sources)

    def plan(self):
        """The points to compute: the single method's grid, or `points` values per method."""
        from .sweep import SweepPlan

        if self.grid is not None:
            return SweepPlan({self.methods[0]: self.grid}, self.seeds)
        return SweepPlan.default(self.methods, self.points, self.seeds, calibrate=self.calibrate)

