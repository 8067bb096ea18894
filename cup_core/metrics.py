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


def attack_features(probs: Tensor, labels: Tensor) -> np.ndarray:
    """(N, 2): probability of the true class and prediction entropy, the membership attacker's view."""
    p_true = probs.gather(1, labels.cpu().view(-1, 1)).squeeze(1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=1)
    return torch.stack([p_true, entropy], dim=1).double().numpy()


def mia_efficacy(members: np.ndarray, non_members: np.ndarray, targets: np.ndarray, seed: int = 0) -> float:
    """Share (%) of `targets` that an attacker fit on members vs non-members calls non-members.

    The attacker is a logistic regression on standardised features, trained on balanced classes
    (members are subsampled, seeded, to the number of non-members).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(targets) == 0 or len(members) == 0 or len(non_members) == 0:
        return math.nan
    if not all(np.isfinite(a).all() for a in (members, non_members, targets)):
        return math.nan  # a diverged model's outputs say nothing about membership
    rng = np.random.default_rng(seed)
    n = min(len(members), len(non_members))
    members = members[rng.choice(len(members), n, replace=False)]
    non_members = non_members[rng.choice(len(non_members), n, replace=False)]
    x = np.concatenate([members, non_members])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    attacker = make_pipeline(StandardScaler(), LogisticRegression())
    attacker.fit(x, y)
    return 100.0 * float((attacker.predict(targets) == 0).mean())


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
            attack_features(probs["retain"], data.retain.y),
            attack_features(probs["test"], data.test.y),
            attack_features(probs["forget"], data.forget.y),
        ),
        "per_class_acc": per_class_accuracy(probs["full_test"], data.full_test.y, data.info.num_classes),
    }


def avg_gap(metrics: dict, oracle_metrics: dict) -> float:
    """Mean absolute difference to the oracle over ua, retain_acc, test_acc and mia_efficacy (lower is better)."""
    return float(np.mean([abs(metrics[name] - oracle_metrics[name]) for name in GAP_METRICS]))
