"""The batched engine against the sequential one: same batches, same rules, same optimiser formulas.

Tolerance: the two engines run the same float32 arithmetic except that batched convolutions and matrix
products sum in another order (and the batched engine runs one forward over both batches). Such
differences are ~1e-7 relative per operation; over a few dozen steps they stay far below 1e-4 of a
weight, which is the tolerance used here. Accuracies, a count of argmax hits, then agree exactly."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

from cup_core import Experiment, SweepPlan, run_sweep
from cup_core.batched import _StackedOptimizer, batchable, chunk_size, unlearn_batched
from cup_core.config import UnlearnRecipe
from cup_core.data import load_unlearning_data
from cup_core.methods import get_method
from cup_core.sweep import resolve_engine
from cup_core.training import make_optimizer, unlearn

from ._experiments import CPU, tiny_config

WEIGHT_TOLERANCE = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    experiment = Experiment(tiny_config(), tmp_path_factory.mktemp("batched"))
    run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU)
    return experiment, experiment.load_reference_model("original"), load_unlearning_data(experiment.config)


@pytest.mark.parametrize("method, values", [
    ("cup", (0.0, 0.3, 1.0)), ("ws", (0.0, 1.5)), ("ga", (1e-3, 1e-2)), ("rl", (1e-3, 3e-3)),
    ("salun", (0.1, 0.5)), ("l1", (0.0, 1e-3)), ("mgda", (0.2, 0.8)), ("cagrad", (0.5,)),
])
def test_batched_runs_equal_sequential_runs(original, method, values):
    experiment, model, data = original
    setups = [get_method(method).setup(v, replace(experiment.config.unlearn, batch_size=128)) for v in values]
    states, runs = unlearn_batched(copy.deepcopy(model), data.forget, data.retain, [p for p, _ in setups],
                                   [r for _, r in setups], seed=3)
    for (procedure, recipe), state, run in zip(setups, states, runs):
        alone = copy.deepcopy(model)
        expected = unlearn(alone, data.forget, data.retain, procedure, recipe, seed=3)
        assert (run.steps, run.diverged_at_step) == (expected.steps, expected.diverged_at_step)
        for name, tensor in alone.state_dict().items():
            torch.testing.assert_close(state[name], tensor, **WEIGHT_TOLERANCE)


@pytest.mark.parametrize("recipe", [
    UnlearnRecipe(optimizer="sgd", momentum=0.9, weight_decay=5e-4, lr=0.1),
    UnlearnRecipe(optimizer="sgd", momentum=0.0, weight_decay=0.0, lr=0.1),
    UnlearnRecipe(optimizer="adam", weight_decay=5e-4, lr=0.01),
])
def test_stacked_optimizer_follows_torch_optim(recipe):
    torch.manual_seed(0)
    weights = torch.randn(3, 4, dtype=torch.float64)
    grads = [torch.randn(3, 4, dtype=torch.float64) for _ in range(5)]
    stacked = {"w": weights.clone()}
    optimizer = _StackedOptimizer(recipe, torch.tensor([recipe.lr, recipe.lr / 2, recipe.lr], dtype=torch.float64))
    active = torch.tensor([True, True, False])
    for grad in grads:
        optimizer.step(stacked, {"w": grad}, active)
    for k, lr in ((0, recipe.lr), (1, recipe.lr / 2)):
        param = nn.Parameter(weights[k].clone())
        reference = make_optimizer([param], replace(recipe, lr=lr))
        for grad in grads:
            param.grad = grad[k].clone()
            reference.step()
        torch.testing.assert_close(stacked["w"][k], param.detach(), rtol=1e-12, atol=1e-12)
    assert torch.equal(stacked["w"][2], weights[2])  # an inactive (diverged) point does not move


def test_models_that_cannot_be_batched_say_why_and_the_sweep_falls_back(original, caplog):
    assert batchable(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))).startswith("BatchNorm1d")
    assert batchable(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))) is not None
    assert batchable(nn.Sequential(nn.Linear(2, 2))) is None
    with pytest.raises(ValueError, match="cannot batch"):
        unlearn_batched(nn.Sequential(nn.Linear(2, 5), nn.BatchNorm1d(5)), original[2].forget, original[2].retain,
                        [get_method("cup").setup(0.5, UnlearnRecipe())[0]], [UnlearnRecipe()], 0)


def test_chunks_respect_the_memory_budget_and_change_nothing(tmp_path):
    config = tiny_config()
    small = chunk_size(Experiment(config).new_model(), config.unlearn, (2,), max_memory=1)
    assert small == 1
    grid = (0.0, 0.5, 1.0)
    one = run_sweep(Experiment(config, tmp_path / "one"), SweepPlan({"cup": grid}), CPU, engine="batched",
                    max_memory=1)
    many = run_sweep(Experiment(config, tmp_path / "many"), SweepPlan({"cup": grid}), CPU, engine="batched")
    columns = ["forget_acc", "retain_acc", "test_acc", "ua"]
    assert one[columns].equals(many[columns])


def test_engines_agree_on_a_whole_sweep(tmp_path):
    config = tiny_config()
    plan = SweepPlan({"cup": (0.0, 0.5, 1.0), "neggrad+": (0.2, 0.8)}, seeds=(0, 1))
    batched = run_sweep(Experiment(config, tmp_path / "b"), plan, CPU, engine="batched")
    sequential = run_sweep(Experiment(config, tmp_path / "s"), plan, CPU, engine="sequential")
    columns = ["forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua", "steps"]
    assert batched[columns].equals(sequential[columns])
    assert resolve_engine("auto", torch.device("cpu")) == "sequential"
    assert resolve_engine("auto", torch.device("cuda")) == "batched"
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine("turbo", CPU)
