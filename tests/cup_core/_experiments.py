"""Tiny experiments for tests: the blobs toy with short training, so that a sweep takes well under a second."""

from __future__ import annotations

from dataclasses import replace

import torch

from cup_core import Experiment, ExperimentConfig, SweepPlan, SweepSettings, default_config, run_sweep

TINY_TRAIN_EPOCHS = 50  # full-batch Adam steps; the original reaches 96 % (the authors' blobs overlap a little)
TINY_UNLEARN_EPOCHS = 5  # full-batch steps; enough for γ to change the outcome
TINY_GRID = (0.0, 0.5, 1.0)
CPU = torch.device("cpu")


def tiny_config(dataset: str = "blobs", **forget) -> ExperimentConfig:
    config = default_config(dataset, **forget)
    return replace(config, train=replace(config.train, epochs=TINY_TRAIN_EPOCHS),
                   unlearn=replace(config.unlearn, epochs=TINY_UNLEARN_EPOCHS))


def tiny_sweep(cache_dir, config: ExperimentConfig | None = None, grid=TINY_GRID, seeds=(0,), on_progress=None,
               engine: str = "auto"):
    """(experiment, results table) of a CUP sweep over `grid` on `config` (the tiny class-wise blobs by default)."""
    experiment = Experiment(config or tiny_config(), cache_dir)
    return experiment, run_sweep(experiment, SweepPlan({"cup": tuple(grid)}, tuple(seeds)), CPU, on_progress,
                                 SweepSettings(engine=engine))
