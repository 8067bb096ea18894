"""Metrics of spec §5 on hand-made inputs whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from cup_core.data import DATASETS, LabelledSet, UnlearningData
from cup_core.metrics import (
    GAP_METRICS,
    accuracy,
    attack_features,
    avg_gap,
    evaluate,
    mia_efficacy,
    per_class_accuracy,
    predict_proba,
)

# Four samples, three classes; the most likely classes are 0, 1, 2, 2.
PROBS = torch.tensor([
    [0.7, 0.2, 0.1],
    [0.1, 0.8, 0.1],
    [0.3, 0.3, 0.4],
    [0.2, 0.2, 0.6],
])


@pytest.mark.parametrize(("labels", "expected"), [
    ([0, 1, 2, 2], 100.0),
    ([0, 1, 2, 0], 75.0),
    ([1, 0, 0, 0], 0.0),
    ([0, 0, 0, 0], 25.0),
])
def test_accuracy_is_the_percentage_of_argmax_hits(labels, expected):
    assert accuracy(PROBS, torch.tensor(labels)) == pytest.approx(expected)


def test_accuracy_of_an_empty_set_is_nan():
    assert math.isnan(accuracy(torch.empty(0, 3), torch.empty(0, dtype=torch.int64)))


def test_per_class_accuracy_counts_each_class_alone():
    labels = torch.tensor([0, 1, 2, 0])  # the last sample (class 0) is predicted as 2
    assert per_class_accuracy(PROBS, labels, num_classes=3) == pytest.approx([50.0, 100.0, 100.0])


def test_per_class_accuracy_of_an_absent_class_is_nan():
    labels = torch.tensor([0, 1, 1, 0])
    accuracies = per_class_accuracy(PROBS, labels, num_classes=4)
    assert len(accuracies) == 4
    assert accuracies[0] == pytest.approx(50.0) and accuracies[1] == pytest.approx(50.0)
    assert math.isnan(accuracies[2]) and math.isnan(accuracies[3])


def test_predict_proba_is_a_softmax_in_eval_mode():
    model = nn.Sequential(nn.Linear(2, 3), nn.Dropout(p=0.9))
    model.train()
    x = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0))
    data = LabelledSet(x, torch.zeros(5000, dtype=torch.int64))
    probs = predict_proba(model, data)
    assert probs.shape == (5000, 3)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(5000))
    # Dropout off: the same as softmax of the linear layer, batch by batch (5000 > one evaluation batch).
    torch.testing.assert_close(probs, torch.softmax(model[0](data.x), dim=1).detach())
    assert not model.training


def test_attack_features_are_true_class_probability_and_entropy():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]])
    features = attack_features(probs, torch.tensor([0, 1, 0]))
    assert features.shape == (3, 2) and features.dtype == np.float64
    np.testing.assert_allclose(features[:, 0], [1.0, 0.5, 0.25])
    entropy_last = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    np.testing.assert_allclose(features[:, 1], [0.0, math.log(2), entropy_last], atol=1e-9)


def _features(p_true: np.ndarray) -> np.ndarray:
    """The attacker's view of two-class outputs with the given probability of the true class."""
    p_true = np.clip(p_true, 1e-6, 1 - 1e-6)
    entropy = -(p_true * np.log(p_true) + (1 - p_true) * np.log(1 - p_true))
    return np.stack([p_true, entropy], axis=1)


RNG = np.random.default_rng(0)
MEMBERS = _features(RNG.uniform(0.95, 1.0, 300))  # the model is sure of what it trained on
NON_MEMBERS = _features(RNG.uniform(0.3, 0.6, 100))  # and unsure of the rest


def test_mia_efficacy_calls_unseen_looking_targets_non_members():
    targets = _features(RNG.uniform(0.3, 0.6, 50))
    assert mia_efficacy(MEMBERS, NON_MEMBERS, targets) == pytest.approx(100.0)


def test_mia_efficacy_calls_member_looking_targets_members():
    targets = _features(RNG.uniform(0.95, 1.0, 50))
    assert mia_efficacy(MEMBERS, NON_MEMBERS, targets) == pytest.approx(0.0)


def test_mia_efficacy_is_the_share_called_non_members():
    targets = np.concatenate([_features(RNG.uniform(0.3, 0.6, 30)), _features(RNG.uniform(0.95, 1.0, 10))])
    assert mia_efficacy(MEMBERS, NON_MEMBERS, targets) == pytest.approx(75.0)


def test_mia_efficacy_is_seeded():
    targets = _features(np.linspace(0.5, 1.0, 101))  # spans the boundary
    runs = {mia_efficacy(MEMBERS, NON_MEMBERS, targets, seed=3) for _ in range(3)}
    assert len(runs) == 1


@pytest.mark.parametrize("empty", ["members", "non_members", "targets"])
def test_mia_efficacy_of_an_empty_set_is_nan(empty):
    sets = {"members": MEMBERS, "non_members": NON_MEMBERS, "targets": NON_MEMBERS[:10]}
    sets[empty] = np.zeros((0, 2))
    assert math.isnan(mia_efficacy(sets["members"], sets["non_members"], sets["targets"]))


@pytest.mark.parametrize("where", ["members", "non_members", "targets"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_mia_efficacy_of_non_finite_features_is_nan(where, bad):
    sets = {"members": MEMBERS.copy(), "non_members": NON_MEMBERS.copy(), "targets": NON_MEMBERS[:10].copy()}
    sets[where][0, 1] = bad
    assert math.isnan(mia_efficacy(sets["members"], sets["non_members"], sets["targets"]))


def test_avg_gap_is_the_mean_absolute_difference_over_the_four_gap_metrics():
    assert GAP_METRICS == ("ua", "retain_acc", "test_acc", "mia_efficacy")
    metrics = {"ua": 90.0, "retain_acc": 95.0, "test_acc": 92.0, "mia_efficacy": 40.0, "forget_acc": 10.0}
    oracle = {"ua": 100.0, "retain_acc": 99.0, "test_acc": 92.0, "mia_efficacy": 60.0, "forget_acc": 0.0}
    # |90 − 100| + |95 − 99| + |92 − 92| + |40 − 60| = 10 + 4 + 0 + 20 = 34; forget_acc is not a gap metric.
    assert avg_gap(metrics, oracle) == pytest.approx(34 / 4)
    assert avg_gap(oracle, metrics) == pytest.approx(34 / 4)
    assert avg_gap(oracle, oracle) == 0.0


def test_avg_gap_is_nan_when_a_metric_is_nan():
    metrics = {"ua": 90.0, "retain_acc": 95.0, "test_acc": 92.0, "mia_efficacy": math.nan}
    oracle = {"ua": 100.0, "retain_acc": 99.0, "test_acc": 92.0, "mia_efficacy": 60.0}
    assert math.isnan(avg_gap(metrics, oracle))


class _Lookup(nn.Module):
    """Inputs are one-hot labels; the logits repeat them, minus a large penalty on `blind_class`."""

    def __init__(self, blind_class: int | None = None):
        super().__init__()
        self.blind_class = blind_class

    def forward(self, x):
        logits = 10.0 * x
        if self.blind_class is not None:
            logits = logits.clone()
            logits[:, self.blind_class] -= 100.0
        return logits


def _one_hot_set(labels: list[int]) -> LabelledSet:
    y = torch.tensor(labels)
    return LabelledSet(nn.functional.one_hot(y, 5).float(), y)


def _toy_data():
    test = _one_hot_set([0, 1, 2, 2, 3, 4])
    return UnlearningData(
        info=DATASETS["blobs"],
        forget=_one_hot_set([2, 2, 2]),
        retain=_one_hot_set([0, 1, 3, 4, 0, 1, 3, 4]),
        test=_one_hot_set([0, 1, 3, 4]),
        forget_test=_one_hot_set([2, 2]),
        full_test=test,
    )


def test_evaluate_on_a_model_that_knows_every_class():
    metrics = evaluate(_Lookup(), _toy_data())
    assert metrics["forget_acc"] == 100.0 and metrics["ua"] == 0.0
    assert metrics["retain_acc"] == metrics["test_acc"] == metrics["forget_test_acc"] == 100.0
    assert metrics["per_class_acc"] == [100.0] * 5


def test_evaluate_on_a_model_blind_to_the_forget_class():
    metrics = evaluate(_Lookup(blind_class=2), _toy_data())
    assert metrics["forget_acc"] == 0.0 and metrics["ua"] == 100.0
    assert metrics["forget_test_acc"] == 0.0
    assert metrics["retain_acc"] == metrics["test_acc"] == 100.0
    assert metrics["per_class_acc"] == [100.0, 100.0, 0.0, 100.0, 100.0]


def test_a_diverged_models_non_finite_outputs_count_as_wrong():
    """argmax reads NaN as class 0; a broken model must not be credited with class 0's samples."""
    probs = torch.tensor([[float("nan")] * 3, [float("nan")] * 3, [0.1, 0.8, 0.1]])
    labels = torch.tensor([0, 0, 1])
    assert accuracy(probs, labels) == pytest.approx(100 / 3)
