"""The batched sweep engine: the K grid points of one method and seed train together.

All points of a (method, seed) see the same batches (and, for random labels, the same labels), so their
K models are stacked and evaluated in one vmapped pass (torch.func: functional_call + vmap + jacrev,
one forward over the concatenated forget and retain batches, both losses' gradients from it). Each
point keeps its own direction (its rule is applied to its own gradients) and its own optimiser state
(SGD with momentum or Adam, written here for stacked parameters and per-point learning rates, with
the same update formulas as torch.optim). The results match the sequential engine to float32
rounding, not bitwise: batched matrix products sum in another order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, jacrev, vmap
from torch.nn import functional as F

from .config import UnlearnRecipe
from .labelled import LabelledSet
from .training import Procedure, UnlearnRun, saliency_mask, wrong_labels, zipped_batches

DEFAULT_MAX_MEMORY = 2 * 1024**3  # bytes the stacked models, gradients and optimiser states may take


def batchable(model: nn.Module) -> str | None:
    """Why `model` cannot be trained batched, or None when it can."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return f"{type(module).__name__} updates running statistics in training mode, which vmap cannot batch"
        if isinstance(module, nn.Dropout) and module.p > 0:
            return "dropout draws different masks per call, so batched and sequential runs would differ"
    return None


def chunk_size(model: nn.Module, recipe: UnlearnRecipe, input_shape: tuple[int, ...], max_memory: int) -> int:
    """How many points fit in `max_memory` bytes: per point its parameters, two gradients, the direction and
    two optimiser states (×6 in float32, plus float64 scratch of the rules ×4), and its activations
    estimated as 64 floats per input value of both batches."""
    parameters = sum(p.numel() for p in model.parameters())
    activations = 2 * recipe.batch_size * math.prod(input_shape) * 64
    per_point = 4 * (6 * parameters + activations) + 8 * 4 * parameters
    return max(1, int(max_memory // per_point))


@dataclass
class _StackedOptimizer:
    """SGD with momentum or Adam over stacked (K, ...) parameters with one learning rate per point."""

    recipe: UnlearnRecipe
    lr: Tensor  # (K,)
    step_count: int = 0

    def __post_init__(self) -> None:
        self.state: dict[str, dict[str, Tensor]] = {}

    def step(self, params: dict[str, Tensor], grads: dict[str, Tensor], active: Tensor) -> None:
        """Updates the points where `active` (K,) is True, in place, as torch.optim would."""
        self.step_count += 1
        recipe = self.recipe
        for name, param in params.items():
            shape = (-1,) + (1,) * (param.dim() - 1)
            lr = self.lr.to(param.dtype)
            grad = grads[name]
            if recipe.weight_decay:
                grad = grad + recipe.weight_decay * param
            state = self.state.setdefault(name, {})
            if recipe.optimizer == "sgd":
                if recipe.momentum:
                    buffer = state.get("momentum")
                    buffer = grad.clone() if buffer is None else buffer * recipe.momentum + grad
                    state["momentum"] = torch.where(active.view(shape), buffer, state.get("momentum", buffer))
                    grad = buffer
                update = lr.view(shape) * grad
            else:
                beta1, beta2, eps = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults
                first = state.get("exp_avg", torch.zeros_like(param)).mul(beta1).add(grad, alpha=1 - beta1)
                second = state.get("exp_avg_sq", torch.zeros_like(param)).mul(beta2).addcmul(grad, grad, value=1 - beta2)
                state["exp_avg"], state["exp_avg_sq"] = first, second
                correction1 = 1 - beta1**self.step_count
                correction2_sqrt = math.sqrt(1 - beta2**self.step_count)
                update = (lr / correction1).view(shape) * first / (second.sqrt() / correction2_sqrt + eps)
            param.sub_(torch.where(active.view(shape), update, torch.zeros_like(update)))


def unlearn_batched(model: nn.Module, forget: LabelledSet, retain: LabelledSet, procedures: list[Procedure],
                    recipes: list[UnlearnRecipe], seed: int, on_step: Callable[[int], None] | None = None,
                    ) -> tuple[list[dict[str, Tensor]], list[UnlearnRun]]:
    """Runs len(procedures) unlearning runs from `model`'s weights at once; returns their state dicts and runs.

    The procedures must share their forget objective, the recipes everything but the learning rate.
    `on_step(step)` is called after each step (1-based), as `unlearn`'s observer is: progress, or a stop.
    """
    if len({p.forget_objective for p in procedures}) != 1:
        raise ValueError("batched points must share their forget objective")
    base = recipes[0]
    if any(replace(r, lr=base.lr) != base for r in recipes):
        raise ValueError("batched points must share their recipe except the learning rate")
    reason = batchable(model)
    if reason is not None:
        raise ValueError(f"cannot batch {type(model).__name__}: {reason}")
    count = len(procedures)
    device = forget.x.device
    model.train()
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    params = {name: p.detach().unsqueeze(0).repeat(count, *([1] * p.dim())).clone()
              for name, p in model.named_parameters() if p.requires_grad}  # name -> (K, *shape)
    buffers = dict(model.named_buffers())
    sizes = [params[name][0].numel() for name in names]
    objective = procedures[0].forget_objective
    l1 = torch.tensor([p.l1_strength for p in procedures], device=device)  # (K,)
    masks = [None if p.saliency_fraction is None else saliency_mask(model, forget, p.saliency_fraction)
             for p in procedures]
    model.train()
    optimizer = _StackedOptimizer(base, torch.tensor([r.lr for r in recipes], device=device))

    def losses(point_params: dict[str, Tensor], x: Tensor, forget_targets: Tensor, retain_targets: Tensor,
               l1_strength: Tensor) -> tuple[Tensor, Tensor]:
        logits = functional_call(model, (point_params, buffers), (x,))  # one forward over both batches
        n = forget_targets.shape[0]
        forget_ce = F.cross_entropy(logits[:n], forget_targets)
        forget_loss = -forget_ce if objective == "ascent" else forget_ce
        retain_loss = F.cross_entropy(logits[n:], retain_targets)
        retain_loss = retain_loss + l1_strength * sum(p.abs().sum() for p in point_params.values())
        both = torch.stack([forget_loss, retain_loss])
        return both, both.detach()

    gradients = vmap(jacrev(losses, has_aux=True), in_dims=(0, None, None, None, 0))
    with torch.no_grad():
        classes = model(forget.x[:1]).shape[1]
    generator = torch.Generator().manual_seed(seed)
    active = torch.ones(count, dtype=torch.bool, device=device)
    steps = [0] * count
    diverged: list[int | None] = [None] * count
    start = time.perf_counter()
    for forget_index, retain_index in zipped_batches(len(forget), len(retain), base.batch_size, base.epochs,
                                                     generator):
        x_forget, y_forget = forget.x[forget_index.to(device)], forget.y[forget_index.to(device)]
        if objective == "random_labels":
            y_forget = wrong_labels(y_forget, classes, generator)
        retain_index = retain_index.to(device)
        x = torch.cat([x_forget, retain.x[retain_index]])
        jacobians, values = gradients(params, x, y_forget, retain.y[retain_index], l1)  # (K, 2, ...), (K, 2)
        finite = torch.isfinite(values).all(dim=1)
        for k in torch.nonzero(active & ~finite).flatten().tolist():
            diverged[k] = steps[k]
        active = active & finite
        if not bool(active.any()):
            break
        flat = torch.cat([jacobians[name].reshape(count, 2, -1) for name in names], dim=2)  # (K, 2, P)
        directions = torch.zeros(count, flat.shape[2], dtype=flat.dtype, device=device)  # (K, P)
        for k in torch.nonzero(active).flatten().tolist():
            direction = procedures[k].rule(g_forget=flat[k, 0], g_retain=flat[k, 1])
            directions[k] = direction if masks[k] is None else direction * masks[k]
            steps[k] += 1
        split = directions.split(sizes, dim=1)
        optimizer.step(params, {name: chunk.view_as(params[name]) for name, chunk in zip(names, split)}, active)
        if on_step is not None:
            on_step(max(steps))
    seconds = (time.perf_counter() - start) / count  # the batch's time, shared by its points
    states = []
    for k in range(count):
        state = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        state.update({name: params[name][k].detach().clone() for name in names})
        states.append(state)
    model.eval()
    return states, [UnlearnRun(steps=steps[k], seconds=seconds, diverged_at_step=diverged[k]) for k in range(count)]
