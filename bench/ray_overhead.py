"""The Ray executor's overhead against the local one, on the same small sweep in one process.

Blobs, CUP, 11 intensities x 2 seeds (22 short points). Each executor computes the sweep into its own empty
cache; Ray's instance is started before its timing and shut down after it, and both are reported apart.

    .venv/bin/python bench/ray_overhead.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from _common import REPO, save


def main() -> None:
    import ray

    os.environ.pop("RAY_ADDRESS", None)  # the instance below is a new one on this machine, never a cluster named there

    from cup_core import Experiment, SweepPlan, SweepSettings, default_config, resolve_device, run_sweep

    RAY_CPU = SweepSettings(executor="ray", device="cpu")

    plan = SweepPlan.default(("cup",), 11, (0, 1))
    device = resolve_device("cpu")
    timings = {}
    with tempfile.TemporaryDirectory() as work:
        for executor in ("local", "ray"):
            experiment = Experiment(default_config("blobs"), Path(work) / executor)
            run_sweep(experiment, SweepPlan({"cup": (0.0,)}, (9,)), device)  # the references, outside the timing
            if executor == "ray":
                start = time.perf_counter()
                ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING",
                         runtime_env={"py_modules": [str(REPO / "cup_core")]})
                timings["ray_init_s"] = time.perf_counter() - start
            start = time.perf_counter()
            run_sweep(experiment, plan, device, settings=SweepSettings(executor=executor, device="cpu"))
            timings[f"{executor}_sweep_s"] = time.perf_counter() - start
            if executor == "ray":
                start = time.perf_counter()
                run_sweep(experiment, plan, device, settings=RAY_CPU)
                timings["ray_cached_rerun_s"] = time.perf_counter() - start
                # The same sweep of another forget class, on workers that have imported torch already.
                warm = Experiment(default_config("blobs", forget_class=3), Path(work) / executor)
                run_sweep(warm, SweepPlan({"cup": (0.0,)}, (9,)), device, settings=RAY_CPU)
                start = time.perf_counter()
                run_sweep(warm, plan, device, settings=RAY_CPU)
                timings["ray_warm_sweep_s"] = time.perf_counter() - start
                start = time.perf_counter()
                ray.shutdown()
                timings["ray_shutdown_s"] = time.perf_counter() - start
    points = len(plan.points())
    timings["points"] = points
    timings["ray_over_local"] = timings["ray_sweep_s"] / timings["local_sweep_s"]
    timings["ray_warm_over_local"] = timings["ray_warm_sweep_s"] / timings["local_sweep_s"]
    timings["ray_warm_overhead_per_point_s"] = (timings["ray_warm_sweep_s"] - timings["local_sweep_s"]) / points
    print(f"{points} blobs points: local {timings['local_sweep_s']:.1f} s, Ray {timings['ray_sweep_s']:.1f} s "
          f"({timings['ray_over_local']:.2f}x; starting the workers dominates), on warm workers "
          f"{timings['ray_warm_sweep_s']:.1f} s ({timings['ray_warm_over_local']:.2f}x, "
          f"{timings['ray_warm_overhead_per_point_s'] * 1e3:+.0f} ms per point); "
          f"ray.init {timings['ray_init_s']:.1f} s, shutdown {timings['ray_shutdown_s']:.1f} s, "
          f"cached rerun on Ray {timings['ray_cached_rerun_s']:.2f} s")
    save("ray_overhead", timings)


if __name__ == "__main__":
    main()
