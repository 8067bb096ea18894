"""Hostile and broken inputs (issue 18's list, and issue 19's unreachable Ray cluster), each done for real: what
must come back is a clear one-line error, nothing lost, nothing outside the cache touched, no hang. Each kind
prints a summary line (see conftest.py)."""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from cup_core import Experiment, SweepPlan, SweepSettings, run_sweep
from cup_core import cache as cache_module
from cup_core.cli import main

from ..conftest import REPO, new_app
from ..cup_core import _stand_ins
from ..cup_core._experiments import CPU, tiny_config
from .conftest import record

SEQUENTIAL = SweepSettings(engine="sequential")

pytestmark = pytest.mark.faults

HANG_S = 120  # a case that has not answered by then hangs (each starts a Python that imports torch: ~10 s here)


def _cli(capsys, *args: str) -> tuple[int, str]:
    """(exit code, stderr) of the CLI run in this process."""
    try:
        code = main(list(args))
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    return code, capsys.readouterr().err


def _one_line(err: str, *fragments: str) -> bool:
    lines = [line for line in err.strip().splitlines() if not line.startswith("WARNING")]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err and \
        all(fragment in lines[0] for fragment in fragments)


def _subprocess(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh Python (a case that could hang, or that needs Ray not yet started)."""
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=HANG_S)


def _mnist(root: Path, train_labels: np.ndarray, test_labels: np.ndarray, shift: int = 0) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, labels in (("train", train_labels), ("t10k", test_labels)):
        images = (_stand_ins.pattern(labels, 1, 28).astype(np.int64) + shift) % 256
        _stand_ins._write_idx(raw / f"{prefix}-images-idx3-ubyte", images[:, 0])
        _stand_ins._write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


QUICK = ("--grid", "0,1", "--epochs", "1", "--device", "cpu", "--quiet")


# 1. Data identified by content --------------------------------------------------------------------------------

@pytest.mark.slow
def test_different_data_with_the_same_names_and_counts_is_another_experiment(tmp_path, capsys):
    from cup_core.config import Sources
    from cup_core.data import load_unlearning_data

    labels, test = np.arange(60) % 10, np.arange(30) % 10
    writers = {
        "mnist": (lambda root: _mnist(root, labels, test), lambda root: _mnist(root, (labels + 1) % 10, test, 1)),
        "imagefolder": (lambda root: _stand_ins.write_image_tree(root, (4, 4, 4)),
                        lambda root: _stand_ins.write_image_tree(root, (4, 4, 4), first_index=50)),
    }
    survived = 0
    for dataset, (first, second) in writers.items():
        root = tmp_path / dataset  # one data root whose files are replaced by others of the same names and counts
        extra = ("--image-size", "8", "--model", "small_cnn") if dataset == "imagefolder" else ()
        sweep = ("sweep", "--dataset", dataset, *extra, "--data-root", str(root), "--cache-dir",
                 str(tmp_path / "cache"), "--no-oracle", *QUICK)
        first(root)
        assert main(list(sweep)) == 0
        made = capsys.readouterr()
        shutil.rmtree(root)
        second(root)
        assert main(list(sweep)) == 0
        again = capsys.readouterr()
        one, other = Experiment.open(made.out.strip()), Experiment.open(again.out.strip())
        with pytest.raises(ValueError, match="content changed"):  # the first experiment, given the new files
            load_unlearning_data(one.config, Sources(data_root=str(root)))
        survived += (one.id != other.id and "(2 to compute)" in again.err
                     and f"changed since experiment {one.id}" in again.err and one.config.data_sha256 is not None)
    record("different data under the same names and counts (MNIST files, ImageFolder trees): another experiment, "
           "the changed root said so, the old experiment refuses the new files", len(writers), survived, 0)
    assert survived == len(writers)


def test_the_embedded_sets_keep_their_first_release_ids_and_content():
    """Embedded sets are made by the code from the split seed: no data hash in their config, so their ids stay;
    their content is pinned here instead (a scikit-learn that changed the digits would fail this)."""
    from cup_core.data import default_config, load_split

    train, test = load_split("digits", 0)
    digest = __import__("hashlib").sha256()
    for tensor in (train.x, train.y, test.x, test.y):
        digest.update(tensor.numpy().tobytes())
    assert default_config("digits").data_sha256 is None
    assert default_config("digits").experiment_id == "f01e27bb920a"
    assert digest.hexdigest()[:16] == DIGITS_CONTENT


DIGITS_CONTENT = "dd82963602a00ec7"  # SHA-256 (first 16 hex digits) of digits' split 0, as loaded


# 2. Special files, links, unbounded reads ---------------------------------------------------------------------

@pytest.mark.slow
def test_special_files_and_link_loops_are_refused_not_read(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    loop = tmp_path / "loop-tree"
    _stand_ins.write_image_tree(loop, (3, 3, 3))
    (loop / "cat" / "loop").symlink_to("..")
    (loop / "dog" / "out").symlink_to("/sys")
    idx = tmp_path / "idx"
    _mnist(idx, np.arange(60) % 10, np.arange(30) % 10)
    (idx / "MNIST" / "raw" / "t10k-images-idx3-ubyte").unlink()
    (idx / "MNIST" / "raw" / "t10k-images-idx3-ubyte").symlink_to("/dev/zero")
    self_loop = tmp_path / "self-loop"
    self_loop.symlink_to(self_loop)
    cases = {
        "checkpoint FIFO": (["--checkpoint", str(fifo)], "FIFO"),
        "checkpoint /dev/zero": (["--checkpoint", "/dev/zero"], "character device"),
        "forget indices /dev/zero": (["--forget-indices", "/dev/zero"], "character device"),
        "config /dev/zero": (["--config", "/dev/zero"], "character device"),
        "idx file linked to /dev/zero": (["--dataset", "mnist", "--data-root", str(idx)], "character device"),
        "data root /sys": (["--dataset", "imagefolder", "--image-size", "8", "--data-root", "/sys"], "error: "),
        "data root a link to itself": (["--dataset", "imagefolder", "--image-size", "8", "--data-root",
                                        str(self_loop)], "a link that loops"),
        "checkpoint a link to itself": (["--checkpoint", str(self_loop)], "a link that loops"),
    }
    survived = 0
    for kind, (args, expected) in cases.items():
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "cup_core", "sweep", *args, "--cache-dir", str(tmp_path / "c")],
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                              text=True, timeout=HANG_S)
        ok = done.returncode == 2 and _one_line(done.stderr, expected)
        survived += ok
        assert ok, (kind, done.stderr[-2000:], time.perf_counter() - start)
    loaded = _subprocess(f"from cup_core.vision import load_vision\n"
                         f"split = load_vision('imagefolder', {str(loop)!r}, image_size=8)\n"
                         f"print(len(split.train) + len(split.test))")
    survived += loaded.returncode == 0 and loaded.stdout.strip() == "9" and "links to folders" in loaded.stderr
    record("special files and links (FIFO and /dev/zero as checkpoint, index and sweep file; an idx file linked to "
           "/dev/zero; /sys as a data root; a data root and a checkpoint that link to themselves; a tree with "
           "cat/loop -> .. and a link to /sys): refused or skipped at once", len(cases) + 1, survived, 0)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "9", loaded.stderr[-2000:]


def test_the_new_pages_check_has_a_time_and_memory_limit(tmp_path):
    from cup_core.vision import load_vision, read_limits

    _stand_ins.write_image_tree(tmp_path / "tree", (4, 4, 4))
    refused = 0
    for seconds, memory, expected in ((0.0, 1 << 40, "longer than"), (3600, 1000, "of memory")):
        with read_limits(seconds, memory), pytest.raises(ValueError, match=expected):
            load_vision("imagefolder", tmp_path / "tree", image_size=8)
        refused += 1
    assert len(load_vision("imagefolder", tmp_path / "tree", image_size=8).train) > 0  # no limit outside
    record("the New page's Check past its time or memory limit: one-line refusal", 2, refused, 0)


# 3. One-line refusals instead of tracebacks --------------------------------------------------------------------

def _pt(path: Path, state: dict) -> Path:
    torch.save(state, path)
    return path


def test_bad_checkpoints_indices_and_budgets_fail_in_one_line(tmp_path, capsys):
    weights = Experiment(tiny_config()).new_model().state_dict()
    good = _pt(tmp_path / "good.pt", weights)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:-200])
    name = next(iter(weights))
    sparse = _pt(tmp_path / "sparse.pt", {**weights, name: weights[name].to_sparse()})
    meta = _pt(tmp_path / "meta.pt", {**weights, name: torch.empty(weights[name].shape, device="meta")})
    quantized = _pt(tmp_path / "quantized.pt", {**weights, name: torch.quantize_per_tensor(
        weights[name], 0.1, 0, torch.qint8)})
    npy = tmp_path / "huge.npy"
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }"
    npy.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117) + b"\n" + b"\0" * 16)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    blobs = ("sweep", "--dataset", "blobs", "--cache-dir", str(tmp_path / "cache"))
    cases = {
        "truncated .pt": ([*blobs, "--checkpoint", str(truncated)], "truncated.pt"),
        "sparse tensor": ([*blobs, "--checkpoint", str(sparse)], "not dense"),
        "meta tensor": ([*blobs, "--checkpoint", str(meta)], "meta tensor"),
        "quantized tensor": ([*blobs, "--checkpoint", str(quantized)], "quantized"),
        "145-byte .npy claiming 10^12 entries": ([*blobs, "--forget-indices", str(npy)], "declares"),
        "100,000 nested [ in a .json index file": ([*blobs, "--forget-indices", str(deep)], "nested too deeply"),
        "--max-memory infG": ([*blobs, "--max-memory", "infG"], "infG"),
        "--max-memory 1e400": ([*blobs, "--max-memory", "1e400"], "1e400"),
    }
    survived = 0
    for kind, (args, expected) in cases.items():
        code, err = _cli(capsys, *args)
        ok = code == 2 and _one_line(err, expected)
        survived += ok
        assert ok, (kind, err)
    assert not (tmp_path / "cache").exists()  # nothing ran, nothing written
    record("unusual checkpoints (truncated; sparse, meta, quantized tensors), a huge-header .npy, deeply nested "
           "JSON, infinite memory budgets: one line, nothing run", len(cases), survived, 0)


@pytest.mark.slow
def test_a_pt_file_damaged_anywhere_is_refused_in_one_line(tmp_path):
    """One byte overwritten (0x00 or 0xff) at every 5th position of a small .pt: the zip reader and the unpickler
    raise KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError, ... depending on where; each must
    come back as the one ValueError (or load: damage inside a tensor's bytes changes only its values, and the
    checkpoint's SHA-256 names the experiment)."""
    from cup_core.checkpoints import load_state_dict_file

    good = _pt(tmp_path / "good.pt", Experiment(tiny_config()).new_model().state_dict()).read_bytes()
    damaged, trials, survived = tmp_path / "damaged.pt", 0, 0
    for position in range(0, len(good), 5):
        for fill in (0x00, 0xFF):
            data = bytearray(good)
            data[position] = fill
            damaged.write_bytes(bytes(data))
            trials += 1
            try:
                load_state_dict_file(damaged)
            except ValueError as err:
                survived += "\n" not in str(err)
                continue
            except Exception as err:  # noqa: BLE001 - what this case is about
                pytest.fail(f"byte {position} = {fill:#x}: {type(err).__name__}: {err}")
            survived += 1
    record("a .pt damaged at one byte, at every 5th position: refused in one line (or loaded, when only a tensor's "
           "values changed)", trials, survived, 0)
    assert survived == trials


def test_the_new_pages_uploads_of_bad_files_are_one_line_refusals(tmp_cache):
    """The page shows a ValueError as an error box (test_new.py); these uploads raised other exceptions before."""
    from ui.services import new

    good = io.BytesIO()
    torch.save(Experiment(tiny_config()).new_model().state_dict(), good)
    damaged = good.getvalue()[:-200]
    header = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }"
    cases = {
        "truncated .pt": lambda: new.estimate(new.make_job(dict(  # the page's Check
            dataset="blobs", checkpoint=str(new.save_upload(bytes(damaged), "truncated.pt"))))),
        "huge-header .npy": lambda: new.read_index_upload(
            b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117) + b"\n", "huge.npy"),
        "deeply nested .json": lambda: new.read_index_upload(b"[" * 100_000, "deep.json"),
    }
    survived = 0
    for kind, upload in cases.items():
        with pytest.raises(ValueError) as refused:
            upload()
        survived += "\n" not in str(refused.value)
    record("bad uploads on the New page (a truncated .pt, a huge-header .npy, deeply nested JSON): ValueError, shown "
           "as the page's error", len(cases), survived, 0)
    assert survived == len(cases)


# 4. load_exported ---------------------------------------------------------------------------------------------

def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_load_exported_raises_one_error_type_and_allocates_nothing_first(tmp_path):
    from safetensors.torch import save

    from cup_core.export import CARD_FORMAT, load_exported

    weights = save(Experiment(tiny_config()).new_model().state_dict())

    def card(**kwargs) -> bytes:
        return json.dumps({"format": CARD_FORMAT, "architecture": "mlp",
                           "architecture_kwargs": {"in_features": 2, "hidden": [16, 16], "num_classes": 5, **kwargs}
                           }).encode()

    good = _zip({"model_card.json": card(), "model.safetensors": weights})
    corrupt = bytearray(good)
    start = good.index(b"model.safetensors") + len("model.safetensors")
    corrupt[start + 40:start + 400] = os.urandom(360)  # inside the deflated weights: zlib.error or a bad CRC
    stored = _zip({"model_card.json": card(), "model.safetensors": weights}, zipfile.ZIP_STORED)
    unsupported = bytearray(stored)
    header = unsupported.index(b"PK\x03\x04")
    unsupported[header + 8:header + 10] = struct.pack("<H", 97)  # compression method 97 (WavPack): unsupported
    central = unsupported.index(b"PK\x01\x02")
    unsupported[central + 10:central + 12] = struct.pack("<H", 97)
    encrypted = bytearray(stored)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = encrypted.index(signature)
        encrypted[position + offset] |= 1  # the "encrypted" flag
    (tmp_path / "folder.zip").mkdir()
    cases = {
        "zip bomb (50 MB of zeros as weights)": _zip({"model_card.json": card(), "model.safetensors": b"\0" * (50 << 20)}),
        "card hidden [100000, 100000]": _zip({"model_card.json": card(hidden=[100000, 100000]),
                                              "model.safetensors": weights}),
        "card num_classes 1e8": _zip({"model_card.json": card(num_classes=1e8), "model.safetensors": weights}),
        "card num_classes 10**8": _zip({"model_card.json": card(num_classes=10**8), "model.safetensors": weights}),
        "deeply nested card": _zip({"model_card.json": b"[" * 50_000, "model.safetensors": weights},
                                   zipfile.ZIP_STORED),
        "corrupt deflate data": bytes(corrupt),
        "unsupported compression": bytes(unsupported),
        "encrypted member": bytes(encrypted),
        "not a zip": b"hello",
        "a directory": tmp_path / "folder.zip",
        "/dev/zero": Path("/dev/zero"),
    }
    survived = 0
    for kind, source in cases.items():
        try:
            load_exported(source if isinstance(source, Path) else io.BytesIO(source))
        except ValueError as err:
            survived += "\n" not in str(err)
        except Exception as err:  # noqa: BLE001 - the point: anything else is a failure of this case
            pytest.fail(f"{kind}: {type(err).__name__}: {err}")
        else:
            pytest.fail(f"{kind}: loaded")
    assert load_exported(io.BytesIO(good))[1]["architecture"] == "mlp"
    record("hostile exported zips (a bomb, huge or deep cards, corrupt, unsupported, encrypted members, not a zip, "
           "a folder, a device): ValueError only, before allocating", len(cases), survived, 0)
    assert survived == len(cases)


# 8, 9, 12, 13. Seeds, empty sets, huge learning rates, unclear messages ----------------------------------------

def test_seeds_nan_settings_and_long_indices_get_clear_messages(tmp_path, capsys):
    (tmp_path / "inf.toml").write_text("dataset = 'blobs'\n[unlearn]\nmomentum = inf\n")
    (tmp_path / "nan.toml").write_text("dataset = 'blobs'\n[unlearn]\nweight_decay = nan\n")
    (tmp_path / "long.json").write_text("[" + "9" * 5000 + "]")
    (tmp_path / "long.txt").write_text("9" * 5000)
    blobs = ("sweep", "--dataset", "blobs", "--cache-dir", str(tmp_path / "cache"))
    cases = {
        "--seeds 2**63": ([*blobs, "--seeds", str(2**63)], "between 0 and"),
        "--split-seed 2**64": ([*blobs, "--split-seed", str(2**64)], "split seed"),
        "--forget-seed 2**63": ([*blobs, "--forget-fraction", "0.1", "--forget-seed", str(2**63)], "forget seed"),
        "--forget-fraction nan": ([*blobs, "--forget-fraction", "nan"], "forget fraction must be a finite number"),
        "momentum = inf": (["sweep", "--config", str(tmp_path / "inf.toml")], "momentum must be a finite number"),
        "weight_decay = nan": (["sweep", "--config", str(tmp_path / "nan.toml")], "weight decay must be a finite"),
        "5000-digit index in .json": ([*blobs, "--forget-indices", str(tmp_path / "long.json")], "long.json"),
        "5000-digit index in .txt": ([*blobs, "--forget-indices", str(tmp_path / "long.txt")], "long.txt"),
    }
    survived = 0
    for kind, (args, expected) in cases.items():
        code, err = _cli(capsys, *args)
        ok = code == 2 and _one_line(err, expected) and "JSON compliant" not in err
        survived += ok
        assert ok, (kind, err)
    with pytest.raises(ValueError, match="between 0 and"):
        SweepPlan({"cup": (0.5,)}, (2**63,))
    record("seeds beyond 2**32 - 1, NaN and infinite settings, 5000-digit indices: a message naming the setting or "
           "the file", len(cases), survived, 0)


def test_the_largest_seed_keeps_its_points_visible(tmp_path):
    experiment = Experiment(tiny_config(), tmp_path)
    results = run_sweep(experiment, SweepPlan({"cup": (0.0, 1.0)}, (2**32 - 1,)), CPU)
    reread = experiment.results()
    ok = len(results) == 2 and reread["seed"].dtype.kind == "i" and set(reread["seed"]) == {2**32 - 1}
    record("the largest seed allowed: results.csv keeps integer seeds", 1, int(ok), 2 - len(reread))
    assert ok


@pytest.mark.slow
def test_a_forgotten_class_without_test_images_and_empty_sets(tmp_path, capsys):
    root = _mnist(tmp_path / "data", np.arange(60) % 10, 1 + np.arange(30) % 9)  # no test image of class 0
    tables = {}
    for engine in ("batched", "sequential"):
        code, err = _cli(capsys, "sweep", "--dataset", "mnist", "--data-root", str(root), "--engine", engine,
                         "--cache-dir", str(tmp_path / engine), "--no-oracle", *QUICK)
        assert code == 0, err
        tables[engine] = next((tmp_path / engine).glob("*/results.csv")).read_text()
    same = tables["batched"].split("\n")[0] == tables["sequential"].split("\n")[0]
    import pandas as pd

    batched, sequential = (pd.read_csv(next((tmp_path / e).glob("*/results.csv"))) for e in ("batched", "sequential"))
    columns = ["forget_acc", "retain_acc", "test_acc", "mia_efficacy"]
    same = same and np.allclose(batched[columns], sequential[columns], atol=1e-6) and \
        batched["forget_test_acc"].isna().all()
    empty = _mnist(tmp_path / "no-class-9", np.arange(60) % 9, np.arange(30) % 9)
    code, err = _cli(capsys, "sweep", "--dataset", "mnist", "--data-root", str(empty), "--forget-class", "9",
                     "--cache-dir", str(tmp_path / "empty"), *QUICK)
    refused = code == 2 and _one_line(err, "forget set is empty") and not (tmp_path / "empty").exists()
    record("a forgotten class without test images on the batched engine (as the sequential one), and an empty "
           "forget set refused before anything trains", 2, int(same) + int(refused), 0)
    assert same and refused, err


@pytest.mark.slow
def test_huge_learning_rates_are_recorded_as_diverged(tmp_path, capsys):
    survived = 0
    for engine in ("sequential", "batched"):
        code, err = _cli(capsys, "sweep", "--dataset", "blobs", "--methods", "ga", "--grid", "3e38,1e30",
                         "--engine", engine, "--epochs", "2", "--no-oracle", "--device", "cpu", "--quiet",
                         "--cache-dir", str(tmp_path / engine))
        results = Experiment.open(next((tmp_path / engine).glob("*/config.json")).parent).results() \
            if code == 0 else None
        survived += code == 0 and len(results) == 2 and results["diverged_at_step"].notna().all()
    record("learning rates of 1e30 and 3e38 on either engine: the sweep finishes, the points recorded as diverged",
           2, survived, 0)
    assert survived == 2


@pytest.mark.slow
def test_an_experiment_deleted_while_its_sweep_runs_comes_back_whole(tmp_path):
    from cup_core.experiment import list_experiments

    experiment = Experiment(tiny_config(), tmp_path)
    deleted, listed = [], []

    def delete_once(progress) -> None:
        if progress.done == 3 and not deleted:  # the references and the first point are on disk
            experiment.delete()
            deleted.append(progress.label)
        elif progress.done == 4:  # the next point is written: the app sees the experiment again, mid-sweep
            listed.extend(item.experiment.id for item in list_experiments(tmp_path))

    run_sweep(experiment, SweepPlan({"cup": (0.0, 0.5, 1.0)}), CPU, delete_once, SEQUENTIAL)
    ok = bool(deleted) and (experiment.root / "config.json").is_file() and listed == [experiment.id]
    record("an experiment deleted while its sweep runs: the sweep's next entry brings its config back, the app lists "
           "it", 1, int(ok), 0)
    assert ok


def test_an_experiment_deleted_then_cancelled_mid_point_is_listed_and_can_be_deleted(tmp_path, monkeypatch):
    from cup_core import sweep
    from cup_core.experiment import list_experiments

    monkeypatch.setattr(sweep, "PULSE_S", 0.0)  # every step reports, so the cancel lands inside a point
    experiment = Experiment(tiny_config(), tmp_path)

    class Cancelled(Exception):
        pass

    deleted = []

    def delete_then_cancel(progress) -> None:
        if progress.done == 3 and not deleted:  # the references and the first point are on disk
            experiment.delete()
            deleted.append(progress.label)
        elif ": step" in progress.label and not experiment.root.joinpath("config.json").exists():
            raise Cancelled(progress.label)  # inside the next point, its lock taken: nothing but locks there

    with pytest.raises(Cancelled):
        run_sweep(experiment, SweepPlan({"cup": (0.0, 0.5, 1.0)}), CPU, delete_then_cancel, SEQUENTIAL)
    listed = [item.experiment.id for item in list_experiments(tmp_path)]
    if listed:
        Experiment.open(experiment.root).delete()
    ok = listed == [experiment.id] and not experiment.root.exists()
    record("an experiment deleted while its sweep runs, the sweep then cancelled inside a point: listed with its "
           "config, and deleted from there", 1, int(ok), 0)
    assert ok, listed


# 10. export --out ----------------------------------------------------------------------------------------------

def test_export_refuses_anything_but_a_regular_file_or_a_new_path(tmp_path, capsys):
    experiment = Experiment(tiny_config(), tmp_path / "cache")
    run_sweep(experiment, SweepPlan({"cup": (0.5,)}), CPU)
    fifo = tmp_path / "pipe.zip"
    os.mkfifo(fifo)
    target = tmp_path / "elsewhere.zip"
    target.write_bytes(b"keep me")
    link = tmp_path / "link.zip"
    link.symlink_to(target)
    (tmp_path / "folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    cases = {"FIFO": (fifo, "not a regular file"), "symlink": (link, "a symlink"),
             "directory": (tmp_path / "folder", "is a folder"), "below a file": (tmp_path / "a-file" / "x.zip",
                                                                                 "cannot write")}
    survived = 0
    for kind, (out, expected) in cases.items():
        code, err = _cli(capsys, "export", str(experiment.root), "--value", "0.5", "--out", str(out))
        ok = code == 2 and _one_line(err, expected) and "cache" not in err
        survived += ok
        assert ok, (kind, err)
    untouched = fifo.is_fifo() and link.is_symlink() and target.read_bytes() == b"keep me"
    code, _ = _cli(capsys, "export", str(experiment.root), "--value", "0.5", "--out", str(tmp_path / "new.zip"))
    record("export --out on a FIFO, a symlink, a folder, below a file: refused, each left as it was", len(cases),
           survived if untouched and code == 0 else 0, 0)
    assert untouched and code == 0


# 11. Names as text ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["[click me](http:evil.example)", "![p](http:evil.example)"])
def test_class_folder_names_are_shown_as_text_not_markdown(tmp_cache, tmp_path, name):
    from ..ui.test_new import _check, _widget

    tree = tmp_path / "tree"
    _stand_ins.write_image_tree(tree, (3, 3, 1))  # the third class has 1 image: the check names it
    (tree / "fish").rename(tree / name)
    app = new_app()
    app.switch_page("pages/new.py").run()
    app.selectbox(key="new_dataset").set_value("imagefolder").run()
    _widget(app, "new_data_root").set_value(str(tree))
    app = _check(app.run())
    message = app.error[0].value if app.error else ""
    shown = not app.exception and name.replace("[", "\\[").replace("]", "\\]") in message
    record(f"a class folder named {name!r}: shown as text in the page's error", 1, int(shown), 0)
    assert shown, message


# Memory-heavy decoding ---------------------------------------------------------------------------------------

def _compressed_mat(path: Path, images: int, double: bool = False) -> None:
    """A MATLAB v5 file of X (32, 32, 3, images) and y (images, 1), uint8 (or double), each one zlib-compressed
    element, written a megabyte at a time (scipy's savemat would hold the whole array, and more, in memory)."""
    matlab_class, data_type, item_size = (6, 9, 8) if double else (9, 2, 1)
    with open(path, "wb") as file:
        file.write(b"MATLAB 5.0 MAT-file".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM")
        for name, shape in ((b"X", (32, 32, 3, images)), (b"y", (images, 1))):
            size = int(np.prod(shape)) * item_size
            dims = struct.pack("<II", 5, 4 * len(shape)) + struct.pack(f"<{len(shape)}i", *shape)
            dims += b"\0" * (-len(dims) % 8)
            head = (struct.pack("<IIII", 6, 8, matlab_class, 0) + dims  # array flags (class), dimensions
                    + struct.pack("<HH", 1, len(name)) + name.ljust(4, b"\0")  # the name, a small element
                    + struct.pack("<II", data_type, size))  # the data's tag
            compressor, parts = zlib.compressobj(1), []
            parts.append(compressor.compress(struct.pack("<II", 14, len(head) + size + -size % 8) + head))
            block = b"\1" * (1 << 20)
            for start in range(0, size, len(block)):
                parts.append(compressor.compress(block[:min(len(block), size - start)]))
            parts.append(compressor.compress(b"\0" * (-size % 8)) + compressor.flush())
            data = b"".join(parts)
            file.write(struct.pack("<II", 15, len(data)) + data)

@pytest.mark.slow
def test_files_declaring_huge_sizes_are_refused_before_decoding(tmp_path):
    from cup_core.vision import load_vision

    cifar = tmp_path / "cifar"
    _stand_ins.write_cifar10(cifar)
    batch = cifar / "cifar-10-batches-py" / "data_batch_1"

    class Declared:  # pickles as numpy.ndarray((400000, 3072), 'u1'): an allocation of a declared shape
        def __reduce__(self):
            return np.ndarray, ((400_000, 3072), "u1")

    with open(batch, "wb") as file:
        pickle.dump({"data": Declared(), "labels": [0] * 400_000}, file, protocol=2)
    svhn = tmp_path / "svhn"
    _stand_ins.write_svhn(svhn)
    _compressed_mat(svhn / "train_32x32.mat", 400_000)  # 1.2 GB of images once inflated, 1.2 MB on disk
    survived = 0
    for name, root, expected in (("cifar10", cifar, "refused"), ("svhn", svhn, "declares")):
        start = time.perf_counter()
        with pytest.raises(ValueError, match=expected):
            load_vision(name, root)
        survived += time.perf_counter() - start < 30
    assert batch.stat().st_size < 1 << 20
    record("an 800 KB CIFAR batch claiming 400,000 images, a compressed SVHN .mat of 1.2 MB inflating to 1.2 GB: ValueError "
           "from the declared sizes", 2, survived, 0)
    assert survived == 2


def test_an_svhn_file_whose_images_are_not_uint8_is_refused_from_its_header(tmp_path, monkeypatch):
    import scipy.io

    from cup_core.vision import load_vision

    svhn = tmp_path / "svhn"
    _stand_ins.write_svhn(svhn)
    _compressed_mat(svhn / "train_32x32.mat", 500, double=True)  # eight bytes a pixel: the size check alone passes it

    def decoded(*args, **kwargs):
        raise AssertionError("the file was decoded before its declared class was checked")

    monkeypatch.setattr(scipy.io, "loadmat", decoded)
    with pytest.raises(ValueError, match="no uint8 array X"):
        load_vision("svhn", svhn)
    record("an SVHN .mat whose X is declared double (eight times the bytes the size check allows): ValueError from "
           "the header, nothing decoded", 1, 1, 0)


# Issue 19: a Ray cluster that cannot be reached ----------------------------------------------------------------

@pytest.mark.slow
def test_an_unreachable_ray_cluster_is_named_and_keeps_finished_points(tmp_path, capsys):
    pytest.importorskip("ray")
    cache_dir = tmp_path / "cache"
    args = ["--dataset", "blobs", "--grid", "0,0.5,1", "--epochs", "2", "--device", "cpu", "--quiet",
            "--cache-dir", str(cache_dir)]
    assert main(["sweep", *args[:3], "0,1", *args[4:]]) == 0  # two of the three points are finished
    folder = Path(capsys.readouterr().out.strip())
    before = sorted(p.name for p in (folder / "points").iterdir() if p.is_dir())
    with socket.socket() as probe:  # a port where nothing listens, on this machine only
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cup_core", "sweep", *args, "--executor", "ray", "--ray-address",
                           address], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=HANG_S)
    seconds = time.perf_counter() - start
    line = done.stderr.strip().splitlines()[-1]
    experiment = Experiment.open(folder)
    kept = all(cache_module.is_valid(folder / "points" / name, experiment.point_key("cup", value, 0))
               for name, value in zip(before, (0.0, 1.0)))
    ok = (done.returncode == 1 and line.startswith("error: cannot reach a Ray cluster at " + address)
          and "ray status" in line and "ray start --head" in line and "auth token" in line
          and "cannot write to the cache" not in done.stderr and kept
          and sorted(p.name for p in (folder / "points").iterdir() if p.is_dir()) == before)
    record(f"a Ray address where nothing listens: named in one line with what to check ({seconds:.0f} s, Python's "
           "start included), finished points kept", 1, int(ok), 0 if kept else len(before))
    assert ok, done.stderr[-3000:]


@pytest.mark.slow  # two Pythons that import torch and Ray
def test_ray_address_from_the_environment_and_a_listener_that_is_not_ray(tmp_path, capsys):
    """RAY_ADDRESS naming a dead port (no --ray-address), and --ray-address at a TCP server (on 127.0.0.1) that
    accepts and never answers: each named in one line with what to check, within the connection time-out."""
    pytest.importorskip("ray")
    cache_dir = tmp_path / "cache"
    args = ["--dataset", "blobs", "--grid", "0,0.5,1", "--epochs", "2", "--device", "cpu", "--quiet",
            "--cache-dir", str(cache_dir)]
    assert main(["sweep", *args[:3], "0,1", *args[4:]]) == 0
    folder = Path(capsys.readouterr().out.strip())
    before = sorted(p.name for p in (folder / "points").iterdir() if p.is_dir())
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        dead_address = f"127.0.0.1:{dead.getsockname()[1]}"
    silent = socket.socket()  # listens, accepts (the kernel's backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent_address = f"127.0.0.1:{silent.getsockname()[1]}"
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"} | {"PYTHONPATH": str(REPO)}
    cases = [("RAY_ADDRESS naming a port where nothing listens, no --ray-address",
              [], {"RAY_ADDRESS": dead_address}, f"error: cannot reach a Ray cluster at {dead_address} "
                                                 "(from RAY_ADDRESS) (nothing listens there); "),
             ("`--ray-address` at a TCP server on 127.0.0.1 that is not Ray (accepts, never answers)",
              ["--ray-address", silent_address], {}, f"error: Ray did not answer at {silent_address} within 5 s; ")]
    with silent:
        for kind, extra, extra_env, expected in cases:
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "cup_core", "sweep", *args, "--executor", "ray", *extra],
                                  cwd=REPO, env=env | extra_env, capture_output=True, text=True, timeout=HANG_S)
            seconds = time.perf_counter() - start
            line = done.stderr.strip().splitlines()[-1]
            experiment = Experiment.open(folder)
            kept = all(cache_module.is_valid(folder / "points" / name, experiment.point_key("cup", value, 0))
                       for name, value in zip(before, (0.0, 1.0)))
            ok = (done.returncode == 1 and line.startswith(expected) and "ray status" in line
                  and "ray start --head" in line and "auth token" in line and "/tmp/ray" not in line
                  and "cannot write to the cache" not in done.stderr and kept
                  and sorted(p.name for p in (folder / "points").iterdir() if p.is_dir()) == before)
            record(f"{kind}: named in one line with what to check ({seconds:.0f} s, Python's start included), "
                   "finished points kept", 1, int(ok), 0 if kept else len(before))
            assert ok, done.stderr[-3000:]
