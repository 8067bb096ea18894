"""Seconds to compute the default experiment (digits, forget class 0: original, oracle, 21 CUP points)
from an empty cache, and a second pass from the warm cache. Target: under a minute on 2 CPU cores.
Run: .venv/bin/python bench/default_experiment.py"""

from __future__ import annotations

import tempfile
import time

from _common import save

from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep


def main() -> None:
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        experiment = Experiment(default_config("digits"), cache_dir)
        last = [time.perf_counter()]
        per_unit: list[tuple[str, float]] = []

        def on_progress(progress):
            if progress.done > len(per_unit):  # a unit finished (not a report from within one)
                now = time.perf_counter()
                per_unit.append((progress.label, now - last[0]))
                last[0] = now

        start = time.perf_counter()
        table = run_sweep(experiment, SweepPlan.default(), resolve_device("cpu"), on_progress)
        timings["cold_total_s"] = time.perf_counter() - start
        # The oracle trains beside the original where there are two cores (sweep._references): the two together.
        timings["references_s"] = per_unit[0][1] + per_unit[1][1]
        points = [seconds for _, seconds in per_unit[2:]]  # batched: the first point of a chunk carries its time
        timings["points"] = len(points)
        timings["mean_point_s"] = sum(points) / len(points)
        start = time.perf_counter()
        run_sweep(experiment, SweepPlan.default(), resolve_device("cpu"))
        timings["warm_total_s"] = time.perf_counter() - start
        trade_off = table[["value", "forget_acc", "retain_acc", "test_acc", "mia_efficacy", "avg_gap"]]
    print(f"default experiment from an empty cache: {timings['cold_total_s']:.1f} s "
          f"(original and oracle {timings['references_s']:.1f} s, "
          f"{timings['points']} points at {timings['mean_point_s']:.2f} s each); warm cache: {timings['warm_total_s']:.2f} s")
    print(trade_off.round(2).to_string(index=False))
    save("default_experiment", {"timings": timings, "trade_off": trade_off.round(3).to_dict("records")})


if __name__ == "__main__":
    main()
