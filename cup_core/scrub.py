"""SCRUB: a student pushed away from its teacher on the forget set and kept close on the retain set.

Kurmanji, Triantafillou, Hayes and Triantafillou, "Towards Unbounded Machine Unlearning", NeurIPS 2023
(code: github.com/meghdadk/SCRUB).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import UnlearnRecipe
from .labelled import LabelledSet
from .training import StepGradients, Unlearner, UnlearnRun, make_optimizer, optimizer_step, shuffled_batches

# The authors' constants (their `scrub` settings: gamma 0.99, alpha 0.001, beta 0, kd_T 4, msteps 2 of sgda_epochs 3).
RETAIN_CE_WEIGHT = 0.99  # γ: cross-entropy of the min-steps
RETAIN_KL_WEIGHT = 0.001  # α: KL to the teacher of the min-steps
TEMPERATURE = 4.0  # kd_T: both models' logits are divided by it before the softmax
MAX_EPOCH_SHARE = 2 / 3  # max-steps run in the first msteps / sgda_epochs = 2/3 of the epochs


def distill_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """KL(teacher ‖ student) of the temperature-scaled softmaxes, times T², averaged over the batch (the
    authors' DistillKL, after Hinton et al.'s distillation loss)."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)  # (N, C)
    teacher = F.softmax(teacher_logits / temperature, dim=1)  # (N, C)
    return F.kl_div(log_student, teacher, reduction="sum") * temperature**2 / student_logits.shape[0]


@dataclass(frozen=True)
class Scrub(Unlearner):
    """SCRUB (Kurmanji et al., NeurIPS 2023): the student, initialised from the original, alternates max-steps
    on forget batches, which raise its KL divergence from the frozen original (the teacher), with min-steps
    on retain batches, which lower γ·CE + α·KL.

    As in the authors' loop, each epoch first runs a max-step on every forget batch (in the first
    `max_epoch_share` of the epochs only: their msteps = 2 of sgda_epochs = 3), then a min-step on every
    retain batch, all with one base optimiser (here the recipe's, the project's shared setting; theirs was SGD,
    lr 5e-4, momentum 0.9, weight decay 5e-4, without learning-rate decay within 3 epochs). Batches are the
    recipe's size, shuffled per epoch by the run's seed, forget first. The max-step loss is
    −forget_weight · KL(teacher ‖ student) on the batch: the authors' weight is 1; here it is the knob, so that
    the trade-off can be swept (0 switches the max-steps off: the min-steps alone, a distillation on the
    retain set). Left out of their code: the SWA model it updates but does not return, gradient clipping (its
    call is commented out there), label smoothing (0) and the β-weighted second distillation term (β = 0).

    A student equal to its teacher has a zero KL gradient, so the first max-steps move nothing until the
    student differs; in the authors' ResNets batch-norm's training mode makes it differ at once, here the first
    epoch's min-steps do. A non-finite loss stops the run (divergence), as in `training.unlearn`.
    """

    forget_weight: float  # the knob: weight of the max-steps' KL
    retain_ce_weight: float = RETAIN_CE_WEIGHT  # γ
    retain_kl_weight: float = RETAIN_KL_WEIGHT  # α
    temperature: float = TEMPERATURE  # kd_T
    max_epoch_share: float = MAX_EPOCH_SHARE  # the share of the epochs, from the first, with max-steps

    sequential_reason: ClassVar[str] = ("SCRUB alternates max-steps on forget batches with min-steps on retain "
                                        "batches against a teacher, which the batched engine's one rule step "
                                        "over zipped batches does not express")

    def __post_init__(self) -> None:
        if not (math.isfinite(self.forget_weight) and self.forget_weight >= 0):
            raise ValueError(f"SCRUB's forget weight must be a non-negative number, got {self.forget_weight!r}")
        if not 0 < self.temperature < math.inf:
            raise ValueError(f"SCRUB's temperature must be positive, got {self.temperature!r}")
        if not 0 <= self.max_epoch_share <= 1:
            raise ValueError(f"SCRUB's share of epochs with max-steps must be in [0, 1], got {self.max_epoch_share!r}")

    def max_epochs(self, epochs: int) -> int:
        """How many of `epochs`, from the first, have max-steps (at least one when there are epochs)."""
        return min(epochs, max(1, round(self.max_epoch_share * epochs))) if self.max_epoch_share else 0

    def run(self, model: nn.Module, forget: LabelledSet, retain: LabelledSet, recipe: UnlearnRecipe, seed: int,
            on_step: Callable[[StepGradients], None] | None = None) -> UnlearnRun:
        teacher = copy.deepcopy(model).eval()
        for param in teacher.parameters():
            param.requires_grad_(False)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(params, recipe)
        generator = torch.Generator().manual_seed(seed)
        device = forget.x.device
        max_epochs = self.max_epochs(recipe.epochs)
        model.train()
        steps, diverged_at = 0, None
        start = time.perf_counter()

        def step(loss: Tensor, forget_loss: float, retain_loss: float) -> bool:
            """One optimiser step on `loss`; False when the run diverged (a non-finite loss, a refused step)."""
            nonlocal steps, diverged_at
            if not math.isfinite(loss.item()):
                diverged_at = steps
                return False
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if on_step is not None:
                on_step(StepGradients(steps, forget_loss, retain_loss, None, None, None))
            if not optimizer_step(optimizer):
                diverged_at = steps
                return False
            steps += 1
            return True

        def batch(data: LabelledSet, index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            index = index.to(device)
            x = data.x[index]
            with torch.no_grad():
                teacher_logits = teacher(x)
            return model(x), teacher_logits, data.y[index]

        for epoch in range(1, recipe.epochs + 1):
            # Both shuffles are drawn every epoch, so the batches do not depend on the knob or on max_epochs.
            forget_batches = shuffled_batches(len(forget), recipe.batch_size, generator)
            retain_batches = shuffled_batches(len(retain), recipe.batch_size, generator)
            if epoch <= max_epochs and self.forget_weight > 0:
                for index in forget_batches:
                    logits, teacher_logits, _ = batch(forget, index)
                    divergence = distill_kl(logits, teacher_logits, self.temperature)
                    if not step(-self.forget_weight * divergence, -divergence.item(), math.nan):
                        break
                if diverged_at is not None:
                    break
            for index in retain_batches:
                logits, teacher_logits, labels = batch(retain, index)
                loss = (self.retain_ce_weight * F.cross_entropy(logits, labels)
                        + self.retain_kl_weight * distill_kl(logits, teacher_logits, self.temperature))
                if not step(loss, math.nan, loss.item()):
                    break
            if diverged_at is not None:
                break
        model.eval()
        return UnlearnRun(steps=steps, seconds=time.perf_counter() - start, diverged_at_step=diverged_at)
