"""The sweep's settings: one dataclass, checked where it is made, its errors worded by each front end."""

import dataclasses
import pickle
import types

import pytest

from cup_core import SettingError, SweepSettings
from cup_core.methods import METHODS
from cup_core.settings import DEFAULT_MAX_MEMORY, DEFAULT_POINTS, memory_size
from cup_core.sweep import SweepPlan
from cup_core.sweep_file import SETTINGS

PAGE = types.SimpleNamespace(methods="the Methods list", seeds="Seeds", grid="the grid", points="Points", lr="Learning rate",
                             lrs="Learning rates", forget_class="Class", forget_fraction="Share",
                             forget_indices="Index file", engine="Engine", data_root="Data root",
                             download="“Download if missing”", max_memory="Memory")


def test_every_setting_has_a_sweep_file_type_and_a_comment():
    assert set(SETTINGS) == {field.name for field in dataclasses.fields(SweepSettings)}


def test_defaults_are_the_documented_ones():
    settings = SweepSettings()
    assert (settings.dataset, settings.methods, settings.points, settings.seeds) == ("digits", ("cup",), 21, (0,))
    assert (settings.engine, settings.executor, settings.device) == ("auto", "local", "auto")
    assert settings.max_memory == DEFAULT_MAX_MEMORY and settings.points == DEFAULT_POINTS
    assert settings.plan() == SweepPlan.default(("cup",), DEFAULT_POINTS, (0,))


def test_plain_values_become_typed_settings():
    settings = SweepSettings.from_mapping({"methods": "cup, GA", "seeds": 3, "grid": None, "max_memory": "512M",
                                           "unlearn": {"lr": 0.1, "epochs": 2}, "forget_indices": [1, 2]})
    assert settings.methods == ("cup", "ga") and settings.seeds == (3,) and settings.max_memory == 512 * 1024**2
    assert settings.unlearn == (("epochs", 2), ("lr", 0.1)) and settings.forget_indices == (1, 2)
    assert hash(settings) == hash(SweepSettings.from_mapping({"methods": ["cup", "ga"], "seeds": [3],
                                                              "max_memory": 512 * 1024**2, "forget_indices": (1, 2),
                                                              "unlearn": {"epochs": 2, "lr": 0.1}}))
    assert SweepSettings.from_mapping({"methods": "all"}).methods == tuple(METHODS)


def test_a_grid_is_the_single_methods_plan():
    settings = SweepSettings(methods=("ga",), grid=(1e-3, 1e-2), seeds=(0, 1))
    assert settings.plan() == SweepPlan({"ga": (1e-3, 1e-2)}, (0, 1))


@pytest.mark.parametrize("values, cli, page", [
    ({"methods": ()}, "no method chosen in --methods; choose at least one of: cup,", "no method chosen in the Methods list"),
    ({"seeds": ()}, "no seed chosen in --seeds", "no seed chosen in Seeds"),
    ({"dataset": "mnist"}, "MNIST is read from a folder on this machine: set --data-root (--download fetches",
     "MNIST is read from a folder on this machine: set Data root (“Download if missing” fetches"),
    ({"methods": ("cup", "ga"), "grid": (0.5,)}, "--grid applies to a single method; use --points with several",
     "the grid applies to a single method; use Points with several"),
    ({"grid": ()}, "--grid is empty", "the grid is empty"),
    ({"lr": 0.1, "lrs": (0.1, 0.01)}, "give --lr or --lrs, not both", "give Learning rate or Learning rates, not both"),
    ({"forget_class": 1, "forget_fraction": 0.1}, "give one forget set, not --forget-class and --forget-fraction",
     "give one forget set, not Class and Share"),
    ({"engine": "warp"}, "--engine must be one of auto, batched, sequential, got 'warp'", "Engine must be one of"),
    ({"max_memory": "lots"}, "--max-memory: expected a size such as 512M or 4G, got 'lots'", "Memory: expected"),
    ({"points": 0}, "--points must be a whole number of at least 1, got 0", "Points must be"),
])
def test_a_bad_setting_is_named_by_each_front_end(values, cli, page):
    with pytest.raises(SettingError) as caught:
        SweepSettings.from_mapping(values)
    assert cli in str(caught.value)
    assert page in caught.value.worded(PAGE) and "--" not in caught.value.worded(PAGE)


def test_a_quoted_path_with_braces_stays_as_it_is_and_the_error_crosses_processes():
    err = SettingError("data root {root} is not a folder; {setting.download} fetches it", root="/data/{x}")
    assert str(err) == "data root /data/{x} is not a folder; --download fetches it"
    again = pickle.loads(pickle.dumps(err))  # a Ray task's error
    assert str(again) == str(err)
    assert again.worded(PAGE) == "data root /data/{x} is not a folder; “Download if missing” fetches it"


def test_unknown_settings_and_data_sets_are_refused():
    with pytest.raises(SettingError, match="unknown setting colour"):
        SweepSettings.from_mapping({"colour": "red"})
    with pytest.raises(ValueError, match="unknown data set|unknown dataset"):
        SweepSettings(dataset="imagenet-42")


def test_memory_sizes():
    assert memory_size("4G") == 4 * 1024**3 and memory_size("1024") == 1024 and memory_size(7) == 7
    for bad in ("", "G", "nan", "infG", "-1M", 0):
        with pytest.raises(SettingError):
            memory_size(bad)
