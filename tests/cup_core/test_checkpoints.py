"""Users' own checkpoints: safetensors and weights-only .pt load, anything else is refused with a clear error."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from cup_core.checkpoints import load_checkpoint, load_state_dict_file
from cup_core.models import build_model


@pytest.fixture
def mlp_state():
    torch.manual_seed(0)
    return build_model("mlp", {"in_features": 2, "hidden": [16, 16], "num_classes": 5}).state_dict()


MLP_KWARGS = {"in_features": 2, "hidden": [16, 16], "num_classes": 5}


def test_safetensors_and_pt_round_trip(tmp_path, mlp_state):
    save_file(mlp_state, tmp_path / "w.safetensors")
    torch.save(mlp_state, tmp_path / "w.pt")
    torch.save({"state_dict": {f"module.{k}": v for k, v in mlp_state.items()}, "epoch": 3}, tmp_path / "wrapped.pt")
    for name in ("w.safetensors", "w.pt", "wrapped.pt"):
        model = load_checkpoint(tmp_path / name, "mlp", MLP_KWARGS)
        for key, tensor in model.state_dict().items():
            assert torch.equal(tensor, mlp_state[key]), name


def test_wrong_number_of_classes_says_so(tmp_path, mlp_state):
    save_file(mlp_state, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match=r"do not fit mlp \(is num_classes=10 right\?\).*net\.4\.weight \(5, 16\) vs \(10, 16\)"):
        load_checkpoint(tmp_path / "w.safetensors", "mlp", {**MLP_KWARGS, "num_classes": 10})
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(tmp_path / "w.safetensors", "small_cnn", {"num_classes": 5})


@pytest.mark.parametrize("dtype", [torch.bool, torch.int64, torch.uint8])
def test_weights_that_are_not_floating_point_are_refused_not_cast(tmp_path, mlp_state, dtype):
    state = {**mlp_state, "net.0.weight": mlp_state["net.0.weight"].to(dtype)}
    path = tmp_path / "odd.safetensors"
    save_file(state, str(path))
    with pytest.raises(ValueError, match=rf"tensor 'net.0.weight' holds {str(dtype)[6:]} values where mlp has "
                                         "floating-point weights"):
        load_checkpoint(path, "mlp", MLP_KWARGS)
    half = {**mlp_state, "net.0.weight": mlp_state["net.0.weight"].half()}  # a lower precision is still weights
    save_file(half, str(tmp_path / "half.safetensors"))
    load_checkpoint(tmp_path / "half.safetensors", "mlp", MLP_KWARGS)


def test_corrupt_and_unknown_files_are_refused(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 40)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "short.pt").write_bytes(b"")
    (tmp_path / "w.ckpt").write_bytes(b"")
    for name, message in (("bad.safetensors", "not a valid safetensors"), ("bad.pt", "refused by weights-only"),
                          ("short.pt", "not a readable|refused"),
                          ("w.ckpt", "unknown checkpoint type"), ("absent.pt", "no such checkpoint")):
        with pytest.raises(ValueError, match=message):
            load_state_dict_file(tmp_path / name)


class _Exploit:
    """A pickle that would create a file when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_damaged_checkpoint_whose_error_runs_over_several_lines_is_refused_in_one(tmp_path, mlp_state,
                                                                                      monkeypatch):
    """Some damage makes torch raise a message of several lines (a CI run met one among the 1,710 single-byte
    damages of tests/faults/test_hostile_inputs.py's small .pt; not reproduced in 16 runs here): refused in the
    message's first line."""
    path = tmp_path / "model.pt"
    torch.save(mlp_state, path)

    def damaged(*args, **kwargs):
        raise RuntimeError("PytorchStreamReader failed reading file data/0: invalid header\nException raised from "
                           "readRecord at caffe2/serialize/inline_container.cc:400")

    monkeypatch.setattr(torch, "load", damaged)
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint") as refused:
        load_state_dict_file(path)
    assert "\n" not in str(refused.value) and "invalid header" in str(refused.value)


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"weight": _Exploit(marker)}, handle)
    with pytest.raises(ValueError, match="refused by weights-only loading"):
        load_state_dict_file(tmp_path / "evil.pt")
    assert not marker.exists()




def test_a_checkpoint_is_hashed_once_while_it_stays_the_same(tmp_path, monkeypatch):
    """The CLI checks the sweep file, the inputs and the sweep: the file is read for its hash only once."""
    import hashlib

    from cup_core import _files
    from cup_core.checkpoints import file_sha256

    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"x" * 1000)
    reads = []
    real = hashlib.sha256
    monkeypatch.setattr(_files.hashlib, "sha256", lambda *args: reads.append(1) or real(*args))
    first = file_sha256(path)
    assert file_sha256(path) == first == real(b"x" * 1000).hexdigest() and len(reads) == 1
    path.write_bytes(b"y" * 1000)  # rewritten: another mtime (or inode), hashed again
    os.utime(path, ns=(1, 1))
    assert file_sha256(path) == real(b"y" * 1000).hexdigest() and len(reads) == 2
