"""One training loop for the original and the oracle, one unlearning loop for every method."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import TrainRecipe, UnlearnRecipe
from .data import LabelledSet
from .rules import GradientRule


def make_optimizer(params: list[nn.Parameter], recipe: TrainRecipe | UnlearnRecipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose 'sgd' or 'adam'")


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """One epoch of index batches over n samples, in the generator's order (CPU, so seeds match everywhere)."""
    order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def train_model(model: nn.Module, data: LabelledSet, recipe: TrainRecipe) -> nn.Module:
    """Plain supervised training (the original on all training data, the oracle on the retain set)."""
    generator = torch.Generator().manual_seed(recipe.seed)
    optimizer = make_optimizer(list(model.parameters()), recipe)
    model.train()
    for _ in range(recipe.epochs):
        for index in shuffled_batches(len(data), recipe.batch_size, generator):
            index = index.to(data.x.device)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(data.x[index]), data.y[index]).backward()
            optimizer.step()
    model.eval()
    return model


@dataclass(frozen=True)
class UnlearnRun:
    steps: int  # optimiser steps taken
    seconds: float  # wall-clock time of the loop
    diverged_at_step: int | None  # first step whose loss was not finite, if any


def unlearn(model: nn.Module, forget: LabelledSet, retain: LabelledSet, rule: GradientRule,
            recipe: UnlearnRecipe, seed: int) -> UnlearnRun:
    """Moves `model` in place by `rule`'s direction, one zipped (forget, retain) batch pair per step.

    The forget loss is the negated cross-entropy on the forget batch and the retain loss the
    cross-entropy on the retain batch, both minimised; the rule's direction is written to .grad and
    the base optimiser steps on it. A non-finite loss stops the run before it can poison the weights.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, recipe)
    generator = torch.Generator().manual_seed(seed)
    device = forget.x.device
    model.train()
    steps, diverged_at = 0, None
    start = time.perf_counter()
    for _ in range(recipe.epochs):
        forget_batches = shuffled_batches(len(forget), recipe.batch_size, generator)
        retain_batches = shuffled_batches(len(retain), recipe.batch_size, generator)
        for forget_index, retain_index in zip(forget_batches, retain_batches):
            forget_index, retain_index = forget_index.to(device), retain_index.to(device)
            forget_loss = -F.cross_entropy(model(forget.x[forget_index]), forget.y[forget_index])
            retain_loss = F.cross_entropy(model(retain.x[retain_index]), retain.y[retain_index])
            if not (math.isfinite(forget_loss.item()) and math.isfinite(retain_loss.item())):
                diverged_at = steps
                break
            g_forget = _flat(torch.autograd.grad(forget_loss, params))  # (P,)
            g_retain = _flat(torch.autograd.grad(retain_loss, params))  # (P,)
            direction = rule(g_forget=g_forget, g_retain=g_retain)  # (P,)
            for param, chunk in zip(params, direction.split([p.numel() for p in params])):
                param.grad = chunk.view_as(param)
            optimizer.step()
            steps += 1
        if diverged_at is not None:
            break
    model.eval()
    return UnlearnRun(steps=steps, seconds=time.perf_counter() - start, diverged_at_step=diverged_at)


def _flat(grads: tuple[Tensor, ...]) -> Tensor:
    return torch.cat([g.reshape(-1) for g in grads])
