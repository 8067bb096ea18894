"""SSD (ssd.py): the authors' importances, exactly the selected parameters dampened by the stated factor,
nothing for a huge α, seeds that change nothing, and a run that forgets blobs class 2."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cup_core import Experiment, SweepPlan, run_sweep
from cup_core.batched import batchable_procedure
from cup_core.config import UnlearnRecipe
from cup_core.labelled import LabelledSet
from cup_core.methods import get_method
from cup_core.ssd import DAMPENING, SelectiveDampening, dampen, fisher_diagonal
from cup_core.training import unlearn

from ._experiments import CPU, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = UnlearnRecipe(batch_size=16)


def _sets() -> tuple[LabelledSet, LabelledSet]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(96, 2, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # (N,) in {0, 1, 2}
    forget = y == 2
    return LabelledSet(x[forget], y[forget]), LabelledSet(x[~forget], y[~forget])


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    forget, retain = _sets()
    x, y = torch.cat([forget.x, retain.x]), torch.cat([forget.y, retain.y])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _importances(model: nn.Module, forget: LabelledSet, retain: LabelledSet):
    training = LabelledSet(torch.cat([retain.x, forget.x]), torch.cat([retain.y, forget.y]))
    return fisher_diagonal(model, training, RECIPE.batch_size), fisher_diagonal(model, forget, RECIPE.batch_size)


def test_importance_is_the_mean_over_batches_of_squared_batch_gradients():
    model, (forget, retain) = _model(), _sets()
    importance = fisher_diagonal(model, retain, 32)
    batches = list(zip(retain.x.split(32), retain.y.split(32)))
    for index, param in enumerate(model.parameters()):  # an oracle: .grad, one batch at a time
        total = torch.zeros_like(param)
        for x, y in batches:
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
            total += param.grad ** 2
        assert torch.allclose(importance[index], total / len(batches), rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("selection", [1.0, 3.0, 10.0])
def test_exactly_the_selected_parameters_change_by_the_stated_factor(selection):
    model, (forget, retain) = _model(), _sets()
    before = [p.detach().clone() for p in model.parameters()]
    data_importance, forget_importance = _importances(model, forget, retain)
    run = unlearn(model, forget, retain, SelectiveDampening(selection=selection), RECIPE, seed=0)
    assert run.steps == 0 and run.diverged_at_step is None
    changed = 0
    for old, new, i_d, i_f in zip(before, model.parameters(), data_importance, forget_importance):
        for o, n, d, f in zip(old.flatten().tolist(), new.detach().flatten().tolist(), i_d.flatten().tolist(),
                              i_f.flatten().tolist()):
            if f > selection * d:  # selected: scaled by min(λ·I_D/I_f, 1)
                assert n == pytest.approx(o * min(DAMPENING * d / f, 1.0), rel=1e-6, abs=1e-12)
                changed += n != o
            else:
                assert n == o  # bit for bit
    assert changed > 0  # the property is not vacuous: some weights were dampened


def test_a_huge_alpha_changes_nothing_and_a_smaller_one_dampens_more():
    forget, retain = _sets()
    original = _model()
    moved = {}
    for selection in (1e12, 10.0, 1.0):
        model = copy.deepcopy(original)
        unlearn(model, forget, retain, SelectiveDampening(selection=selection), RECIPE, seed=0)
        moved[selection] = sum(int((a != b).sum()) for a, b in zip(original.parameters(), model.parameters()))
    assert moved[1e12] == 0
    assert 0 < moved[10.0] <= moved[1.0]


def test_dampen_counts_and_never_raises_a_weight():
    params = [torch.tensor([1.0, -2.0, 3.0, 4.0])]
    data, forget = [torch.tensor([1.0, 1.0, 0.0, 2.0])], [torch.tensor([4.0, 0.5, 1.0, 2.0])]
    assert dampen(params, data, forget, selection=1.0) == 2  # I_f > I_D: the first and the third
    assert params[0].tolist() == [0.25, -2.0, 0.0, 4.0]  # ×1/4, kept, ×0 (I_D = 0), kept (I_f = I_D)


def test_seeds_change_nothing():
    forget, retain = _sets()
    states = []
    for seed in (0, 1, 7):
        model = _model()
        unlearn(model, forget, retain, SelectiveDampening(selection=2.0), RECIPE, seed=seed)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], other[k]) for other in states[1:] for k in states[0])


def test_a_non_finite_importance_leaves_the_model_and_records_divergence():
    forget, retain = _sets()
    poisoned = LabelledSet(forget.x.clone(), forget.y)
    poisoned.x[0, 0] = math.nan
    model = _model()
    before = copy.deepcopy(model.state_dict())
    run = unlearn(model, poisoned, retain, SelectiveDampening(selection=2.0), RECIPE, seed=0)
    assert run.diverged_at_step == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_knob_works_backwards_from_lambda_and_runs_sequentially():
    method = get_method("ssd")
    assert method.decreasing and method.scale == "log" and method.calibrate
    assert method.bounds[0] == DAMPENING  # below λ, α gives the model of α = λ
    with pytest.raises(ValueError, match="must be in"):
        method.check_value(0.5)
    with pytest.raises(ValueError, match="must be positive"):
        SelectiveDampening(selection=0.0)
    assert "SSD" in batchable_procedure(method.procedure(10.0))


def test_ssd_forgets_blobs_class_2_through_a_sweep(tmp_path):
    experiment = Experiment(tiny_config(), tmp_path)
    results = run_sweep(experiment, SweepPlan({"ssd": (1.0, 1e6)}, seeds=(0, 1)), CPU)
    original = experiment.reference("original")["metrics"]
    strong = results[results["value"] == 1.0]
    assert (strong["ua"] > original["ua"] + 50).all()
    assert strong["ua"].nunique() == 1 and strong["retain_acc"].nunique() == 1  # seeds change nothing
    assert (results.loc[results["value"] == 1e6, "ua"] < strong["ua"].min()).all()
