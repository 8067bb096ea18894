"""The embedded data sets, their seeded splits and the forget/retain/test sets built from them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cup_core.config import ExperimentConfig, ForgetSet, TrainRecipe, UnlearnRecipe
from cup_core.data import (
    BLOB_TEST_SIZE,
    BLOB_TRAIN_SIZE,
    DATASETS,
    dataset_info,
    default_config,
    forget_mask,
    load_split,
    load_unlearning_data,
)

DIGITS_SIZE = 1797  # scikit-learn's digits


@pytest.mark.parametrize("name", ["blobs", "digits"])
def test_split_is_deterministic_per_seed(name):
    (train_a, test_a), (train_b, test_b) = load_split(name, 0), load_split(name, 0)
    assert torch.equal(train_a.x, train_b.x) and torch.equal(train_a.y, train_b.y)
    assert torch.equal(test_a.x, test_b.x) and torch.equal(test_a.y, test_b.y)
    train_c, _ = load_split(name, 1)
    assert not torch.equal(train_a.x, train_c.x)


@pytest.mark.parametrize("name", ["blobs", "digits"])
def test_split_has_the_documented_shapes_and_types(name):
    info = dataset_info(name)
    train, test = load_split(name, 0)
    for part in (train, test):
        assert part.x.dtype == torch.float32 and part.y.dtype == torch.int64
        assert tuple(part.x.shape[1:]) == info.input_shape
        assert set(part.y.unique().tolist()) == set(range(info.num_classes))
    if name == "blobs":
        assert (len(train), len(test)) == (BLOB_TRAIN_SIZE, BLOB_TEST_SIZE)
    else:
        assert len(train) + len(test) == DIGITS_SIZE
        assert len(test) == math.ceil(0.2 * DIGITS_SIZE)
        assert 0.0 <= train.x.min() and train.x.max() <= 1.0  # grey levels 0..16 divided by 16


def test_blobs_are_the_cup_authors_toy():
    """The authors' notebook, its calls written out here: make_blobs of 2,000 points, then a 70/30 split."""
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import train_test_split

    x, y = make_blobs(n_samples=2000, centers=[[-2, 2], [-6, 6], [5.5, 4], [-4, -4], [5, -1]],
                      cluster_std=[1.5, 1.0, 1.5, 1.5, 1.5], random_state=1234)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=42)
    train, test = load_split("blobs", 0)
    np.testing.assert_allclose(train.x.numpy(), x_train, rtol=1e-6)
    np.testing.assert_allclose(test.x.numpy(), x_test, rtol=1e-6)
    assert np.array_equal(train.y.numpy(), y_train) and np.array_equal(test.y.numpy(), y_test)
    # Its statistics: 400 points a blob, centred where the notebook puts them, with its spreads.
    xs, ys = np.concatenate([train.x.numpy(), test.x.numpy()]), np.concatenate([train.y.numpy(), test.y.numpy()])
    assert (len(train), len(test)) == (1400, 600) and np.bincount(ys).tolist() == [400] * 5
    for label, (centre, std) in enumerate(zip([[-2, 2], [-6, 6], [5.5, 4], [-4, -4], [5, -1]],
                                              [1.5, 1.0, 1.5, 1.5, 1.5])):
        points = xs[ys == label]
        np.testing.assert_allclose(points.mean(axis=0), centre, atol=0.2)
        np.testing.assert_allclose(points.std(axis=0), std, rtol=0.1)
    other, _ = load_split("blobs", 1)  # another split seed reshuffles the same 2,000 points
    assert sorted(map(tuple, other.x.tolist())) != sorted(map(tuple, train.x.tolist()))
    assert sorted(map(tuple, np.concatenate([other.x.numpy(), load_split("blobs", 1)[1].x.numpy()]).tolist())) == \
        sorted(map(tuple, xs.tolist()))


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_digits_split_is_stratified(seed):
    train, test = load_split("digits", seed)
    total = np.bincount(np.concatenate([train.y.numpy(), test.y.numpy()]))
    expected_test = total * len(test) / total.sum()
    # Stratified: each class's test share is its overall share, up to rounding of the counts.
    assert np.abs(np.bincount(test.y.numpy(), minlength=10) - expected_test).max() <= 1.0


def test_train_and_test_do_not_overlap():
    train, test = load_split("digits", 0)
    train_rows = {tuple(row) for row in train.x.reshape(len(train), -1).tolist()}
    test_rows = [tuple(row) for row in test.x.reshape(len(test), -1).tolist()]
    # digits has a few duplicate images; a split that leaks would share far more than those.
    assert sum(row in train_rows for row in test_rows) <= 5


@pytest.mark.parametrize(("name", "forget_class"), [("blobs", 0), ("blobs", 4), ("digits", 3), ("digits", 9)])
def test_class_wise_mask_selects_exactly_that_class(name, forget_class):
    train, _ = load_split(name, 0)
    mask = forget_mask(train.y, ForgetSet(forget_class=forget_class), dataset_info(name).num_classes)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, train.y == forget_class)
    assert mask.sum() > 0


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.333, 0.5, 0.9])
def test_random_mask_selects_round_fraction_of_n(fraction):
    labels = torch.zeros(1437, dtype=torch.int64)
    mask = forget_mask(labels, ForgetSet(forget_class=None, fraction=fraction, seed=0), 10)
    assert int(mask.sum()) == round(fraction * 1437)


def test_random_mask_is_deterministic_per_seed():
    labels = torch.zeros(2000, dtype=torch.int64)

    def mask(seed):
        return forget_mask(labels, ForgetSet(forget_class=None, fraction=0.1, seed=seed), 5)

    assert torch.equal(mask(0), mask(0))
    assert torch.equal(mask(3), mask(3))
    assert not torch.equal(mask(0), mask(3))


def test_random_mask_keeps_at_least_one_sample():
    mask = forget_mask(torch.zeros(10, dtype=torch.int64), ForgetSet(forget_class=None, fraction=0.01), 5)
    assert int(mask.sum()) == 1


@pytest.mark.parametrize(("name", "forget_class"), [("blobs", -1), ("blobs", 5), ("digits", 10), ("digits", 100)])
def test_out_of_range_class_is_rejected(name, forget_class):
    train, _ = load_split(name, 0)
    # A negative class is refused by the forget set itself (config.py), one beyond the data's classes by the mask.
    with pytest.raises(ValueError, match="out of range|must be a class number"):
        forget_mask(train.y, ForgetSet(forget_class=forget_class), dataset_info(name).num_classes)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, None, math.nan])
def test_bad_fraction_is_rejected(fraction):
    with pytest.raises(ValueError, match="fraction"):
        forget_mask(torch.zeros(100, dtype=torch.int64), ForgetSet(forget_class=None, fraction=fraction), 5)


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match="unknown data set"):
        dataset_info("cifar-10")
    with pytest.raises(ValueError, match="unknown data set"):
        default_config("imagenet")


@pytest.mark.parametrize("name", ["blobs", "digits"])
def test_default_config_uses_the_datasets_recipes(name):
    info = DATASETS[name]
    config = default_config(name)
    assert isinstance(config, ExperimentConfig)
    assert config.dataset == name
    assert config.forget == ForgetSet(forget_class=info.default_forget_class)
    assert config.train == TrainRecipe(**info.default_train_recipe)
    assert config.unlearn == UnlearnRecipe(**info.default_unlearn_recipe)


def test_default_configs_of_the_two_datasets():
    blobs, digits = default_config("blobs"), default_config("digits")
    assert blobs.forget.forget_class == 2 and digits.forget.forget_class == 0  # the paper's toy forgets class 2
    assert (blobs.train.epochs, blobs.train.lr, blobs.train.optimizer) == (100, 0.01, "adam")
    assert (blobs.unlearn.epochs, blobs.unlearn.optimizer, blobs.unlearn.weight_decay) == (20, "adam", 0.0)
    assert (digits.unlearn.optimizer, digits.unlearn.lr, digits.unlearn.epochs) == ("adam", 7e-5, 10)
    assert blobs.experiment_id != digits.experiment_id


def test_default_config_forget_options():
    assert default_config("digits", forget_class=7).forget == ForgetSet(forget_class=7)
    random = default_config("blobs", forget_fraction=0.1, forget_seed=4).forget
    assert random == ForgetSet(forget_class=None, fraction=0.1, seed=4)
    assert random.kind == "random" and "10%" in random.describe()
    with pytest.raises(ValueError, match="give one forget set"):
        default_config("digits", forget_class=1, forget_fraction=0.1)


def test_class_wise_unlearning_data_partitions_train_and_test():
    config = default_config("digits", forget_class=3)
    data = load_unlearning_data(config)
    train, test = load_split("digits", config.split_seed)
    assert len(data.forget) + len(data.retain) == len(train)
    assert (data.forget.y == 3).all() and not (data.retain.y == 3).any()
    assert int((train.y == 3).sum()) == len(data.forget)
    assert data.forget_test is not None and (data.forget_test.y == 3).all()
    assert not (data.test.y == 3).any()
    assert len(data.test) + len(data.forget_test) == len(test) == len(data.full_test)
    assert torch.equal(data.full_test.y, test.y)
    assert sorted(data.train.y.tolist()) == sorted(train.y.tolist())


def test_random_subset_unlearning_data_has_no_forget_test_set():
    config = default_config("blobs", forget_fraction=0.1, forget_seed=2)
    data = load_unlearning_data(config)
    assert len(data.forget) == round(0.1 * BLOB_TRAIN_SIZE)
    assert len(data.forget) + len(data.retain) == BLOB_TRAIN_SIZE
    assert data.forget_test is None
    assert torch.equal(data.test.x, data.full_test.x) and len(data.test) == BLOB_TEST_SIZE
    assert len(data.forget.y.unique()) > 1  # a random subset spans the classes
