"""The one place where the compute device is chosen; everything else receives it."""

from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterator

import torch

SMALL_MODEL_PARAMETERS = 1_000_000  # below this, and ...
SMALL_INPUT_ELEMENTS = 256  # ... below this per sample, CPU work on the model runs on one thread (see threads_for)


def resolve_device(name: str | None = None) -> torch.device:
    """'auto' or None: CUDA when present, else CPU. 'cpu', 'cuda' and 'cuda:N' are checked."""
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but no CUDA GPU is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported; use auto, cpu or cuda[:N]")
    if device.type == "cuda":
        # cuDNN's fastest convolution algorithms are chosen by timing and may sum in another order from run
        # to run; the deterministic ones let a config and seed give the same numbers again.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return device


_threads_lock = threading.Lock()
_threads_users = 0  # runs inside threads_for right now (app sessions are threads of one process)
_threads_before = 0  # the thread count to restore when the last of them leaves


def one_thread(parameters: int, device: torch.device, input_shape: tuple[int, ...] = ()) -> bool:
    """Whether threads_for runs such a model on one CPU thread: a small model on small inputs, on the CPU."""
    return (device.type == "cpu" and parameters < SMALL_MODEL_PARAMETERS
            and math.prod(input_shape) < SMALL_INPUT_ELEMENTS)


@contextlib.contextmanager
def threads_for(parameters: int, device: torch.device, input_shape: tuple[int, ...] = ()) -> Iterator[None]:
    """One CPU thread for small models on small inputs (blobs, digits): their ops are too small to split, and
    idle OpenMP threads that spin while another process holds the cores made a 20-step blob run 100 times
    slower (measured). Images such as MNIST's are worth splitting: a 28x28 step of the small CNN took 55 ms on
    one thread and 33 ms on two. Everything that trains a model runs under this, so that re-runs reproduce a
    sweep's numbers exactly. The setting is process-wide, so concurrent runs share it: the first sets it, the
    last restores it."""
    global _threads_users, _threads_before
    if not one_thread(parameters, device, input_shape):
        yield
        return
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)
