"""SCRUB (scrub.py): the distillation KL, the max-step that raises it on the forget set, the weight 0 that leaves
the student near its teacher there, the authors' alternation, reproducibility and divergence."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cup_core import Experiment, SweepPlan, run_sweep
from cup_core.batched import batchable_procedure
from cup_core.config import UnlearnRecipe
from cup_core.labelled import LabelledSet
from cup_core.methods import get_method
from cup_core.scrub import Scrub, distill_kl
from cup_core.training import unlearn

from ._experiments import CPU, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

RECIPE = UnlearnRecipe(epochs=3, lr=1e-2, batch_size=16, optimizer="adam", weight_decay=0.0)


def _sets() -> tuple[LabelledSet, LabelledSet]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(96, 2, generator=generator)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # (N,) in {0, 1, 2}
    forget = y == 2
    return LabelledSet(x[forget], y[forget]), LabelledSet(x[~forget], y[~forget])


def _model() -> nn.Module:
    """A small MLP trained on both sets (an original, as SCRUB's teacher is)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    forget, retain = _sets()
    x, y = torch.cat([forget.x, retain.x]), torch.cat([forget.y, retain.y])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _forget_kl(student: nn.Module, teacher: nn.Module, forget: LabelledSet) -> float:
    with torch.no_grad():
        return float(distill_kl(student(forget.x), teacher(forget.x)))


def test_distill_kl_is_the_temperature_scaled_kl_from_the_teacher():
    generator = torch.Generator().manual_seed(2)
    student, teacher = torch.randn(8, 4, generator=generator), torch.randn(8, 4, generator=generator)
    p = torch.softmax(teacher / 4, dim=1)
    q = torch.softmax(student / 4, dim=1)
    expected = 16 * (p * (p.log() - q.log())).sum(dim=1).mean()
    assert float(distill_kl(student, teacher)) == pytest.approx(float(expected), rel=1e-5)
    assert float(distill_kl(teacher, teacher)) == pytest.approx(0.0, abs=1e-5)  # float32 rounding of log-softmax


def test_a_max_step_raises_the_forget_kl_on_its_batch():
    forget, _ = _sets()
    teacher = _model().eval()
    student = copy.deepcopy(teacher)
    with torch.no_grad():  # a student that already differs a little: at equality the KL's gradient is zero
        for param in student.parameters():
            param.add_(0.01 * torch.randn(param.shape, generator=torch.Generator().manual_seed(3)))
    before = _forget_kl(student, teacher, forget)
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    loss = -distill_kl(student(forget.x), teacher(forget.x).detach())
    loss.backward()
    optimizer.step()
    assert _forget_kl(student, teacher, forget) > before


def test_the_forget_weight_moves_the_student_away_from_the_teacher_on_the_forget_set():
    forget, retain = _sets()
    teacher = _model()
    divergence = {}
    for weight in (0.0, 1.0):
        student = copy.deepcopy(teacher)
        # SGD: under Adam, whose steps ignore the gradient's scale, any weight > 0 acts nearly alike (README).
        recipe = replace(RECIPE, epochs=10, optimizer="sgd", momentum=0.9)
        run = unlearn(student, forget, retain, Scrub(forget_weight=weight), recipe, seed=0)
        assert run.diverged_at_step is None
        divergence[weight] = _forget_kl(student, teacher, forget)
    assert divergence[0.0] < 0.1  # min-steps only: kept near the teacher, on the forget set too
    assert divergence[1.0] > 10 * divergence[0.0]


def test_the_alternation_takes_the_authors_share_of_max_epochs():
    forget, retain = _sets()
    assert [Scrub(1.0).max_epochs(epochs) for epochs in (1, 3, 5, 10)] == [1, 2, 3, 7]
    forget_batches, retain_batches = math.ceil(len(forget) / 16), math.ceil(len(retain) / 16)
    run = unlearn(_model(), forget, retain, Scrub(forget_weight=1.0), RECIPE, seed=0)
    assert run.steps == 2 * forget_batches + 3 * retain_batches
    run = unlearn(_model(), forget, retain, Scrub(forget_weight=0.0), RECIPE, seed=0)
    assert run.steps == 3 * retain_batches  # weight 0 switches the max-steps off


@pytest.mark.slow
def test_the_same_seed_gives_the_same_weights_and_another_seed_other_ones():
    forget, retain = _sets()
    states = []
    for seed in (0, 0, 1):
        model = _model()
        unlearn(model, forget, retain, Scrub(forget_weight=1.0), RECIPE, seed=seed)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_a_non_finite_loss_is_recorded_as_divergence_before_it_touches_the_weights():
    forget, retain = _sets()
    poisoned = LabelledSet(forget.x.clone(), forget.y)
    poisoned.x[0, 0] = math.nan
    model = _model()
    before = copy.deepcopy(model.state_dict())
    run = unlearn(model, poisoned, retain, Scrub(forget_weight=1.0), replace(RECIPE, batch_size=1000), seed=0)
    assert run.diverged_at_step == 0 and run.steps == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_scrub_is_validated_and_runs_sequentially():
    with pytest.raises(ValueError, match="forget weight"):
        Scrub(forget_weight=-1.0)
    assert "SCRUB" in batchable_procedure(get_method("scrub").procedure(1.0))
    assert get_method("scrub").procedure(0.5) == Scrub(forget_weight=0.5)


def test_scrub_forgets_blobs_class_2_through_a_sweep(tmp_path):
    experiment = Experiment(tiny_config(), tmp_path)
    results = run_sweep(experiment, SweepPlan({"scrub": (0.0, 2.0)}), CPU).set_index("value")
    original = experiment.reference("original")["metrics"]
    assert results.loc[2.0, "ua"] > original["ua"] + 50
    assert results["diverged_at_step"].isna().all() and (results["steps"] > 0).all()
    record = experiment.point_record("scrub", 2.0, 0)
    assert record["engine"] == "sequential" and record["device"] == "cpu"
