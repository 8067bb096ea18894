"""One training loop for the original and the oracle, one unlearning loop for every method."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .boundary import FGSM_BOUND, boundary_labels
from .config import TrainRecipe, UnlearnRecipe
from .labelled import LabelledSet
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


def zipped_batches(forget_size: int, retain_size: int, batch_size: int, epochs: int,
                   generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
    """(forget index, retain index) per unlearning step over all epochs; an epoch has as many steps as the
    shorter of its two shuffles. Lazy, so that draws made during a step (random labels) keep their place
    in the generator's sequence: both engines see the same batches and labels."""
    for _ in range(epochs):
        yield from zip(shuffled_batches(forget_size, batch_size, generator),
                       shuffled_batches(retain_size, batch_size, generator))


def train_model(model: nn.Module, data: LabelledSet, recipe: TrainRecipe,
                on_epoch: Callable[[int], None] | None = None) -> nn.Module:
    """Plain supervised training (the original on all training data, the oracle on the retain set).
    `on_epoch(epoch)` is called after each epoch (1-based): progress, and a place to stop a long run."""
    generator = torch.Generator().manual_seed(recipe.seed)
    optimizer = make_optimizer(list(model.parameters()), recipe)
    model.train()
    for epoch in range(1, recipe.epochs + 1):
        for index in shuffled_batches(len(data), recipe.batch_size, generator):
            index = index.to(data.x.device)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(data.x[index]), data.y[index]).backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch(epoch)
    model.eval()
    return model


@dataclass(frozen=True)
class UnlearnRun:
    steps: int  # optimiser steps taken
    seconds: float  # wall-clock time of the loop
    diverged_at_step: int | None  # first step whose loss was not finite, if any


ForgetObjective = Literal["ascent", "random_labels", "boundary"]


@dataclass(frozen=True)
class Procedure:
    """What each unlearning step computes besides the base optimiser: the losses and the rule combining them."""

    rule: GradientRule  # maps (g_forget, g_retain) to the step direction
    forget_objective: ForgetObjective = "ascent"  # ascent: −CE on the forget batch; random_labels: CE to wrong labels;
    #                                               boundary: CE to the original's nearest wrong class (boundary.py)
    l1_strength: float = 0.0  # ℓ1 penalty on the weights, added to the retain loss (ℓ1-sparse)
    saliency_fraction: float | None = None  # SalUn: only this top share of weights, by |∇ forget CE|, moves
    fgsm_bound: float = FGSM_BOUND  # boundary objective only: the L∞ size of the FGSM step that finds the labels


class Unlearner(ABC):
    """A method that is not one gradient rule over the zipped (forget, retain) steps (SCRUB's alternating
    steps against a teacher, SSD's dampening without training): it runs itself, in place of the rule loop,
    under the same recipe, seed, device and divergence record."""

    # Why the batched engine runs its points one at a time: a sweep says it once per method.
    sequential_reason: ClassVar[str]

    @abstractmethod
    def run(self, model: nn.Module, forget: LabelledSet, retain: LabelledSet, recipe: UnlearnRecipe, seed: int,
            on_step: Callable[[StepGradients], None] | None = None) -> UnlearnRun:
        """Moves `model` in place, as `unlearn` does."""


@dataclass(frozen=True)
class StepGradients:
    """What one step saw, handed to an `on_step` observer before the optimiser moves."""

    step: int
    forget_loss: float
    retain_loss: float
    g_forget: Tensor | None  # (P,); None for an Unlearner, whose steps have no (forget, retain) gradient pair
    g_retain: Tensor | None  # (P,)
    direction: Tensor | None  # (P,) after any saliency mask


def unlearn(model: nn.Module, forget: LabelledSet, retain: LabelledSet,
            procedure: Procedure | GradientRule | Unlearner, recipe: UnlearnRecipe, seed: int,
            on_step: Callable[[StepGradients], None] | None = None) -> UnlearnRun:
    """Moves `model` in place, one zipped (forget, retain) batch pair per step.

    Both losses are minimised: the forget loss (by default the negated cross-entropy on the forget
    batch) and the retain loss (cross-entropy on the retain batch). The procedure's rule maps their
    flat gradients to a direction, written to .grad for the base optimiser. A non-finite loss stops
    the run before it can poison the weights. `on_step`, when given, sees every step's gradients (the
    Learn page's records); without it nothing extra is computed. An `Unlearner` (SCRUB, SSD) runs its own
    steps instead, with the same arguments.
    """
    if isinstance(procedure, Unlearner):
        return procedure.run(model, forget, retain, recipe, seed, on_step)
    if isinstance(procedure, GradientRule):
        procedure = Procedure(procedure)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, recipe)
    generator = torch.Generator().manual_seed(seed)
    device = forget.x.device
    mask = None if procedure.saliency_fraction is None else saliency_mask(model, forget, procedure.saliency_fraction)
    # Boundary shrink's labels come from the model before any step (the original), once for every forget sample.
    nearest = (boundary_labels(model, forget.x, forget.y, procedure.fgsm_bound)
               if procedure.forget_objective == "boundary" else None)
    model.train()
    steps, diverged_at = 0, None
    start = time.perf_counter()
    for forget_index, retain_index in zipped_batches(len(forget), len(retain), recipe.batch_size, recipe.epochs,
                                                     generator):
        x_forget, y_forget = forget.x[forget_index.to(device)], forget.y[forget_index.to(device)]
        logits = model(x_forget)
        if procedure.forget_objective == "ascent":
            forget_loss = -F.cross_entropy(logits, y_forget)
        elif procedure.forget_objective == "boundary":
            forget_loss = F.cross_entropy(logits, nearest[forget_index.to(device)])
        else:
            forget_loss = F.cross_entropy(logits, wrong_labels(y_forget, logits.shape[1], generator))
        retain_index = retain_index.to(device)
        retain_loss = F.cross_entropy(model(retain.x[retain_index]), retain.y[retain_index])
        if procedure.l1_strength:
            retain_loss = retain_loss + procedure.l1_strength * sum(p.abs().sum() for p in params)
        if not (math.isfinite(forget_loss.item()) and math.isfinite(retain_loss.item())):
            diverged_at = steps
            break
        g_forget = _flat(torch.autograd.grad(forget_loss, params))  # (P,)
        g_retain = _flat(torch.autograd.grad(retain_loss, params))  # (P,)
        direction = procedure.rule(g_forget=g_forget, g_retain=g_retain)  # (P,)
        if mask is not None:
            direction = direction * mask
        if on_step is not None:
            on_step(StepGradients(steps, forget_loss.item(), retain_loss.item(), g_forget, g_retain, direction))
        for param, chunk in zip(params, direction.split([p.numel() for p in params])):
            param.grad = chunk.view_as(param)
        if not optimizer_step(optimizer):
            diverged_at = steps
            break
        steps += 1
    model.eval()
    return UnlearnRun(steps=steps, seconds=time.perf_counter() - start, diverged_at_step=diverged_at)


def optimizer_step(optimizer: torch.optim.Optimizer) -> bool:
    """One step of the base optimiser; False when torch refuses it for a learning rate beyond the weights' float
    range (GA's, FT's and RL's knobs allow 1e39): that run diverged, as the batched engine, whose float32 rate
    is then infinite, records it."""
    try:
        optimizer.step()
    except RuntimeError as err:
        if "overflow" not in str(err):
            raise
        return False
    return True


def wrong_labels(labels: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """Random labels that are never the true one (RL, SalUn), drawn from the run's generator on CPU."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator).to(labels.device)
    return (labels + shift) % num_classes


def saliency_mask(model: nn.Module, forget: LabelledSet, fraction: float) -> Tensor:
    """(P,) mask of the `fraction` of weights with the largest |∇ CE| on the whole forget set (SalUn, Fan et al. 2024)."""
    params = [p for p in model.parameters() if p.requires_grad]
    model.eval()
    loss = F.cross_entropy(model(forget.x), forget.y)
    saliency = _flat(torch.autograd.grad(loss, params)).abs()  # (P,)
    keep = max(1, round(fraction * saliency.numel()))
    threshold = torch.topk(saliency, keep).values[-1]
    return (saliency >= threshold).to(saliency.dtype)


def _flat(grads: tuple[Tensor, ...]) -> Tensor:
    return torch.cat([g.reshape(-1) for g in grads])
