"""The batched sweep engine: the K grid points of one method and seed train together.

All points of a (method, seed) see the same batches (and, for random labels, the same labels), so their
K models are stacked and each loss's gradients come from one pass over the K models (`stacked_logits`):
for a chain of layers (the built-in MLP and small CNN) as grouped convolutions and batched matrix
products (`stacked_forward`), for any other model as torch.func's vmap over functional_call. Autograd
then differentiates the sum of the K losses, each of which depends on its own parameters only. Each
point keeps its own direction (its rule is applied to its own gradients: `GradientRule.directions`) and
its own optimiser state (SGD with momentum or Adam, written here for stacked parameters and per-point
learning rates, with the same update formulas as torch.optim). The K models are evaluated stacked too
(`predict_proba_batched`). The results match the sequential engine to float32 rounding, not bitwise:
batched matrix products sum in another order. On one CPU thread a point's numbers do not depend on
which points share its chunk; on several, a grouped convolution may split its sums by the chunk's size.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from .config import UnlearnRecipe
from .labelled import LabelledSet
from .models import LayerChain
from .boundary import boundary_labels
from .training import Procedure, Unlearner, UnlearnRun, saliency_mask, wrong_labels, zipped_batches

# How close a batched point's weights are to the sequential engine's: float32 sums in another order, ~1e-7
# relative per operation, stay far below this over a few dozen steps (the default digits sweep: within it).
ENGINES_AGREE = {"rtol": 1e-4, "atol": 1e-5}


def batchable(model: nn.Module) -> str | None:
    """Why `model` cannot be trained batched, or None when it can."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return f"{type(module).__name__} updates running statistics in training mode, which vmap cannot batch"
        if isinstance(module, nn.Dropout) and module.p > 0:
            return "dropout draws different masks per call, so batched and sequential runs would differ"
    return None


def batchable_procedure(procedure: Procedure | Unlearner) -> str | None:
    """Why points of this procedure's method cannot be trained batched, or None when they can: an Unlearner
    (SCRUB, SSD) is not one rule step over zipped batches, and says why."""
    return procedure.sequential_reason if isinstance(procedure, Unlearner) else None


def bytes_per_point(model: nn.Module, recipe: UnlearnRecipe, input_shape: tuple[int, ...]) -> int:
    """Memory one batched point is allowed for: its parameters, two gradients, the direction and two optimiser
    states (×6 in float32, plus float64 scratch of the rules ×4), and its activations estimated as 64 floats
    per input value of both batches (the evaluation's chunks are the size of both batches too)."""
    parameters = sum(p.numel() for p in model.parameters())
    activations = 2 * recipe.batch_size * math.prod(input_shape) * 64
    return 4 * (6 * parameters + activations) + 8 * 4 * parameters


def chunk_size(model: nn.Module, recipe: UnlearnRecipe, input_shape: tuple[int, ...], max_memory: int) -> int:
    """How many points fit in `max_memory` bytes (at least one)."""
    return max(1, int(max_memory // bytes_per_point(model, recipe, input_shape)))


def stacked_forward(model: nn.Module, params: dict[str, Tensor], x: Tensor) -> Tensor | None:
    """(K, N, classes): the K models whose parameters are stacked in `params` (name -> (K, *shape)) on the one
    batch `x`, or None when `model` is not a chain of layers this knows how to stack (then vmap does it).

    K models' convolutions run as one grouped convolution over (N, K·C, H, W) and their linear layers as
    one batched matrix product over (K, N, F). On these CPU cores 21 digits models' two gradients of a step
    took 20 ms this way and 25 ms through vmap, whose batching rules move the model dimension around
    between layers (a copy of every activation)."""
    if not isinstance(model, LayerChain):
        return None
    prefixes = {id(module): name for name, module in model.named_modules()}
    count = next(iter(params.values())).shape[0]
    h, layout = x, "shared"  # shared: (N, ...) for every model; channels: (N, K·C, H, W); rows: (K, N, F)
    for layer in model.chain():
        prefix = prefixes[id(layer)]
        weight, bias = params.get(f"{prefix}.weight"), params.get(f"{prefix}.bias")
        if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros" and layout != "rows":
            groups = layer.groups
            if layout == "shared" and groups > 1:
                h, layout = h.repeat(1, count, 1, 1), "channels"
            h = F.conv2d(h, weight.flatten(0, 1), None if bias is None else bias.flatten(),
                         layer.stride, layer.padding, layer.dilation, groups if layout == "shared" else groups * count)
            layout = "channels"
        elif isinstance(layer, nn.Linear) and (layout == "rows" or (layout == "shared" and h.dim() == 2)):
            if layout == "shared":
                h = h.expand(count, *h.shape)
            h = torch.bmm(h, weight.transpose(1, 2)) if bias is None else torch.baddbmm(
                bias.unsqueeze(1), h, weight.transpose(1, 2))
            layout = "rows"
        elif isinstance(layer, nn.Flatten) and layout == "channels" and (layer.start_dim, layer.end_dim) == (1, -1):
            h = h.reshape(h.shape[0], count, -1).transpose(0, 1)
            layout = "rows"
        elif isinstance(layer, (nn.ReLU, nn.Identity)) or (isinstance(layer, nn.Dropout) and layer.p == 0):
            h = layer(h)  # element-wise: any layout
        elif isinstance(layer, nn.MaxPool2d) and layout != "rows":
            h = layer(h)  # per channel, and (N, K·C, H, W) keeps each model's channels apart
        elif layout == "shared" and next(layer.parameters(), None) is None:
            h = layer(h)  # no parameters and nothing stacked yet: the same for every model
        else:
            return None
    return h if layout == "rows" else None


LogitsFunction = Callable[[dict[str, Tensor], Tensor], Tensor]
GradientFunction = Callable[[dict[str, Tensor], Tensor, Tensor, Tensor], tuple[dict[str, Tensor], Tensor]]


def stacked_logits(model: nn.Module, params: dict[str, Tensor], probe: Tensor) -> LogitsFunction:
    """f(params, x) -> (K, N, classes) for K models of `model`'s architecture stacked as `params` have them:
    `stacked_forward` where the model allows it (checked on `probe`, one input), else vmap over functional_call."""
    if stacked_forward(model, params, probe) is not None:
        return functools.partial(stacked_forward, model)
    buffers = dict(model.named_buffers())
    return vmap(lambda point_params, x: functional_call(model, (point_params, buffers), (x,)), in_dims=(0, None))


def loss_gradients(model: nn.Module, params: dict[str, Tensor], sign: float, penalised: bool,
                   probe: Tensor) -> GradientFunction:
    """f(params, x, targets, l1) -> (name -> (K, *shape) gradients, (K,) losses) of every stacked point's loss
    sign · CE(its logits on x, targets) [+ l1[k] · Σ|θ_k| when `penalised`], through `stacked_logits`."""
    logits_of = stacked_logits(model, params, probe)

    def gradients(point_params: dict[str, Tensor], x: Tensor, targets: Tensor, l1: Tensor):
        leaves = {name: p.detach().requires_grad_() for name, p in point_params.items()}
        with torch.enable_grad():
            logits = logits_of(leaves, x)  # (K, N, classes)
            count, n, classes = logits.shape
            losses = sign * F.cross_entropy(logits.reshape(count * n, classes), targets.repeat(count),
                                            reduction="none").view(count, n).mean(dim=1)  # (K,)
            if penalised:
                losses = losses + l1 * sum(p.abs().flatten(1).sum(dim=1) for p in leaves.values())
            # Each point's loss depends on its own parameters only, so the sum's gradient holds them all.
            grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
        return dict(zip(leaves, grads)), losses.detach()

    return gradients


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

    The procedures must share their forget objective (and FGSM bound) and their rule's class, the recipes
    everything but the learning rate.
    `on_step(step)` is called after each step (1-based), as `unlearn`'s observer is: progress, or a stop.
    """
    if any(isinstance(p, Unlearner) for p in procedures):
        raise ValueError("an Unlearner (SCRUB, SSD) runs its own steps: train its points with training.unlearn")
    if len({(p.forget_objective, p.fgsm_bound) for p in procedures}) != 1:
        raise ValueError("batched points must share their forget objective (and FGSM bound)")
    rule_type = type(procedures[0].rule)
    if any(type(p.rule) is not rule_type for p in procedures):
        raise ValueError("batched points must share their rule's kind (one GradientRule class)")
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
    sizes = [params[name][0].numel() for name in names]
    objective = procedures[0].forget_objective
    l1 = torch.tensor([p.l1_strength for p in procedures], device=device)  # (K,)
    masks = [None if p.saliency_fraction is None else saliency_mask(model, forget, p.saliency_fraction)
             for p in procedures]
    # Every point starts from `model`, so boundary shrink's labels (the original's) are one set for all of them.
    nearest = (boundary_labels(model, forget.x, forget.y, procedures[0].fgsm_bound)
               if objective == "boundary" else None)
    model.train()
    optimizer = _StackedOptimizer(base, torch.tensor([r.lr for r in recipes], device=device))

    # One gradient per loss, each over its own batch: a two-output jacrev over both batches at once ran 3×
    # slower on digits (it pushes both losses' cotangents through every row of both batches).
    forget_gradients = loss_gradients(model, params, -1.0 if objective == "ascent" else 1.0, False, forget.x[:1])
    retain_gradients = loss_gradients(model, params, 1.0, bool((l1 != 0).any()), forget.x[:1])
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
        elif objective == "boundary":
            y_forget = nearest[forget_index.to(device)]
        retain_index = retain_index.to(device)
        g_forget, forget_values = forget_gradients(params, x_forget, y_forget, l1)  # name -> (K, ...), (K,)
        g_retain, retain_values = retain_gradients(params, retain.x[retain_index], retain.y[retain_index], l1)
        finite = torch.isfinite(forget_values) & torch.isfinite(retain_values)
        for k in torch.nonzero(active & ~finite).flatten().tolist():
            diverged[k] = steps[k]
        active = active & finite
        rows = torch.nonzero(active).flatten().tolist()
        if not rows:
            break
        flat_forget = torch.cat([g_forget[name].reshape(count, -1) for name in names], dim=1)  # (K, P)
        flat_retain = torch.cat([g_retain[name].reshape(count, -1) for name in names], dim=1)  # (K, P)
        directions = torch.zeros_like(flat_forget)  # (K, P); stopped points stay put
        directions[rows] = rule_type.directions([procedures[k].rule for k in rows], flat_forget[rows],
                                                flat_retain[rows])
        for k in rows:
            if masks[k] is not None:
                directions[k] *= masks[k]
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


@torch.no_grad()
def predict_proba_batched(model: nn.Module, states: list[dict[str, Tensor]], parts: dict[str, LabelledSet],
                          rows: int) -> list[dict[str, Tensor]]:
    """For each of K models of `model`'s architecture, given by their state dicts, its softmax outputs on each
    named set of `parts` (name -> (N, C) on CPU; `metrics.evaluated_sets(data)` for `metrics.metrics_from`).
    All K run in one forward per set and chunk of `rows` samples. The chunks do not depend on K, so neither
    do a model's outputs (on one thread); small chunks were the fastest on CPU (digits, K = 21: 64 rows
    215 ms, 2,048 rows 533 ms)."""
    model.eval()
    stacked = {name: torch.stack([state[name] for state in states]) for name, _ in model.named_parameters()}
    # A sample to choose the stacking with: from a set that has one (the forgotten class may have no test image).
    sample = next((part.x[:1] for part in parts.values() if len(part)), None)
    if sample is None:
        raise ValueError("every evaluated set is empty; there is nothing to evaluate the models on")
    logits_of = stacked_logits(model, stacked, sample)
    classes = logits_of(stacked, sample).shape[-1]
    probs = {}  # name -> (K, N, C)
    for name, part in parts.items():
        chunks = [torch.softmax(logits_of(stacked, x), dim=-1).cpu() for x in part.x.split(rows) if len(x)]
        probs[name] = torch.cat(chunks, dim=1) if chunks else torch.empty(len(states), 0, classes)
    return [{name: p[k] for name, p in probs.items()} for k in range(len(states))]
