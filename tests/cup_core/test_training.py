"""The training loop: optimisers, seeded batches, plain training, and the unlearning loop's methods' pieces."""

from __future__ import annotations

import math

import pytest
import torch

from cup_core.config import TrainRecipe, UnlearnRecipe
from cup_core.data import LabelledSet
from cup_core.methods import get_method
from cup_core.models import MLP
from cup_core.rules import FT
from cup_core.training import (
    Procedure,
    make_optimizer,
    saliency_mask,
    shuffled_batches,
    train_model,
    unlearn,
    wrong_labels,
    zipped_batches,
)


def test_the_recipe_picks_the_optimiser_and_its_settings():
    params = list(MLP().parameters())
    sgd = make_optimizer(params, UnlearnRecipe(lr=0.1, momentum=0.5, weight_decay=1e-3))
    assert isinstance(sgd, torch.optim.SGD)
    assert (sgd.defaults["lr"], sgd.defaults["momentum"], sgd.defaults["weight_decay"]) == (0.1, 0.5, 1e-3)
    adam = make_optimizer(params, TrainRecipe(lr=0.01, optimizer="adam"))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.01
    with pytest.raises(ValueError, match="optimizer must be sgd or adam, got 'rmsprop'"):  # the recipe refuses it
        make_optimizer(params, UnlearnRecipe(optimizer="rmsprop"))


def test_an_epochs_batches_cover_every_sample_once_in_the_seeds_order():
    batches = shuffled_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(batch) for batch in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = shuffled_batches(10, 4, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))
    other = shuffled_batches(10, 4, torch.Generator().manual_seed(1))
    assert not all(torch.equal(a, b) for a, b in zip(batches, other))


def test_an_unlearning_epoch_has_as_many_steps_as_the_shorter_shuffle():
    steps = list(zipped_batches(forget_size=5, retain_size=20, batch_size=2, epochs=3,
                                generator=torch.Generator().manual_seed(0)))
    assert len(steps) == 3 * 3  # ceil(5 / 2) forget batches per epoch against 10 retain batches
    assert all(len(forget) == len(retain) == 2 for forget, retain in steps[:2])
    assert all(int(forget.max()) < 5 and int(retain.max()) < 20 for forget, retain in steps)


@pytest.mark.slow
def test_training_is_reproducible_and_learns():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(200, 2, generator=generator)
    data = LabelledSet(x, (x[:, 0] > 0).long())  # separable by the first coordinate
    recipe = TrainRecipe(epochs=20, lr=0.05, batch_size=50, seed=3)
    epochs = []
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(train_model(MLP(num_classes=2), data, recipe, on_epoch=epochs.append))
    assert epochs == list(range(1, 21)) * 2
    first, second = (model.state_dict() for model in models)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not models[0].training
    with torch.no_grad():
        assert (models[0](data.x).argmax(1) == data.y).double().mean().item() > 0.95


def test_wrong_labels_are_never_the_true_one():
    labels = torch.arange(5).repeat(200)
    drawn = wrong_labels(labels, 5, torch.Generator().manual_seed(0))
    assert not (drawn == labels).any()
    assert set(drawn.tolist()) == set(range(5)) and drawn.min() >= 0 and drawn.max() < 5


@pytest.mark.slow
def test_random_labels_are_never_the_true_label_and_saliency_keeps_its_share():
    torch.manual_seed(0)
    model = MLP()
    forget = LabelledSet(torch.randn(64, 2), torch.randint(0, 5, (64,)))
    mask = saliency_mask(model, forget, 0.25)
    parameters = sum(p.numel() for p in model.parameters())
    assert mask.sum().item() == pytest.approx(0.25 * parameters, abs=2)
    # With the retain gradient zeroed by FT-free weights, RL only descends CE to wrong labels: the model
    # must then stop predicting the true labels on the forget set.
    recipe = UnlearnRecipe(epochs=60, lr=0.05, batch_size=64, optimizer="adam", weight_decay=0.0)
    retain = LabelledSet(torch.randn(64, 2), torch.randint(0, 5, (64,)))
    unlearn(model, forget, retain, Procedure(get_method("rl").procedure(1e-3).rule,
                                             forget_objective="random_labels"), recipe, seed=0)
    with torch.no_grad():
        accuracy = (model(forget.x).argmax(1) == forget.y).double().mean().item()
    assert accuracy < 0.2


@pytest.mark.slow
def test_l1_penalty_shrinks_the_weights():
    torch.manual_seed(0)
    data = LabelledSet(torch.randn(64, 2), torch.randint(0, 5, (64,)))
    norms = []
    for strength in (0.0, 0.05):
        model = MLP()
        torch.manual_seed(1)
        unlearn(model, data, data, Procedure(FT(), l1_strength=strength),
                UnlearnRecipe(epochs=30, lr=0.01, batch_size=64, optimizer="sgd", momentum=0.0, weight_decay=0.0), 0)
        norms.append(sum(p.abs().sum().item() for p in model.parameters()))
    assert norms[1] < norms[0]
    assert not math.isnan(norms[1])
