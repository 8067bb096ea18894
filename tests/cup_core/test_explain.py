"""A vs B's library side: pins, and what `explain` reads off a cached model (checked against the metrics the
sweep recorded for the same model), cached on disk under the experiment and named by the weights' hash."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cup_core import cache
from cup_core.data import load_unlearning_data
from cup_core.explain import (EXPLAIN_FORMAT, Pin, explain, forget_agreement, forget_samples, is_cached, load_pinned,
                              penultimate_features, project, weights_sha256)
from cup_core.models import MLP, SmallCNN

from ._experiments import tiny_sweep


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A tiny blobs sweep of its own (explain writes under the experiment's folder)."""
    return tiny_sweep(tmp_path_factory.mktemp("explain-cache"))


@pytest.mark.parametrize("text", ["original", "oracle", "cup:0.5:0", "neggrad+:0.25:3", "ga:0.0003:1"])
def test_a_pin_reads_back_from_its_text(text):
    pin = Pin.parse(text)
    assert pin is not None and Pin.parse(str(pin)) == pin


@pytest.mark.parametrize("hostile", [None, "", "Original", "cup:0.5", "cup:nan:0", "cup:inf:0", "cup:1e999:0",
                                     "cup:0.5:-1", "../x:0.5:0", "cup:0.5:0\n", "a" * 40 + ":1:0", "cup:0.5:0:1"])
def test_a_damaged_or_hostile_pin_names_nothing(hostile):
    assert Pin.parse(hostile) is None


def test_explain_agrees_with_the_metrics_recorded_for_each_model(swept):
    experiment, _ = swept
    for pin in (Pin("original"), Pin("oracle"), Pin.point("cup", 1.0, 0)):
        record = (experiment.reference(pin.role) if pin.role != "point" else
                  experiment.point_record(pin.method, pin.value, pin.seed))
        result = explain(experiment, pin)
        metrics = record["metrics"]
        np.testing.assert_allclose(result["per_class_acc"], metrics["per_class_acc"])
        assert 100 * result["forget_correct"].mean() == pytest.approx(metrics["forget_acc"])
        assert result["mia_efficacy"] == pytest.approx(metrics["mia_efficacy"])
        confusion = result["confusion"]
        np.testing.assert_allclose(100 * np.diag(confusion) / confusion.sum(axis=1), metrics["per_class_acc"])
        # the attacker's verdict on the forget set, read off its tabulated decision, gives the same efficacy
        verdict = np.interp(result["mia_forget"], result["mia_grid"], result["mia_verdict"]).round()
        assert 100 * (verdict == 0).mean() == pytest.approx(metrics["mia_efficacy"], abs=2.0)
        assert result["embedding"].shape == (len(result["embedding_labels"]), 2)
        assert result["embedding_forget"].any() and not result["embedding_forget"].all()
        assert result["weights_sha256"] == weights_sha256(experiment, pin)


def test_unlearning_shows_in_the_forget_samples_and_the_membership_scores(swept):
    experiment, _ = swept
    original, forgotten = explain(experiment, Pin("original")), explain(experiment, Pin.point("cup", 1.0, 0))
    assert forgotten["forget_correct"].sum() < original["forget_correct"].sum()
    assert np.median(forgotten["mia_forget"]) < np.median(original["mia_forget"])
    counts = forget_agreement(original, forgotten)
    assert sum(counts.values()) == len(original["forget_correct"])
    assert counts["only A"] > counts["only B"]


def test_explain_is_cached_by_the_weights_hash_and_recomputed_when_damaged(swept):
    experiment, _ = swept
    pin = Pin.point("cup", 0.5, 0)
    first = explain(experiment, pin)
    [path] = (experiment.root / "explained").glob(f"cup-0.5-seed0-*-pca-v{EXPLAIN_FORMAT}.npz")
    assert weights_sha256(experiment, pin)[:16] in path.name
    stamp = path.stat().st_mtime_ns
    again = explain(experiment, pin)
    assert path.stat().st_mtime_ns == stamp  # read back, not recomputed
    np.testing.assert_array_equal(again["embedding"], first["embedding"])
    path.write_bytes(b"not a zip")
    repaired = explain(experiment, pin)
    np.testing.assert_array_equal(repaired["confusion"], first["confusion"])
    assert not list(path.parent.glob("*.tmp"))


def test_a_pin_not_in_the_cache_is_a_broken_entry(swept):
    experiment, _ = swept
    missing = Pin.point("cup", 0.25, 0)
    assert not is_cached(experiment, missing) and is_cached(experiment, Pin("oracle"))
    with pytest.raises(cache.BrokenEntry):
        explain(experiment, missing)


def test_a_tampered_checkpoint_is_refused(swept, tmp_path):
    import shutil

    experiment, _ = swept
    copy = tmp_path / experiment.id
    shutil.copytree(experiment.root, copy)
    from cup_core import Experiment

    tampered = Experiment.open(copy)
    weights = tampered.reference_entry("oracle") / cache.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(cache.BrokenEntry):
        load_pinned(tampered, Pin("oracle"))


def test_penultimate_features_are_the_input_of_the_classifier_head():
    mlp = MLP(in_features=2, hidden=(16, 8), num_classes=5)
    x = torch.randn(7, 2)
    features = penultimate_features(mlp, x, batch=3)
    assert features.shape == (7, 8)
    head = mlp.net[-1]
    np.testing.assert_allclose(head(torch.tensor(features, dtype=torch.float32)).detach().numpy(),
                               mlp(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    assert penultimate_features(SmallCNN(), torch.randn(3, 1, 8, 8)).shape == (3, 64)


@pytest.mark.slow
def test_projections_are_two_dimensional_and_reproducible():
    features = np.random.default_rng(0).normal(size=(60, 5)) * [10, 3, 1, 1, 1]
    pca = project(features)
    assert pca.shape == (60, 2) and pca[:, 0].var() > pca[:, 1].var()
    np.testing.assert_array_equal(project(features), pca)
    assert project(features, "tsne").shape == (60, 2)
    assert not project(np.full((5, 3), np.nan)).any()  # a diverged model: nothing to spread out
    with pytest.raises(ValueError, match="projection"):
        project(features, "umap")


def test_forget_samples_are_the_points_explain_judges(swept):
    experiment, _ = swept
    data = load_unlearning_data(experiment.config)
    samples = forget_samples(data)
    assert samples["x"].shape == (len(data.forget), 2) and (samples["y"] == experiment.config.forget.forget_class).all()
    assert len(samples["retain_x"]) > 0
    assert len(explain(experiment, Pin("original"))["forget_correct"]) == len(samples["y"])
