"""Small stand-ins for the real image data sets, written in each one's official on-disk format.

Each writer returns what it wrote as a StandIn, so that a test can compare every pixel and label that
load_vision returns. Images are made by `pattern`: pixel (0, 0) of channel 0 holds the label and pixel (0, 1)
the sample's index, so images of different classes, and different images of one class, always differ.
"""

from __future__ import annotations

import io
import os
import pickle
import shlex
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRAIN_SIZE = 40
TEST_SIZE = 20
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = tuple(f"fine_{index:02d}" for index in range(100))
CIFAR100_USED = (0, 1, 42, 98, 99)  # a few fine labels, the first and the last among them
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")  # fixed by the data set: its files hold no names


@dataclass(frozen=True)
class StandIn:
    train_images: np.ndarray  # (N, C, H, W) uint8 as load_vision should see them, before normalisation
    train_labels: np.ndarray  # (N,) int64 as load_vision should return them
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]


def pattern(labels: np.ndarray, channels: int, size: int, first_index: int = 0) -> np.ndarray:
    """(N, C, size, size) uint8 images: rows, columns and channels all differ, so a transposition shows."""
    count = len(labels)
    c, h, w = np.meshgrid(np.arange(channels), np.arange(size), np.arange(size), indexing="ij")
    images = (37 * c + 3 * h + 2 * w)[None] + 7 * labels[:, None, None, None]
    images = images % 256
    images[:, 0, 0, 0] = labels
    images[:, 0, 0, 1] = first_index + np.arange(count)
    return images.astype(np.uint8)


def _cycle(used: tuple[int, ...], count: int) -> np.ndarray:
    return np.array([used[index % len(used)] for index in range(count)], dtype=np.int64)


def _stand_in(used: tuple[int, ...], channels: int, size: int, classes: tuple[str, ...]) -> StandIn:
    train_labels, test_labels = _cycle(used, TRAIN_SIZE), _cycle(used[::-1], TEST_SIZE)
    return StandIn(pattern(train_labels, channels, size), train_labels,
                   pattern(test_labels, channels, size, first_index=TRAIN_SIZE), test_labels, classes)


# MNIST, Fashion-MNIST: big-endian idx files ---------------------------------------------------------------------

def _write_idx(path: Path, array: np.ndarray) -> None:
    # Magic: two zero bytes, 0x08 (uint8), the number of dimensions: 2051 for images, 2049 for labels.
    header = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, folder: str = "MNIST") -> StandIn:
    """MNIST/raw/ (or FashionMNIST/raw/) holding the four uncompressed idx files."""
    classes = FASHION_CLASSES if folder == "FashionMNIST" else tuple(str(digit) for digit in range(10))
    stand_in = _stand_in(tuple(range(10)), 1, 28, classes)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, images, labels in [("train", stand_in.train_images, stand_in.train_labels),
                                   ("t10k", stand_in.test_images, stand_in.test_labels)]:
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0])  # (N, 28, 28)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return stand_in


# CIFAR-10, CIFAR-100: pickled dicts ----------------------------------------------------------------------------

class _Python2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2's str (BINSTRING), as the official CIFAR files, pickled by Python 2, do.

    Python 3's own protocol-2 pickler writes bytes as a call to _codecs.encode instead.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_python2_str(self, value: bytes | str) -> None:
        data = value.encode("latin1") if isinstance(value, str) else value
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(value)

    dispatch[bytes] = _save_python2_str
    dispatch[str] = _save_python2_str


def _pickle(path: Path, content: dict, python2: bool) -> None:
    if python2:
        buffer = io.BytesIO()
        _Python2Pickler(buffer, protocol=2).dump(content)
        path.write_bytes(buffer.getvalue())
    else:
        with open(path, "wb") as file:
            pickle.dump(content, file, protocol=2)


def _cifar_rows(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), 3 * 32 * 32)  # R, G, B planes of 32x32, row-major


def write_cifar10(root: Path, python2: bool = True) -> StandIn:
    """cifar-10-batches-py/ with data_batch_1..5 (8 images each), test_batch and batches.meta."""
    stand_in = _stand_in(tuple(range(10)), 3, 32, CIFAR10_CLASSES)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    per_batch = TRAIN_SIZE // 5
    for batch in range(5):
        rows = slice(batch * per_batch, (batch + 1) * per_batch)
        _pickle(folder / f"data_batch_{batch + 1}", {
            b"batch_label": f"training batch {batch + 1} of 5".encode(),
            b"labels": stand_in.train_labels[rows].tolist(),
            b"data": _cifar_rows(stand_in.train_images[rows]),
            b"filenames": [f"image_{index}.png".encode() for index in range(per_batch)],
        }, python2)
    _pickle(folder / "test_batch", {
        b"batch_label": b"testing batch 1 of 1",
        b"labels": stand_in.test_labels.tolist(),
        b"data": _cifar_rows(stand_in.test_images),
        b"filenames": [f"test_{index}.png".encode() for index in range(TEST_SIZE)],
    }, python2)
    _pickle(folder / "batches.meta", {b"num_cases_per_batch": 10000, b"num_vis": 3072,
                                      b"label_names": [name.encode() for name in CIFAR10_CLASSES]}, python2)
    return stand_in


def write_cifar100(root: Path, python2: bool = True) -> StandIn:
    """cifar-100-python/ with train, test and meta; fine and coarse labels."""
    stand_in = _stand_in(CIFAR100_USED, 3, 32, CIFAR100_CLASSES)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for file, images, labels in [("train", stand_in.train_images, stand_in.train_labels),
                                 ("test", stand_in.test_images, stand_in.test_labels)]:
        _pickle(folder / file, {
            b"filenames": [f"{file}_{index}.png".encode() for index in range(len(labels))],
            b"batch_label": f"{file}ing batch 1 of 1".encode(),
            b"fine_labels": labels.tolist(),
            b"coarse_labels": (labels // 5).tolist(),
            b"data": _cifar_rows(images),
        }, python2)
    _pickle(folder / "meta", {b"fine_label_names": [name.encode() for name in CIFAR100_CLASSES],
                              b"coarse_label_names": [f"coarse_{index:02d}".encode() for index in range(20)]}, python2)
    return stand_in


class _RunsCode:
    """Unpickling it runs a shell command, as a malicious pickle would."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def hostile_pickle(path: Path, marker: Path) -> None:
    """A CIFAR-like dict whose unpickling would create the file `marker`."""
    with open(path, "wb") as file:
        pickle.dump({b"data": _RunsCode(f"touch {shlex.quote(str(marker))}"), b"labels": []}, file, protocol=2)


# SVHN: MATLAB .mat files ----------------------------------------------------------------------------------------

def write_svhn(root: Path) -> StandIn:
    """train_32x32.mat and test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with digit 0 written as 10."""
    from scipy.io import savemat

    stand_in = _stand_in(tuple(range(10)), 3, 32, tuple(str(digit) for digit in range(10)))
    root.mkdir(parents=True, exist_ok=True)
    for file, images, labels in [("train_32x32.mat", stand_in.train_images, stand_in.train_labels),
                                 ("test_32x32.mat", stand_in.test_images, stand_in.test_labels)]:
        official_labels = np.where(labels == 0, 10, labels).astype(np.uint8)[:, None]
        savemat(root / file, {"X": images.transpose(2, 3, 1, 0), "y": official_labels})
    return stand_in


# ImageFolder: trees of PNGs ---------------------------------------------------------------------------------------

IMAGEFOLDER_CLASSES = ("cat", "dog", "fish")


def imagefolder_colour(label: int, index: int) -> tuple[int, int, int]:
    """The one colour of an ImageFolder stand-in image: red and green tell the class, blue the image."""
    return 40 * label + 10, 200 - 50 * label, index


def write_image_tree(directory: Path, counts: tuple[int, ...], first_index: int = 0,
                     size: tuple[int, int] = (24, 16)) -> StandIn:
    """One folder per class in IMAGEFOLDER_CLASSES holding counts[label] PNGs of one colour each, width x height
    `size`; the first image of the second class is a grey-level PNG, to be converted to RGB."""
    from PIL import Image

    colours, labels = [], []
    index = first_index
    for label, (name, count) in enumerate(zip(IMAGEFOLDER_CLASSES, counts)):
        (directory / name).mkdir(parents=True)
        for number in range(count):
            colour = imagefolder_colour(label, index)
            if label == 1 and number == 0:
                grey = colour[0]
                Image.new("L", size, grey).save(directory / name / f"{number:03d}.png")
                colour = (grey, grey, grey)
            else:
                Image.new("RGB", size, colour).save(directory / name / f"{number:03d}.png")
            colours.append(colour)
            labels.append(label)
            index += 1
    images = np.array(colours, dtype=np.uint8)[:, :, None, None]  # (N, 3, 1, 1): constant images
    return StandIn(images, np.array(labels, dtype=np.int64), images[:0], np.zeros(0, dtype=np.int64),
                   IMAGEFOLDER_CLASSES)


def write_imagefolder_split(root: Path, test_folder: str = "test") -> StandIn:
    """train/ and test/ (or val/) folders of class folders."""
    train = write_image_tree(root / "train", (5, 4, 3))
    test = write_image_tree(root / test_folder, (2, 2, 2), first_index=100, size=(16, 30))
    return StandIn(train.train_images, train.train_labels, test.train_images, test.train_labels, train.classes)


def write_imagefolder_tree(root: Path) -> StandIn:
    """One tree of class folders (10, 15 and 5 images), to be split by load_vision; all images as train_*."""
    return write_image_tree(root, (10, 15, 5))
