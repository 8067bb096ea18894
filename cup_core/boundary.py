"""Boundary shrink's labels (Chen et al., "Boundary Unlearning", CVPR 2023): each forget sample's nearest wrong class.

Boundary shrink moves the forget class's decision boundary by fine-tuning the model on the forget samples
relabelled to the class the ORIGINAL model predicts just across the nearest boundary. That class is found
with one FGSM step, x' = x + bound · sign(∇_x CE(f(x), y)), as in the authors' code (their `FGSM`, bound
0.1 on images scaled to [0, 1], no random start; the CUP authors' baseline uses the same), and taken as the
original's arg-max at x' over the classes other than y. The authors' code keeps the arg-max even where the
attack failed and it is still y (then that sample is fine-tuned towards its own class); the definition,
"the nearest wrong class", excludes y, as this does. Their clamping of x' to [0, 1] and rounding to 1/255
belong to 8-bit images; the data here is preprocessed per data set (digits: grey levels / 16 in [0, 1]), so
x' is left as is. The step itself is the unlearning loop's, with the forget objective "boundary"
(training.Procedure) and the GA rule: descend CE(f(x), new label) on each forget batch, nothing on the retain
batch; its knob is the learning rate.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

FGSM_BOUND = 0.1  # the L∞ size of the FGSM step (Chen et al.'s code: bound=0.1)
CHUNK = 512  # samples per forward and backward pass (a CIFAR forget class is 5,000 images)


def fgsm_neighbours(model: nn.Module, x: Tensor, y: Tensor, bound: float = FGSM_BOUND) -> Tensor:
    """(N, ...): one FGSM step of size `bound` from each x, up the cross-entropy of its label y. The model's
    parameters get no gradient and its mode is left as it was (evaluated in eval mode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            moved = x.detach().clone().requires_grad_(True)
            # Summed, not averaged: the sign of each sample's input gradient does not depend on the batch.
            (grad,) = torch.autograd.grad(F.cross_entropy(model(moved), y, reduction="sum"), moved)
        return (x + bound * grad.sign()).detach()
    finally:
        model.train(was_training)


def boundary_labels(model: nn.Module, x: Tensor, y: Tensor, bound: float = FGSM_BOUND) -> Tensor:
    """(N,) the class `model` predicts at each sample's FGSM neighbour, its true class y excluded."""
    return torch.cat([_nearest_wrong(model, xs, ys, bound) for xs, ys in zip(x.split(CHUNK), y.split(CHUNK))])


def _nearest_wrong(model: nn.Module, x: Tensor, y: Tensor, bound: float) -> Tensor:
    neighbours = fgsm_neighbours(model, x, y, bound)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(neighbours).clone()  # (N, C)
    finally:
        model.train(was_training)
    logits[torch.arange(len(y), device=y.device), y] = -torch.inf
    return logits.argmax(dim=1)
