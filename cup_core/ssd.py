"""SSD: selective synaptic dampening, unlearning without training.

Foster, Schoepf and Brintrup, "Fast Machine Unlearning Without Retraining Through Selective Synaptic
Dampening", AAAI 2024 (code: github.com/if-loops/selective-synaptic-dampening).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import UnlearnRecipe
from .labelled import LabelledSet
from .training import StepGradients, Unlearner, UnlearnRun

DAMPENING = 1.0  # λ, the dampening constant (the authors' default, used for all their classification runs)
MAX_BATCH = 256  # importance batches: the recipe's size, at most this (see SelectiveDampening)


def fisher_diagonal(model: nn.Module, data: LabelledSet, batch_size: int) -> list[Tensor]:
    """Per trainable parameter, the mean over batches of the squared gradient of the batch's mean cross-entropy
    (the authors' `calc_importance`, their diagonal Fisher approximation), in eval mode, the batches in the
    set's order. Parameters' .grad are left alone."""
    params = [p for p in model.parameters() if p.requires_grad]
    importances = [torch.zeros_like(p) for p in params]
    was_training = model.training
    model.eval()
    batches = 0
    try:
        for x, y in zip(data.x.split(batch_size), data.y.split(batch_size)):
            grads = torch.autograd.grad(F.cross_entropy(model(x), y), params)
            for importance, grad in zip(importances, grads):
                importance += grad.detach() ** 2
            batches += 1
    finally:
        model.train(was_training)
    return [importance / max(1, batches) for importance in importances]


@torch.no_grad()
def dampen(params: list[Tensor], importance_data: list[Tensor], importance_forget: list[Tensor], selection: float,
           dampening: float = DAMPENING) -> int:
    """Multiplies, in place, each parameter with I_f > selection · I_D by min(dampening · I_D / I_f, 1); returns
    how many were selected (the authors' `modify_weight` with exponent 1 and lower bound 1)."""
    selected = 0
    for param, data_importance, forget_importance in zip(params, importance_data, importance_forget):
        chosen = forget_importance > selection * data_importance  # strict: I_f > 0 wherever chosen
        factor = (dampening * data_importance[chosen] / forget_importance[chosen]).clamp(max=1.0)
        param[chosen] = param[chosen] * factor
        selected += int(chosen.sum())
    return selected


@dataclass(frozen=True)
class SelectiveDampening(Unlearner):
    """SSD (Foster et al., AAAI 2024): no training. With diagonal Fisher importances I_f on the forget set and
    I_D on the whole training set (forget ∪ retain; `fisher_diagonal`), every parameter with I_f > α · I_D
    is multiplied by min(λ · I_D / I_f, 1) (`dampen`): the parameters far more important to the forget set
    than to the data as a whole are dampened, the more the more specialised they are.

    The knob is α, the selection weighting (the authors used α = 10, λ = 1 on CIFAR ResNet-18s); λ is fixed
    at their default 1 (`DAMPENING`). An α below λ adds only parameters with λ · I_D / I_f ≥ 1, whose factor
    is 1, so it gives the model of α = λ: the Method's bounds start at λ, the knob's strongest setting. α works
    backwards: a large α selects nothing and leaves the model as it was, a small one dampens many parameters,
    so its Method says `decreasing=True` and the calibration searches 1/α (see calibration.py).

    As in the authors' code, importances are taken in eval mode over unshuffled batches: the forget set in its
    order, the training set as the retain set then the forget set. Batches have the recipe's size but at most
    `MAX_BATCH` (256): on a full batch, the blob toy's recipe, I_D would be the squared gradient of the
    converged training loss, near zero everywhere, and every parameter would look specialised to the forget
    set. So SSD is deterministic: the seed changes nothing, and neither do the recipe's epochs, learning rate
    or optimiser (the run reports 0 steps). A non-finite importance (a model whose loss is not finite) leaves
    the model unchanged and is recorded as divergence at step 0.
    """

    selection: float  # α: the knob
    dampening: float = DAMPENING  # λ

    sequential_reason: ClassVar[str] = ("SSD trains nothing: it computes two importance estimates once and "
                                        "dampens the weights, so there are no steps to batch")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.selection) and self.selection > 0):
            raise ValueError(f"SSD's selection weighting α must be positive, got {self.selection!r}")
        if not (math.isfinite(self.dampening) and self.dampening > 0):
            raise ValueError(f"SSD's dampening constant λ must be positive, got {self.dampening!r}")

    def run(self, model: nn.Module, forget: LabelledSet, retain: LabelledSet, recipe: UnlearnRecipe, seed: int,
            on_step: Callable[[StepGradients], None] | None = None) -> UnlearnRun:
        start = time.perf_counter()
        # As the authors' unshuffled loader of ConcatDataset((retain, forget)): the retain set, then the forget set.
        training = LabelledSet(torch.cat([retain.x, forget.x]), torch.cat([retain.y, forget.y]))
        batch_size = min(recipe.batch_size, MAX_BATCH)
        importance_forget = fisher_diagonal(model, forget, batch_size)
        importance_data = fisher_diagonal(model, training, batch_size)
        finite = all(bool(torch.isfinite(t).all()) for t in (*importance_forget, *importance_data))
        if finite:
            dampen([p for p in model.parameters() if p.requires_grad], importance_data, importance_forget,
                   self.selection, self.dampening)
        model.eval()
        return UnlearnRun(steps=0, seconds=time.perf_counter() - start, diverged_at_step=None if finite else 0)
