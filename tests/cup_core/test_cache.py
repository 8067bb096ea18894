"""The cache: atomic writes, verified entries that recover from corruption, one computation per entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cup_core import cache
from cup_core.config import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]
KEY = {"experiment": "abc123", "method": "cup", "value": 0.5, "seed": 0}


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- atomic writes ---------------------------------------------------------------------------------


def test_atomic_write_creates_folders_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "deep" / "er" / "file.bin"
    cache.atomic_write_bytes(path, b"first")
    cache.atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert _leftovers(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_atomic_write_text_encodes_utf8(tmp_path):
    cache.atomic_write_text(tmp_path / "t.json", "γ = 0.5")
    assert (tmp_path / "t.json").read_bytes() == "γ = 0.5".encode()


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_write_keeps_the_old_content(tmp_path, monkeypatch, failure):
    path = tmp_path / "file.bin"
    cache.atomic_write_bytes(path, b"old content")

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(os, "replace", fail)  # the crash comes after the data was written and synced
    with pytest.raises(type(failure)):
        cache.atomic_write_bytes(path, b"new content that never lands")
    assert path.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


def test_failed_write_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    def fail(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        cache.atomic_write_bytes(tmp_path / "new.bin", b"data")
    assert list(tmp_path.iterdir()) == []


# --- cache_root ------------------------------------------------------------------------------------


def test_cache_root_prefers_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CUP_CACHE_DIR", str(tmp_path / "from-env"))
    assert cache.cache_root(tmp_path / "given") == (tmp_path / "given").resolve()
    assert cache.cache_root() == (tmp_path / "from-env").resolve()
    monkeypatch.delenv("CUP_CACHE_DIR")
    monkeypatch.chdir(tmp_path)
    assert cache.cache_root() == (tmp_path / "cache").resolve()


def test_tmp_cache_fixture_redirects_the_default_root(tmp_cache):
    assert cache.cache_root() == tmp_cache.resolve()


# --- ensure_entry ----------------------------------------------------------------------------------


class CountingCompute:
    """A compute callback that counts its calls and returns a small, recognisable state dict."""

    def __init__(self, value: float = 1.5):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        state = {"layer.weight": torch.full((3, 2), self.value), "layer.bias": torch.arange(3.0)}
        return state, {"metrics": {"forget_acc": 12.5}, "note": "γ"}


def _assert_valid(record, weights, key=KEY, value=1.5):
    assert record["schema"] == SCHEMA_VERSION and record["key"] == key
    assert record["metrics"] == {"forget_acc": 12.5} and record["note"] == "γ"
    assert torch.equal(weights["layer.weight"], torch.full((3, 2), value))
    assert torch.equal(weights["layer.bias"], torch.arange(3.0))


def test_ensure_entry_computes_once_then_reads(tmp_path):
    entry, compute = tmp_path / "entry", CountingCompute()
    record, weights, computed = cache.ensure_entry(entry, KEY, compute)
    assert computed and compute.calls == 1
    _assert_valid(record, weights)
    for _ in range(3):
        again, weights, computed = cache.ensure_entry(entry, KEY, compute)
        assert not computed
        assert again == record
        _assert_valid(again, weights)
    assert compute.calls == 1
    assert sorted(p.name for p in entry.iterdir()) == [cache.RECORD_FILE, cache.WEIGHTS_FILE]


def test_load_entry_of_a_missing_entry_is_broken(tmp_path):
    with pytest.raises(cache.BrokenEntry, match="not computed"):
        cache.load_entry(tmp_path / "nothing", KEY)


def _truncate_weights(entry: Path) -> None:
    path = entry / cache.WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[:20])


def _garbage_record(entry: Path) -> None:
    (entry / cache.RECORD_FILE).write_text("{ this is not json")


def _record_not_an_object(entry: Path) -> None:
    (entry / cache.RECORD_FILE).write_text("[1, 2, 3]")


def _edit_record(**changes):
    def edit(entry: Path) -> None:
        record = json.loads((entry / cache.RECORD_FILE).read_text())
        record.update(changes)
        (entry / cache.RECORD_FILE).write_text(json.dumps(record))
    return edit


def _remove(name: str):
    return lambda entry: (entry / name).unlink()


def _overwrite_weights_with_other_valid_weights(entry: Path) -> None:
    from safetensors.torch import save
    (entry / cache.WEIGHTS_FILE).write_bytes(save({"layer.weight": torch.zeros(3, 2), "layer.bias": torch.zeros(3)}))


CORRUPTIONS = {
    "truncated-weights": _truncate_weights,
    "garbage-record": _garbage_record,
    "record-not-an-object": _record_not_an_object,
    "wrong-schema": _edit_record(schema=SCHEMA_VERSION + 1),
    "no-schema": _edit_record(schema=None),
    "different-key": _edit_record(key={**KEY, "seed": 1}),
    "wrong-weights-hash": _edit_record(weights_sha256="0" * 64),
    "missing-weights": _remove(cache.WEIGHTS_FILE),
    "missing-record": _remove(cache.RECORD_FILE),
    "swapped-weights": _overwrite_weights_with_other_valid_weights,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_broken_entry_is_detected_and_recomputed(tmp_path, corrupt, caplog):
    entry, compute = tmp_path / "entry", CountingCompute()
    cache.ensure_entry(entry, KEY, compute)
    corrupt(entry)
    with pytest.raises(cache.BrokenEntry):
        cache.load_entry(entry, KEY)

    record, weights, computed = cache.ensure_entry(entry, KEY, compute)

    assert computed and compute.calls == 2
    _assert_valid(record, weights)
    _assert_valid(*cache.load_entry(entry, KEY))  # and it is valid on disk, not just in memory
    assert not cache.ensure_entry(entry, KEY, compute)[2]


def test_entry_holding_another_key_is_replaced_by_the_requested_one(tmp_path):
    entry = tmp_path / "entry"
    cache.ensure_entry(entry, KEY, CountingCompute(value=1.0))
    other_key, compute = {**KEY, "value": 0.75}, CountingCompute(value=2.0)
    record, weights, computed = cache.ensure_entry(entry, other_key, compute)
    assert computed and record["key"] == other_key
    _assert_valid(record, weights, key=other_key, value=2.0)
    with pytest.raises(cache.BrokenEntry, match="key"):
        cache.read_record(entry, KEY)


def test_stray_files_in_a_broken_entry_are_cleared(tmp_path):
    entry = tmp_path / "entry"
    entry.mkdir()
    (entry / "half-written.tmp").write_bytes(b"junk")
    _, _, computed = cache.ensure_entry(entry, KEY, CountingCompute())
    assert computed
    assert sorted(p.name for p in entry.iterdir()) == [cache.RECORD_FILE, cache.WEIGHTS_FILE]


def test_failing_compute_leaves_no_entry(tmp_path):
    entry = tmp_path / "entry"

    def compute():
        raise RuntimeError("training crashed")

    with pytest.raises(RuntimeError):
        cache.ensure_entry(entry, KEY, compute)
    with pytest.raises(cache.BrokenEntry):
        cache.load_entry(entry, KEY)
    assert cache.ensure_entry(entry, KEY, CountingCompute())[2]


def test_record_is_written_after_the_weights_and_names_their_hash(tmp_path):
    import hashlib

    entry = tmp_path / "entry"
    record, _, _ = cache.ensure_entry(entry, KEY, CountingCompute())
    assert record["weights_sha256"] == hashlib.sha256((entry / cache.WEIGHTS_FILE).read_bytes()).hexdigest()
    assert json.loads((entry / cache.RECORD_FILE).read_text()) == record


# --- concurrent writers ----------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    import torch

    from cup_core import cache

    entry, log = Path(sys.argv[1]), Path(sys.argv[2])
    key = {"experiment": "concurrent", "value": 0.5}

    def compute():
        with open(log, "a") as handle:  # one line per computation, whoever runs it
            handle.write("computed\\n")
        time.sleep(1.5)  # long enough for the other writer to arrive while this one holds the lock
        return {"w": torch.arange(6.0).reshape(2, 3)}, {"metrics": {"retain_acc": 99.0}}

    print("ready", flush=True)
    sys.stdin.readline()  # start together
    record, weights, computed = cache.ensure_entry(entry, key, compute)
    print(json.dumps({"record": record, "w": weights["w"].tolist(), "computed": computed}))
""")


@pytest.mark.slow
def test_concurrent_writers_compute_an_entry_once(tmp_path):
    entry, log = tmp_path / "cache" / "entry", tmp_path / "computations.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(entry), str(log)], cwd=REPO, env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(2)]
    try:
        for writer in writers:  # both have imported torch and cup_core
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        outputs = [writer.communicate(timeout=120) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    for writer, (_, stderr) in zip(writers, outputs):
        assert writer.returncode == 0, stderr
    results = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]

    assert log.read_text().splitlines() == ["computed"]
    assert sorted(result["computed"] for result in results) == [False, True]
    assert results[0]["record"] == results[1]["record"]
    assert results[0]["w"] == results[1]["w"] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


# --- what is cached: metadata, not bytes -------------------------------------------------------------


def test_is_cached_reads_no_weight_bytes_and_sees_a_truncated_file_by_its_size(tmp_path, monkeypatch):
    entry = tmp_path / "entry"
    cache.ensure_entry(entry, KEY, CountingCompute())

    def no_bytes(*args, **kwargs):
        raise AssertionError("the weights were read to say whether the entry is cached")

    monkeypatch.setattr(cache, "read_weight_bytes", no_bytes)
    assert cache.is_cached(entry, KEY)
    _truncate_weights(entry)
    assert not cache.is_cached(entry, KEY)  # the header declares more bytes than the file has


def test_same_size_damage_is_caught_by_the_hash_when_verified_and_when_loaded(tmp_path):
    entry = tmp_path / "entry"
    cache.ensure_entry(entry, KEY, CountingCompute())
    assert cache.is_cached(entry, KEY, verify_weights=True)
    weights = entry / cache.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one weight's last byte: same size, same header
    weights.write_bytes(bytes(data))
    assert cache.is_cached(entry, KEY)  # metadata cannot see it ...
    assert not cache.is_cached(entry, KEY, verify_weights=True)  # ... the hash does, and a load never trusts it
    with pytest.raises(cache.BrokenEntry, match="hash"):
        cache.load_entry(entry, KEY)


def test_a_record_failing_its_content_check_is_not_cached_and_is_recomputed(tmp_path):
    def needs_seconds(record):
        if not isinstance(record.get("seconds"), (int, float)):
            raise ValueError("seconds missing")

    entry, compute = tmp_path / "entry", CountingCompute()
    cache.ensure_entry(entry, KEY, lambda: (compute()[0], {"seconds": 1.0}), needs_seconds)
    assert cache.is_cached(entry, KEY, needs_seconds)
    record = json.loads((entry / cache.RECORD_FILE).read_text())
    del record["seconds"]
    (entry / cache.RECORD_FILE).write_text(json.dumps(record))
    assert cache.is_cached(entry, KEY) and not cache.is_cached(entry, KEY, needs_seconds)
    with pytest.raises(cache.BrokenEntry, match="incomplete"):
        cache.check_entry(entry, KEY, needs_seconds)
    assert cache.ensure_entry(entry, KEY, lambda: (compute()[0], {"seconds": 2.0}), needs_seconds)[2]


def test_nothing_is_written_or_deleted_through_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "points").symlink_to(outside, target_is_directory=True)
    entry = tmp_path / "cache" / "points" / "entry"
    with pytest.raises(cache.LinkInCache, match="symbolic link"):
        cache.ensure_entry(entry, KEY, CountingCompute())
    assert list(outside.iterdir()) == []
