"""The one place where the compute device is chosen; everything else receives it."""

from __future__ import annotations

import torch


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
