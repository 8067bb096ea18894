"""What a sweep will cost on this device, before it runs: a few real training, unlearning and evaluation steps
timed and scaled by the steps the plan's missing work takes (the New page and bench/cost_estimate.py)."""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .config import Sources
from .data import UnlearningData
from .labelled import LabelledSet
from .batched import batchable, chunk_size, predict_proba_batched, unlearn_batched
from .compute import evaluation_rows, prepare
from .experiment import Experiment, Role
from .metrics import evaluated_sets
from .settings import SweepSettings
from .sweep import SweepPlan, missing_points, resolve_engine, resolve_plan
from .training import train_model, unlearn


@dataclass(frozen=True)
class CostEstimate:
    """What a sweep will cost here, from a few real steps timed on this device (cached work costs nothing)."""

    reference_roles: tuple[Role, ...]  # reference models to make (a checkpoint original is only evaluated)
    points: int  # points to compute
    reference_seconds: float  # making every one of those references
    point_seconds: float  # one point: its unlearning steps and its evaluation

    @property
    def references(self) -> int:
        return len(self.reference_roles)

    @property
    def total_seconds(self) -> float:
        return self.reference_seconds + self.points * self.point_seconds


PROBE_STEPS = 3  # timed steps per probe, after one untimed step that warms up the kernels


def estimate_cost(experiment: Experiment, plan: SweepPlan, device: torch.device, sources: Sources | None = None,
                  settings: SweepSettings | None = None) -> CostEstimate:
    """Times a few training and unlearning steps (CUP: two gradients, the costlier kind) and one evaluation
    pass on a fresh model, and scales them by the steps the recipes take. With the batched engine the
    unlearning steps are timed for as many points together as the sweep will train at once, and each point
    is charged its share; `settings`' engine and max_memory are the sweep's (default: SweepSettings()).
    ValueError as `prepare`."""
    from .rules import CUP
    from .training import Procedure

    sources = experiment.sources() if sources is None else sources
    settings = SweepSettings() if settings is None else settings
    train, unlearn_recipe = experiment.config.train, experiment.config.unlearn
    with experiment.threads(device):
        data = prepare(experiment, sources, device)
        model = experiment.new_model().to(device)
        references = experiment.missing_references()
        trained = [role for role in references if not (role == "original" and experiment.config.original_sha256)]
        reference_seconds = 0.0
        if trained:
            step = _time_per_step(lambda subset: train_model(model, subset, dataclasses.replace(train, epochs=1)),
                                  data.train, train.batch_size)
            for role in trained:
                size = len(data.train) if role == "original" else len(data.retain)
                reference_seconds += step * train.epochs * math.ceil(size / train.batch_size)
        evaluation = _evaluation_seconds(model, data)
        reference_seconds += len(references) * evaluation
    plan = resolve_plan(experiment, plan)
    missing = missing_points(experiment, plan)
    groups = collections.Counter((method, seed) for method, _, seed in missing)
    groups.update({(method, seed): points for method, points in plan.calibrate.items() for seed in plan.seeds})
    together = min(max(groups.values(), default=1), chunk_size(model, unlearn_recipe, experiment.info.input_shape,
                                                               settings.max_memory))
    batched = resolve_engine(settings.engine) == "batched" and batchable(model) is None
    together = together if batched else 1
    one_epoch = dataclasses.replace(unlearn_recipe, epochs=1)
    with experiment.threads(device, models=together):
        if batched:
            step = _time_per_step(lambda subset: unlearn_batched(
                model, subset, subset, [Procedure(CUP(0.5))] * together, [one_epoch] * together, 0),
                data.train, unlearn_recipe.batch_size) / together
            point_evaluation = _evaluation_seconds(model, data, together, evaluation_rows(experiment))
        else:
            step = _time_per_step(lambda subset: unlearn(model, subset, subset, Procedure(CUP(0.5)), one_epoch, 0),
                                  data.train, unlearn_recipe.batch_size)
            point_evaluation = evaluation  # one model's, as the references'
    steps = unlearn_recipe.epochs * min(math.ceil(len(data.forget) / unlearn_recipe.batch_size),
                                        math.ceil(len(data.retain) / unlearn_recipe.batch_size))
    points = len(missing) + sum(plan.calibrate.values()) * len(plan.seeds)  # a pending search: all its points
    return CostEstimate(tuple(references), points, reference_seconds, steps * step + point_evaluation)


def _evaluation_seconds(model: torch.nn.Module, data: UnlearningData, batched: int = 0, rows: int = 0) -> float:
    """One evaluation's forward passes, timed on a sample of the training set and scaled to every set that
    `evaluate` reads (its membership attacker, a 2-feature logistic regression, costs little beside them).
    With `batched` = K > 0, one model's share of K evaluated together in chunks of `rows`, as the batched
    engine does it."""
    from .metrics import predict_proba

    evaluated = sum(len(part) for part in evaluated_sets(data).values())
    probe = LabelledSet(data.train.x[:EVALUATION_PROBE], data.train.y[:EVALUATION_PROBE])
    if batched:
        states = [model.state_dict()] * batched

        def run() -> object:
            return predict_proba_batched(model, states, {"probe": probe}, rows)
    else:
        def run() -> object:
            return predict_proba(model, probe)
    run()  # warm-up
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * evaluated / len(probe) / max(1, batched)


EVALUATION_PROBE = 4096  # training samples whose forward passes time an evaluation


def _time_per_step(run: Callable[[LabelledSet], object], data: LabelledSet, batch_size: int) -> float:
    """Seconds per step of `run`, one epoch over a subset of batch-sized steps, from PROBE_STEPS steps after a
    warm-up step (a data set smaller than the probe times fewer, larger steps: the estimate stays an estimate)."""
    def subset(steps: int) -> LabelledSet:
        n = min(len(data), steps * batch_size)
        return LabelledSet(data.x[:n], data.y[:n])

    run(subset(1))  # warm-up
    probe = subset(PROBE_STEPS)
    start = time.perf_counter()
    run(probe)
    return (time.perf_counter() - start) / max(1, math.ceil(len(probe) / batch_size))
