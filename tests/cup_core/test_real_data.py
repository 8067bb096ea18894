"""Sweeps on the torchvision data sets, users' own checkpoints and forget-index files, end to end
through `python -m cup_core sweep` (in-process), on stand-ins written in each data set's own on-disk format."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cup_core import Experiment, SweepPlan, export_point, load_exported, run_sweep
from cup_core.cache import WEIGHTS_FILE
from cup_core.checkpoints import file_sha256
from cup_core.config import Sources
from cup_core.models import resnet18_cifar

from . import _stand_ins
from ._cli import QUICK, assert_one_error, sweep, swept_experiment


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    _stand_ins.write_cifar10(root)
    return root


@pytest.mark.slow
def test_mnist_sweep_records_its_split_and_sources(tmp_path, capsys):
    _stand_ins.write_mnist(tmp_path / "data")
    experiment = swept_experiment(capsys, "--dataset", "mnist", "--data-root", str(tmp_path / "data"),
                                  "--cache-dir", str(tmp_path / "cache"), *QUICK)
    config = experiment.config
    assert config.dataset == "mnist" and "train" in config.split and "t10k" in config.split
    assert experiment.architecture == "small_cnn" and experiment.info.input_shape == (1, 28, 28)
    results = experiment.results()
    assert sorted(results["value"]) == [0.0, 1.0] and set(experiment.references()["role"]) == {"original", "oracle"}
    assert experiment.sources() == Sources(data_root=str((tmp_path / "data").resolve()))


@pytest.mark.slow
def test_a_users_resnet18_checkpoint_is_the_original_and_the_oracle_can_be_skipped(tmp_path, capsys, cifar_root):
    torch.manual_seed(0)
    checkpoint = tmp_path / "mine.safetensors"
    save_file(resnet18_cifar(num_classes=10).state_dict(), str(checkpoint))
    args = ["--dataset", "cifar10", "--data-root", str(cifar_root), "--model", "resnet18_cifar", "--no-oracle",
            "--cache-dir", str(tmp_path / "cache"), *QUICK]
    experiment = swept_experiment(capsys, *args, "--checkpoint", str(checkpoint))
    assert experiment.config.original_sha256 == file_sha256(checkpoint) and not experiment.config.oracle
    assert str(checkpoint) not in experiment.root.joinpath("config.json").read_text()  # the path is not identity
    cached = load_file(str(experiment.reference_entry("original") / WEIGHTS_FILE))
    for name, tensor in load_file(str(checkpoint)).items():
        assert torch.equal(cached[name], tensor), name  # used as given, not retrained
    assert list(experiment.references()["role"]) == ["original"]
    assert len(experiment.results()) == 2 and experiment.results()["avg_gap"].isna().all()  # no oracle, no gap
    assert not experiment.reference_entry("oracle").exists()
    exported, card = load_exported(export_point(experiment, "cup", 1.0, 0, tmp_path / "point.zip"))
    assert card["architecture"] == "resnet18_cifar" and card["oracle_metrics"] is None
    assert card["config"]["original_sha256"] == file_sha256(checkpoint) and card["input_shape"] == [3, 32, 32]
    for name, tensor in experiment.load_model("cup", 1.0, 0).state_dict().items():
        assert torch.equal(exported.state_dict()[name], tensor), name

    # Once the original is cached, the experiment needs no checkpoint file (e.g. its cache opened elsewhere).
    checkpoint.unlink()
    reopened = Experiment.open(experiment.root)
    run_sweep(reopened, SweepPlan({"cup": (0.5,)}), torch.device("cpu"), sources=Sources(data_root=str(cifar_root)))
    assert sorted(reopened.results()["value"]) == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("case", ["wrong classes", "corrupt", "pickled code", "missing", "not a state dict"])
@pytest.mark.slow
def test_a_bad_checkpoint_fails_with_one_line_and_nothing_runs(case, tmp_path, capsys, cifar_root):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    expected = {"wrong classes": "num_classes=10", "corrupt": "damaged", "pickled code": "refused",
                "missing": "cannot read", "not a state dict": "state dict"}[case]
    if case == "wrong classes":
        path = tmp_path / "model.safetensors"
        save_file(resnet18_cifar(num_classes=100).state_dict(), str(path))
    elif case == "corrupt":
        path.write_bytes(b"\x80\x02 this is no checkpoint")
    elif case == "pickled code":
        _stand_ins.hostile_pickle(path, marker)
    elif case == "not a state dict":
        torch.save([1, 2, 3], path)
    code, out, err = sweep(capsys, "--dataset", "cifar10", "--data-root", str(cifar_root), "--checkpoint", str(path),
                           "--cache-dir", str(tmp_path / "cache"), *QUICK)
    assert_one_error(code, out, err, expected)
    assert not marker.exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


@pytest.mark.slow
def test_a_checkpoint_must_be_the_experiments_own(tmp_path, cifar_root):
    from cup_core.data import default_config, resolve_config
    from cup_core.compute import prepare

    first, second = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for path, seed in ((first, 0), (second, 1)):
        torch.manual_seed(seed)
        save_file(resnet18_cifar(num_classes=10).state_dict(), str(path))
    sources = Sources(data_root=str(cifar_root))
    config = resolve_config(default_config("cifar10", original_sha256=file_sha256(first)), sources)
    experiment = Experiment(config, tmp_path / "cache")
    with pytest.raises(ValueError, match="give its file with --checkpoint"):
        prepare(experiment, sources, torch.device("cpu"))
    with pytest.raises(ValueError, match="not this experiment's checkpoint"):
        prepare(experiment, Sources(data_root=str(cifar_root), checkpoint=str(second)), torch.device("cpu"))


def test_a_model_that_cannot_take_the_inputs_fails_before_training(tmp_path, capsys):
    _stand_ins.write_mnist(tmp_path / "data")
    code, out, err = sweep(capsys, "--dataset", "mnist", "--data-root", str(tmp_path / "data"), "--model",
                           "torchvision:resnet18", "--cache-dir", str(tmp_path / "cache"), *QUICK)
    assert_one_error(code, out, err, "cannot take this data set's inputs of shape (1, 28, 28)")


@pytest.mark.parametrize("args, expected", [
    (["--dataset", "cifar10"], "--data-root"),
    (["--dataset", "cifar10", "--data-root", "/nonexistent/data"], "--download"),
    (["--dataset", "imagefolder", "--data-root", "."], "--image-size"),
])
def test_missing_data_says_how_to_fix_it(args, expected, tmp_path, capsys):
    code, out, err = sweep(capsys, *args, "--cache-dir", str(tmp_path / "cache"), *QUICK)
    assert_one_error(code, out, err, expected)


@pytest.mark.slow
def test_a_forget_index_file_is_random_subset_forgetting(tmp_path, capsys):
    indices = tmp_path / "forget.txt"
    indices.write_text("\n".join(str(i) for i in range(0, 400, 4)) + "\n")
    experiment = swept_experiment(capsys, "--dataset", "blobs", "--forget-indices", str(indices), "--grid", "0,1",
                                  "--epochs", "2", "--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "c"))
    forget = experiment.config.forget
    assert forget.indices == tuple(range(0, 400, 4)) and forget.kind == "random"
    assert "100 listed samples" in forget.describe()
    from cup_core.data import load_unlearning_data

    data = load_unlearning_data(experiment.config)
    assert len(data.forget) == 100 and data.forget_test is None and len(data.test) == len(data.full_test)
    assert experiment.results()["forget_test_acc"].isna().all()

    indices.write_text("3 1 2\n")  # another list is another experiment, whatever the file is called
    other = swept_experiment(capsys, "--dataset", "blobs", "--forget-indices", str(indices), "--grid", "0",
                             "--epochs", "1", "--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "c"))
    assert other.id != experiment.id and other.config.forget.indices == (1, 2, 3)


@pytest.mark.parametrize("content, expected", [
    ("1, 2, x3", "'x3' is not a sample index"),
    ("5 5", "repeats"),
    ("1 99999", "out of range"),
    ("", "empty"),
])
def test_bad_forget_index_files_fail_with_one_line(content, expected, tmp_path, capsys):
    path = tmp_path / "forget.txt"
    path.write_text(content)
    code, out, err = sweep(capsys, "--dataset", "blobs", "--forget-indices", str(path),
                           "--cache-dir", str(tmp_path / "cache"), *QUICK)
    assert_one_error(code, out, err, expected)


def test_index_files_in_json_and_npy(tmp_path):
    import numpy as np

    from cup_core.data import read_indices

    (tmp_path / "a.json").write_text("[4, 2, 9]")
    np.save(tmp_path / "b.npy", np.array([7, 1], dtype=np.int32))
    np.save(tmp_path / "c.npy", np.array([object()], dtype=object), allow_pickle=True)
    assert read_indices(tmp_path / "a.json") == (4, 2, 9)
    assert read_indices(tmp_path / "b.npy") == (7, 1)
    with pytest.raises(ValueError, match="not a forget-index file"):
        read_indices(tmp_path / "c.npy")  # an object array would need pickle: refused
    (tmp_path / "d.json").write_text('{"indices": [1]}')
    with pytest.raises(ValueError, match="JSON list of integers"):
        read_indices(tmp_path / "d.json")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_a_resnet18_sweep_on_cuda_matches_the_cpu(tmp_path, capsys, cifar_root):
    """Batch norm in training mode and the data on the GPU: the same accuracies as on the CPU, to a sample."""
    torch.manual_seed(0)
    checkpoint = tmp_path / "mine.safetensors"
    save_file(resnet18_cifar(num_classes=10).state_dict(), str(checkpoint))
    runs = {}
    for device in ("cpu", "cuda"):
        runs[device] = swept_experiment(capsys, "--dataset", "cifar10", "--data-root", str(cifar_root),
                                        "--checkpoint", str(checkpoint), "--no-oracle", "--cache-dir",
                                        str(tmp_path / device), *QUICK[:-3], "--device", device, "--quiet")
    assert runs["cuda"].point_record("cup", 1.0, 0)["device"].startswith("cuda")
    cpu, cuda = runs["cpu"].results(), runs["cuda"].results()
    one_sample = 100 / 4  # the smallest set, the forget class, has 4 images
    for column in ("forget_acc", "retain_acc", "test_acc"):
        assert (cpu[column] - cuda[column]).abs().max() <= one_sample, column


def test_files_that_changed_since_the_experiment_was_made_are_refused(tmp_path):
    from cup_core.data import default_config, load_unlearning_data, resolve_config

    _stand_ins.write_imagefolder_tree(tmp_path / "tree")
    sources = Sources(data_root=str(tmp_path / "tree"))
    config = resolve_config(default_config("imagefolder", image_size=8, forget_indices=(0, 1)), sources)
    load_unlearning_data(config, sources)
    moved = tmp_path / "other"
    _stand_ins.write_imagefolder_tree(moved)
    extra = next(path for path in sorted(moved.rglob("*.png")))
    extra.with_name("zz_extra.png").write_bytes(extra.read_bytes())  # one more image: another experiment
    with pytest.raises(ValueError, match="not what this experiment was made with"):
        load_unlearning_data(config, Sources(data_root=str(moved)))


def test_sources_are_absolute_and_official_splits_ignore_the_split_seed(tmp_path, monkeypatch, cifar_root):
    from cup_core.data import default_config, resolve_config

    monkeypatch.chdir(tmp_path)
    assert Sources(data_root="data", checkpoint="~/w.pt").data_root == str(tmp_path / "data")
    assert Sources(checkpoint="~/w.pt").checkpoint == str(Path("~/w.pt").expanduser())
    sources = Sources(data_root=str(cifar_root))
    configs = [resolve_config(replace(default_config("cifar10"), split_seed=seed), sources) for seed in (0, 7)]
    assert configs[0] == configs[1] and configs[0].split_seed == 0


