"""Sweep files: TOML settings for `python -m cup_core sweep --config`, as users write them and as the app does."""

from __future__ import annotations

import tomllib

import pytest

from cup_core import Experiment
from cup_core.config import Sources
from cup_core.data import default_config
from cup_core.sweep_file import load_sweep_file, read_sweep_file, sweep_file_text

from . import _stand_ins
from ._cli import QUICK, assert_one_error, sweep, swept_experiment


def test_a_written_sweep_file_reads_back_as_the_same_experiment(tmp_path):
    config = default_config("blobs", forget_fraction=0.25, forget_seed=3)
    text = sweep_file_text(config, Sources(), ["cup", "ws"], 7, [0, 2])
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    settings = read_sweep_file(path)
    assert (settings["methods"], settings["points"], settings["seeds"]) == (["cup", "ws"], 7, [0, 2])
    assert (settings["forget_fraction"], settings["forget_seed"]) == (0.25, 3) and "forget_class" not in settings
    assert load_sweep_file(path).experiment_config(Sources()).experiment_id == config.experiment_id
    assert f"(experiment {config.experiment_id})" in text.splitlines()[0]


def test_relative_paths_are_taken_from_the_files_folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "sweep.toml").write_text('data_root = "data"\ncache_dir = "../cache"\n')
    settings = read_sweep_file(folder / "sweep.toml")
    assert settings["data_root"] == str((folder / "data").resolve())
    assert settings["cache_dir"] == str((tmp_path / "cache").resolve())


@pytest.mark.slow
def test_imagefolder_sweep_from_a_sweep_file(tmp_path, capsys):
    _stand_ins.write_imagefolder_split(tmp_path / "images")
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text('dataset = "imagefolder"\ndata_root = "images"\nimage_size = 16\nmodel = "small_cnn"\n'
                          'forget_class = 1\ngrid = [0.0, 0.5]\nseeds = [0]\ndevice = "cpu"\ncache_dir = "cache"\n'
                          '[train]\nepochs = 2\n[unlearn]\nepochs = 1\nbatch_size = 8\n')
    experiment = swept_experiment(capsys, "--config", str(sweep_file), "--quiet")
    config = experiment.config
    assert config.classes == _stand_ins.write_imagefolder_split(tmp_path / "again").classes
    assert config.image_size == 16 and config.model == "small_cnn" and config.train.epochs == 2
    assert "16x16" in experiment.info.preprocessing  # what the model card records
    assert experiment.root.parent == (tmp_path / "cache").resolve()  # relative to the file's folder
    assert sorted(experiment.results()["value"]) == [0.0, 0.5]


@pytest.mark.slow
def test_the_sweep_file_the_app_writes_reopens_the_same_experiment(tmp_path, capsys):
    _stand_ins.write_mnist(tmp_path / "data")
    experiment = swept_experiment(capsys, "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                                  "--forget-class", "3", "--cache-dir", str(tmp_path / "cache"), *QUICK)
    text = sweep_file_text(experiment.config, experiment.sources(), ["cup", "ga"], 2, [0, 1])
    assert tomllib.loads(text)["methods"] == ["cup", "ga"] and experiment.id in text
    path = tmp_path / "elsewhere" / "sweep.toml"
    path.parent.mkdir()
    path.write_text(text)
    assert read_sweep_file(path)["data_root"] == str((tmp_path / "data").resolve())
    code, out, err = sweep(capsys, "--config", str(path), "--device", "cpu", "--quiet", "--cache-dir",
                           str(tmp_path / "cache"))
    assert code == 0, err
    again = Experiment.open(out.strip().splitlines()[-1])
    assert again.id == experiment.id
    assert len(again.results()) == 2 * 2 * 2  # two methods x two points x two seeds


def test_command_line_options_override_the_sweep_file(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text('dataset = "blobs"\nforget_fraction = 0.1\ngrid = [0.0]\nepochs = 1\ndevice = "cpu"\n')
    experiment = swept_experiment(capsys, "--config", str(path), "--forget-class", "1", "--epochs", "2", "--quiet",
                                  "--cache-dir", str(tmp_path / "cache"))
    assert experiment.config.forget.forget_class == 1 and experiment.config.unlearn.epochs == 2


@pytest.mark.parametrize("content, expected", [
    ("dataset = blobs", "not valid TOML"),
    ("datset = 'blobs'", "unknown setting 'datset'"),
    ("points = 'many'", "points must be an integer"),
    ("oracle = 1", "oracle must be true or false"),
    ("points = true", "points must be an integer"),
    ("seeds = [0, 'one']", "each item of seeds must be an integer"),
    ("[unlearn]\nepoch = 3", "unknown setting 'epoch' in [unlearn]"),
    ("[train]\nlr = 'fast'", "train.lr must be a number"),
    ("engine = 'warp'", "engine must be one of"),
    ("[unlearn]\nbatch_size = 0", "unlearn batch-size must be at least 1"),
])
def test_a_bad_sweep_file_fails_with_one_line(content, expected, tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(content)
    code, out, err = sweep(capsys, "--config", str(path), "--cache-dir", str(tmp_path / "cache"), "--quiet")
    assert_one_error(code, out, err, expected)
    assert not (tmp_path / "cache").exists()


def test_a_sweep_file_that_is_not_text_or_not_there(tmp_path, capsys):
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    for name, expected in (("binary.toml", "not a text file"), ("absent.toml", "cannot read the sweep file")):
        code, out, err = sweep(capsys, "--config", str(tmp_path / name), "--quiet")
        assert_one_error(code, out, err, expected)


def test_integers_for_numbers_name_the_same_experiment(tmp_path, capsys):
    written = {"ints": "lr = 1\n[train]\nweight_decay = 0\n", "floats": "lr = 1.0\n[train]\nweight_decay = 0.0\n"}
    ids = set()
    for name, text in written.items():
        path = tmp_path / f"{name}.toml"
        path.write_text('dataset = "blobs"\ngrid = [0.0]\nepochs = 1\ndevice = "cpu"\n' + text)
        ids.add(swept_experiment(capsys, "--config", str(path), "--quiet", "--cache-dir", str(tmp_path / "c")).id)
    assert len(ids) == 1


def test_a_bad_memory_budget_in_a_sweep_file_fails_with_one_line(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text('max_memory = "lots"\n')
    code, out, err = sweep(capsys, "--config", str(path), "--quiet")
    assert_one_error(code, out, err, "max_memory: expected a size such as 512M")


def test_a_bad_setting_is_named_as_the_user_gave_it(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text('methods = "cup"\nengine = "warp"\n')
    code, out, err = sweep(capsys, "--config", str(path), "--quiet")
    assert_one_error(code, out, err, "engine must be one of")  # the file's key
    assert "--engine" not in err
    code, out, err = sweep(capsys, "--config", str(path), "--engine", "auto", "--methods", "", "--quiet")
    assert_one_error(code, out, err, "no method chosen in --methods")  # the option, which overrode the file's key
