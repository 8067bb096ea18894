"""Computing one reference model, one point or a batched chunk of points into the cache, and the checks before.

Both executors compute through here: the local one (sweep.py's run_sweep) in this process, and the Ray one
(ray_executor.py) through the self-contained worker entry points `compute_references` and `compute_point`,
which open the experiment, the data and the cache themselves. `prepare` checks a sweep's inputs before
anything trains (run_sweep, the CLI and the cost estimate call it)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from . import cache
from ._json import nan_if_none, strict
from .config import ExperimentConfig, Sources
from .data import UnlearningData, load_unlearning_data
from .batched import chunk_size, predict_proba_batched, unlearn_batched
from .checkpoints import file_sha256, load_checkpoint
from .device import resolve_device
from .experiment import Experiment, Role
from .models import check_fits
from .settings import SettingError
from .methods import get_method
from .metrics import avg_gap, evaluate, evaluated_sets, metrics_from
from .training import train_model, unlearn


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
        raise SettingError("this experiment's original is a user's checkpoint (sha256 {sha}…) that is not cached "
                           "yet; give its file with {setting.checkpoint}", sha=expected[:12])
    actual = file_sha256(sources.checkpoint)
    if actual != expected:
        raise ValueError(f"{sources.checkpoint} is not this experiment's checkpoint (sha256 {actual[:12]}…, "
                         f"expected {expected[:12]}…); a different file makes a different experiment")
    return load_checkpoint(sources.checkpoint, experiment.architecture, experiment.architecture_kwargs)


def oracle_metrics(experiment: Experiment) -> dict[str, Any] | None:
    """What each point's avg_gap is measured against; None in an experiment without an oracle."""
    return experiment.reference("oracle")["metrics"] if experiment.config.oracle else None


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
        return [(role, ensure_reference(experiment, role, data, where, found)[1]) for role in experiment.roles]


def compute_point(config: dict[str, Any], cache_dir: str, sources: dict[str, Any], method: str, value: float,
                  seed: int, device: str) -> bool:
    """Ensures one point's entry (the references must be cached); True if it computed it. Self-contained like
    `compute_references`, so that any number of processes can share one cache directory."""
    experiment = Experiment(ExperimentConfig.from_dict(config), cache_dir)
    where = resolve_device(device)
    data = _cached_data(experiment.config, Sources.from_dict(sources), where)
    original = experiment.load_reference_model("original").to(where)
    return ensure_point(experiment, method, value, seed, original, data, oracle_metrics(experiment))


def ensure_reference(experiment: Experiment, role: Role, data: UnlearningData, device: torch.device,
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
        experiment.save_config()  # again: see ensure_point
    model = experiment.new_model().to(device)
    model.load_state_dict(weights)
    return model.eval(), computed


def ensure_point(experiment: Experiment, method_name: str, value: float, seed: int, original: torch.nn.Module,
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


def evaluation_rows(experiment: Experiment) -> int:
    """Rows per chunk of the batched engine's evaluation: two unlearning batches, within the memory that
    chunk_size allows a point for a step."""
    return 2 * experiment.config.unlearn.batch_size


def ensure_points_batched(experiment: Experiment, method_name: str, seed: int, values: list[float],
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
                    probs = predict_proba_batched(original, states, evaluated_sets(data), evaluation_rows(experiment))
                with experiment.threads(device):  # the metrics' small operations, one model at a time
                    for v, state, run, (_, recipe), point_probs in zip(missing, states, runs, setups, probs):
                        cache.write_entry(entry[v], key[v], state, _point_payload(
                            method_name, v, seed, metrics_from(point_probs, data), run, recipe, oracle_metrics,
                            "batched", device), experiment.point_check)
                    experiment.save_config()  # again: see ensure_point
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
