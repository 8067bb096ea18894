"""Exported points: a zip of safetensors weights and a JSON model card, loaded back without unpickling."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pickle
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save as save_safetensors

from cup_core import cache, export_point, load_exported
from cup_core.export import CARD_FORMAT, CARD_NAME, WEIGHTS_NAME, export_bytes, model_card

REQUIRED_CARD_FIELDS = {
    "format", "method", "knob", "value", "seed", "dataset", "num_classes", "forget_set", "architecture",
    "architecture_kwargs", "input_shape", "preprocessing", "metrics", "original_metrics", "oracle_metrics",
    "experiment_id", "config", "weights_sha256", "versions", "exported", "schema",
}


@pytest.fixture(scope="module")
def exported(tiny_blobs, tmp_path_factory):
    """(experiment, results, path of the exported γ = 0.5 seed 1 point)."""
    experiment, results = tiny_blobs
    path = export_point(experiment, "cup", 0.5, 1, tmp_path_factory.mktemp("export") / "point.zip")
    return experiment, results, path


def test_export_writes_a_zip_with_weights_and_card(exported):
    _, _, path = exported
    assert path.is_file()
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([WEIGHTS_NAME, CARD_NAME])
    assert [p.name for p in path.parent.iterdir()] == ["point.zip"]  # atomic: no temporary file left


def test_reloaded_weights_equal_the_checkpoint_exactly(exported):
    experiment, _, path = exported
    model, _ = load_exported(path)
    saved = experiment.load_model("cup", 0.5, 1).state_dict()
    reloaded = model.state_dict()
    assert reloaded.keys() == saved.keys()
    for name, tensor in saved.items():
        assert torch.equal(reloaded[name], tensor), name
    assert not model.training


def test_reloaded_model_predicts_like_the_cached_one(exported):
    experiment, _, path = exported
    model, _ = load_exported(path)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(x), experiment.load_model("cup", 0.5, 1)(x))


def test_card_has_every_required_field(exported):
    experiment, _, path = exported
    _, card = load_exported(path)
    assert REQUIRED_CARD_FIELDS <= card.keys()
    assert card["format"] == CARD_FORMAT
    assert (card["method"], card["knob"], card["value"], card["seed"]) == ("cup", "intensity", 0.5, 1)
    assert card["dataset"] == "blobs" and card["num_classes"] == 5
    assert card["forget_set"]["kind"] == "class" and card["forget_set"]["forget_class"] == 2
    assert card["forget_set"]["description"] == "class 2"
    assert card["architecture"] == "mlp"
    assert card["architecture_kwargs"] == {"in_features": 2, "hidden": [16, 16], "num_classes": 5}
    assert card["input_shape"] == [2] and "blobs" in card["preprocessing"]
    assert card["experiment_id"] == experiment.id
    assert card["config"] == experiment.config.to_dict()
    assert {"python", "torch", "safetensors"} <= card["versions"].keys()
    assert card["versions"]["torch"] in torch.__version__  # metadata may drop a local tag such as +cpu
    assert pd.Timestamp(card["exported"]).tzinfo is not None  # an ISO time with its zone
    with zipfile.ZipFile(path) as archive:
        assert card["weights_sha256"] == hashlib.sha256(archive.read(WEIGHTS_NAME)).hexdigest()


def _same(card_value, table_value) -> bool:
    """Equal, where the card's null (strict JSON) or NaN stands for the table's NaN."""
    if math.isnan(table_value):
        return card_value is None or math.isnan(card_value)
    return card_value == pytest.approx(table_value)


def test_card_metrics_equal_the_results_row(exported):
    _, results, path = exported
    _, card = load_exported(path)
    row = results[(results["value"] == 0.5) & (results["seed"] == 1)].iloc[0]
    metric_columns = ["forget_acc", "retain_acc", "test_acc", "forget_test_acc", "ua", "mia_efficacy", "avg_gap",
                      *[f"acc_class_{k}" for k in range(5)]]
    assert set(metric_columns) <= card["metrics"].keys()
    for name in metric_columns:
        assert _same(card["metrics"][name], row[name]), name


def test_card_names_the_schema_its_metrics_were_computed_under(exported):
    from cup_core.config import SCHEMA_VERSION

    experiment, _, path = exported
    _, card = load_exported(path)
    assert card["schema"] == SCHEMA_VERSION == experiment.point_record("cup", 0.5, 1)["schema"] == 2


def test_card_reference_metrics_equal_references_csv(exported):
    experiment, _, path = exported
    _, card = load_exported(path)
    references = experiment.references()
    for role in ("original", "oracle"):
        for name, value in card[f"{role}_metrics"].items():
            assert _same(value, references.loc[role, name]), (role, name)


def test_export_bytes_loads_from_memory(tiny_blobs):
    experiment, _ = tiny_blobs
    model, card = load_exported(io.BytesIO(export_bytes(experiment, "cup", 1.0, 0)))
    assert card["value"] == 1.0 and card["seed"] == 0
    assert isinstance(model, torch.nn.Module)


def test_export_of_a_missing_point_raises_broken_entry(tiny_blobs, tmp_path):
    experiment, _ = tiny_blobs
    with pytest.raises(cache.BrokenEntry):
        export_point(experiment, "cup", 0.25, 0, tmp_path / "nope.zip")
    with pytest.raises(cache.BrokenEntry):
        model_card(experiment, "cup", 0.5, 7)
    assert not (tmp_path / "nope.zip").exists()


# --- bad files -------------------------------------------------------------------------------------


def _parts(path: Path) -> tuple[dict, bytes]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(CARD_NAME)), archive.read(WEIGHTS_NAME)


def _zip(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_load_rejects_a_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "garbage.zip"
    path.write_bytes(os.urandom(512))
    with pytest.raises(ValueError, match="not an exported model zip"):
        load_exported(path)


def test_load_rejects_a_truncated_zip(exported, tmp_path):
    path = tmp_path / "truncated.zip"
    path.write_bytes(exported[2].read_bytes()[:200])
    with pytest.raises(ValueError):
        load_exported(path)


@pytest.mark.parametrize("missing", [CARD_NAME, WEIGHTS_NAME])
def test_load_rejects_a_zip_without_its_card_or_weights(exported, tmp_path, missing):
    card, weights = _parts(exported[2])
    files = {CARD_NAME: json.dumps(card), WEIGHTS_NAME: weights}
    del files[missing]
    with pytest.raises(ValueError, match="not an exported model zip"):
        load_exported(_zip(tmp_path / "partial.zip", files))


@pytest.mark.parametrize("card_text", ["{not json", "[1, 2]", "null", b"\xff\xfe not utf-8"])
def test_load_rejects_a_card_that_is_not_a_json_object(exported, tmp_path, card_text):
    _, weights = _parts(exported[2])
    with pytest.raises(ValueError):
        load_exported(_zip(tmp_path / "card.zip", {CARD_NAME: card_text, WEIGHTS_NAME: weights}))


@pytest.mark.parametrize("card_format", ["someone-else/2", "cup-explorer-model/2", None])
def test_load_rejects_a_card_of_another_format(exported, tmp_path, card_format):
    card, weights = _parts(exported[2])
    path = _zip(tmp_path / "card.zip", {CARD_NAME: json.dumps({**card, "format": card_format}), WEIGHTS_NAME: weights})
    with pytest.raises(ValueError, match="format"):
        load_exported(path)


@pytest.mark.parametrize("edit", [
    pytest.param({"architecture_kwargs": {"in_features": 2, "hidden": [32, 32], "num_classes": 5}}, id="wider"),
    pytest.param({"architecture_kwargs": {"in_features": 2, "hidden": [16, 16], "num_classes": 10}}, id="classes"),
    pytest.param({"architecture": "small_cnn", "architecture_kwargs": {"in_channels": 1, "image_size": 8,
                                                                      "width": 16, "num_classes": 10}}, id="other-net"),
])
def test_load_rejects_weights_that_do_not_fit_the_card(exported, tmp_path, edit):
    card, weights = _parts(exported[2])
    path = _zip(tmp_path / "misfit.zip", {CARD_NAME: json.dumps({**card, **edit}), WEIGHTS_NAME: weights})
    with pytest.raises(ValueError, match="do not fit"):
        load_exported(path)


def test_load_rejects_weights_with_a_missing_tensor(exported, tmp_path):
    card, _ = _parts(exported[2])
    partial = {"net.0.weight": torch.zeros(16, 2)}
    path = _zip(tmp_path / "partial.zip", {CARD_NAME: json.dumps(card), WEIGHTS_NAME: save_safetensors(partial)})
    with pytest.raises(ValueError, match="do not fit"):
        load_exported(path)


@pytest.mark.parametrize("edit", [
    pytest.param({"architecture": "resnet18"}, id="unknown-architecture"),
    pytest.param({"architecture": None}, id="no-architecture"),
    pytest.param({"architecture_kwargs": {"in_features": 2, "depth": 3}}, id="unknown-kwarg"),
    pytest.param({"architecture_kwargs": [2, 16]}, id="kwargs-not-a-dict"),
    pytest.param({"architecture_kwargs": {"hidden": 16}}, id="bad-kwarg-value"),
])
def test_load_rejects_a_card_that_does_not_describe_a_known_model(exported, tmp_path, edit):
    card, weights = _parts(exported[2])
    path = _zip(tmp_path / "card.zip", {CARD_NAME: json.dumps({**card, **edit}), WEIGHTS_NAME: weights})
    with pytest.raises(ValueError):
        load_exported(path)


def test_load_rejects_a_card_without_architecture(exported, tmp_path):
    card, weights = _parts(exported[2])
    del card["architecture"]
    path = _zip(tmp_path / "card.zip", {CARD_NAME: json.dumps(card), WEIGHTS_NAME: weights})
    with pytest.raises(ValueError):
        load_exported(path)


class _CreatesMarker:
    """Unpickling this calls open(marker, 'w'): it leaves a file behind iff the pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _assert_unpickling_creates_a_marker(tmp_path: Path) -> None:
    """Guards the guard: unpickling a _CreatesMarker really does leave its file behind."""
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_CreatesMarker(probe))).close()
    assert probe.exists()


@pytest.mark.parametrize("container", ["raw-pickle", "torch-save"])
def test_load_never_unpickles_a_smuggled_payload(exported, tmp_path, container):
    _assert_unpickling_creates_a_marker(tmp_path)
    card, _ = _parts(exported[2])
    marker = tmp_path / "pwned"
    if container == "torch-save":  # what torch.load(weights_only=False) would execute
        buffer = io.BytesIO()
        torch.save({"net.0.weight": _CreatesMarker(marker)}, buffer)
        payload = buffer.getvalue()
    else:
        payload = pickle.dumps(_CreatesMarker(marker))

    path = _zip(tmp_path / "evil.zip", {CARD_NAME: json.dumps(card), WEIGHTS_NAME: payload})
    with pytest.raises(ValueError):
        load_exported(path)
    assert not marker.exists()


def test_load_ignores_a_pickle_under_another_name(exported, tmp_path):
    card, _ = _parts(exported[2])
    marker = tmp_path / "pwned"
    path = _zip(tmp_path / "evil.zip", {CARD_NAME: json.dumps(card),
                                         "model.pkl": pickle.dumps(_CreatesMarker(marker))})
    with pytest.raises(ValueError, match="not an exported model zip"):
        load_exported(path)
    assert not marker.exists()
