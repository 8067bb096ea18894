"""Real image data sets read from a local folder, in their official on-disk formats, into in-memory tensors.

MNIST and Fashion-MNIST are read with torchvision's idx reader. CIFAR-10/100 are read by our own restricted
unpickler: torchvision's CIFAR classes call `pickle.load` on the batch files, and a pickle can run any code,
so a file that holds anything besides dicts, lists, strings, numbers and numpy arrays is refused. SVHN's .mat
files are read with scipy (torchvision's class insists on the official md5 sums), their declared sizes checked
first. An ImageFolder tree is walked here, in torchvision's order but without following links to folders, and
decoded with torchvision and PIL. Every file read is a regular file, and the files' paths and contents hash to
the data's identity (content_sha256). Only `download=True` lets torchvision fetch (and md5-check)
the official archives; nothing is ever fetched otherwise.

torchvision is imported inside the functions that need it: it takes seconds to import, and the CLI lists
these data sets without loading any.
"""

from __future__ import annotations

import codecs
import contextvars
import hashlib
import logging
import math
import os
import pickle
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ._files import GiB, check_regular, sha256_regular
from .labelled import LabelledSet
from .settings import SettingError

log = logging.getLogger(__name__)

__all__ = ["VISION_DATASETS", "VisionSpec", "VisionSplit", "load_vision", "preprocessing"]


@dataclass(frozen=True)
class VisionSpec:
    """A data set that load_vision reads: what its images are and what it expects under the data root."""

    name: str  # the key in VISION_DATASETS
    title: str  # its usual spelling, for messages and model cards
    channels: int  # 1 (grey) or 3 (RGB)
    image_size: int | None  # native height = width; None: chosen by the user (imagefolder)
    num_classes: int | None  # None: one per class folder (imagefolder)
    mean: tuple[float, ...]  # per channel, of the /255 pixel values: subtracted ...
    std: tuple[float, ...]  # ... then divided by
    layout: str  # what the loader expects under the root, for error messages and docs


@dataclass(frozen=True)
class VisionSplit:
    train: LabelledSet
    test: LabelledSet
    classes: tuple[str, ...]  # class names in label order
    split: str  # which files or folders were the train and test sets
    preprocessing: str  # how pixels became the inputs
    files: tuple[Path, ...] = ()  # every file read, in a fixed order
    folders: tuple[Path, ...] = ()  # every folder listed (an added or removed file changes its mtime)
    content_sha256: str = ""  # of the files' relative paths and contents: the data's identity (see data_sha256)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR10_TRAIN = tuple(f"data_batch_{index}" for index in range(1, 6))

VISION_DATASETS: dict[str, VisionSpec] = {
    "mnist": VisionSpec(
        name="mnist", title="MNIST", channels=1, image_size=28, num_classes=10, mean=(0.1307,), std=(0.3081,),
        layout="MNIST/raw/ holding the four uncompressed official idx files " + ", ".join(_IDX_FILES)),
    "fashion-mnist": VisionSpec(
        name="fashion-mnist", title="Fashion-MNIST", channels=1, image_size=28, num_classes=10, mean=(0.2860,),
        std=(0.3530,),
        layout="FashionMNIST/raw/ holding the four uncompressed official idx files " + ", ".join(_IDX_FILES)),
    "cifar10": VisionSpec(
        name="cifar10", title="CIFAR-10", channels=3, image_size=32, num_classes=10,
        mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616),
        layout="cifar-10-batches-py/ holding data_batch_1 .. data_batch_5, test_batch and batches.meta "
               "(the official 'python version' archive, extracted)"),
    "cifar100": VisionSpec(
        name="cifar100", title="CIFAR-100", channels=3, image_size=32, num_classes=100,
        mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762),
        layout="cifar-100-python/ holding train, test and meta (the official 'python version' archive, extracted)"),
    "svhn": VisionSpec(
        name="svhn", title="SVHN", channels=3, image_size=32, num_classes=10,
        mean=(0.4377, 0.4438, 0.4728), std=(0.1980, 0.2010, 0.1970),
        layout="train_32x32.mat and test_32x32.mat (the official cropped digits, format 2)"),
    "imagefolder": VisionSpec(
        name="imagefolder", title="ImageFolder", channels=3, image_size=None, num_classes=None,
        mean=_IMAGENET_MEAN, std=_IMAGENET_STD,
        layout="either train/ and test/ (or val/) folders, each holding one folder of images per class, or "
               "one folder of images per class (split into train and test by test_fraction)"),
}

_MIN_IMAGE_SIZE = 8  # below this an ImageFolder image says too little to classify
_CONVERT_CHUNK = 4096  # images converted to float at a time


def load_vision(name: str, root: str | os.PathLike, *, download: bool = False, image_size: int | None = None,
                split_seed: int = 0, test_fraction: float = 0.2) -> VisionSplit:
    """The train and test sets of data set `name` read from the folder `root`, normalised, without augmentation.

    `download=True` lets torchvision fetch the official files into `root` first (needs internet; not for
    imagefolder). `image_size` is required for imagefolder and must be the native size (or None) otherwise.
    `split_seed` and `test_fraction` split an ImageFolder tree that has no train/ and test/ folders.
    """
    if name not in VISION_DATASETS:
        raise ValueError(f"unknown image data set {name!r}; choose one of: {', '.join(VISION_DATASETS)}")
    spec = VISION_DATASETS[name]
    root = Path(root).expanduser()
    if name == "imagefolder":
        if download:
            raise ValueError("imagefolder reads your own folder of images; there is nothing to download")
        if image_size is None or image_size < _MIN_IMAGE_SIZE:
            raise ValueError(f"imagefolder needs an image size of at least {_MIN_IMAGE_SIZE} pixels "
                             f"(images are resized and centre-cropped to it), got {image_size!r}")
    elif image_size is not None and image_size != spec.image_size:
        raise ValueError(f"{spec.title} images are {spec.image_size}x{spec.image_size}; image size {image_size} "
                         "is only for imagefolder (leave it unset)")
    if download and not root.exists():
        root.mkdir(parents=True)  # torchvision would create it anyway
    if not root.is_dir():
        hint = "" if name == "imagefolder" else "; {setting.download} (needs internet) creates it and fetches the files"
        raise SettingError("data root {root} is not a folder; {title} expects under it: {layout}" + hint, root=root,
                           title=spec.title, layout=spec.layout)
    if download:
        _download(spec, root)
    if name in ("mnist", "fashion-mnist"):
        split = _load_mnist(spec, root)
    elif name in _CIFAR_LAYOUTS:
        split = _load_cifar(spec, root)
    elif name == "svhn":
        split = _load_svhn(spec, root)
    else:
        split = _load_imagefolder(spec, root, image_size, split_seed, test_fraction)
    return replace(split, content_sha256=content_sha256(root, split.files))


# Identity and limits ------------------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    """A data file's SHA-256, remembered by path, size, mtime and inode: hashed once per process while unchanged."""
    return sha256_regular(path, "data file", on_block=lambda: _within_limits(str(path)))


def content_sha256(root: Path, files: tuple[Path, ...]) -> str:
    """The data's identity: a SHA-256 over each file's path below the root (an ImageFolder's labels) and content.
    Relabelled, cleaned or replaced files give another hash; the same files anywhere give the same one."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


_LIMITS: contextvars.ContextVar[tuple[float, float, int] | None] = contextvars.ContextVar("read_limits", default=None)


@contextmanager
def read_limits(seconds: float, max_bytes: int) -> Iterator[None]:
    """Within the block, reading a data set that takes longer than `seconds` or needs more than `max_bytes` of
    memory stops with a ValueError (the app's Check: a server must not read a huge tree for a browser gone)."""
    token = _LIMITS.set((time.monotonic() + seconds, seconds, max_bytes))
    try:
        yield
    finally:
        _LIMITS.reset(token)


def _within_limits(where: str, memory_bytes: int = 0) -> None:
    limits = _LIMITS.get()
    if limits is None:
        return
    deadline, seconds, max_bytes = limits
    if time.monotonic() > deadline:
        raise ValueError(f"reading the data took longer than the {seconds:g} s allowed here (at {where}); a data "
                         "set this large is for the command line: python -m cup_core sweep --data-root ...")
    if memory_bytes > max_bytes:
        raise ValueError(f"the data would take {memory_bytes / 2**30:.1f} GiB of memory, more than the "
                         f"{max_bytes / 2**30:.1f} GiB allowed here; sweep it from the command line")


# Downloads ----------------------------------------------------------------------------------------------------

def _download(spec: VisionSpec, root: Path) -> None:
    """Let torchvision fetch the official archives into root and check their md5 sums; our readers then read them.

    A dataset class also loads what it fetched: ask for the smaller split where one download holds both. CIFAR's
    classes would unpickle their batches, so for CIFAR only torchvision's archive download is used.
    """
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    def cifar(kind) -> None:
        if not all((root / kind.base_folder / name).is_file() for name, _ in kind.train_list + kind.test_list):
            download_and_extract_archive(kind.url, str(root), filename=kind.filename, md5=kind.tgz_md5)

    fetches = {
        "mnist": lambda: datasets.MNIST(root, train=False, download=True),
        "fashion-mnist": lambda: datasets.FashionMNIST(root, train=False, download=True),
        "cifar10": lambda: cifar(datasets.CIFAR10),
        "cifar100": lambda: cifar(datasets.CIFAR100),
        # One file per split: both must be fetched.
        "svhn": lambda: [datasets.SVHN(root, split=split, download=True) for split in ("train", "test")],
    }
    try:
        fetches[spec.name]()
    except (OSError, RuntimeError) as error:  # URLError is an OSError; a bad md5 is a RuntimeError
        raise ValueError(f"could not download {spec.title} into {root}: {error}") from error


MAX_DATA_FILE_BYTES = 4 * GiB  # SVHN's extra_32x32.mat, the largest official file here, is 1.3 GB


def _require(spec: VisionSpec, root: Path, paths: list[Path]) -> None:
    """Every path exists and is a regular file (a FIFO, a device or a link to one is refused, not read)."""
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise SettingError("{title} not found: missing {missing}. Expected under {root}: {layout}. "
                           "{setting.download} (needs internet) fetches the official files there.", title=spec.title,
                           missing=", ".join(missing), root=root, layout=spec.layout)
    for path in paths:
        check_regular(path, f"{spec.title} file", MAX_DATA_FILE_BYTES)
    _within_limits(str(root), sum(4 * path.stat().st_size for path in paths))  # float32: 4 bytes a pixel byte


# Pixels -------------------------------------------------------------------------------------------------------

def _normalised(parts: list[Tensor], spec: VisionSpec) -> Tensor:
    """(N_1, C, H, W), (N_2, C, H, W), ... uint8 -> (N_1 + N_2 + ..., C, H, W) float32 (x / 255 - mean) / std.

    Converted a chunk at a time into the result, without concatenating the parts first, so that the result is
    the only full-size tensor besides the uint8 parts (a quarter of its size).
    """
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(-1, 1, 1)
    scale, shift = 1.0 / (255.0 * std), -mean / std
    out = torch.empty((sum(len(part) for part in parts), *parts[0].shape[1:]), dtype=torch.float32)
    offset = 0
    for part in parts:
        for start in range(0, len(part), _CONVERT_CHUNK):
            chunk = part[start:start + _CONVERT_CHUNK]
            block = out[offset:offset + len(chunk)]  # a view: written in place
            block.copy_(chunk)
            block.mul_(scale).add_(shift)
            offset += len(chunk)
    return out


def _labelled(parts: list[Tensor], labels: Tensor, spec: VisionSpec) -> LabelledSet:
    return LabelledSet(_normalised(parts, spec), labels.to(torch.int64))


def _check_labels(spec: VisionSpec, where: Path, count: int, labels: Tensor) -> None:
    if count != len(labels):
        raise ValueError(f"{where} holds {count} images but {len(labels)} labels")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < spec.num_classes):
        raise ValueError(f"{where} holds labels outside 0..{spec.num_classes - 1}")


def preprocessing(name: str, image_size: int | None = None) -> str:
    """How a data set's pixels become the model's inputs: the loaders' description, and the model cards'."""
    spec = VISION_DATASETS[name]
    if name == "imagefolder":
        size = "the image size" if image_size is None else f"{image_size}"
        crop = "that size, square" if image_size is None else f"{image_size}x{image_size}"
        return (f"{spec.title}: images converted to RGB, shorter side resized to {size} (bilinear, antialiased), "
                f"centre-cropped to {crop}, /255, normalised per channel with ImageNet's {_stats(spec)}; "
                "no augmentation")
    pixels = "uint8 grey levels /255, normalised with" if spec.channels == 1 else \
        "uint8 RGB /255, normalised per channel with"
    return f"{spec.title}: {pixels} {_stats(spec)}; no augmentation"


def _stats(spec: VisionSpec) -> str:
    return f"mean {_tuple(spec.mean)} std {_tuple(spec.std)}"


def _tuple(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{value:.4f}" for value in values) + ")"


# MNIST, Fashion-MNIST -----------------------------------------------------------------------------------------

_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot")


def _load_mnist(spec: VisionSpec, root: Path) -> VisionSplit:
    # torchvision's reader, not its dataset class: the class would prefer a legacy processed/*.pt cache over the
    # raw files, and the split below names the raw files.
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = root / ("MNIST" if spec.name == "mnist" else "FashionMNIST") / "raw"
    _require(spec, root, [raw / file for file in _IDX_FILES])

    def read(prefix: str) -> tuple[Tensor, Tensor]:
        try:
            images = read_image_file(str(raw / f"{prefix}-images-idx3-ubyte"))  # (N, 28, 28) uint8
            labels = read_label_file(str(raw / f"{prefix}-labels-idx1-ubyte"))  # (N,) int64
        except (AssertionError, TypeError, ValueError, RuntimeError, KeyError) as error:
            raise ValueError(f"{raw / prefix}-*-ubyte are not {spec.title} idx files: {error!r}") from error
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{raw / prefix}-images-idx3-ubyte holds {tuple(images.shape[1:])} images, not 28x28")
        _check_labels(spec, raw / f"{prefix}-labels-idx1-ubyte", len(images), labels)
        return images.unsqueeze(1), labels

    (train_images, train_labels), (test_images, test_labels) = read("train"), read("t10k")
    classes = tuple(str(digit) for digit in range(10)) if spec.name == "mnist" else _FASHION_CLASSES
    return VisionSplit(
        train=_labelled([train_images], train_labels, spec),
        test=_labelled([test_images], test_labels, spec),
        classes=classes,
        split=f"official train (train-*-idx*-ubyte, {len(train_labels)} images) / test (t10k-*-idx*-ubyte, "
              f"{len(test_labels)} images) files",
        preprocessing=preprocessing(spec.name),
        files=tuple(raw / file for file in _IDX_FILES),
        folders=(raw,),
    )


# CIFAR-10, CIFAR-100 ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CifarLayout:
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str  # in each batch
    names_key: str  # in the meta file


_CIFAR_LAYOUTS = {
    "cifar10": _CifarLayout("cifar-10-batches-py", _CIFAR10_TRAIN, ("test_batch",), "batches.meta", "labels",
                            "label_names"),
    "cifar100": _CifarLayout("cifar-100-python", ("train",), ("test",), "meta", "fine_labels", "fine_label_names"),
}


class _Refused(pickle.UnpicklingError):
    """A pickle asked for something besides the few globals that numpy arrays need."""


def _latin1_encode(text: str, encoding: str) -> bytes:
    # How protocol-2 pickles written by Python 3 spell bytes; any other codec has no business in a batch file.
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


# numpy 1 writes numpy.core, numpy 2 numpy._core: the same function, taken from an array's own reduction rather
# than imported (importing numpy.core warns under numpy 2).
_numpy_reconstruct = np.zeros(0).__reduce__()[0]


def _reconstruct(subtype: type, shape: tuple, dtype: object) -> np.ndarray:
    # An array's pickle makes it empty, then fills it from bytes in the file (__setstate__ checks their length);
    # an empty shape bounds what the file can make to what it holds.
    if not isinstance(shape, tuple) or math.prod(shape) > 1:
        raise _Refused(f"an array of declared shape {shape!r} made without its data")
    return _numpy_reconstruct(subtype, shape, dtype)


class _StoredArray(np.ndarray):
    """numpy.ndarray as a batch file may name it: only as the type that _reconstruct makes. Called directly it would
    allocate any shape it is given with no data in the file (an 800 KB file claiming 400,000 images)."""

    def __new__(cls, *args, **kwargs):
        raise _Refused("numpy.ndarray called to allocate an array of a declared shape")


_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _StoredArray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and numpy arrays, and nothing that could run code."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _unpickle_arrays(path: Path) -> dict[str, object]:
    """The dict pickled in an official CIFAR file, with str keys; ValueError for anything else."""
    try:
        with open(path, "rb") as file:
            # Python 2 wrote these files: latin1 turns its str (keys, names, array bytes) into what numpy expects.
            content = _ArrayUnpickler(file, encoding="latin1").load()
    except _Refused as error:
        raise ValueError(f"{path} holds code or objects besides arrays ({error}); refused") from error
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError) as error:
        raise ValueError(f"{path} is not a CIFAR batch file (could not read it: {error!r})") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a CIFAR batch file (it holds a {type(content).__name__}, not a dict)")
    return {_text(key): value for key, value in content.items()}


def _text(value: object) -> object:
    # Files written by Python 3 with bytes keys or names load as bytes.
    return value.decode("latin1") if isinstance(value, bytes) else value


def _read_cifar_batch(path: Path, layout: _CifarLayout, num_classes: int) -> tuple[Tensor, Tensor]:
    """(N, 3, 32, 32) uint8 images and (N,) labels of one batch file."""
    content = _unpickle_arrays(path)
    data, labels = content.get("data"), content.get(layout.label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path} has no 'data' array of uint8 rows of 3072 pixels (R, G, B planes of 32x32)")
    if not isinstance(labels, list) or not all(isinstance(label, int) for label in labels):
        raise ValueError(f"{path} has no '{layout.label_key}' list of integers")
    if len(labels) != len(data):
        raise ValueError(f"{path} holds {len(data)} images but {len(labels)} labels")
    if labels and not 0 <= min(labels) <= max(labels) < num_classes:  # here, before int64 could overflow
        raise ValueError(f"{path} holds labels outside 0..{num_classes - 1}")
    data = np.asarray(data)  # a plain ndarray (an unpickled one is of the _StoredArray type)
    return torch.from_numpy(data.reshape(-1, 3, 32, 32)), torch.tensor(labels, dtype=torch.int64)


def _load_cifar(spec: VisionSpec, root: Path) -> VisionSplit:
    layout = _CIFAR_LAYOUTS[spec.name]
    folder = root / layout.folder
    _require(spec, root, [folder] if not folder.is_dir() else
             [folder / file for file in (*layout.train_files, *layout.test_files, layout.meta_file)])
    names = _unpickle_arrays(folder / layout.meta_file).get(layout.names_key)
    if not isinstance(names, list) or len(names) != spec.num_classes:
        raise ValueError(f"{folder / layout.meta_file} has no '{layout.names_key}' list of {spec.num_classes} names")

    def read(files: tuple[str, ...]) -> tuple[list[Tensor], Tensor]:
        batches = [_read_cifar_batch(folder / file, layout, spec.num_classes) for file in files]
        images, labels = [images for images, _ in batches], torch.cat([labels for _, labels in batches])
        _check_labels(spec, folder, sum(len(part) for part in images), labels)
        return images, labels

    (train_images, train_labels), (test_images, test_labels) = read(layout.train_files), read(layout.test_files)
    train_names = "data_batch_1..5" if spec.name == "cifar10" else "train"
    return VisionSplit(
        train=_labelled(train_images, train_labels, spec),
        test=_labelled(test_images, test_labels, spec),
        classes=tuple(str(_text(name)) for name in names),
        split=f"official train ({train_names}, {len(train_labels)} images) / test ({layout.test_files[0]}, "
              f"{len(test_labels)} images) files" + ("; fine labels" if spec.name == "cifar100" else ""),
        preprocessing=preprocessing(spec.name),
        files=tuple(folder / file for file in (*layout.train_files, *layout.test_files, layout.meta_file)),
        folders=(folder,),
    )


# SVHN ---------------------------------------------------------------------------------------------------------

_MAX_INFLATION = 20
_MAX_SVHN_IMAGES = 1_000_000  # extra_32x32.mat, the largest official file, has 531,131


def _read_svhn(path: Path) -> tuple[Tensor, Tensor]:
    """(N, 3, 32, 32) uint8 images and (N,) labels 0..9 of one official .mat file."""
    from scipy.io import loadmat, whosmat

    try:
        declared = {name: (shape, kind) for name, shape, kind in whosmat(path)}
    except (OSError, ValueError, TypeError, NotImplementedError) as error:
        raise ValueError(f"{path} is not an SVHN .mat file (could not read it: {error!r})") from error
    shape, kind = declared.get("X", (None, None))
    # The class is checked from the header too: a double X inflates to eight times what the check below allows.
    if kind != "uint8" or len(shape) != 4 or tuple(shape[:3]) != (32, 32, 3):
        raise ValueError(f"{path} has no uint8 array X of shape (32, 32, 3, N)")
    size = path.stat().st_size
    # Refused from the declared sizes, before anything is inflated: images barely compress (the official files
    # are 0.8 times their arrays), so declaring far more than the file holds is a decompression bomb.
    if math.prod(shape) > _MAX_INFLATION * size or shape[3] > _MAX_SVHN_IMAGES:
        raise ValueError(f"{path} declares {shape[3]:,} images ({math.prod(shape) / 2**30:.1f} GiB) in a file of "
                         f"{size / 2**20:.1f} MiB; refused (a damaged or hostile file)")
    if math.prod(declared.get("y", ((0,), None))[0]) != shape[3]:
        raise ValueError(f"{path} has no array y of {shape[3]} labels")
    _within_limits(str(path), 4 * math.prod(shape))
    try:
        content = loadmat(path, variable_names=["X", "y"])
    except (OSError, ValueError, TypeError, NotImplementedError) as error:  # v7.3 (HDF5) files: NotImplementedError
        raise ValueError(f"{path} is not an SVHN .mat file (could not read it: {error!r})") from error
    images, labels = content.get("X"), content.get("y")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
            or images.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path} has no uint8 array X of shape (32, 32, 3, N)")
    if not isinstance(labels, np.ndarray) or labels.size != images.shape[3]:
        raise ValueError(f"{path} has no array y of {images.shape[3]} labels")
    labels = labels.reshape(-1).astype(np.int64)
    if labels.size and not (labels.min() >= 1 and labels.max() <= 10):
        raise ValueError(f"{path} holds labels outside 1..10")
    # (H, W, C, N) -> (N, C, H, W); SVHN writes digit 0 as label 10.
    return torch.from_numpy(images).permute(3, 2, 0, 1), torch.from_numpy(labels % 10)


def _load_svhn(spec: VisionSpec, root: Path) -> VisionSplit:
    train_path, test_path = root / "train_32x32.mat", root / "test_32x32.mat"
    _require(spec, root, [train_path, test_path])
    (train_images, train_labels), (test_images, test_labels) = _read_svhn(train_path), _read_svhn(test_path)
    return VisionSplit(
        train=_labelled([train_images], train_labels, spec),
        test=_labelled([test_images], test_labels, spec),
        classes=tuple(str(digit) for digit in range(10)),
        split=f"official train (train_32x32.mat, {len(train_labels)} images) / test (test_32x32.mat, "
              f"{len(test_labels)} images) files; extra_32x32.mat not used",
        preprocessing=preprocessing(spec.name),
        files=(train_path, test_path),
        folders=(root,),
    )


# ImageFolder --------------------------------------------------------------------------------------------------

MAX_TREE_ENTRIES = 5_000_000  # entries listed in an ImageFolder tree before it is refused as not one


def _image_files(spec: VisionSpec, directory: Path, root: Path,
                 folders: list[Path]) -> tuple[tuple[str, ...], list[tuple[str, int]]]:
    """(class names, [(image path, label)]) of a folder of class folders, in torchvision ImageFolder's order.

    Unlike ImageFolder, links to folders are never followed (a link can loop, `cat/loop -> ..`, or lead out of the
    tree, `/sys` is full of them): a class folder that is a link is refused, one inside a class is skipped with a
    warning. A linked image is read only when it leads to a regular file inside the data root; FIFOs, devices and
    sockets are skipped. Hidden folders (.ipynb_checkpoints, ...) are skipped: ImageFolder would make them classes.
    Every folder listed is appended to `folders`.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    listed, unfollowable = [], []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith("."):
                leads_to_folder = _leads_to_folder(entry)
                if leads_to_folder is None:
                    unfollowable.append(entry.path)
                elif leads_to_folder:
                    listed.append(entry)
    if unfollowable:
        log.warning("%s: skipped %d link(s) that cannot be followed (a loop), e.g. %s", directory, len(unfollowable),
                    unfollowable[0])
    linked = sorted(entry.name for entry in listed if entry.is_symlink())
    if linked:
        raise ValueError(f"{directory}: class folder {linked[0]!r} is a link; links to folders are not followed (one "
                         "can loop or lead out of the tree): copy or bind-mount the folder there instead")
    classes = sorted(entry.name for entry in listed)
    if len(classes) < 2:
        raise ValueError(f"{directory} holds {len(classes)} class folder(s); {spec.title} expects {spec.layout}")
    folders.append(directory)
    inside, seen, samples, skipped = root.resolve(), 0, [], []
    for label, name in enumerate(classes):
        walked: list[tuple[str, list[str]]] = []
        pending = [directory / name]
        while pending:
            folder = pending.pop()
            folders.append(folder)
            files = []
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen % 1000 == 0:
                        _within_limits(str(folder))
                    if seen > MAX_TREE_ENTRIES:
                        raise ValueError(f"{directory} holds more than {MAX_TREE_ENTRIES:,} files and folders; is "
                                         "it an image tree?")
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_symlink() and _leads_to_folder(entry) is not False:  # or loops: not followed
                        skipped.append(entry.path)
                    elif entry.name.lower().endswith(IMG_EXTENSIONS) and _readable_image(entry, inside, skipped):
                        files.append(entry.name)
            walked.append((str(folder), files))
        found = [(os.path.join(folder, file), label) for folder, files in sorted(walked) for file in sorted(files)]
        if skipped:
            log.warning("%s: skipped %d link(s) to folders or that loop, e.g. %s (links to folders are not "
                        "followed)", directory / name, len(skipped), skipped[0])
            skipped.clear()
        if not found:
            raise ValueError(f"{directory}: class folder {name!r} holds no images ({', '.join(IMG_EXTENSIONS)})")
        samples += found
    return tuple(classes), samples


def _leads_to_folder(entry: os.DirEntry) -> bool | None:
    """Whether `entry` is a folder or a link to one; None for a link that cannot be followed (`x -> x`: ELOOP),
    which DirEntry.is_dir raises as an OSError."""
    try:
        return entry.is_dir()
    except OSError:
        return None


def _readable_image(entry: os.DirEntry, inside: Path, skipped: list[str]) -> bool:
    """A regular file, or a link to a regular file inside the data root (see _image_files); a link to a folder is
    added to `skipped`."""
    if not entry.is_symlink():
        return entry.is_file(follow_symlinks=False)
    try:
        target = Path(entry.path).resolve(strict=True)
    except (OSError, RuntimeError):  # a broken link or a loop
        return False
    if target.is_dir():
        skipped.append(entry.path)
        return False
    return target.is_relative_to(inside) and target.is_file() and stat.S_ISREG(target.stat().st_mode)


def _stratified_split(samples: list[tuple[str, int]], num_classes: int, test_fraction: float,
                      split_seed: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """test_fraction of each class, drawn with split_seed, to test; the rest to train; both in folder order."""
    labels = torch.tensor([label for _, label in samples])
    generator = torch.Generator().manual_seed(split_seed)
    is_test = torch.zeros(len(samples), dtype=torch.bool)
    for label in range(num_classes):
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        # At least one image of each class on each side.
        count = min(max(round(test_fraction * len(members)), 1), len(members) - 1)
        is_test[members[:count]] = True
    return ([sample for sample, test in zip(samples, is_test.tolist()) if not test],
            [sample for sample, test in zip(samples, is_test.tolist()) if test])


def _read_images(spec: VisionSpec, samples: list[tuple[str, int]], image_size: int) -> LabelledSet:
    from PIL import Image
    from torchvision import transforms
    from torchvision.datasets.folder import default_loader

    to_tensor = transforms.Compose([transforms.Resize(image_size), transforms.CenterCrop(image_size),
                                    transforms.ToTensor()])
    _within_limits(f"{len(samples)} images", 4 * 3 * image_size * image_size * len(samples))
    x = torch.empty((len(samples), 3, image_size, image_size), dtype=torch.float32)
    for index, (path, _) in enumerate(samples):
        _within_limits(path)
        try:
            x[index] = to_tensor(default_loader(path))  # default_loader converts to RGB
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
            raise ValueError(f"cannot read image {path}: {error}") from error
    mean = torch.tensor(spec.mean).view(-1, 1, 1)
    std = torch.tensor(spec.std).view(-1, 1, 1)
    x.sub_(mean).div_(std)  # in place: x stays the only full-size tensor
    return LabelledSet(x, torch.tensor([label for _, label in samples], dtype=torch.int64))


def _load_imagefolder(spec: VisionSpec, root: Path, image_size: int, split_seed: int,
                      test_fraction: float) -> VisionSplit:
    folders: list[Path] = [root]
    for name in ("train", "test", "val"):
        if (root / name).is_symlink():
            try:
                target = (root / name).resolve(strict=True)
            except (OSError, RuntimeError):
                raise ValueError(f"{root / name} is a link that cannot be followed (broken or a loop); make it a "
                                 "folder") from None
            if not target.is_relative_to(root.resolve()) or target == root.resolve():
                raise ValueError(f"{root / name} is a link to {target}, not to a folder inside the data root {root}; "
                                 "links are not followed out of a data root: copy or bind-mount the folder there")
    train_dir = root / "train"
    test_dir = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)
    if train_dir.is_dir() or test_dir is not None:
        if not train_dir.is_dir() or test_dir is None:
            raise ValueError(f"{root} has {'train/' if train_dir.is_dir() else test_dir.name + '/'} but no "
                             f"{'test/ or val/' if train_dir.is_dir() else 'train/'} folder; {spec.title} expects "
                             f"{spec.layout}")
        classes, train_samples = _image_files(spec, train_dir, root, folders)
        test_classes, test_samples = _image_files(spec, test_dir, root, folders)
        if classes != test_classes:
            raise ValueError(f"the class folders of {train_dir} and {test_dir} differ: only in train/: "
                             f"{', '.join(sorted(set(classes) - set(test_classes))) or 'none'}; only in "
                             f"{test_dir.name}/: {', '.join(sorted(set(test_classes) - set(classes))) or 'none'}")
        split = f"folders train/ ({len(train_samples)} images) / {test_dir.name}/ ({len(test_samples)} images)"
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test fraction must be in (0, 1), got {test_fraction!r}")
        classes, samples = _image_files(spec, root, root, folders)
        counts = torch.bincount(torch.tensor([label for _, label in samples]), minlength=len(classes))
        too_few = [name for name, count in zip(classes, counts.tolist()) if count < 2]
        if too_few:
            raise ValueError(f"to split {root} into train and test, each class needs at least 2 images; "
                             f"{', '.join(too_few)} has fewer")
        train_samples, test_samples = _stratified_split(samples, len(classes), test_fraction, split_seed)
        split = (f"one tree of class folders, split per class with split seed {split_seed}: {test_fraction:g} of "
                 f"each class to test ({len(train_samples)} train / {len(test_samples)} test images)")
    return VisionSplit(
        train=_read_images(spec, train_samples, image_size),
        test=_read_images(spec, test_samples, image_size),
        classes=classes,
        split=split,
        preprocessing=preprocessing(spec.name, image_size),
        files=tuple(sorted(Path(path) for path, _ in train_samples + test_samples)),
        folders=tuple(folders),
    )
