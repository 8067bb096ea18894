"""Computes what an experiment lacks: the original, the oracle, then every (method, value, seed) point.

This module holds the plan, the progress and the dispatch to the local engine or to Ray (ray_executor.py);
computing a reference model, a point or a batched chunk of points is compute.py's, which both executors
use, and the cost estimate is cost.py's."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import pandas as pd
import torch

from . import cache, compute
from .config import Sources, check_seed
from .data import UnlearningData
from .calibration import Calibration, Criteria, Response, budget, criteria, search
from .calibration import values as calibration_values
from .batched import batchable, batchable_procedure
from .experiment import Experiment, Role
from .methods import MAX_GRID_POINTS, get_method
from .settings import DEFAULT_POINTS, ENGINES, SweepSettings

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
RELAY_S = 0.1  # how often the progress of a reference trained in another thread is passed on


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
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose {', '.join(ENGINES)}")
    return "batched" if engine == "auto" else engine


def run_sweep(experiment: Experiment, plan: SweepPlan, device: torch.device,
              on_progress: ProgressCallback | None = None, settings: SweepSettings | None = None,
              sources: Sources | None = None, prepared: UnlearningData | None = None) -> pd.DataFrame:
    """Computes every reference model and point of `plan` that is not cached yet; returns results.csv.

    `sources` says where the data and the user's checkpoint are (default: where the last sweep of this
    experiment found them). Everything is checked before anything trains: the data, the forget set, that the
    model takes the data's inputs, and that the checkpoint is the experiment's and fits the model.

    How it computes is `settings`' engine, max_memory, executor, ray_address and device (the rest of them
    made the experiment and the plan; default: SweepSettings()). The batched engine trains the missing points of
    each (method, seed) together (see batched.py), falling back to one at a time, with a warning saying why, for
    a model it cannot batch and for a method that is not one rule step over zipped batches (SCRUB, SSD:
    `batched.batchable_procedure`). The Ray executor runs every point as one task of a Ray cluster instead (see
    ray_executor.py), on `settings.device`: auto asks each task for a GPU when the cluster has them (`device` is
    then only where this process checks the inputs). `prepared` is what `compute.prepare` returned for these
    sources when the caller has already checked them (the CLI, before its first line of output), so that nothing
    is read twice. Each finished point is on disk before the sweep moves on, so an interrupted sweep resumes where
    it stopped; an `on_progress` that raises (a cancel button) stops it the same way. Concurrent sweeps of one
    experiment share the work through per-entry locks.
    """
    settings = SweepSettings() if settings is None else settings
    engine = resolve_engine(settings.engine)
    experiment.refuse_links()  # before anything trains: nothing is written through a link in the cache
    sources = experiment.sources() if sources is None else sources
    if prepared is None:
        with experiment.threads(device):
            prepared = compute.prepare(experiment, sources, device)
    data = prepared
    experiment.save_config()
    experiment.save_sources(sources)
    tracker = _Tracker(total=len(experiment.roles) + plan.total(), on_progress=on_progress)
    try:
        if plan.calibrate:  # here, on Ray too: each run of a search depends on the one before
            plan = _calibrate(experiment, plan, device, data, sources, tracker)
        if settings.executor == "ray":
            del data  # the tasks load their own
            # Fetched once, here: the workers only read (each would otherwise ask torchvision again).
            return _run_on_ray(experiment, plan, settings.device, dataclasses.replace(sources, download=False),
                               tracker, settings.ray_address)
        return _run(experiment, plan, device, data, sources, tracker, engine, settings.max_memory)
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


def _run(experiment: Experiment, plan: SweepPlan, device: torch.device, data: UnlearningData, sources: Sources,
         tracker: _Tracker, engine: Engine, max_memory: int) -> pd.DataFrame:
    models = _references(experiment, device, data, sources, tracker)
    oracle_metrics = compute.oracle_metrics(experiment)
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
                finished = compute.ensure_points_batched(experiment, method, seed, list(values), models["original"],
                                                         data, oracle_metrics, max_memory, tracker.pulse)
            else:
                finished = ((value, compute.ensure_point(experiment, method, value, seed, models["original"], data,
                                                         oracle_metrics, tracker.pulse)) for value in values)
            for value, computed in finished:
                tracker.advance(f"{method} {value:g} seed {seed}", computed, unit=(method, value, seed))
    return experiment.write_tables()


class _Stopped(Exception):
    """The reference trained aside stops: the sweep failed or was cancelled in its own thread."""


def _references(experiment: Experiment, device: torch.device, data: UnlearningData, sources: Sources,
                tracker: _Tracker) -> dict[Role, torch.nn.Module]:
    """The original and the oracle. Where each trains on one CPU thread (small models: blobs, digits) and there is
    a second core, the oracle trains in a second thread beside the original, with the same weights as one after
    the other (each has its own seeded generators and one thread; digits, alone on the machine: 9.1 s in turn,
    5.0 s side by side).
    Progress, and with it a cancel, goes through this thread only: the oracle's epochs are relayed from here."""
    roles = list(experiment.roles)
    aside = roles[1:] if _cores() > 1 and experiment.trains_on_one_thread(device) else []
    models: dict[Role, torch.nn.Module] = {}
    stop = threading.Event()
    latest: list[str] = []  # the last epoch the oracle reported, for this thread to relay

    def train_aside(role: Role) -> tuple[torch.nn.Module, bool]:
        def report(label: str) -> None:
            if stop.is_set():
                raise _Stopped
            latest[:] = [label]

        with experiment.threads(device):
            return compute.ensure_reference(experiment, role, data, device, sources, report)

    # This thread takes the thread policy first and leaves it last: the count it restores is OpenMP's setting for
    # the thread that sets it, and the points after the references run here.
    with experiment.threads(device), concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="cup-reference") as pool:
        futures = {role: pool.submit(train_aside, role) for role in aside}
        try:
            for role in roles:
                if role in futures:
                    while True:  # relays the oracle's progress while it finishes
                        try:
                            models[role], computed = futures[role].result(timeout=RELAY_S)
                            break
                        except concurrent.futures.TimeoutError:
                            if latest:
                                tracker.pulse(latest[-1])
                else:
                    models[role], computed = compute.ensure_reference(experiment, role, data, device, sources,
                                                                      tracker.pulse)
                tracker.advance(role, computed, is_point=False, unit=role)
        except BaseException:
            stop.set()  # the oracle stops at its next epoch; leaving the pool waits for it
            raise
        finally:
            for role, future in futures.items():  # its own failure, hidden by this thread's (which is raised)
                error = future.exception()
                if role not in models and error is not None and not isinstance(error, _Stopped):
                    log.warning("training the %s beside the original failed too: %s", role, error)
    return models


def _cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _calibrate(experiment: Experiment, plan: SweepPlan, device: torch.device, data: UnlearningData,
               sources: Sources, tracker: _Tracker) -> SweepPlan:
    """Runs each calibrated method's search (one point at a time, at the plan's first seed); the plan with
    their values as grids."""
    original = _references(experiment, device, data, sources, tracker)["original"]
    oracle_metrics = compute.oracle_metrics(experiment)
    measure = _criteria(experiment)
    seed = plan.seeds[0]
    found = {}
    for name, points in plan.calibrate.items():
        def respond(value: float, name: str = name) -> Response:
            label = f"calibrating {name}: {value:g} seed {seed}"
            computed = compute.ensure_point(experiment, name, value, seed, original, data, oracle_metrics,
                                            tracker.pulse)
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
