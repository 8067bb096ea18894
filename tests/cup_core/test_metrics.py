"""Metrics of spec §5 on hand-made inputs whose answers are known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cup_core.data import DATASETS, LabelledSet, UnlearningData
from cup_core.metrics import (
    GAP_METRICS,
    accuracy,
    MIA_MAX_PER_SIDE,
    avg_gap,
    evaluate,
    mia_efficacy,
    per_class_accuracy,
    predict_proba,
    quantile_sample,
    true_class_confidence,
)

from ._oracles import rbf_svc_decision

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


def test_true_class_confidence_is_the_probability_of_the_label():
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.25, 0.75]])
    confidence = true_class_confidence(probs, torch.tensor([0, 1, 0]))
    assert confidence.shape == (3,) and confidence.dtype == np.float64
    np.testing.assert_allclose(confidence, [1.0, 0.5, 0.25])


RNG = np.random.default_rng(0)
MEMBERS = RNG.uniform(0.95, 1.0, 300)  # the model is sure of what it trained on
NON_MEMBERS = RNG.uniform(0.3, 0.6, 100)  # and unsure of the rest


def test_mia_efficacy_calls_unseen_looking_targets_non_members():
    assert mia_efficacy(MEMBERS, NON_MEMBERS, RNG.uniform(0.3, 0.6, 50)) == pytest.approx(100.0)


def test_mia_efficacy_calls_member_looking_targets_members():
    assert mia_efficacy(MEMBERS, NON_MEMBERS, RNG.uniform(0.95, 1.0, 50)) == pytest.approx(0.0)


def test_mia_efficacy_is_the_share_called_non_members():
    targets = np.concatenate([RNG.uniform(0.3, 0.6, 30), RNG.uniform(0.95, 1.0, 10)])
    assert mia_efficacy(MEMBERS, NON_MEMBERS, targets) == pytest.approx(75.0)


@pytest.mark.slow
def test_mia_efficacy_is_the_literatures_svc_checked_against_a_dual_solved_here():
    """Balanced sets (as many members as non-members, nothing subsampled): the efficacy is the share of targets
    on the non-member side of an RBF SVC with C = 3 and gamma 'auto' (= 1 for one feature), solved here by SLSQP."""
    rng = np.random.default_rng(1)
    members, non_members = 1 - rng.beta(1, 12, 30), 1 - rng.beta(1, 3, 30)  # overlapping, like a model's outputs
    targets = np.linspace(0.0, 1.0, 401)
    decision = rbf_svc_decision(np.r_[members, non_members], np.r_[np.ones(30), np.zeros(30)], targets, c=3.0,
                                gamma=1.0)
    clear = np.abs(decision) > 0.05  # solver tolerances decide the few targets on the boundary itself
    assert clear.mean() > 0.9 and (decision[clear] < 0).any() and (decision[clear] > 0).any()
    expected = 100.0 * (decision[clear] < 0).mean()
    assert mia_efficacy(members, non_members, targets[clear]) == pytest.approx(expected)


@pytest.mark.slow
def test_mia_efficacy_stands_for_the_larger_side_by_its_quantiles():
    """90 members, 30 non-members: the attacker sees the members' (i + 1/2)/30 quantiles, i.e. sorted
    members 1, 4, 7, …, 88, and every non-member; any order of the members gives the same number."""
    rng = np.random.default_rng(2)
    members, non_members = 1 - rng.beta(1, 12, 90), 1 - rng.beta(1, 3, 30)
    targets = np.linspace(0.0, 1.0, 401)
    decision = rbf_svc_decision(np.r_[np.sort(members)[1::3], non_members], np.r_[np.ones(30), np.zeros(30)],
                                targets, c=3.0, gamma=1.0)
    clear = np.abs(decision) > 0.05
    assert clear.mean() > 0.9
    expected = 100.0 * (decision[clear] < 0).mean()
    assert mia_efficacy(members, non_members, targets[clear]) == pytest.approx(expected)
    assert mia_efficacy(rng.permutation(members), rng.permutation(non_members), targets[clear]) == \
        pytest.approx(expected)
    np.testing.assert_array_equal(quantile_sample(members, 30), np.sort(members)[1::3])
    np.testing.assert_array_equal(quantile_sample(members, 90), np.sort(members))


# A real model's true-class confidences: digits, class 0 forgotten, CUP at γ = 0.5 (tests/cup_core/mia_*.npz,
# saved from the default experiment): 1,295 retain (members), 324 test (non-members), 142 forget samples.
DIGITS = {name: array.astype(np.float64)
          for name, array in np.load(Path(__file__).with_name("mia_confidences_digits.npz")).items()}


def _literature_draw(seed: int) -> float:
    """The literature's protocol with one seeded draw of as many retain samples as there are test samples."""
    members = np.random.default_rng(seed).choice(DIGITS["members"], len(DIGITS["non_members"]), replace=False)
    return mia_efficacy(members, DIGITS["non_members"], DIGITS["targets"])


def test_mia_efficacy_of_a_real_model_holds_still_where_the_literatures_draw_moves():
    draws = np.array([_literature_draw(seed) for seed in range(20)])
    assert draws.max() - draws.min() > 10  # one draw of members: 67 % to 82 % on this model
    efficacy = mia_efficacy(DIGITS["members"], DIGITS["non_members"], DIGITS["targets"])
    assert efficacy == pytest.approx(72.535, abs=0.01)  # 103 of 142 forget samples
    assert abs(efficacy - draws.mean()) <= 2.0  # the draws' expected value, without their spread
    shuffled = {name: np.random.default_rng(3).permutation(a) for name, a in DIGITS.items()}
    assert mia_efficacy(shuffled["members"], shuffled["non_members"], shuffled["targets"]) == efficacy


@pytest.mark.slow
def test_mia_efficacy_caps_what_the_attacker_fits_on():
    """Beyond MIA_MAX_PER_SIDE samples a side, both sides are represented by that many quantiles."""
    rng = np.random.default_rng(4)
    members, non_members = 1 - rng.beta(1, 12, 3 * MIA_MAX_PER_SIDE), 1 - rng.beta(1, 3, 2 * MIA_MAX_PER_SIDE)
    targets = rng.uniform(0, 1, 200)
    capped = mia_efficacy(quantile_sample(members, MIA_MAX_PER_SIDE), quantile_sample(non_members, MIA_MAX_PER_SIDE),
                          targets)
    assert mia_efficacy(members, non_members, targets) == capped


@pytest.mark.parametrize("empty", ["members", "non_members", "targets"])
def test_mia_efficacy_of_an_empty_set_is_nan(empty):
    sets = {"members": MEMBERS, "non_members": NON_MEMBERS, "targets": NON_MEMBERS[:10]}
    sets[empty] = np.zeros(0)
    assert math.isnan(mia_efficacy(sets["members"], sets["non_members"], sets["targets"]))


@pytest.mark.parametrize("where", ["members", "non_members", "targets"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_mia_efficacy_of_non_finite_confidences_is_nan(where, bad):
    sets = {"members": MEMBERS.copy(), "non_members": NON_MEMBERS.copy(), "targets": NON_MEMBERS[:10].copy()}
    sets[where][0] = bad
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


def _scaled_set(labels: list[int], scales: list[float]) -> LabelledSet:
    """One-hot inputs times a per-sample scale: `_Lookup` is sure of a sample (scale 10: p ≈ 1) or unsure (0.5 to
    1.5: p ≈ 0.3 to 0.5 for its label among 5)."""
    y = torch.tensor(labels)
    return LabelledSet(nn.functional.one_hot(y, 5).float() * torch.tensor(scales).view(-1, 1) / 10.0, y)


def test_evaluate_fits_the_attacker_on_retain_against_test_and_attacks_the_forget_set():
    """A model sure of the retain samples and unsure of the test samples and of 3 in 4 forget samples: the attacker
    (members = retain, non-members = test) calls those 3 in 4 non-members. Each wrong wiring gives another number:
    retain and test swapped 25 %, test as the targets 100 %, retain as the targets 0 %."""
    unsure = [0.5, 0.75, 1.0, 1.25, 1.5]
    data = UnlearningData(
        info=DATASETS["blobs"],
        forget=_scaled_set([2] * 8, [*unsure[:3], 0.6, 0.9, 1.4, 10.0, 10.0]),
        retain=_scaled_set([0, 1, 3, 4] * 5, [10.0] * 20),
        test=_scaled_set([0, 1, 3, 4, 0] * 2, unsure * 2),
        forget_test=_scaled_set([2, 2], [1.0, 1.0]),
        full_test=_scaled_set([0, 1, 2, 3, 4], unsure),
    )
    metrics = evaluate(_Lookup(), data)
    assert metrics["mia_efficacy"] == pytest.approx(75.0)
    assert metrics["forget_acc"] == metrics["retain_acc"] == metrics["test_acc"] == 100.0  # only confidence differs
    probs = {name: predict_proba(_Lookup(), getattr(data, name)) for name in ("retain", "test", "forget")}
    confidence = {name: true_class_confidence(p, getattr(data, name).y) for name, p in probs.items()}
    assert confidence["retain"].min() > 0.99 and confidence["test"].max() < 0.6
    wrong_wirings = {
        "retain and test swapped": (confidence["test"], confidence["retain"], confidence["forget"]),
        "test as the targets": (confidence["retain"], confidence["test"], confidence["test"]),
        "retain as the targets": (confidence["retain"], confidence["test"], confidence["retain"]),
    }
    assert {name: mia_efficacy(*sets) for name, sets in wrong_wirings.items()} == pytest.approx(
        {"retain and test swapped": 25.0, "test as the targets": 100.0, "retain as the targets": 0.0})


def test_a_diverged_models_non_finite_outputs_count_as_wrong():
    """argmax reads NaN as class 0; a broken model must not be credited with class 0's samples."""
    probs = torch.tensor([[float("nan")] * 3, [float("nan")] * 3, [0.1, 0.8, 0.1]])
    labels = torch.tensor([0, 0, 1])
    assert accuracy(probs, labels) == pytest.approx(100 / 3)
