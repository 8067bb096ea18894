"""load_vision on small stand-ins written in each data set's official on-disk format (see _stand_ins.py)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cup_core.vision import VISION_DATASETS, load_vision

from . import _stand_ins
from ._stand_ins import TEST_SIZE, TRAIN_SIZE, StandIn

# The usual per-channel statistics, written out here rather than read from VISION_DATASETS.
STANDARD_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
WRITERS = {
    "mnist": _stand_ins.write_mnist,
    "fashion-mnist": lambda root: _stand_ins.write_mnist(root, folder="FashionMNIST"),
    "cifar10": _stand_ins.write_cifar10,
    "cifar100": _stand_ins.write_cifar100,
    "svhn": _stand_ins.write_svhn,
}
NATIVE = list(WRITERS)


def normalised(images: np.ndarray, name: str) -> torch.Tensor:
    """(x / 255 - mean) / std in float64, channel by channel: the oracle for load_vision's pixels."""
    mean, std = (np.array(values).reshape(-1, 1, 1) for values in STANDARD_STATS[name])
    return torch.as_tensor((images / 255.0 - mean) / std)


def assert_matches(split_set, images: np.ndarray, labels: np.ndarray, name: str) -> None:
    assert split_set.x.dtype == torch.float32 and split_set.y.dtype == torch.int64
    assert split_set.x.shape == images.shape
    assert torch.equal(split_set.y, torch.as_tensor(labels))
    torch.testing.assert_close(split_set.x.double(), normalised(images, name), rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, StandIn]]:
    """(root, stand-in) of every native-format data set, written once."""
    roots = {}
    for name, write in WRITERS.items():
        root = tmp_path_factory.mktemp(name)
        roots[name] = root, write(root)
    return roots


# Native formats ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NATIVE)
def test_native_sets_load_every_pixel_and_label(name, written):
    root, stand_in = written[name]
    split = load_vision(name, root)
    spec = VISION_DATASETS[name]
    assert split.train.x.shape[1:] == (spec.channels, spec.image_size, spec.image_size)
    assert_matches(split.train, stand_in.train_images, stand_in.train_labels, name)
    assert_matches(split.test, stand_in.test_images, stand_in.test_labels, name)
    assert split.classes == stand_in.classes and len(split.classes) == spec.num_classes
    assert "no augmentation" in split.preprocessing
    assert f"{TRAIN_SIZE} images" in split.split and f"{TEST_SIZE} images" in split.split


@pytest.mark.parametrize("name", list(STANDARD_STATS))
def test_specs_hold_the_standard_statistics(name):
    spec = VISION_DATASETS[name]
    assert spec.name == name
    assert (spec.mean, spec.std) == STANDARD_STATS[name]
    assert len(spec.mean) == len(spec.std) == spec.channels


def test_a_constant_image_at_the_mean_becomes_zero(tmp_path):
    """An image whose grey level is MNIST's mean x 255 maps to (about) 0, one at 0 to -mean/std."""
    stand_in = _stand_ins.write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[1] = round(0.1307 * 255)  # 33
    _stand_ins._write_idx(raw / "t10k-images-idx3-ubyte", images)
    _stand_ins._write_idx(raw / "t10k-labels-idx1-ubyte", stand_in.test_labels[:2])
    test = load_vision("mnist", tmp_path).test
    torch.testing.assert_close(test.x[0], torch.full((1, 28, 28), -0.1307 / 0.3081), rtol=0, atol=1e-6)
    torch.testing.assert_close(test.x[1], torch.full((1, 28, 28), (33 / 255 - 0.1307) / 0.3081), rtol=0, atol=1e-6)
    assert abs(float(test.x[1, 0, 0, 0])) < 0.01


@pytest.mark.parametrize("write, name", [(_stand_ins.write_cifar10, "cifar10"),
                                         (_stand_ins.write_cifar100, "cifar100")])
def test_cifar_pickled_by_python_3_also_loads(tmp_path, write, name):
    """Python 3's protocol-2 pickles spell bytes as _codecs.encode calls: allowed, for latin1 only."""
    stand_in = write(tmp_path, python2=False)
    split = load_vision(name, tmp_path)
    assert_matches(split.train, stand_in.train_images, stand_in.train_labels, name)
    assert split.classes == stand_in.classes


def test_cifar100_uses_fine_labels(written):
    root, _ = written["cifar100"]
    split = load_vision("cifar100", root)
    assert set(split.train.y.tolist()) == set(_stand_ins.CIFAR100_USED)
    assert "fine labels" in split.split


def test_svhn_maps_label_10_to_digit_0(written):
    root, stand_in = written["svhn"]
    split = load_vision("svhn", root)
    assert int(split.train.y.min()) == 0 and int(split.train.y.max()) == 9
    assert (split.train.y == 0).sum() == (stand_in.train_labels == 0).sum() > 0


def test_split_names_the_official_files(written):
    assert "data_batch_1..5" in load_vision("cifar10", written["cifar10"][0]).split
    assert "test_batch" in load_vision("cifar10", written["cifar10"][0]).split
    assert "train_32x32.mat" in load_vision("svhn", written["svhn"][0]).split
    assert "t10k" in load_vision("mnist", written["mnist"][0]).split


# Hostile pickles -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("file", ["batches.meta", "data_batch_3", "test_batch"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, file):
    _stand_ins.write_cifar10(tmp_path / "root")
    marker = tmp_path / "pwned"
    _stand_ins.hostile_pickle(tmp_path / "root" / "cifar-10-batches-py" / file, marker)
    with pytest.raises(ValueError, match=re.escape(file) + r".*holds code or objects besides arrays.*refused"):
        load_vision("cifar10", tmp_path / "root")
    assert not marker.exists()


def test_the_hostile_pickle_does_run_code_when_unpickled_plainly(tmp_path):
    """The oracle for the test above: plain pickle.load of the same file creates the marker."""
    marker = tmp_path / "pwned"
    _stand_ins.hostile_pickle(tmp_path / "batch", marker)
    with open(tmp_path / "batch", "rb") as file:
        pickle.load(file)
    assert marker.exists()


def test_a_pickle_of_other_objects_is_refused(tmp_path):
    _stand_ins.write_cifar100(tmp_path)
    with open(tmp_path / "cifar-100-python" / "train", "wb") as file:
        pickle.dump({"data": Path("/"), "fine_labels": []}, file, protocol=2)
    with pytest.raises(ValueError, match="besides arrays"):
        load_vision("cifar100", tmp_path)


def test_a_truncated_batch_is_a_clear_error(tmp_path):
    _stand_ins.write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(ValueError, match="data_batch_2 is not a CIFAR batch file"):
        load_vision("cifar10", tmp_path)


# ImageFolder ---------------------------------------------------------------------------------------------------

def colours(split_set) -> torch.Tensor:
    """(N, 3) the colour of each (constant) loaded image, back in 0..255."""
    mean, std = (torch.tensor(values, dtype=torch.float64) for values in STANDARD_STATS["imagefolder"])
    return ((split_set.x[:, :, 0, 0].double() * std + mean) * 255).round()


@pytest.mark.parametrize("test_folder", ["test", "val"])
def test_imagefolder_with_train_and_test_folders(tmp_path, test_folder):
    stand_in = _stand_ins.write_imagefolder_split(tmp_path, test_folder)
    split = load_vision("imagefolder", tmp_path, image_size=12)
    assert split.classes == _stand_ins.IMAGEFOLDER_CLASSES
    for loaded, images, labels in [(split.train, stand_in.train_images, stand_in.train_labels),
                                   (split.test, stand_in.test_images, stand_in.test_labels)]:
        assert loaded.x.shape == (len(labels), 3, 12, 12) and loaded.x.dtype == torch.float32
        assert torch.equal(loaded.y, torch.as_tensor(labels))
        # Constant images stay constant through resize and crop; the grey PNG became RGB.
        assert torch.allclose(loaded.x, loaded.x[:, :, :1, :1].expand_as(loaded.x), atol=1e-6)
        assert torch.equal(colours(loaded), torch.as_tensor(images[:, :, 0, 0], dtype=torch.float64))
    assert split.split == f"folders train/ (12 images) / {test_folder}/ (6 images)"
    assert "12x12" in split.preprocessing and "no augmentation" in split.preprocessing


def test_imagefolder_one_tree_is_split_per_class_by_the_seed(tmp_path):
    stand_in = _stand_ins.write_imagefolder_tree(tmp_path)
    first = load_vision("imagefolder", tmp_path, image_size=8, split_seed=3)
    again = load_vision("imagefolder", tmp_path, image_size=8, split_seed=3)
    other = load_vision("imagefolder", tmp_path, image_size=8, split_seed=4)
    assert torch.equal(first.train.x, again.train.x) and torch.equal(first.test.x, again.test.x)
    assert not torch.equal(first.test.x, other.test.x)
    # Stratified: 0.2 of 10, 15 and 5 images.
    assert torch.bincount(first.test.y).tolist() == [2, 3, 1]
    assert torch.bincount(first.train.y).tolist() == [8, 12, 4]
    # Every image once, on one side, with its own label (blue tells the images apart).
    blue = torch.cat([colours(first.train)[:, 2], colours(first.test)[:, 2]]).long().tolist()
    written_blue = stand_in.train_images[:, 2, 0, 0].tolist()
    assert sorted(blue) == sorted(written_blue) and len(set(blue)) == len(blue)
    loaded_labels = dict(zip(blue, torch.cat([first.train.y, first.test.y]).tolist()))
    assert loaded_labels == dict(zip(written_blue, stand_in.train_labels.tolist()))
    assert "split seed 3" in first.split and "0.2 of each class" in first.split
    assert "24 train / 6 test" in first.split


def test_imagefolder_test_fraction(tmp_path):
    _stand_ins.write_imagefolder_tree(tmp_path)
    split = load_vision("imagefolder", tmp_path, image_size=8, test_fraction=0.5)
    assert torch.bincount(split.test.y).tolist() == [5, 8, 2]  # round half to even: 7.5 -> 8, 2.5 -> 2
    with pytest.raises(ValueError, match="test fraction"):
        load_vision("imagefolder", tmp_path, image_size=8, test_fraction=1.0)


def test_imagefolder_skips_hidden_folders(tmp_path):
    _stand_ins.write_imagefolder_tree(tmp_path)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    assert load_vision("imagefolder", tmp_path, image_size=8).classes == _stand_ins.IMAGEFOLDER_CLASSES


def test_imagefolder_class_folders_of_train_and_test_must_match(tmp_path):
    _stand_ins.write_imagefolder_split(tmp_path)
    (tmp_path / "test" / "dog").rename(tmp_path / "test" / "wolf")
    with pytest.raises(ValueError, match="only in train/: dog; only in test/: wolf"):
        load_vision("imagefolder", tmp_path, image_size=8)


def test_imagefolder_needs_train_and_test(tmp_path):
    _stand_ins.write_image_tree(tmp_path / "train", (2, 2, 2))
    with pytest.raises(ValueError, match="has train/ but no test/ or val/"):
        load_vision("imagefolder", tmp_path, image_size=8)


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20], ids=["empty", "truncated"])
def test_imagefolder_unreadable_image_is_named(tmp_path, content):
    _stand_ins.write_imagefolder_tree(tmp_path)
    broken = tmp_path / "dog" / "broken.png"
    broken.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot read image {re.escape(str(broken))}"):
        load_vision("imagefolder", tmp_path, image_size=8)


def test_imagefolder_class_without_images(tmp_path):
    _stand_ins.write_imagefolder_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_vision("imagefolder", tmp_path, image_size=8)


@pytest.mark.parametrize("image_size", [None, 7])
def test_imagefolder_needs_an_image_size(tmp_path, image_size):
    _stand_ins.write_imagefolder_tree(tmp_path)
    with pytest.raises(ValueError, match="image size of at least 8"):
        load_vision("imagefolder", tmp_path, image_size=image_size)


def test_imagefolder_cannot_be_downloaded(tmp_path):
    with pytest.raises(ValueError, match="nothing to download"):
        load_vision("imagefolder", tmp_path, image_size=32, download=True)


# Arguments and missing files -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
    ("fashion-mnist", "FashionMNIST/raw/t10k-labels-idx1-ubyte"),
    ("cifar10", "cifar-10-batches-py"),
    ("cifar100", "cifar-100-python"),
    ("svhn", "test_32x32.mat"),
])
def test_missing_files_name_the_path_the_layout_and_download(tmp_path, name, expected):
    with pytest.raises(ValueError) as error:
        load_vision(name, tmp_path)
    message = str(error.value)
    assert str(tmp_path / expected) in message
    assert VISION_DATASETS[name].layout in message and "--download" in message


def test_a_missing_batch_file_is_named(tmp_path):
    _stand_ins.write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(ValueError, match=re.escape(f"missing {tmp_path / 'cifar-10-batches-py' / 'data_batch_4'}.")):
        load_vision("cifar10", tmp_path)


@pytest.mark.parametrize("name", NATIVE)
def test_image_size_must_be_the_native_one(written, name):
    root, _ = written[name]
    native = VISION_DATASETS[name].image_size
    assert load_vision(name, root, image_size=native).train.x.shape[-1] == native
    with pytest.raises(ValueError, match=f"images are {native}x{native}"):
        load_vision(name, root, image_size=64)


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="mnist, fashion-mnist, cifar10, cifar100, svhn, imagefolder"):
        load_vision("imagenet", tmp_path)


def test_root_must_be_a_folder(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        load_vision("mnist", tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is not a folder"):
        load_vision("svhn", tmp_path / "file", download=True)


def test_a_malformed_idx_file_is_a_clear_error(tmp_path):
    _stand_ins.write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="are not MNIST idx files"):
        load_vision("mnist", tmp_path)


# Download: torchvision's classes stood in for, since tests never use the network ---------------------------------

def test_download_asks_torchvision_then_reads_the_files(tmp_path, monkeypatch):
    from torchvision import datasets

    calls = []

    class FakeSVHN:
        def __init__(self, root, split, download):
            calls.append((Path(root), split, download))
            if split == "train":  # both splits land in root, as torchvision's would
                _stand_ins.write_svhn(Path(root))

    monkeypatch.setattr(datasets, "SVHN", FakeSVHN)
    root = tmp_path / "new" / "svhn"
    split = load_vision("svhn", root, download=True)
    assert calls == [(root, "train", True), (root, "test", True)]
    assert len(split.train) == TRAIN_SIZE


def test_a_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    from torchvision import datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(datasets, "MNIST", offline)
    with pytest.raises(ValueError, match="could not download MNIST into .*Error downloading"):
        load_vision("mnist", tmp_path, download=True)
