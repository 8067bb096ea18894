"""The one place where the compute device is chosen; everything else receives it."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

SMALL_MODEL_PARAMETERS = 1_000_000  # below this, CPU work on the model runs on one thread (see threads_for)


def resolve_device(name: str | None = None) -> torch.device:
    """'auto' or None: CUDA when present, else CPU. 'cpu', 'cuda' and 'cuda:N' are checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported; use auto, cpu or cuda[:N]")
    return device


@contextlib.contextmanager
def threads_for(model: nn.Module, device: torch.device) -> Iterator[None]:
    """One CPU thread for small models: their ops are too small to split, and idle OpenMP threads that
    spin while another process holds the cores made a 20-step blob run 100 times slower (measured).
    Everything that trains a model runs under this, so that re-runs reproduce a sweep's numbers exactly."""
    small = device.type == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    previous = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if small:
            torch.set_num_threads(previous)
