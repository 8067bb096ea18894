"""How close the New experiment page's cost estimate comes to the real run, at MNIST's size.

A synthetic MNIST (60,000 + 10,000 random 28x28 images whose brightness follows the label) is written in
MNIST's idx format; `estimate_cost` is timed, then the original, the oracle and one CUP point are computed
and each compared with its estimate.

    .venv/bin/python bench/cost_estimate.py     (about 4 minutes on 2 CPU cores)
"""

from __future__ import annotations

import struct
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import save


def write_mnist(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", 60000), ("t10k", 10000)):
        labels = rng.integers(0, 10, count)
        images = rng.integers(0, 40, (count, 28, 28)) + 20 * labels[:, None, None]
        for name, array, magic in ((f"{split}-images-idx3-ubyte", images, 2051),
                                   (f"{split}-labels-idx1-ubyte", labels, 2049)):
            header = struct.pack(">I", magic) + b"".join(struct.pack(">I", size) for size in array.shape)
            (raw / name).write_bytes(header + array.astype(np.uint8).tobytes())


def main() -> None:
    from cup_core import Experiment, SweepPlan, resolve_device, run_sweep
    from cup_core.config import Sources
    from cup_core.data import default_config, resolve_config
    from cup_core.cost import estimate_cost

    device = resolve_device("cpu")
    with tempfile.TemporaryDirectory() as work:
        write_mnist(Path(work) / "data")
        sources = Sources(data_root=str(Path(work) / "data"))
        experiment = Experiment(resolve_config(default_config("mnist"), sources), Path(work) / "cache")
        plan = SweepPlan({"cup": (1.0,)})
        start = time.perf_counter()
        estimate = estimate_cost(experiment, plan, device, sources)
        estimate_s = time.perf_counter() - start
        finished: dict[str, float] = {}
        last = [time.perf_counter()]

        def on_progress(progress) -> None:
            if progress.done > len(finished):  # a model finished (not a progress report within one)
                now = time.perf_counter()
                finished[progress.label] = now - last[0]
                last[0] = now

        run_sweep(experiment, plan, device, on_progress, sources=sources)
    actual_references = finished["original"] + finished["oracle"]
    actual_point = finished["cup 1 seed 0"]
    figures = {"estimate_took_s": estimate_s, "estimated_references_s": estimate.reference_seconds,
               "actual_references_s": actual_references, "estimated_point_s": estimate.point_seconds,
               "actual_point_s": actual_point}
    print(f"estimate took {estimate_s:.1f} s; original + oracle estimated {estimate.reference_seconds:.0f} s, took "
          f"{actual_references:.0f} s; one CUP point estimated {estimate.point_seconds:.1f} s, took {actual_point:.1f} s")
    save("cost_estimate", figures)


if __name__ == "__main__":
    main()
