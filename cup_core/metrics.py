"""The metrics of spec §5: accuracies, unlearning accuracy, MIA efficacy and the gap to the oracle."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from .data import UnlearningData
from .labelled import LabelledSet

# The four metrics whose mean distance to the oracle is avg_gap (spec §5).
GAP_METRICS = ("ua", "retain_acc", "test_acc", "mia_efficacy")

EVAL_BATCH = 2048


@torch.no_grad()
def predict_proba(model: nn.Module, data: LabelledSet) -> Tensor:
    """Softmax outputs on CPU, (N, C), in evaluation mode."""
    model.eval()
    chunks = [torch.softmax(model(x), dim=1).cpu() for x in data.x.split(EVAL_BATCH)]
    return torch.cat(chunks) if chunks else torch.empty(0, 0)


def accuracy(probs: Tensor, labels: Tensor) -> float:
    """Percentage of samples whose most likely class is the label; NaN for an empty set.

    A sample whose outputs are not finite (a diverged model) counts as wrong: argmax would otherwise
    read NaN as class 0 and credit a broken model with that class."""
    if len(labels) == 0:
        return math.nan
    correct = (probs.argmax(dim=1) == labels.cpu()) & torch.isfinite(probs).all(dim=1)
    return 100.0 * correct.double().mean().item()


def per_class_accuracy(probs: Tensor, labels: Tensor, num_classes: int) -> list[float]:
    labels = labels.cpu()
    return [accuracy(probs[labels == k], labels[labels == k]) for k in range(num_classes)]


def true_class_confidence(probs: Tensor, labels: Tensor) -> np.ndarray:
    """(N,) float64: the model's probability of each sample's true class, the membership attacker's one feature."""
    return probs.gather(1, labels.cpu().view(-1, 1)).squeeze(1).double().numpy()


# SVC MIA of the unlearning literature: Jia et al., "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS
# 2023, github.com/OPTML-Group/Unlearn-Sparse, evaluation/SVC_MIA.py), reused by SalUn (Fan et al., ICLR 2024),
# whose tables' "MIA" is its "confidence" attacker: scikit-learn's SVC(C=3, gamma="auto", kernel="rbf") on
# the true-class confidence, members = retain samples, non-members = test samples (`UnlearningData.test`: of
# the retained classes for class-wise forgetting), as many of each.
MIA_SVC = dict(C=3.0, gamma="auto", kernel="rbf")
MIA_MAX_PER_SIDE = 2500  # samples of each kind the attacker fits on; larger sets are stood for by their quantiles


def quantile_sample(values: np.ndarray, n: int) -> np.ndarray:
    """(n,): the (i + 1/2)/n quantiles of `values` (i = 0 … n-1): n samples with the set's own distribution,
    the same whatever the order or a seed. n = len(values) gives the sorted set itself."""
    ordered = np.sort(values)
    return ordered[((np.arange(n) + 0.5) * len(ordered) / n).astype(np.int64)]


def mia_efficacy(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray) -> float:
    """Share (%) of `targets` that the literature's SVC attacker (MIA_SVC), fit on members against non-members,
    predicts as non-members. Each argument: (N,) true-class confidences (`true_class_confidence`).

    The attacker sees as many members as non-members, as in the literature, whose code takes the first
    len(test) retain samples. Here the larger side (and both beyond MIA_MAX_PER_SIDE) is stood for by its
    evenly spaced quantiles instead of a draw, so there is no seed: on one digits model, 20 draws of members
    gave 67 % to 82 % (sd 3.4); the quantiles give the draws' mean to within 0.6 points on 13 models
    (bench/mia_efficacy.py). Every member with balanced class weights was seed-free too, but its RBF
    boundary moves with the sample size (76.1 % against the draws' 72.8 %) and its fit costs 5× more.
    """
    if len(targets) == 0 or not np.isfinite(targets).all():
        return math.nan
    attacker = fit_mia_attacker(members, non_members)
    if attacker is None:
        return math.nan
    return 100.0 * float((attacker.predict(np.asarray(targets, dtype=np.float64).reshape(-1, 1)) == 0).mean())


def fit_mia_attacker(members: np.ndarray, non_members: np.ndarray):
    """The SVC attacker of `mia_efficacy` (predict: 1 member, 0 non-member, on (N, 1) confidences), fit on as many
    members as non-members (their quantiles); None when a side is empty or not finite (a diverged model)."""
    from sklearn.svm import SVC

    if len(members) == 0 or len(non_members) == 0:
        return None
    if not all(np.isfinite(a).all() for a in (members, non_members)):
        return None  # a diverged model's outputs say nothing about membership
    n = min(len(members), len(non_members), MIA_MAX_PER_SIDE)
    x = np.concatenate([quantile_sample(members, n), quantile_sample(non_members, n)]).reshape(-1, 1)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    return SVC(**MIA_SVC).fit(x, y)


def evaluate(model: nn.Module, data: UnlearningData) -> dict:
    """Every metric of one model except avg_gap, which needs the oracle's (see `avg_gap`)."""
    return metrics_from({name: predict_proba(model, part) for name, part in evaluated_sets(data).items()}, data)


def evaluated_sets(data: UnlearningData) -> dict[str, LabelledSet]:
    """The sets whose predictions the metrics read, by name (forget_test only for class-wise forgetting)."""
    names = ("forget", "retain", "test", "full_test", "forget_test")
    return {name: getattr(data, name) for name in names if getattr(data, name) is not None}


def metrics_from(probs: dict[str, Tensor], data: UnlearningData) -> dict:
    """`evaluate`'s metrics from one model's (N, C) softmax outputs on each of `evaluated_sets(data)`, on CPU."""
    forget_acc = accuracy(probs["forget"], data.forget.y)
    return {
        "forget_acc": forget_acc,
        "retain_acc": accuracy(probs["retain"], data.retain.y),
        "test_acc": accuracy(probs["test"], data.test.y),
        "forget_test_acc": math.nan if data.forget_test is None else accuracy(probs["forget_test"], data.forget_test.y),
        "ua": 100.0 - forget_acc,
        "mia_efficacy": mia_efficacy(
            true_class_confidence(probs["retain"], data.retain.y),
            true_class_confidence(probs["test"], data.test.y),
            true_class_confidence(probs["forget"], data.forget.y),
        ),
        "per_class_acc": per_class_accuracy(probs["full_test"], data.full_test.y, data.info.num_classes),
    }


def avg_gap(metrics: dict, oracle_metrics: dict) -> float:
    """Mean absolute difference to the oracle over ua, retain_acc, test_acc and mia_efficacy (lower is better)."""
    return float(np.mean([abs(metrics[name] - oracle_metrics[name]) for name in GAP_METRICS]))
