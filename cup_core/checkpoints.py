"""A user's own trained weights: a state dict as .safetensors or .pt, loaded without ever running pickled code.

`.pt` files go through torch.load(weights_only=True), which refuses anything but tensors and plain
containers; a file that tries more is rejected with a clear error before anything runs.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ._files import GiB, check_regular, sha256_regular
from .errors import first_line
from .models import build_model

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".bin")
MAX_CHECKPOINT_BYTES = 64 * GiB  # far above any model this tool trains; a bound on what a hash reads


def file_sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256: what names a user's checkpoint in an experiment's config (its path does not). A FIFO
    or /dev/zero is refused, not read; the hash is remembered while the file stays the same."""
    return sha256_regular(path, "checkpoint", MAX_CHECKPOINT_BYTES)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Tensor]:
    """The tensors of a checkpoint file; ValueError says what is wrong with a bad one."""
    if not Path(path).exists():
        raise ValueError(f"{path}: no such checkpoint file")
    path = check_regular(path, "checkpoint", MAX_CHECKPOINT_BYTES)
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise ValueError(f"{path}: not a valid safetensors file ({err})") from None
    elif suffix in TORCH_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # torch's own message suggests weights_only=False, which would run the file's code: not repeated.
            raise ValueError(f"{path}: refused by weights-only loading: the file is damaged, or holds code or "
                             "objects besides tensors; save a plain state_dict or use .safetensors") from None
        except Exception as err:  # a damaged zip gives KeyError, AssertionError, RuntimeError, EOFError, ...
            raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: "
                             f"{first_line(err)})") from None
        if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]  # the common {"state_dict": ..., "epoch": ...} layout
    else:
        raise ValueError(f"{path}: unknown checkpoint type {suffix!r}; use .safetensors or .pt")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict (parameter name -> tensor)")
    odd = next(((name, kind) for name, tensor in state.items() if (kind := _unusual(tensor))), None)
    if odd is not None:
        raise ValueError(f"{path}: tensor {odd[0]!r} is {odd[1]}; save plain dense weights "
                         "(e.g. tensor.to_dense(), tensor.dequantize())")
    return {str(k).removeprefix("module."): v for k, v in state.items()}  # DataParallel prefixes


def _unusual(tensor: Tensor) -> str | None:
    """What makes a tensor other than plain dense weights with data (loading those into a model fails deep inside)."""
    if tensor.is_nested:  # its sizes cannot even be asked for ("NestedTensorImpl doesn't support sizes")
        return "a nested tensor (not dense)"
    if tensor.layout != torch.strided:
        return f"{str(tensor.layout).removeprefix('torch.')} (not dense)"
    if tensor.is_meta:
        return "a meta tensor (it holds no values)"
    if tensor.is_quantized:
        return f"quantized ({tensor.dtype})"
    if tensor.dtype.is_complex:
        return f"complex ({tensor.dtype})"
    return None


def load_checkpoint(path: str | os.PathLike, architecture: str, kwargs: dict[str, Any]) -> nn.Module:
    """The architecture with the checkpoint's weights, in eval mode; ValueError if they do not fit."""
    model = build_model(architecture, kwargs)
    state = load_state_dict_file(path)
    try:
        return _fitted(path, model, state, architecture, kwargs)
    except RuntimeError as err:  # torch's refusals of a tensor it cannot copy: a one-line ValueError naming the file
        raise ValueError(f"{path}: the weights cannot be loaded into {architecture} "
                         f"({first_line(err)[:200]})") from None


def _fitted(path: str | os.PathLike, model: nn.Module, state: dict[str, Tensor], architecture: str,
            kwargs: dict[str, Any]) -> nn.Module:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [f"{name} {tuple(state[name].shape)} vs {tuple(tensor.shape)}" for name, tensor in expected.items()
                  if name in state and state[name].shape != tensor.shape]
    if missing or unexpected or mismatched:
        hint = f" (is num_classes={kwargs['num_classes']} right?)" if mismatched and "num_classes" in kwargs else ""
        problems = [f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(unexpected[:5])}" if unexpected else "",
                    f"shape {'; '.join(mismatched[:5])}" if mismatched else ""]
        raise ValueError(f"{path}: the weights do not fit {architecture}{hint}: "
                         + "; ".join(p for p in problems if p))
    # load_state_dict would cast bool or integer tensors into the float weights without a word.
    not_float = next((name for name, tensor in expected.items()
                      if tensor.is_floating_point() and not state[name].is_floating_point()), None)
    if not_float is not None:
        raise ValueError(f"{path}: tensor {not_float!r} holds {str(state[not_float].dtype).removeprefix('torch.')} "
                         f"values where {architecture} has floating-point weights; save the model's own weights")
    model.load_state_dict(state)
    return model.eval()
