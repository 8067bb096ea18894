"""Computes what an experiment lacks: the original, the oracle, then every (method, value, seed) point."""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import pandas as pd
import torch

from . import cache
from ._json import nan_if_none, strict
from .config import ExperimentConfig, Sources, check_seed
from .data import UnlearningData, load_unlearning_data
from .labelled import LabelledSet
from .calibration import Calibration, Criteria, Response, budget, criteria, search
from .calibration import values as calibration_values
from .batched import (DEFAULT_MAX_MEMORY, batchable, batchable_procedure, chunk_size, predict_proba_batched,
                      unlearn_batched)
from .checkpoints import file_sha256, load_checkpoint
from .device import resolve_device
from .experiment import Experiment, Role
from .models import check_fits
from .methods import DEFAULT_POINTS, MAX_GRID_POINTS, get_method
from .metrics import avg_gap, evaluate, evaluated_sets, metrics_from
from .training import train_model, unlearn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPlan:
    """Which points to compute: a grid of knob values per method, times seeds.

    A method in `calibrate` has no grid yet: its `points` values are found on the experiment by a search of
    a few runs at the first seed (calibration.py), which `run_sweep` does before the grids; the runs of the
    search are among those values, so every method gets the same number of runs."""

    grids: dict[str, tuple[float, ...]]  # method name -> knob values
    seeds: tuple[int, ...] = (0,)
    calibrate: dict[str, int] = field(default_factory=dict)  # method name -> its number of values

    @classmethod
    def default(cls, methods: tuple[str, ...] = ("cup",), points: int = DEFAULT_POINTS,
                seeds: tuple[int, ...] = (0,), calibrate: bool = True) -> SweepPlan:
        """Each method's own grid of `points` values: calibrated on the experiment where its knob has no
        intrinsic range (unless `calibrate` is False, or a grid of one point leaves nothing to search), else
        evenly spaced over its range."""
        searched = {name for name in methods if calibrate and points >= 2 and get_method(name).calibrate}
        return cls({name: get_method(name).grid(points) for name in methods if name not in searched}, seeds,
                   {name: points for name in methods if name in searched})

    def __post_init__(self) -> None:
        if not self.grids and not self.calibrate:
            raise ValueError("the sweep has no method; name at least one")
        if not self.seeds:
            raise ValueError("the sweep has no seed; give at least one")
        object.__setattr__(self, "seeds", tuple(check_seed(seed, "an unlearning seed") for seed in self.seeds))
        for name, values in self.grids.items():
            if not values:
                raise ValueError(f"the grid of {name} is empty; give at least one value")
            canonical = tuple(dict.fromkeys(get_method(name).check_value(v) for v in values))  # one point per value
            object.__setattr__(self, "grids", {**self.grids, name: canonical})
        for name, points in self.calibrate.items():
            if not get_method(name).calibrate:
                raise ValueError(f"{name}'s knob has an intrinsic range: it needs no calibration")
            if name in self.grids:
                raise ValueError(f"{name} has both a grid and a calibration")
            if points < 2:
                raise ValueError(f"a calibrated grid needs at least 2 points, got {points} for {name}")
            if points > MAX_GRID_POINTS:
                raise ValueError(f"points must be at most {MAX_GRID_POINTS:,} values per method, got {points:,}")

    @property
    def methods(self) -> tuple[str, ...]:
        return (*self.grids, *self.calibrate)

    def points(self) -> list[tuple[str, float, int]]:
        """The grids' points (a calibrated method's are known once its calibration is: see `resolved`)."""
        return [(name, value, seed) for name, values in self.grids.items() for seed in self.seeds for value in values]

    def total(self) -> int:
        """Points the plan will have, calibrated methods included."""
        return len(self.points()) + sum(self.calibrate.values()) * len(self.seeds)

    def resolved(self, calibrations: dict[str, Calibration]) -> SweepPlan:
        """This plan with finished calibrations turned into grids (pending ones stay to calibrate)."""
        grids, left = dict(self.grids), dict(self.calibrate)
        for name, calibration in calibrations.items():
            if name in left and calibration.status != "pending":
                grids[name] = calibration_values(get_method(name), calibration, left.pop(name))
        return SweepPlan(grids, self.seeds, left)


@dataclass(frozen=True)
class SweepProgress:
    done: int  # units finished (reference models and points), cached or computed
    total: int
    elapsed_s: float
    label: str  # what was just finished
    eta_s: float | None  # time left, from the mean time of the points computed so far; None before the first
    computed: int = 0  # how many of the finished units were computed now rather than read from the cache


ProgressCallback = Callable[[SweepProgress], None]


PULSE_S = 1.0  # within a long model, progress is reported at most this often


@dataclass
class _Tracker:
    total: int
    on_progress: ProgressCallback | None
    start: float = field(default_factory=time.perf_counter)
    last: float = field(default_factory=time.perf_counter)
    last_report: float = field(default_factory=time.perf_counter)
    done: int = 0
    computed: int = 0
    point_seconds: list[float] = field(default_factory=list)
    counted: set = field(default_factory=set)  # units already finished (a calibration's runs meet the grid again)

    def advance(self, label: str, computed: bool, is_point: bool = True, unit: Any = None) -> None:
        """One unit finished; only computed points inform the estimate (training the references costs more)."""
        if unit is not None:
            if unit in self.counted:
                return
            self.counted.add(unit)
        now = time.perf_counter()
        self.computed += computed
        if computed and is_point:
            self.point_seconds.append(now - self.last)
        self.last = now
        self.done += 1
        self._report(label)

    def pulse(self, label: str) -> None:
        """Progress within a model (an epoch, a step), throttled: a long model still shows it is alive, and a
        progress callback that raises (a cancel button) stops it there instead of at its end."""
        if time.perf_counter() - self.last_report >= PULSE_S:
            self._report(label)

    def _report(self, label: str) -> None:
        now = self.last_report = time.perf_counter()
        left = self.total - self.done
        eta = (sum(self.point_seconds) / len(self.point_seconds) * left if self.point_seconds
               else (0.0 if left == 0 else None))
        if self.on_progress is not None:
            self.on_progress(SweepProgress(self.done, self.total, now - self.start, label, eta, self.computed))


def missing_points(experiment: Experiment, plan: SweepPlan, verify_weights: bool = False
                   ) -> list[tuple[str, float, int]]:
    """The plan's points that are not cached (cache.is_cached, the app's and the CLI's definition too); with
    `verify_weights`, cached ones whose weights do not match their hash count as missing (a resuming sweep)."""
    return [point for point in plan.points() if not experiment.point_cached(*point, verify_weights=verify_weights)]


Engine = Literal["auto", "batched", "sequential"]


def resolve_engine(engine: Engine) -> Literal["batched", "sequential"]:
    """auto: batched, on CPU as on CUDA (a model it cannot batch falls back, saying why, in `run_sweep`).
    On these 2 CPU cores a digits sweep of 21 points ran 2.0 to 2.3× faster batched (bench/batched_sweep.py)."""
    if engine not in ("auto", "batched", "sequential"):
        raise ValueError(f"unknown engine {engine!r}; choose auto, batched or sequential")
    return "batched" if engine == "auto" else engine


Executor = Literal["local", "ray"]


def run_sweep(experiment: Experiment, plan: SweepPlan, device: torch.device,
              on_progress: ProgressCallback | None = None, engine: Engine = "auto",
              max_memory: int = DEFAULT_MAX_MEMORY, sources: Sources | None = None,
              executor: Executor = "local", ray_address: str | None = None, ray_device: str = "auto",
              prepared: UnlearningData | None = None) -> pd.DataFrame:
    """Computes every reference model and point of `plan` that is not cached yet; returns results.csv.

    `sources` says where the data and the user's checkpoint are (default: where the last sweep of this
    experiment found them). Everything is checked before anything trains: the data, the forget set, that the
    model takes the data's inputs, and that the checkpoint is the experiment's and fits the model.

    The batched engine trains the missing points of each (method, seed) together (see batched.py),
    falling back to one at a time, with a warning saying why, for a model it cannot batch and for a method that
    is not one rule step over zipped batches (SCRUB, SSD: `batched.batchable_procedure`). The Ray
    executor runs every point as one task of a Ray cluster instead (see ray_executor.py), on `ray_device`:
    auto asks each task for a GPU when the cluster has them (`device` is then only where this process
    checks the inputs). `prepared` is what `prepare` returned for these sources when the caller has already
    checked them (the CLI, before its first line of output), so that nothing is read twice. Each finished point
    is on disk before the sweep moves on, so an interrupted sweep resumes where it stopped; an `on_progress`
    that raises (a cancel button) stops it the same way. Concurrent sweeps of one experiment share the work
    through per-entry locks.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}; choose local or ray")
    engine = resolve_engine(engine)
    experiment.refuse_links()  # before anything trains: nothing is written through a link in the cache
    sources = experiment.sources() if sources is None else sources
    if prepared is None:
        with experiment.threads(device):
            prepared = prepare(experiment, sources, device)
    data = prepared
    experiment.save_config()
    experiment.save_sources(sources)
    tracker = _Tracker(total=len(experiment.roles) + plan.total(), on_progress=on_progress)
    try:
        if plan.calibrate:  # here, on Ray too: each run of a search depends on the one before
            plan = _calibrate(experiment, plan, device, data, sources, tracker)
        if executor == "ray":
            del data  # the tasks load their own
            # Fetched once, here: the workers only read (each would otherwise ask torchvision again).
            return _run_on_ray(experiment, plan, ray_device, dataclasses.replace(sources, download=False),
                               tracker, ray_address)
        return _run(experiment, plan, device, data, sources, tracker, engine, max_memory)
    finally:
        _relist_if_deleted(experiment)


def _relist_if_deleted(experiment: Experiment) -> None:
    """An experiment deleted while its sweep ran, and stopped (cancelled, failed) before its next entry gave it
    its config back, would leave a folder of lock files that the app can neither list nor delete."""
    if experiment.root.is_dir() and not os.path.lexists(experiment.root / "config.json"):
        try:
            experiment.save_config()
        except (OSError, cache.LinkInCache) as error:  # never hides why the sweep stopped
            log.warning("could not write %s back (%s)", experiment.root / "config.json", error)


def prepare(experiment: Experiment, sources: Sources, device: torch.device) -> UnlearningData:
    """The experiment's data on `device`, after checking everything a sweep needs; ValueError says what is wrong.

    A checkpoint is needed only while the original is not cached: a cache opened elsewhere needs no weights file."""
    data = load_unlearning_data(experiment.config, sources).to(device)
    model = experiment.new_model().to(device)
    check_fits(model, experiment.info.input_shape, experiment.info.num_classes, experiment.architecture)
    if experiment.config.original_sha256 is not None and not experiment.reference_cached("original"):
        _checkpoint_model(experiment, sources)
    return data


def _checkpoint_model(experiment: Experiment, sources: Sources) -> torch.nn.Module:
    """The user's original, after checking that the file is the one the experiment was made with."""
    expected = experiment.config.original_sha256
    if not sources.checkpoint:
        raise ValueError(f"this experiment's original is a user's checkpoint (sha256 {expected[:12]}…) that is not "
                         "cached yet; give its file with --checkpoint")
    actual = file_sha256(sources.checkpoint)
    if actual != expected:
        raise ValueError(f"{sources.checkpoint} is not this experiment's checkpoint (sha256 {actual[:12]}…, "
                         f"expected {expected[:12]}…); a different file makes a different experiment")
    return load_checkpoint(sources.checkpoint, experiment.architecture, experiment.architecture_kwargs)


def _run(experiment: Experiment, plan: SweepPlan, device: torch.device, data: UnlearningData, sources: Sources,
         tracker: _Tracker, engine: Engine, max_memory: int) -> pd.DataFrame:
    models = _references(experiment, device, data, sources, tracker)
    oracle_metrics = _oracle_metrics(experiment)
    if engine == "batched" and (reason := batchable(models["original"])) is not None:
        log.warning("the batched engine cannot train this model (%s); running the points one at a time", reason)
        engine = "sequential"
    for method, values in plan.grids.items():
        method_engine = engine
        if engine == "batched" and (reason := batchable_procedure(get_method(method).procedure(values[0]))):
            log.warning("the batched engine runs %s's points one at a time (%s)", get_method(method).label, reason)
            method_engine = "sequential"
        for seed in plan.seeds:
            if method_engine == "batched":
                finished = _ensure_points_batched(experiment, method, seed, list(values), models["original"], data,
                                                  oracle_metrics, max_memory, tracker.pulse)
            else:
                finished = ((value, _ensure_point(experiment, method, value, seed, models["original"], data,
                                                  oracle_metrics, tracker.pulse)) for value in values)
            for value, computed in finished:
                tracker.advance(f"{method} {value:g} seed {seed}", computed, unit=(method, value, seed))
    return experiment.write_tables()


def _references(experiment: Experiment, device: torch.device, data: UnlearningData, sources: Sources,
                tracker: _Tracker) -> dict[Role, torch.nn.Module]:
    models = {}
    for role in experiment.roles:
        with experiment.threads(device):
            models[role], computed = _ensure_reference(experiment, role, data, device, sources, tracker.pulse)
        tracker.advance(role, computed, is_point=False, unit=role)
    return models


def _calibrate(experiment: Experiment, plan: SweepPlan, device: torch.device, data: UnlearningData,
               sources: Sources, tracker: _Tracker) -> SweepPlan:
    """Runs each calibrated method's search (one point at a time, at the plan's first seed); the plan with
    their values as grids."""
    original = _references(experiment, device, data, sources, tracker)["original"]
    oracle_metrics = _oracle_metrics(experiment)
    measure = _criteria(experiment)
    seed = plan.seeds[0]
    found = {}
    for name, points in plan.calibrate.items():
        def respond(value: float, name: str = name) -> Response:
            label = f"calibrating {name}: {value:g} seed {seed}"
            computed = _ensure_point(experiment, name, value, seed, original, data, oracle_metrics, tracker.pulse)
            tracker.advance(label, computed, unit=(name, value, seed))
            return _response(measure, experiment.point_record(name, value, seed))

        found[name] = search(get_method(name), respond, budget(points), seed)
    return plan.resolved(found)


def _criteria(experiment: Experiment) -> Criteria:
    """What a calibration measures its runs against; raises cache.BrokenEntry before the references exist."""
    oracle = experiment.reference("oracle")["metrics"] if experiment.config.oracle else None
    return criteria(experiment.reference("original")["metrics"], oracle, experiment.info.num_classes)


def _response(measure: Criteria, record: dict[str, Any]) -> Response:
    return measure.respond(record["metrics"], record.get("diverged_at_step") is not None, float(record["seconds"]))


def cached_calibrations(experiment: Experiment, plan: SweepPlan) -> dict[str, Calibration]:
    """The plan's calibrations replayed on what is cached (record reads only, nothing computed): a search whose
    next run is not cached yet is `pending`, with the runs found so far."""
    try:
        measure = _criteria(experiment)
    except cache.BrokenEntry:
        return {name: Calibration(name, plan.seeds[0], "pending", get_method(name).knob_range, (), 0.0)
                for name in plan.calibrate}
    seed = plan.seeds[0]
    found = {}
    for name, points in plan.calibrate.items():
        def respond(value: float, name: str = name) -> Response | None:
            try:
                return _response(measure, experiment.point_record(name, value, seed))
            except cache.BrokenEntry:
                return None

        found[name] = search(get_method(name), respond, budget(points), seed)
    return found


def resolve_plan(experiment: Experiment, plan: SweepPlan) -> SweepPlan:
    """`plan` with every calibration that the cache already answers turned into its grid."""
    return plan.resolved(cached_calibrations(experiment, plan)) if plan.calibrate else plan


def _oracle_metrics(experiment: Experiment) -> dict[str, Any] | None:
    return experiment.reference("oracle")["metrics"] if experiment.config.oracle else None


def _run_on_ray(experiment: Experiment, plan: SweepPlan, device: str, sources: Sources,
                tracker: _Tracker, address: str | None) -> pd.DataFrame:
    from .ray_executor import run_on_ray

    points = missing_points(experiment, plan, verify_weights=True)
    for point in plan.points():
        if point not in points:
            tracker.advance(f"{point[0]} {point[1]:g} seed {point[2]}", False, unit=point)

    def on_point(point: tuple[str, float, int] | None, computed) -> None:
        if point is None:  # the reference models: [(role, computed), ...]
            for role, made in computed:
                tracker.advance(role, made, is_point=False, unit=role)
        else:
            tracker.advance(f"{point[0]} {point[1]:g} seed {point[2]}", computed, unit=point)

    run_on_ray(experiment.config.to_dict(), str(experiment.root.parent.resolve()), sources.to_dict(), points,
               device, on_point, address)
    return experiment.write_tables()


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
                  engine: Engine = "auto", max_memory: int = DEFAULT_MAX_MEMORY) -> CostEstimate:
    """Times a few training and unlearning steps (CUP: two gradients, the costlier kind) and one evaluation
    pass on a fresh model, and scales them by the steps the recipes take. With the batched engine the
    unlearning steps are timed for as many points together as the sweep will train at once, and each point
    is charged its share. ValueError as `prepare`."""
    from .rules import CUP
    from .training import Procedure

    sources = experiment.sources() if sources is None else sources
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
                                                               max_memory))
    batched = resolve_engine(engine) == "batched" and batchable(model) is None
    together = together if batched else 1
    one_epoch = dataclasses.replace(unlearn_recipe, epochs=1)
    with experiment.threads(device, models=together):
        if batched:
            step = _time_per_step(lambda subset: unlearn_batched(
                model, subset, subset, [Procedure(CUP(0.5))] * together, [one_epoch] * together, 0),
                data.train, unlearn_recipe.batch_size) / together
            point_evaluation = _evaluation_seconds(model, data, together, _evaluation_rows(experiment))
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


def _cached_data(config: ExperimentConfig, sources: Sources, device: torch.device) -> UnlearningData:
    """One load of the data per worker process and experiment (a worker runs many points)."""
    key = (config.canonical_json(), sources, str(device))
    if _worker_data.get("key") != key:
        _worker_data.update(key=key, data=load_unlearning_data(config, sources).to(device))
    return _worker_data["data"]


_worker_data: dict[str, Any] = {}


def compute_references(config: dict[str, Any], cache_dir: str, sources: dict[str, Any],
                       device: str) -> list[tuple[Role, bool]]:
    """Ensures the original's and the oracle's entries; (role, computed) for each. A self-contained entry point
    for another process (a Ray task): it opens the experiment, the data and the cache itself."""
    experiment = Experiment(ExperimentConfig.from_dict(config), cache_dir)
    where, found = resolve_device(device), Sources.from_dict(sources)
    data = _cached_data(experiment.config, found, where)
    with experiment.threads(where):
        return [(role, _ensure_reference(experiment, role, data, where, found)[1]) for role in experiment.roles]


def compute_point(config: dict[str, Any], cache_dir: str, sources: dict[str, Any], method: str, value: float,
                  seed: int, device: str) -> bool:
    """Ensures one point's entry (the references must be cached); True if it computed it. Self-contained like
    `compute_references`, so that any number of processes can share one cache directory."""
    experiment = Experiment(ExperimentConfig.from_dict(config), cache_dir)
    where = resolve_device(device)
    data = _cached_data(experiment.config, Sources.from_dict(sources), where)
    original = experiment.load_reference_model("original").to(where)
    return _ensure_point(experiment, method, value, seed, original, data, _oracle_metrics(experiment))


def _ensure_reference(experiment: Experiment, role: Role, data: UnlearningData, device: torch.device,
                      sources: Sources, pulse: Callable[[str], None] | None = None) -> tuple[torch.nn.Module, bool]:
    def compute() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        recipe = experiment.config.train
        start = time.perf_counter()
        if role == "original" and experiment.config.original_sha256 is not None:
            model = _checkpoint_model(experiment, sources).to(device)
            origin = {"checkpoint": Path(sources.checkpoint).name}
        else:
            model = experiment.new_model(seed=recipe.seed).to(device)
            on_epoch = None if pulse is None else lambda epoch: pulse(f"{role}: epoch {epoch}/{recipe.epochs}")
            train_model(model, data.train if role == "original" else data.retain, recipe, on_epoch)
            origin = {}
        seconds = time.perf_counter() - start
        return model.state_dict(), {"role": role, "metrics": strict(evaluate(model, data)),
                                    "seconds": seconds, **origin, **_provenance(device)}

    _, weights, computed = cache.ensure_entry(experiment.reference_entry(role), experiment.reference_key(role), compute,
                                              experiment.reference_check)
    if computed:
        experiment.save_config()  # again: see _ensure_point
    model = experiment.new_model().to(device)
    model.load_state_dict(weights)
    return model.eval(), computed


def _ensure_point(experiment: Experiment, method_name: str, value: float, seed: int, original: torch.nn.Module,
                  data: UnlearningData, oracle_metrics: dict[str, Any] | None,
                  pulse: Callable[[str], None] | None = None) -> bool:
    method = get_method(method_name)

    @experiment.threads(next(original.parameters()).device)
    def compute() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        model = copy.deepcopy(original)
        torch.manual_seed(seed)
        procedure, recipe = method.setup(value, experiment.config.unlearn)
        on_step = None if pulse is None else lambda seen: pulse(f"{method_name} {value:g} seed {seed}: step "
                                                               f"{seen.step + 1}")
        run = unlearn(model, data.forget, data.retain, procedure, recipe, seed, on_step)
        return model.state_dict(), _point_payload(method_name, value, seed, evaluate(model, data), run, recipe,
                                                  oracle_metrics, "sequential", next(model.parameters()).device)

    entry, key = experiment.point_entry(method_name, value, seed), experiment.point_key(method_name, value, seed)
    computed = cache.ensure_entry(entry, key, compute, experiment.point_check)[2]
    if computed:
        # An experiment deleted while its sweep runs gets its folder back with the next entry: with its config,
        # so that the app lists it (and can delete it) instead of an anonymous folder of points.
        experiment.save_config()
    return computed


def _evaluation_rows(experiment: Experiment) -> int:
    """Rows per chunk of the batched engine's evaluation: two unlearning batches, within the memory that
    chunk_size allows a point for a step."""
    return 2 * experiment.config.unlearn.batch_size


def _ensure_points_batched(experiment: Experiment, method_name: str, seed: int, values: list[float],
                           original: torch.nn.Module, data: UnlearningData, oracle_metrics: dict[str, Any] | None,
                           max_memory: int, pulse: Callable[[str], None] | None = None) -> Iterator[tuple[float, bool]]:
    """Yields (value, computed) for every value, training the missing ones together in memory-sized chunks."""
    method = get_method(method_name)
    entry = {v: experiment.point_entry(method_name, v, seed) for v in values}
    key = {v: experiment.point_key(method_name, v, seed) for v in values}
    todo = [v for v in values if not experiment.point_cached(method_name, v, seed, verify_weights=True)]
    for v in values:
        if v not in todo:
            yield v, False
    size = chunk_size(original, experiment.config.unlearn, experiment.info.input_shape, max_memory)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        with contextlib.ExitStack() as held:
            for v in sorted(chunk):  # one order for every process: no deadlock between concurrent sweeps
                held.enter_context(cache.locked(entry[v]))
            missing = [v for v in chunk if not cache.valid_or_discard(entry[v], key[v], experiment.point_check)]
            if missing:
                setups = [method.setup(v, experiment.config.unlearn) for v in missing]
                torch.manual_seed(seed)
                what = f"{missing[0]:g}" if len(missing) == 1 else f"{len(missing)} points together,"
                on_step = None if pulse is None else lambda step: pulse(f"{method_name} {what} seed {seed}: step {step}")
                device = next(original.parameters()).device
                with experiment.threads(device, models=len(missing)):
                    states, runs = unlearn_batched(copy.deepcopy(original), data.forget, data.retain,
                                                   [p for p, _ in setups], [r for _, r in setups], seed, on_step)
                    probs = predict_proba_batched(original, states, evaluated_sets(data), _evaluation_rows(experiment))
                with experiment.threads(device):  # the metrics' small operations, one model at a time
                    for v, state, run, (_, recipe), point_probs in zip(missing, states, runs, setups, probs):
                        cache.write_entry(entry[v], key[v], state, _point_payload(
                            method_name, v, seed, metrics_from(point_probs, data), run, recipe, oracle_metrics,
                            "batched", device), experiment.point_check)
                    experiment.save_config()  # again: see _ensure_point
        for v in chunk:
            yield v, v in missing


def _point_payload(method_name: str, value: float, seed: int, metrics: dict[str, Any], run, recipe,
                   oracle_metrics: dict[str, Any] | None, engine: str, device: torch.device) -> dict[str, Any]:
    method = get_method(method_name)
    gap = (float("nan") if oracle_metrics is None  # no oracle: nothing to measure the gap to
           else avg_gap(metrics, {name: nan_if_none(v) for name, v in oracle_metrics.items()}))
    return {
        "method": method.name, "knob": method.knob, "value": value, "seed": seed,
        "metrics": strict(metrics),
        "avg_gap": strict(gap),
        "seconds": run.seconds, "steps": run.steps, "diverged_at_step": run.diverged_at_step,
        "recipe": dataclasses.asdict(recipe),  # as run: a learning-rate knob replaces the experiment's lr
        "engine": engine,
        **_provenance(device),
    }


def _provenance(device: torch.device) -> dict[str, Any]:
    return {"device": str(device), "torch": torch.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
