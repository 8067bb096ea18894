"""Boundary shrink (boundary.py and the "boundary" forget objective): the labels are the original's nearest wrong
class at a one-step FGSM neighbour, and fine-tuning on them moves the blobs model, batched as sequentially."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cup_core import Experiment, SweepPlan, run_sweep
from cup_core.batched import ENGINES_AGREE, batchable_procedure, unlearn_batched
from cup_core.boundary import FGSM_BOUND, boundary_labels, fgsm_neighbours
from cup_core.data import load_unlearning_data
from cup_core.labelled import LabelledSet
from cup_core.methods import get_method
from cup_core.training import unlearn

from ._experiments import CPU, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(classes: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, classes))


def _samples(n: int = 64, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, 2, generator=generator), torch.randint(0, classes, (n,), generator=generator)


def test_the_neighbour_is_one_signed_gradient_step_of_the_bound():
    model, (x, y) = _model(), _samples()
    neighbours = fgsm_neighbours(model, x, y)
    for i in range(len(x)):  # an oracle: each sample's own input gradient
        one = x[i:i + 1].clone().requires_grad_(True)
        F.cross_entropy(model(one), y[i:i + 1]).backward()
        assert torch.equal(neighbours[i], x[i] + FGSM_BOUND * one.grad[0].sign())


def test_labels_are_never_the_true_class_and_are_the_neighbours_best_other_class():
    model, (x, y) = _model(), _samples()
    labels = boundary_labels(model, x, y)
    assert not (labels == y).any()
    with torch.no_grad():
        logits = model(fgsm_neighbours(model, x, y))
    for i in range(len(x)):
        others = [c for c in range(logits.shape[1]) if c != y[i]]
        assert labels[i] == max(others, key=lambda c: logits[i, c].item())


def test_labels_leave_the_model_as_it_was():
    model, (x, y) = _model(), _samples()
    before = copy.deepcopy(model.state_dict())
    model.train()
    boundary_labels(model, x, y)
    assert model.training and all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_boundary_shrink_fine_tunes_on_the_forget_samples_only():
    """The retain batch does not enter the step: any retain set gives the same weights."""
    method = get_method("boundary_shrink")
    procedure, recipe = method.setup(1e-2, tiny_config().unlearn)
    x, y = _samples()
    forget = LabelledSet(x[:16], y[:16])
    runs = []
    for shift in (0.0, 5.0):
        model = _model()
        unlearn(model, forget, LabelledSet(x[16:] + shift, y[16:]), procedure, recipe, seed=0)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert batchable_procedure(procedure) is None


def test_the_batched_engine_agrees_with_the_sequential_one():
    data = load_unlearning_data(tiny_config())
    model = _model()
    method = get_method("boundary_shrink")
    setups = [method.setup(v, tiny_config().unlearn) for v in (1e-3, 1e-2)]
    states, _ = unlearn_batched(copy.deepcopy(model), data.forget, data.retain, [p for p, _ in setups],
                                [r for _, r in setups], seed=0)
    for (procedure, recipe), state in zip(setups, states):
        alone = copy.deepcopy(model)
        unlearn(alone, data.forget, data.retain, procedure, recipe, seed=0)
        assert all(torch.allclose(alone.state_dict()[k], state[k], **ENGINES_AGREE) for k in state)


def test_boundary_shrink_forgets_blobs_class_2(tmp_path):
    experiment = Experiment(tiny_config(), tmp_path)
    results = run_sweep(experiment, SweepPlan({"boundary_shrink": (1e-3, 3e-2)}), CPU).set_index("value")
    original = experiment.reference("original")["metrics"]
    assert results.loc[3e-2, "ua"] > original["ua"] + 50  # the forget class moved across its boundary
    assert results.loc[3e-2, "ua"] >= results.loc[1e-3, "ua"]
    assert results["diverged_at_step"].isna().all()
