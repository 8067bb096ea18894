"""Computes what an experiment lacks: the original, the oracle, then every (method, value, seed) point."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Literal

import pandas as pd
import torch

from . import cache
from ._json import nan_if_none, strict
from .data import UnlearningData, load_unlearning_data
from .batched import DEFAULT_MAX_MEMORY, batchable, chunk_size, unlearn_batched
from .device import threads_for
from .experiment import ROLES, Experiment, Role
from .methods import DEFAULT_POINTS, get_method
from .metrics import avg_gap, evaluate
from .training import train_model, unlearn

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SweepPlan:
    """Which points to compute: a grid of knob values per method, times seeds."""

    grids: dict[str, tuple[float, ...]]  # method name -> knob values
    seeds: tuple[int, ...] = (0,)

    @classmethod
    def default(cls, methods: tuple[str, ...] = ("cup",), points: int = DEFAULT_POINTS,
                seeds: tuple[int, ...] = (0,)) -> SweepPlan:
        return cls({name: get_method(name).grid(points) for name in methods}, seeds)

    def __post_init__(self) -> None:
        if not self.grids:
            raise ValueError("the sweep has no method; name at least one")
        if not self.seeds:
            raise ValueError("the sweep has no seed; give at least one")
        for name, values in self.grids.items():
            if not values:
                raise ValueError(f"the grid of {name} is empty; give at least one value")
            canonical = tuple(dict.fromkeys(get_method(name).check_value(v) for v in values))  # one point per value
            object.__setattr__(self, "grids", {**self.grids, name: canonical})

    def points(self) -> list[tuple[str, float, int]]:
        return [(name, value, seed) for name, values in self.grids.items() for seed in self.seeds for value in values]


@dataclass(frozen=True)
class SweepProgress:
    done: int  # units finished (reference models and points), cached or computed
    total: int
    elapsed_s: float
    label: str  # what was just finished
    eta_s: float | None  # time left, from the mean time of the points computed so far; None before the first
    computed: int = 0  # how many of the finished units were computed now rather than read from the cache


ProgressCallback = Callable[[SweepProgress], None]


@dataclass
class _Tracker:
    total: int
    on_progress: ProgressCallback | None
    start: float = field(default_factory=time.perf_counter)
    last: float = field(default_factory=time.perf_counter)
    done: int = 0
    computed: int = 0
    point_seconds: list[float] = field(default_factory=list)

    def advance(self, label: str, computed: bool, is_point: bool = True) -> None:
        """One unit finished; only computed points inform the estimate (training the references costs more)."""
        now = time.perf_counter()
        self.computed += computed
        if computed and is_point:
            self.point_seconds.append(now - self.last)
        self.last = now
        self.done += 1
        left = self.total - self.done
        eta = (sum(self.point_seconds) / len(self.point_seconds) * left if self.point_seconds
               else (0.0 if left == 0 else None))
        if self.on_progress is not None:
            self.on_progress(SweepProgress(self.done, self.total, now - self.start, label, eta, self.computed))


def missing_points(experiment: Experiment, plan: SweepPlan) -> list[tuple[str, float, int]]:
    """The plan's points without a valid entry (record and weights verified)."""
    return [point for point in plan.points()
            if not cache.is_valid(experiment.point_entry(*point), experiment.point_key(*point))]


Engine = Literal["auto", "batched", "sequential"]


def resolve_engine(engine: Engine, device: torch.device) -> Literal["batched", "sequential"]:
    """auto: batched on CUDA, sequential on CPU. On these 2 CPU cores the sweep is compute-bound and vmap's
    batched convolutions were slower than a loop (bench/batched_sweep.py), so batching buys nothing there."""
    if engine not in ("auto", "batched", "sequential"):
        raise ValueError(f"unknown engine {engine!r}; choose auto, batched or sequential")
    if engine == "auto":
        return "batched" if device.type == "cuda" else "sequential"
    return engine


def run_sweep(experiment: Experiment, plan: SweepPlan, device: torch.device,
              on_progress: ProgressCallback | None = None, engine: Engine = "auto",
              max_memory: int = DEFAULT_MAX_MEMORY) -> pd.DataFrame:
    """Computes every reference model and point of `plan` that is not cached yet; returns results.csv.

    The batched engine trains the missing points of each (method, seed) together (see batched.py),
    falling back to one at a time, with a warning saying why, for a model it cannot batch. Each
    finished point is on disk before the sweep moves on, so an interrupted sweep resumes where it
    stopped. Concurrent sweeps of one experiment share the work through per-entry locks.
    """
    engine = resolve_engine(engine, device)
    experiment.save_config()
    with threads_for(experiment.new_model(), device):
        return _run(experiment, plan, device, on_progress, engine, max_memory)


def _run(experiment: Experiment, plan: SweepPlan, device: torch.device, on_progress: ProgressCallback | None,
         engine: Engine, max_memory: int) -> pd.DataFrame:
    tracker = _Tracker(total=len(ROLES) + len(plan.points()), on_progress=on_progress)
    data = load_unlearning_data(experiment.config).to(device)
    models = {}
    for role in ROLES:
        models[role], computed = _ensure_reference(experiment, role, data, device)
        tracker.advance(role, computed, is_point=False)
    oracle_metrics = experiment.reference("oracle")["metrics"]
    if engine == "batched" and (reason := batchable(models["original"])) is not None:
        log.warning("the batched engine cannot train this model (%s); running the points one at a time", reason)
        engine = "sequential"
    for method, values in plan.grids.items():
        for seed in plan.seeds:
            if engine == "batched":
                finished = _ensure_points_batched(experiment, method, seed, list(values), models["original"], data,
                                                  oracle_metrics, max_memory)
            else:
                finished = ((value, _ensure_point(experiment, method, value, seed, models["original"], data,
                                                  oracle_metrics)) for value in values)
            for value, computed in finished:
                tracker.advance(f"{method} {value:g} seed {seed}", computed)
    return experiment.write_tables()


def _ensure_reference(experiment: Experiment, role: Role, data: UnlearningData,
                      device: torch.device) -> tuple[torch.nn.Module, bool]:
    def compute() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        recipe = experiment.config.train
        torch.manual_seed(recipe.seed)
        model = experiment.new_model().to(device)
        start = time.perf_counter()
        train_model(model, data.train if role == "original" else data.retain, recipe)
        seconds = time.perf_counter() - start
        return model.state_dict(), {"role": role, "metrics": strict(evaluate(model, data)),
                                    "seconds": seconds, **_provenance(device)}

    _, weights, computed = cache.ensure_entry(experiment.reference_entry(role), experiment.reference_key(role), compute)
    model = experiment.new_model().to(device)
    model.load_state_dict(weights)
    return model.eval(), computed


def _ensure_point(experiment: Experiment, method_name: str, value: float, seed: int, original: torch.nn.Module,
                  data: UnlearningData, oracle_metrics: dict[str, Any]) -> bool:
    method = get_method(method_name)

    def compute() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        model = copy.deepcopy(original)
        torch.manual_seed(seed)
        procedure, recipe = method.setup(value, experiment.config.unlearn)
        run = unlearn(model, data.forget, data.retain, procedure, recipe, seed)
        return model.state_dict(), _point_payload(method_name, value, seed, model, run, recipe, data, oracle_metrics,
                                                  "sequential")

    entry, key = experiment.point_entry(method_name, value, seed), experiment.point_key(method_name, value, seed)
    return cache.ensure_entry(entry, key, compute)[2]


def _ensure_points_batched(experiment: Experiment, method_name: str, seed: int, values: list[float],
                           original: torch.nn.Module, data: UnlearningData, oracle_metrics: dict[str, Any],
                           max_memory: int) -> Iterator[tuple[float, bool]]:
    """Yields (value, computed) for every value, training the missing ones together in memory-sized chunks."""
    method = get_method(method_name)
    entry = {v: experiment.point_entry(method_name, v, seed) for v in values}
    key = {v: experiment.point_key(method_name, v, seed) for v in values}
    todo = [v for v in values if not cache.is_valid(entry[v], key[v])]
    for v in values:
        if v not in todo:
            yield v, False
    size = chunk_size(original, experiment.config.unlearn, experiment.info.input_shape, max_memory)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        with contextlib.ExitStack() as held:
            for v in sorted(chunk):  # one order for every process: no deadlock between concurrent sweeps
                held.enter_context(cache.locked(entry[v]))
            missing = [v for v in chunk if not cache.valid_or_discard(entry[v], key[v])]
            if missing:
                setups = [method.setup(v, experiment.config.unlearn) for v in missing]
                torch.manual_seed(seed)
                states, runs = unlearn_batched(copy.deepcopy(original), data.forget, data.retain,
                                               [p for p, _ in setups], [r for _, r in setups], seed)
                for v, state, run, (_, recipe) in zip(missing, states, runs, setups):
                    model = experiment.new_model().to(next(original.parameters()).device)
                    model.load_state_dict(state)
                    cache.write_entry(entry[v], key[v], state, _point_payload(
                        method_name, v, seed, model, run, recipe, data, oracle_metrics, "batched"))
        for v in chunk:
            yield v, v in missing


def _point_payload(method_name: str, value: float, seed: int, model: torch.nn.Module, run, recipe, data: UnlearningData,
                   oracle_metrics: dict[str, Any], engine: str) -> dict[str, Any]:
    method = get_method(method_name)
    metrics = evaluate(model, data)
    return {
        "method": method.name, "knob": method.knob, "value": value, "seed": seed,
        "metrics": strict(metrics),
        "avg_gap": strict(avg_gap(metrics, {name: nan_if_none(v) for name, v in oracle_metrics.items()})),
        "seconds": run.seconds, "steps": run.steps, "diverged_at_step": run.diverged_at_step,
        "recipe": dataclasses.asdict(recipe),  # as run: a learning-rate knob replaces the experiment's lr
        "engine": engine,
        **_provenance(next(model.parameters()).device),
    }


def _provenance(device: torch.device) -> dict[str, Any]:
    return {"device": str(device), "torch": torch.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
