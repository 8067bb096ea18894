"""The data sets and the forget/retain/test split.

Two are embedded and never downloaded (five 2-D blobs, scikit-learn's digits); the torchvision ones
(MNIST, Fashion-MNIST, CIFAR-10/100, SVHN, any ImageFolder tree) are read from a local folder by vision.py."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ._files import MiB, read_regular
from .config import ExperimentConfig, ForgetSet, Sources
from .labelled import LabelledSet
from .settings import SettingError
from .vision import VISION_DATASETS, preprocessing


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a data set's inputs, and what the model card records."""

    name: str
    num_classes: int
    input_shape: tuple[int, ...]  # one sample, without the batch dimension
    architecture: str  # the default model for it (see models.py)
    preprocessing: str  # how raw samples become the model's inputs
    default_forget_class: int
    default_train_recipe: dict  # overrides of TrainRecipe's defaults
    default_unlearn_recipe: dict  # overrides of UnlearnRecipe's defaults
    embedded: bool = True  # False: read from the user's data root (vision.py)


DATASETS: dict[str, DatasetInfo] = {
    "blobs": DatasetInfo(
        name="blobs",
        num_classes=5,
        input_shape=(2,),
        architecture="mlp",
        preprocessing="raw 2-D coordinates of the CUP authors' 5 Gaussian blobs (their notebook's make_blobs)",
        default_forget_class=2,
        # The paper's toy: Adam, lr 0.01, 100 full-batch epochs; then 20 full-batch CUP steps, Adam, lr 0.01.
        default_train_recipe=dict(epochs=100, lr=0.01, batch_size=100_000, optimizer="adam"),
        default_unlearn_recipe=dict(epochs=20, lr=0.01, batch_size=100_000, optimizer="adam",
                                    weight_decay=0.0),
    ),
    "digits": DatasetInfo(
        name="digits",
        num_classes=10,
        input_shape=(1, 8, 8),
        architecture="small_cnn",
        preprocessing="scikit-learn digits, 8x8 grey levels 0..16 divided by 16, shape (1, 8, 8)",
        default_forget_class=0,
        default_train_recipe=dict(epochs=30, lr=1e-3, batch_size=64, optimizer="adam"),
        # Adam, not the paper's SGD: SGD with momentum that forgets within a few epochs ran away (gradient
        # ascent blowing up) for some original models and not for others, while with Adam, whose step ignores
        # CUP's magnitude, forget accuracy fell smoothly from 100 % (γ = 0) to about 0 % (γ = 1) with retain
        # accuracy at or above 96 % for each of 4 original models × 2 unlearning seeds tried.
        default_unlearn_recipe=dict(epochs=10, lr=7e-5, batch_size=32, optimizer="adam"),
    ),
}

# The torchvision sets: untuned starting recipes (no internet here to tune them on the real data). The
# unlearning recipe is the paper's (spec §4); the original is trained without augmentation or schedule.
_MNIST_TRAIN = dict(epochs=5, lr=1e-3, batch_size=128, optimizer="adam", weight_decay=0.0)
_CIFAR_TRAIN = dict(epochs=30, lr=0.05, batch_size=128, optimizer="sgd", momentum=0.9, weight_decay=5e-4)
_PAPER_UNLEARN = dict(epochs=5, lr=1e-3, batch_size=256, optimizer="sgd", momentum=0.9, weight_decay=5e-4)
_DEFAULT_ARCHITECTURE = {"mnist": "small_cnn", "fashion-mnist": "small_cnn"}  # the rest: the paper's ResNet-18
for _spec in VISION_DATASETS.values():
    _small = _spec.channels == 1
    DATASETS[_spec.name] = DatasetInfo(
        name=_spec.name,
        num_classes=_spec.num_classes or 0,  # an ImageFolder's classes come from its folder: see experiment_info
        input_shape=(_spec.channels, _spec.image_size or 0, _spec.image_size or 0),
        architecture=_DEFAULT_ARCHITECTURE.get(_spec.name, "resnet18_cifar"),
        preprocessing=preprocessing(_spec.name),
        default_forget_class=0,
        default_train_recipe=_MNIST_TRAIN if _small else _CIFAR_TRAIN,
        default_unlearn_recipe=_PAPER_UNLEARN,
        embedded=False,
    )

# The CUP authors' toy (their notebook): 2,000 points, 70 % of them for training.
BLOB_CENTRES = ((-2.0, 2.0), (-6.0, 6.0), (5.5, 4.0), (-4.0, -4.0), (5.0, -1.0))
BLOB_STDS = (1.5, 1.0, 1.5, 1.5, 1.5)
BLOB_POINTS = 2000
BLOB_SAMPLE_STATE = 1234  # make_blobs' random_state: the same 2,000 points for every experiment
BLOB_TEST_FRACTION = 0.3
BLOB_SPLIT_STATE = 42  # train_test_split's random_state at split seed 0; split seed s uses 42 + s
BLOB_TRAIN_SIZE = round(BLOB_POINTS * (1 - BLOB_TEST_FRACTION))  # 1,400
BLOB_TEST_SIZE = BLOB_POINTS - BLOB_TRAIN_SIZE  # 600
DIGITS_TEST_FRACTION = 0.2


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def experiment_info(config: ExperimentConfig) -> DatasetInfo:
    """The data set as this experiment sees it: its model, and an ImageFolder's classes and image size."""
    info = dataset_info(config.dataset)
    changes: dict = {}
    if config.model is not None:
        changes["architecture"] = config.model
    if config.dataset == "imagefolder":
        if not config.classes or not config.image_size:
            raise ValueError("an ImageFolder experiment needs its classes and image size; create it with "
                             "data.resolve_config, which reads them from the folder")
        changes.update(num_classes=len(config.classes), input_shape=(3, config.image_size, config.image_size),
                       preprocessing=preprocessing("imagefolder", config.image_size))
    elif config.image_size is not None or config.classes is not None:
        raise ValueError("image_size and classes apply to ImageFolder experiments only")
    return replace(info, **changes) if changes else info


@dataclass(frozen=True)
class UnlearningData:
    """The sets an experiment trains and measures on."""

    info: DatasetInfo
    forget: LabelledSet  # training samples to forget
    retain: LabelledSet  # training samples to keep
    test: LabelledSet  # test samples of retained classes (class-wise) or the whole test set (random)
    forget_test: LabelledSet | None  # test samples of the forgotten class; None for random-subset
    full_test: LabelledSet  # every test sample, for per-class accuracy

    @property
    def train(self) -> LabelledSet:
        return LabelledSet(torch.cat([self.forget.x, self.retain.x]), torch.cat([self.forget.y, self.retain.y]))

    def to(self, device: torch.device | str) -> UnlearningData:
        return UnlearningData(
            info=self.info,
            forget=self.forget.to(device),
            retain=self.retain.to(device),
            test=self.test.to(device),
            forget_test=None if self.forget_test is None else self.forget_test.to(device),
            full_test=self.full_test.to(device),
        )


def load_split(name: str, split_seed: int) -> tuple[LabelledSet, LabelledSet]:
    """The fixed, seeded (train, test) split of an embedded data set; no download, ever."""
    from sklearn.model_selection import train_test_split

    info = dataset_info(name)
    if not info.embedded:
        raise ValueError(f"{name} is read from a data root: use load_train_test")
    if name == "blobs":
        return paper_toy_split(split_seed)
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).reshape(-1, *info.input_shape)
    y = digits.target
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=split_seed, stratify=y)
    return _labelled(x_train, y_train), _labelled(x_test, y_test)


def paper_toy_split(split_seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """The CUP authors' toy, as their notebook draws and splits it (split seed 0; another seed reshuffles
    the same 2,000 points): make_blobs, then train_test_split without stratifying."""
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import train_test_split

    x, y = make_blobs(n_samples=BLOB_POINTS, centers=np.array(BLOB_CENTRES), cluster_std=list(BLOB_STDS),
                      random_state=BLOB_SAMPLE_STATE)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=BLOB_TEST_FRACTION, random_state=BLOB_SPLIT_STATE + split_seed)
    return _labelled(x_train, y_train), _labelled(x_test, y_test)


def _labelled(x: np.ndarray, y: np.ndarray) -> LabelledSet:
    return LabelledSet(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))


def load_train_test(config: ExperimentConfig, sources: Sources | None = None) -> tuple[LabelledSet, LabelledSet]:
    """The experiment's (train, test) sets: embedded, or read from the sources' data root."""
    if dataset_info(config.dataset).embedded:
        return load_split(config.dataset, config.split_seed)
    split = _load_vision(config.dataset, *_vision_arguments(config, sources or Sources()))
    if config.classes is not None and split.classes != config.classes:
        raise SettingError("the ImageFolder at {root} has classes {found}, but this experiment was made with "
                           "{recorded}; point {setting.data_root} at its folder", root=sources.data_root,
                           found=", ".join(split.classes), recorded=", ".join(config.classes))
    if config.split is not None and split.split != config.split:
        # Other files (images added to a folder, another copy of the data set) are another experiment.
        raise SettingError("the data at {root} is not what this experiment was made with: it has {found!r}, the "
                           "experiment recorded {recorded!r}; point {setting.data_root} at the original files, or "
                           "make a new experiment from these", root=sources.data_root, found=split.split,
                           recorded=config.split)
    if config.data_sha256 is not None and split.content_sha256 != config.data_sha256:
        raise SettingError("the data at {root} is not what this experiment was made with: the files' content "
                           "changed since (they hash to {found}…, the experiment recorded {recorded}…; relabelled, "
                           "cleaned or replaced files are another experiment); point {setting.data_root} at the "
                           "original files, or make a new experiment from these", root=sources.data_root,
                           found=split.content_sha256[:12], recorded=config.data_sha256[:12])
    return split.train, split.test


def check_data_root(dataset: str, data_root: str | None) -> None:
    """A data set read from a folder (not embedded) needs its data root: SettingError naming the setting."""
    if dataset_info(dataset).embedded or (data_root or "").strip():
        return
    hint = "" if dataset == "imagefolder" else " ({setting.download} fetches the data there, which needs internet)"
    raise SettingError("{title} is read from a folder on this machine: set {setting.data_root}" + hint,
                       title=VISION_DATASETS[dataset].title)


def _vision_arguments(config: ExperimentConfig, sources: Sources) -> tuple[str, bool, int | None, int]:
    check_data_root(config.dataset, sources.data_root)
    return str(Path(sources.data_root).expanduser().resolve()), sources.download, config.image_size, config.split_seed


def _load_vision(name: str, root: str, download: bool, image_size: int | None, split_seed: int):
    """The data set as read from `root`, read again when any file read or folder listed has changed since."""
    split = _read_vision(name, root, download, image_size, split_seed)
    if _file_states(split.files + split.folders) != _read_states.get(split.content_sha256 + root):
        _read_vision.cache_clear()
        split = _read_vision(name, root, download, image_size, split_seed)
    return split


_read_states: dict[str, tuple] = {}  # (content hash + root) -> the files' states when read


def _file_states(paths: tuple[Path, ...]) -> tuple:
    states = []
    for path in paths:
        try:
            status = path.stat()
            states.append((status.st_size, status.st_mtime_ns, status.st_ino))
        except OSError:
            states.append(None)
    return tuple(states)


@functools.lru_cache(maxsize=2)  # the app asks again on every view; a CIFAR read takes seconds
def _read_vision(name: str, root: str, download: bool, image_size: int | None, split_seed: int):
    from .vision import load_vision

    split = load_vision(name, root, download=download, image_size=image_size, split_seed=split_seed)
    _read_states[split.content_sha256 + root] = _file_states(split.files + split.folders)
    return split


def resolve_config(config: ExperimentConfig, sources: Sources | None = None) -> ExperimentConfig:
    """The config with what the data's files decide recorded: the split used and an ImageFolder's classes.
    Call it once when an experiment is made; it reads the data (and downloads it where asked)."""
    if dataset_info(config.dataset).embedded:
        return config
    if config.dataset == "imagefolder" and config.image_size is None:
        raise SettingError("an ImageFolder experiment needs {setting.image_size} (e.g. 32 or 224)")
    split = _load_vision(config.dataset, *_vision_arguments(config, sources or Sources()))
    if config.dataset == "imagefolder":
        return replace(config, split=split.split, classes=split.classes, data_sha256=split.content_sha256)
    # Official splits: a split seed changes nothing.
    return replace(config, split=split.split, split_seed=0, data_sha256=split.content_sha256)


MAX_INDEX_FILE_BYTES = 256 * MiB  # about 25 million written indices; a bound on what is read


def read_indices(path: str | os.PathLike) -> tuple[int, ...]:
    """Sample indices from a file: integers separated by commas, spaces or new lines (a .txt or .csv), a JSON
    list, or a .npy integer array (read without pickle). A regular file only, read within a bound."""
    path = Path(path)
    data = read_regular(path, "forget-index file", MAX_INDEX_FILE_BYTES)
    if path.suffix.lower() == ".npy":
        return _npy_indices(path, data)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file of forget indices (nor a .npy array)") from None
    if path.suffix.lower() == ".json":
        import json

        try:
            values = json.loads(text)
        except RecursionError:
            raise ValueError(f"{path}: JSON nested too deeply; write a flat list of integers") from None
        except ValueError as err:  # JSONDecodeError, or an integer of more digits than Python converts
            raise ValueError(f"{path}: not valid JSON ({str(err)[:120]})") from None
        if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{path}: expected a JSON list of integers")
        return tuple(values)
    try:
        return parse_indices(text)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _npy_indices(path: Path, data: bytes) -> tuple[int, ...]:
    """A 1-D integer .npy array, its header's size checked against the file's before anything is allocated."""
    import io

    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream, max_header_size=10_000)  # one dimension: C or Fortran, the same
    except (ValueError, SyntaxError, TypeError, OverflowError) as err:
        raise ValueError(f"{path}: not a forget-index file (not a .npy array: {err})") from None
    if len(shape) != 1 or dtype.hasobject or not np.issubdtype(dtype, np.integer):
        raise ValueError(f"{path}: not a forget-index file (expected a 1-D integer array, got {dtype} of shape "
                         f"{shape})")
    if shape[0] * dtype.itemsize != len(data) - stream.tell():
        raise ValueError(f"{path}: its header declares {shape[0]:,} {dtype} entries, but the file holds "
                         f"{len(data) - stream.tell():,} bytes of data; the file is damaged")
    array = np.frombuffer(data, dtype=dtype, count=shape[0], offset=stream.tell())
    return tuple(int(i) for i in array)


MAX_INDEX_DIGITS = 18  # an index beyond 10**18 names no sample of any data set


def parse_indices(text: str) -> tuple[int, ...]:
    """Sample indices written as integers separated by commas, spaces or new lines (range checks: forget_mask)."""
    parts = text.replace(",", " ").split()
    bad = next((part for part in parts if not part.removeprefix("-").isdigit()), None)
    if bad is not None:
        raise ValueError(f"{bad[:40]!r} is not a sample index; write integers separated by commas, spaces or "
                         "new lines")
    long = next((part for part in parts if len(part.removeprefix("-")) > MAX_INDEX_DIGITS), None)
    if long is not None:
        raise ValueError(f"{long[:20]}… ({len(long)} digits) is not a sample index: no training set has that many "
                         "samples")
    return tuple(int(part) for part in parts)


def forget_mask(train_labels: Tensor, forget: ForgetSet, num_classes: int) -> Tensor:
    """Boolean mask over the training set: True for samples to forget."""
    if forget.indices is not None:
        return _listed_mask(forget.indices, len(train_labels))
    if forget.kind == "class":
        if not 0 <= forget.forget_class < num_classes:
            raise ValueError(f"forget class {forget.forget_class} is out of range; "
                             f"this data set has classes 0..{num_classes - 1}")
        return train_labels == forget.forget_class
    if forget.fraction is None or not 0.0 < forget.fraction < 1.0:
        raise ValueError(f"forget fraction must be in (0, 1), got {forget.fraction!r}")
    n = len(train_labels)
    count = max(1, round(forget.fraction * n))
    generator = torch.Generator().manual_seed(forget.seed)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[:count]] = True
    return mask


def _listed_mask(indices: tuple[int, ...], n: int) -> Tensor:
    if not indices:
        raise ValueError("the forget-index list is empty; list at least one training sample")
    if len(set(indices)) != len(indices):
        raise ValueError("the forget-index list repeats samples; list each index once")
    out_of_range = [i for i in indices if not 0 <= i < n]
    if out_of_range:
        raise ValueError(f"forget indices {', '.join(map(str, out_of_range[:5]))} are out of range; the training "
                         f"split has samples 0..{n - 1}")
    if len(indices) == n:
        raise ValueError("the forget-index list names every training sample; nothing would be left to retain")
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.tensor(indices)] = True
    return mask


def load_unlearning_data(config: ExperimentConfig, sources: Sources | None = None) -> UnlearningData:
    info = experiment_info(config)
    train, test = load_train_test(config, sources)
    mask = forget_mask(train.y, config.forget, info.num_classes)
    # Refused here, before anything trains (the original and the oracle would train first, then fail).
    if not mask.any():
        raise ValueError(f"the forget set is empty: the training split has no sample of class "
                         f"{config.forget.forget_class}; choose a class it has")
    if mask.all():
        raise ValueError(f"nothing is left to retain: every training sample is in the forget set "
                         f"({config.forget.describe()}); forget a smaller set")
    forget = LabelledSet(train.x[mask], train.y[mask])
    retain = LabelledSet(train.x[~mask], train.y[~mask])
    if config.forget.kind == "class":
        in_class = test.y == config.forget.forget_class
        retained_test = LabelledSet(test.x[~in_class], test.y[~in_class])
        forget_test = LabelledSet(test.x[in_class], test.y[in_class])
    else:
        retained_test, forget_test = test, None
    return UnlearningData(info=info, forget=forget, retain=retain, test=retained_test,
                          forget_test=forget_test, full_test=test)


def default_config(dataset: str = "digits", *, forget_class: int | None = None,
                   forget_fraction: float | None = None, forget_seed: int = 0,
                   forget_indices: tuple[int, ...] | None = None, model: str | None = None,
                   original_sha256: str | None = None, oracle: bool = True,
                   image_size: int | None = None) -> ExperimentConfig:
    """The recommended experiment for a data set: its own training and unlearning recipes.

    Without a forget class, fraction or index list, the data set's default class is forgotten. For a
    torchvision set, pass the result through `resolve_config` to record what its files decide.
    """
    from .config import TrainRecipe, UnlearnRecipe

    info = dataset_info(dataset)
    if sum(choice is not None for choice in (forget_class, forget_fraction, forget_indices)) > 1:
        raise ValueError("give one forget set: a class, a fraction or a list of indices")
    if forget_fraction is not None:
        forget = ForgetSet(forget_class=None, fraction=float(forget_fraction), seed=forget_seed)
    elif forget_indices is not None:
        forget = ForgetSet(forget_class=None, indices=tuple(forget_indices))
    else:
        forget = ForgetSet(forget_class=info.default_forget_class if forget_class is None else int(forget_class))
    if not oracle and forget.kind != "class":
        raise ValueError("the oracle can be skipped for class-wise forgetting only: a random subset's hypervolume "
                         "measures over-forgetting against the oracle's forget accuracy (spec §5)")
    if model == info.architecture:
        model = None  # the default, named: one experiment, not two
    return ExperimentConfig(
        dataset=dataset,
        forget=forget,
        train=TrainRecipe(**info.default_train_recipe),
        unlearn=UnlearnRecipe(**info.default_unlearn_recipe),
        model=model,
        original_sha256=original_sha256,
        oracle=oracle,
        image_size=image_size,
    )
