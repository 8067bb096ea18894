"""The batched engine against the sequential one: same batches, same rules, same optimiser formulas.

Tolerance (batched.ENGINES_AGREE): the two engines run the same float32 arithmetic except that batched
(grouped) convolutions and matrix products sum in another order. Such differences are ~1e-7 relative per
operation; over a few dozen steps they stay far below 1e-4 of a weight. Accuracies, a count of argmax hits,
then agree exactly."""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace

import pytest
import torch
from torch import nn

from cup_core import Experiment, SweepPlan, SweepSettings, default_config, run_sweep
from cup_core.batched import (ENGINES_AGREE, _StackedOptimizer, batchable, chunk_size, loss_gradients,
                              predict_proba_batched, stacked_forward, unlearn_batched)
from cup_core.config import UnlearnRecipe
from cup_core.data import load_unlearning_data
from cup_core.methods import get_method
from cup_core.metrics import evaluate, evaluated_sets, metrics_from
from cup_core.models import MLP, SmallCNN
from cup_core.sweep import resolve_engine
from cup_core.training import make_optimizer, unlearn

from ._experiments import CPU, tiny_config

@pytest.fixture(scope="module")
def original(tmp_path_factory):
    experiment = Experiment(tiny_config(), tmp_path_factory.mktemp("batched"))
    run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU)
    return experiment, experiment.load_reference_model("original"), load_unlearning_data(experiment.config)


@pytest.mark.parametrize("method, values", [
    ("cup", (0.0, 0.3, 1.0)), ("ws", (0.0, 1.5)), ("ga", (1e-3, 1e-2)), ("rl", (1e-3, 3e-3)),
    ("salun", (0.1, 0.5)), ("l1", (0.0, 1e-3)), ("mgda", (0.2, 0.8)), ("cagrad", (0.5,)),
])
@pytest.mark.slow
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
            torch.testing.assert_close(state[name], tensor, **ENGINES_AGREE)


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


@pytest.mark.slow
def test_models_that_cannot_be_batched_say_why_and_the_sweep_falls_back(original, caplog):
    assert batchable(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))).startswith("BatchNorm1d")
    assert batchable(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))) is not None
    assert batchable(nn.Sequential(nn.Linear(2, 2))) is None
    with pytest.raises(ValueError, match="cannot batch"):
        unlearn_batched(nn.Sequential(nn.Linear(2, 5), nn.BatchNorm1d(5)), original[2].forget, original[2].retain,
                        [get_method("cup").setup(0.5, UnlearnRecipe())[0]], [UnlearnRecipe()], 0)


@pytest.mark.slow
def test_chunks_respect_the_memory_budget_and_change_nothing(tmp_path):
    config = tiny_config()
    small = chunk_size(Experiment(config).new_model(), config.unlearn, (2,), max_memory=1)
    assert small == 1
    grid = (0.0, 0.5, 1.0)
    one = run_sweep(Experiment(config, tmp_path / "one"), SweepPlan({"cup": grid}), CPU,
                    settings=SweepSettings(engine="batched", max_memory=1))
    many = run_sweep(Experiment(config, tmp_path / "many"), SweepPlan({"cup": grid}), CPU,
                     settings=SweepSettings(engine="batched"))
    columns = ["forget_acc", "retain_acc", "test_acc", "ua"]
    assert one[columns].equals(many[columns])


@pytest.mark.slow
def test_engines_agree_on_a_whole_sweep(tmp_path):
    config = tiny_config()
    plan = SweepPlan({"cup": (0.0, 0.5, 1.0), "neggrad+": (0.2, 0.8)}, seeds=(0, 1))
    batched = run_sweep(Experiment(config, tmp_path / "b"), plan, CPU, settings=SweepSettings(engine="batched"))
    sequential = run_sweep(Experiment(config, tmp_path / "s"), plan, CPU,
                           settings=SweepSettings(engine="sequential"))
    columns = ["forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua", "steps"]
    assert batched[columns].equals(sequential[columns])
    assert resolve_engine("auto") == "batched" and resolve_engine("sequential") == "sequential"
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine("turbo")


class Wrapped(nn.Module):
    """A model that is not a layer chain: the batched engine must go through vmap for it."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def _stacked(models: list[nn.Module]) -> dict[str, torch.Tensor]:
    return {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models])
            for name, _ in models[0].named_parameters()}


@pytest.mark.parametrize("make, shape", [
    (lambda: MLP(), (2,)),
    (lambda: MLP(in_features=64, hidden=(32,), num_classes=10), (64,)),
    (lambda: SmallCNN(), (1, 8, 8)),
    (lambda: SmallCNN(in_channels=3, image_size=12, width=4, num_classes=7), (3, 12, 12)),
])
def test_stacked_forward_equals_each_models_forward(make, shape):
    torch.manual_seed(0)
    models = [make() for _ in range(4)]
    x = torch.randn(9, *shape)
    stacked = stacked_forward(models[0], _stacked(models), x)
    torch.testing.assert_close(stacked, torch.stack([m(x) for m in models]), rtol=1e-5, atol=1e-6)


def test_stacked_forward_declines_what_it_cannot_stack():
    params = _stacked([MLP()])
    assert stacked_forward(Wrapped(MLP()), {f"inner.{k}": v for k, v in params.items()}, torch.randn(3, 2)) is None
    chain = SmallCNN()
    chain.classifier[0] = nn.Identity()  # no flatten: a linear layer would meet (N, K·C, H, W) images
    assert stacked_forward(chain, _stacked([chain]), torch.randn(3, 1, 8, 8)) is None


@pytest.mark.parametrize("sign, penalised", [(-1.0, False), (1.0, True)])
@pytest.mark.slow
def test_stacked_gradients_equal_vmapped_gradients(sign, penalised):
    torch.manual_seed(0)
    models = [SmallCNN() for _ in range(3)]
    params = _stacked(models)
    x, y, l1 = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,)), torch.tensor([0.0, 1e-3, 1e-2])
    grads, losses = loss_gradients(models[0], params, sign, penalised, x[:1])(params, x, y, l1)
    wrapped = {f"inner.{name}": value for name, value in params.items()}
    vmapped, vmapped_losses = loss_gradients(Wrapped(models[0]), wrapped, sign, penalised, x[:1])(wrapped, x, y, l1)
    torch.testing.assert_close(losses, vmapped_losses, rtol=1e-5, atol=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, vmapped[f"inner.{name}"], rtol=1e-4, atol=1e-6)
    for k, model in enumerate(models):  # and each point's gradient is its own model's
        loss = sign * nn.functional.cross_entropy(model(x), y)
        if penalised:
            loss = loss + l1[k] * sum(p.abs().sum() for p in model.parameters())
        for (name, param), expected in zip(model.named_parameters(), torch.autograd.grad(loss, list(model.parameters()))):
            torch.testing.assert_close(grads[name][k], expected, rtol=1e-4, atol=1e-6)


def test_pooling_before_the_second_relu_changes_no_bit():
    """SmallCNN pools before its second ReLU (a quarter of the values to rectify): the same outputs and
    gradients, bit for bit, as ReLU then pool, on inputs full of ties."""
    torch.manual_seed(0)
    model = SmallCNN()
    conv1, relu, conv2, pool, _ = model.features
    usual = nn.Sequential(conv1, relu, conv2, nn.ReLU(), pool, *model.classifier)
    x, y = torch.rand(64, 1, 8, 8).round(), torch.randint(0, 10, (64,))
    assert torch.equal(model(x), usual(x))
    ours = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), list(model.parameters()))
    theirs = torch.autograd.grad(nn.functional.cross_entropy(usual(x), y), list(model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    config = default_config("digits")
    config = replace(config, train=replace(config.train, epochs=3), unlearn=replace(config.unlearn, epochs=4))
    experiment = Experiment(config, tmp_path_factory.mktemp("digits"))
    run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU, settings=SweepSettings(engine="sequential"))
    return experiment, experiment.load_reference_model("original"), load_unlearning_data(experiment.config)


@pytest.mark.slow
def test_batched_digits_runs_equal_sequential_runs(digits):
    """The small CNN through grouped convolutions against one model at a time, evaluation included."""
    experiment, model, data = digits
    setups = [get_method("cup").setup(v, experiment.config.unlearn) for v in (0.0, 0.4, 1.0)]
    states, runs = unlearn_batched(copy.deepcopy(model), data.forget, data.retain, [p for p, _ in setups],
                                   [r for _, r in setups], seed=1)
    probs = predict_proba_batched(model, states, evaluated_sets(data), rows=64)
    for (procedure, recipe), state, run, point_probs in zip(setups, states, runs, probs):
        alone = copy.deepcopy(model)
        expected = unlearn(alone, data.forget, data.retain, procedure, recipe, seed=1)
        assert run.steps == expected.steps == 20  # 4 epochs of 5 forget batches
        for name, tensor in alone.state_dict().items():
            torch.testing.assert_close(state[name], tensor, **ENGINES_AGREE)
        batched_metrics, sequential_metrics = metrics_from(point_probs, data), evaluate(alone, data)
        for name in ("forget_acc", "retain_acc", "test_acc", "forget_test_acc"):
            assert batched_metrics[name] == sequential_metrics[name]


@pytest.mark.slow
def test_on_one_thread_a_points_numbers_do_not_depend_on_its_chunk(digits):
    """What lets a resumed sweep (fewer points left to batch) give an uninterrupted one's numbers."""
    experiment, model, data = digits
    setups = {v: get_method("cup").setup(v, experiment.config.unlearn) for v in (0.0, 0.4, 1.0)}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for values in ((0.0, 0.4, 1.0), (0.4,)):
            states, _ = unlearn_batched(copy.deepcopy(model), data.forget, data.retain,
                                        [setups[v][0] for v in values], [setups[v][1] for v in values], seed=1)
            probs = predict_proba_batched(model, states, evaluated_sets(data), rows=64)
            runs[values] = dict(zip(values, zip(states, probs)))
    finally:
        torch.set_num_threads(before)
    (state_alone, probs_alone), (state_among, probs_among) = runs[(0.4,)][0.4], runs[(0.0, 0.4, 1.0)][0.4]
    assert all(torch.equal(state_alone[name], state_among[name]) for name in state_alone)
    assert all(torch.equal(probs_alone[name], probs_among[name]) for name in probs_alone)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_the_batched_engine_on_cuda_matches_the_sequential_engine_on_the_cpu(digits, tmp_path):
    """Grouped convolutions and the CUP rule's all-rows path on a GPU: the same accuracies as one point at a
    time on the CPU, to two samples (cuDNN may run float32 convolutions in TF32)."""
    experiment, _, data = digits
    plan = SweepPlan({"cup": (0.0, 0.5, 1.0)})
    runs = {}
    for device, engine in ((torch.device("cuda"), "batched"), (CPU, "sequential")):
        root = tmp_path / device.type / experiment.id  # the same original and oracle, trained on the CPU
        shutil.copytree(experiment.root, root, ignore=shutil.ignore_patterns("points"))
        runs[device.type] = run_sweep(Experiment(experiment.config, root.parent), plan, device,
                                      settings=SweepSettings(engine=engine))
    two_samples = 100 * 2 / len(data.forget)
    for column in ("forget_acc", "retain_acc", "test_acc"):
        assert (runs["cuda"][column] - runs["cpu"][column]).abs().max() <= two_samples, column


@pytest.mark.slow
def test_a_point_that_diverges_stops_alone_and_the_others_go_on(original):
    """A non-finite loss stops its point at that step, as in the sequential engine; its chunk goes on."""
    experiment, model, data = original
    recipe = replace(experiment.config.unlearn, optimizer="sgd", momentum=0.9, epochs=50)
    setups = [get_method("ga").setup(v, recipe) for v in (1e-5, 100.0)]
    states, runs = unlearn_batched(copy.deepcopy(model), data.forget, data.retain, [p for p, _ in setups],
                                   [r for _, r in setups], seed=0)
    calm, wild = runs
    assert calm.diverged_at_step is None and wild.diverged_at_step is not None and wild.steps < calm.steps
    for (procedure, recipe), state, run in zip(setups, states, runs):
        alone = copy.deepcopy(model)
        expected = unlearn(alone, data.forget, data.retain, procedure, recipe, seed=0)
        assert (run.steps, run.diverged_at_step) == (expected.steps, expected.diverged_at_step)
        if run.diverged_at_step is None:
            for name, tensor in alone.state_dict().items():
                torch.testing.assert_close(state[name], tensor, **ENGINES_AGREE)
