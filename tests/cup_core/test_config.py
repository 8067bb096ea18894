"""Experiment configs: validated frozen dataclasses whose canonical JSON names the experiment's folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cup_core.config import (
    ExperimentConfig,
    ForgetSet,
    Sources,
    TrainRecipe,
    UnlearnRecipe,
    canonical_json,
    canonical_value,
    stable_hash,
)
from cup_core.data import default_config


def test_canonical_json_sorts_keys_drops_spaces_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    assert stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
    assert len(stable_hash("x")) == 12 and len(stable_hash("x", 8)) == 8
    with pytest.raises(ValueError):
        canonical_json({"lr": math.nan})


def test_canonical_value_keeps_six_significant_digits():
    assert canonical_value(0.15000000000000002) == 0.15
    assert canonical_value(3.16228e-06) != canonical_value(3.16227e-06)
    assert canonical_value(1) == 1.0 and isinstance(canonical_value(1), float)
    assert math.copysign(1.0, canonical_value(-0.0)) == 1.0  # -0.0 and 0.0 are one point
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite number"):
            canonical_value(bad)


def test_integer_recipe_numbers_are_floats_and_name_the_same_experiment():
    recipe = UnlearnRecipe(lr=1, weight_decay=0, momentum=1)
    assert (recipe.lr, recipe.weight_decay, recipe.momentum) == (1.0, 0.0, 1.0)
    assert all(isinstance(value, float) for value in (recipe.lr, recipe.weight_decay, recipe.momentum))
    assert TrainRecipe(lr=1).lr == 1.0 and isinstance(TrainRecipe(lr=1).lr, float)
    assert isinstance(ForgetSet(forget_class=None, fraction=1).fraction, float)
    as_ints = ExperimentConfig(unlearn=UnlearnRecipe(lr=1, weight_decay=0))
    as_floats = ExperimentConfig(unlearn=UnlearnRecipe(lr=1.0, weight_decay=0.0))
    assert as_ints.experiment_id == as_floats.experiment_id


def test_forget_sets_describe_themselves():
    assert ForgetSet(forget_class=3).kind == "class" and ForgetSet(forget_class=3).describe() == "class 3"
    random = ForgetSet(forget_class=None, fraction=0.1, seed=2)
    assert random.kind == "random" and random.describe() == "random 10% of the training set (seed 2)"
    listed = ForgetSet(forget_class=None, indices=(9, 2, 5))
    assert listed.kind == "random" and listed.describe().startswith("3 listed samples (indices ")
    assert UnlearnRecipe(epochs=1, lr=0.01, batch_size=32).describe() == "1 epoch, SGD lr 0.01, batch 32"


def test_sources_round_trip_and_ignore_unknown_keys(tmp_path):
    sources = Sources(data_root=str(tmp_path), checkpoint=str(tmp_path / "w.pt"), download=True)
    assert Sources.from_dict({**sources.to_dict(), "written_by": "a later version"}) == sources
    assert Sources().to_dict() == {"data_root": None, "checkpoint": None, "download": False}
    assert Path(Sources(data_root=".").data_root).is_absolute()


def test_config_round_trips_through_its_dict_and_hashes_stably():
    config = default_config("blobs", forget_fraction=0.2, forget_seed=1)
    assert ExperimentConfig.from_dict(config.to_dict()) == config
    assert ExperimentConfig.from_dict(config.to_dict()).experiment_id == config.experiment_id
    assert default_config("blobs", forget_class=1).experiment_id != default_config("blobs").experiment_id
    with pytest.raises(ValueError, match="not an experiment config"):
        ExperimentConfig.from_dict({"dataset": "blobs"})


def test_oracle_skip_is_class_wise_only():
    with pytest.raises(ValueError, match="class-wise forgetting only"):
        default_config("blobs", forget_fraction=0.1, oracle=False)


def test_configs_without_the_new_fields_keep_their_ids():
    """Experiments cached before models, checkpoints and torchvision data sets existed keep their folders."""
    data = default_config("digits").to_dict()
    assert set(data) == {"dataset", "forget", "split_seed", "train", "unlearn"}
    assert set(data["forget"]) == {"forget_class", "fraction", "seed"}
    assert json.loads(default_config("digits").canonical_json()) == data
    # The ids of the first release's default experiments, pinned: a change here orphans users' caches.
    assert [default_config(name).experiment_id for name in ("digits", "blobs")] == ["f01e27bb920a", "879fe51e460d"]
    assert default_config("digits", model="small_cnn").experiment_id == default_config("digits").experiment_id
    assert default_config("digits", model="mlp").experiment_id != default_config("digits").experiment_id


def test_a_listed_forget_set_has_no_class():
    from cup_core.data import parse_indices

    with pytest.raises(ValueError, match="forget_class=None"):
        ForgetSet(indices=(3, 1))
    assert ForgetSet(forget_class=None, indices=(3, 1)).indices == (1, 3)
    with pytest.raises(ValueError, match="'--5' is not a sample index"):
        parse_indices("1 --5")


def test_knob_values_match_one_way_exactly_once_canonical():
    import pandas as pd

    from cup_core.config import same_knob

    values = pd.Series([0.15, 0.3, 3.16228e-06])
    assert same_knob(values, 0.1 + 0.05).tolist() == [True, False, False]  # 0.15000000000000002 is 0.15
    assert same_knob(values, 3.162277660e-06).tolist() == [False, False, True]
    assert same_knob(values, 3.1623e-06).tolist() == [False, False, False]  # another learning rate
    assert not same_knob(values, float("nan")).any() and not same_knob(values, float("inf")).any()
    assert same_knob(0.5, 0.5000000001) and not same_knob(0.5, 0.50001)
