"""Every method on the default experiment (digits, forget class 0), default grids, 3 seeds: seconds per point
and the hypervolume table. Writes bench/results/compare_methods.{json,md}; the README links the table."""

from __future__ import annotations

import sys
import tempfile
import time

from _common import RESULTS, save

from cup_core import METHODS, Experiment, SweepPlan, default_config, read_summary, resolve_device, run_sweep

POINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 21
SEEDS = (0, 1, 2)


def main() -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        experiment = Experiment(default_config("digits"), cache_dir)
        start = time.perf_counter()
        run_sweep(experiment, SweepPlan.default(tuple(METHODS), POINTS, SEEDS), resolve_device("cpu"))
        total = time.perf_counter() - start
        report = read_summary(experiment)
    rows = sorted(report["methods"].items(), key=lambda item: -item[1]["hypervolume"])
    lines = [f"Default experiment (digits, forget class 0, {experiment.config.unlearn.optimizer} lr "
             f"{experiment.config.unlearn.lr:g}, {experiment.config.unlearn.epochs} epochs), {POINTS} grid points per "
             f"method, seeds {list(SEEDS)}; hypervolume over (retain acc, UA), reference (0, 0), / 100².", "",
             "| method | knob | hypervolume (seed-averaged points) | per-seed mean ± std | ρ(knob, UA) | UA span | "
             "s / point |", "|---|---|---|---|---|---|---|"]
    for name, method in rows:
        rho = method["controllability"]["spearman_value_ua"]
        lines.append(f"| {method['label']} | {method['knob']} | {method['hypervolume']:.4f} | "
                     f"{method['hypervolume_mean']:.4f} ± {method['hypervolume_std']:.4f} | "
                     f"{'n/a' if rho is None else f'{rho:.2f}'} | {method['controllability']['ua_span']:.0f} | "
                     f"{method['mean_seconds']:.2f} |")
    table = "\n".join(lines)
    print(table)
    print(f"\nwhole sweep: {total:.0f} s for {len(METHODS) * POINTS * len(SEEDS)} points")
    (RESULTS / "compare_methods.md").write_text(table + "\n")
    save("compare_methods", {"points": POINTS, "seeds": list(SEEDS), "sweep_seconds": total,
                             "methods": {name: {k: v for k, v in m.items() if k != "table"} for name, m in rows}})


if __name__ == "__main__":
    main()
