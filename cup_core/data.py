"""The embedded data sets (five 2-D blobs, scikit-learn's digits) and the forget/retain/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .config import ExperimentConfig, ForgetSet


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


DATASETS: dict[str, DatasetInfo] = {
    "blobs": DatasetInfo(
        name="blobs",
        num_classes=5,
        input_shape=(2,),
        architecture="mlp",
        preprocessing="raw 2-D coordinates of 5 Gaussian blobs (std 1.0) centred on a circle of radius 4",
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

BLOB_TRAIN_SIZE = 2000  # the paper's toy has 2,000 training points
BLOB_TEST_SIZE = 500
DIGITS_TEST_FRACTION = 0.2


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


@dataclass(frozen=True)
class LabelledSet:
    x: Tensor  # (N, *input_shape) float32
    y: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> LabelledSet:
        return LabelledSet(self.x.to(device), self.y.to(device))


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


def blob_centres(count: int, radius: float = 4.0) -> np.ndarray:
    """(count, 2) centres evenly spaced on a circle: separable blobs with a little overlap, as in the paper's figure."""
    angles = 2 * np.pi * np.arange(count) / count + np.pi / 2
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def load_split(name: str, split_seed: int) -> tuple[LabelledSet, LabelledSet]:
    """The fixed, seeded (train, test) split of an embedded data set; no download, ever."""
    from sklearn.model_selection import train_test_split

    info = dataset_info(name)
    if name == "blobs":
        from sklearn.datasets import make_blobs

        x, y = make_blobs(n_samples=BLOB_TRAIN_SIZE + BLOB_TEST_SIZE, centers=blob_centres(info.num_classes),
                          cluster_std=1.0, random_state=split_seed)
        test_size = BLOB_TEST_SIZE
    else:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = (digits.data / 16.0).reshape(-1, *info.input_shape)
        y = digits.target
        test_size = DIGITS_TEST_FRACTION
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=split_seed, stratify=y)
    return _labelled(x_train, y_train), _labelled(x_test, y_test)


def _labelled(x: np.ndarray, y: np.ndarray) -> LabelledSet:
    return LabelledSet(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64))


def forget_mask(train_labels: Tensor, forget: ForgetSet, num_classes: int) -> Tensor:
    """Boolean mask over the training set: True for samples to forget."""
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


def load_unlearning_data(config: ExperimentConfig) -> UnlearningData:
    info = dataset_info(config.dataset)
    train, test = load_split(config.dataset, config.split_seed)
    mask = forget_mask(train.y, config.forget, info.num_classes)
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
                   forget_fraction: float | None = None, forget_seed: int = 0) -> ExperimentConfig:
    """The recommended experiment for a data set: its own training and unlearning recipes.

    Without a forget class or fraction, the data set's default class is forgotten.
    """
    from .config import TrainRecipe, UnlearnRecipe

    info = dataset_info(dataset)
    if forget_class is not None and forget_fraction is not None:
        raise ValueError("give a forget class or a forget fraction, not both")
    if forget_fraction is not None:
        forget = ForgetSet(forget_class=None, fraction=float(forget_fraction), seed=forget_seed)
    else:
        forget = ForgetSet(forget_class=info.default_forget_class if forget_class is None else int(forget_class))
    return ExperimentConfig(
        dataset=dataset,
        forget=forget,
        train=TrainRecipe(**info.default_train_recipe),
        unlearn=UnlearnRecipe(**info.default_unlearn_recipe),
    )
