"""Pooled learning rates (`sweep --lrs`, `report --lrs`; issue 12): each method's solution set over several
unlearning learning rates, as the CUP authors' scripts pool intensity × learning rate.

A pool is one experiment at several learning rates: its members are the configs that differ only in `unlearn.lr`,
each an ordinary experiment (its own id, cached and resumable, calibrated on its own). A method's pooled
solution set is the union of its points over the members, averaged over seeds per (learning rate, knob value).

Methods that the recipe's learning rate does not reach (`Method.uses_recipe_lr` is False: GA, FT, RL, NGDiff and
boundary shrink, whose knob is the learning rate; ℓ1-sparse, which has its own; SSD, which takes no steps) would
give the same points in every member. They run once, in the first member, with points × (number of learning
rates) values, so that every method still gets the same number of runs; their rows carry no learning rate.

The members unlearn one original: the first member's original and oracle are copied into the others
(`share_references`) rather than trained again, which would cost time and, on a GPU, give another model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Iterable

import numpy as np
import pandas as pd

from . import cache
from .config import ExperimentConfig, canonical_value
from .experiment import Experiment, experiment_folders
from .methods import get_method
from .report import summary
from .sweep import SweepPlan

SINGLE = "single recipe"
POOLED = "pooled learning rates"


def check_lrs(lrs: Iterable[Any]) -> tuple[float, ...]:
    """The learning rates of a pool, canonical and in the order given; ValueError names what is wrong."""
    found: list[float] = []
    for lr in lrs:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)):
            raise ValueError(f"lrs: each learning rate must be a number, got {lr!r}")
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"lrs: each learning rate must be a positive number, got {lr!r}")
        lr = canonical_value(lr)
        if lr in found:
            raise ValueError(f"lrs: {lr:g} is given twice")
        found.append(lr)
    if len(found) < 2:
        raise ValueError(f"lrs: a pool needs at least two learning rates, got {len(found)} (one is --lr)")
    return tuple(found)


def member_config(config: ExperimentConfig, lr: float) -> ExperimentConfig:
    """`config` at unlearning learning rate `lr`: another experiment, whose id is that of its own config."""
    return replace(config, unlearn=replace(config.unlearn, lr=lr))


def _without_lr(config: ExperimentConfig) -> dict[str, Any]:
    data = config.to_dict()
    data["unlearn"] = {name: value for name, value in data["unlearn"].items() if name != "lr"}
    return data


def lr_free(name: str) -> bool:
    """Whether the method's points do not depend on the recipe's learning rate (it runs once in a pool)."""
    return not get_method(name).uses_recipe_lr


@dataclass(frozen=True)
class Pool:
    """The members of a pool, one experiment per learning rate, in the order the learning rates were given;
    the first holds the methods that run once."""

    members: tuple[Experiment, ...]

    @classmethod
    def around(cls, experiment: Experiment, lrs: Iterable[float]) -> Pool:
        """The pool of `experiment`'s config at `lrs` (it need not be one of them), in its cache."""
        cache_dir = experiment.root.parent
        return cls(tuple(Experiment(member_config(experiment.config, lr), cache_dir) for lr in check_lrs(lrs)))

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(member.config.unlearn.lr for member in self.members)

    @property
    def home(self) -> Experiment:
        """The first member: its references are the pool's, and the methods that run once are there."""
        return self.members[0]

    def missing(self) -> list[float]:
        """Learning rates whose member has no folder in the cache."""
        return [member.config.unlearn.lr for member in self.members if not (member.root / "config.json").is_file()]

    def results(self) -> pd.DataFrame:
        """Every member's results.csv with an `lr` column: the recipe's learning rate of the row's member, NaN for a
        method that does not use it (its point found in several members is kept once, from the first)."""
        tables = [member.results().assign(lr=member.config.unlearn.lr) for member in self.members
                  if (member.root / "config.json").is_file()]
        if not tables:
            return self.home.results().assign(lr=pd.Series(dtype=float))
        table = pd.concat([t for t in tables if not t.empty] or tables[:1], ignore_index=True)
        once = table["method"].map(lr_free).astype(bool)
        table.loc[once, "lr"] = np.nan
        table = table[~(once & table.duplicated(["method", "value", "seed"]))]
        return table.sort_values(["method", "lr", "value", "seed"], ignore_index=True, na_position="first")

    def protocol(self) -> dict[str, Any]:
        return {"name": POOLED, "lrs": list(self.lrs),
                "experiments": {f"{member.config.unlearn.lr:g}": member.id for member in self.members},
                "once": "methods whose knob is the learning rate, or that use none of the recipe's (GA, FT, RL, "
                        "NGDiff, boundary shrink, l1-sparse, SSD), run once, in the first learning rate's "
                        "experiment, with as many values as the others have over all learning rates"}


def single_protocol(config: ExperimentConfig) -> dict[str, Any]:
    return {"name": SINGLE, "lr": config.unlearn.lr}


def read_summary(source: Experiment | Pool) -> dict[str, Any]:
    """report.summary of an experiment, or of a pool (its members' results, its first member's references and
    facts), each table read once: what `report` prints."""
    if isinstance(source, Pool):
        return summary(source.results(), source.home.references(), source.home.facts, protocol=source.protocol())
    return summary(source.results(), source.references(), source.facts)


def sibling_lrs(experiment: Experiment) -> list[float]:
    """The learning rates of the cached experiments that differ from `experiment` only in `unlearn.lr` (its own
    included), largest first: what the Compare page offers to pool."""
    own = _without_lr(experiment.config)
    found = {experiment.config.unlearn.lr}
    for folder in experiment_folders(experiment.root.parent):
        try:
            config = ExperimentConfig.from_dict(json.loads((folder / "config.json").read_text()))
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            continue
        if folder.name == config.experiment_id and _without_lr(config) == own:
            found.add(config.unlearn.lr)
    return sorted(found, reverse=True)


def share_references(source: Experiment, target: Experiment) -> list[str]:
    """Copies `source`'s original and oracle into `target` where it has none (members of a pool: their configs
    differ only in the unlearning recipe, which the references do not depend on); the roles copied."""
    if _without_lr(source.config) != _without_lr(target.config):
        raise ValueError(f"{target.id} is not {source.id} at another learning rate: its references differ")
    copied = []
    for role in target.roles:
        if target.reference_cached(role) or not source.reference_cached(role, verify_weights=True):
            continue
        record, weights = cache.load_entry(source.reference_entry(role), source.reference_key(role),
                                           source.reference_check)
        payload = {name: value for name, value in record.items() if name not in ("schema", "key", "weights_sha256")}
        entry = target.reference_entry(role)
        with cache.locked(entry):
            if not cache.valid_or_discard(entry, target.reference_key(role), target.reference_check):
                target.save_config()
                cache.write_entry(entry, target.reference_key(role), weights, {**payload, "copied_from": source.id},
                                  target.reference_check)
                copied.append(role)
    return copied


def member_plans(methods: tuple[str, ...], points: int, seeds: tuple[int, ...], lrs: tuple[float, ...],
                 calibrate: bool = True, grid: tuple[float, ...] | None = None) -> list[SweepPlan | None]:
    """One plan per learning rate (None: nothing to run there). A method that uses the recipe's learning rate
    gets its `points` values (or `grid`) at each; one that does not gets points × len(lrs) values (or `grid`,
    once) at the first only, so that every method has the same number of runs over the pool."""
    shared = tuple(name for name in methods if not lr_free(name))
    once = tuple(name for name in methods if lr_free(name))
    plans: list[SweepPlan | None] = []
    for index in range(len(lrs)):
        parts = []
        if grid is not None:
            if shared or index == 0:
                parts.append(SweepPlan({methods[0]: tuple(grid)}, seeds))
        else:
            if shared:
                parts.append(SweepPlan.default(shared, points, seeds, calibrate=calibrate))
            if once and index == 0:
                parts.append(SweepPlan.default(once, points * len(lrs), seeds, calibrate=calibrate))
        plans.append(merge_plans(parts) if parts else None)
    return plans


def merge_plans(plans: list[SweepPlan]) -> SweepPlan:
    """Plans over disjoint methods and the same seeds, as one."""
    grids = {name: values for plan in plans for name, values in plan.grids.items()}
    calibrate = {name: points for plan in plans for name, points in plan.calibrate.items()}
    return SweepPlan(grids, plans[0].seeds, calibrate)
