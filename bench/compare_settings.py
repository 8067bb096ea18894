"""The method comparison on three settings, with calibrated grids (issue 12): blobs class 2, digits class 0 and
digits with a random 10 % forgotten; every method, 11 values x 3 seeds (calibration runs included). Prints and
saves, per setting, both hypervolumes with their bootstrap intervals, the calibration cost and the verdict
against CUP: bench/results/compare_settings.{json,md}; the README links the table.

    python bench/compare_settings.py [points] [seeds, e.g. 0,1,2]
"""

from __future__ import annotations

import sys
import tempfile
import time

from _common import RESULTS, save

from cup_core import METHODS, Experiment, SweepPlan, default_config, read_summary, resolve_device, run_sweep

POINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 11
SEEDS = tuple(int(s) for s in sys.argv[2].split(",")) if len(sys.argv) > 2 else (0, 1, 2)
SETTINGS = {
    "blobs, class 2": dict(dataset="blobs", forget_class=2),
    "digits, class 0": dict(dataset="digits", forget_class=0),
    "digits, random 10 %": dict(dataset="digits", forget_fraction=0.1),
}


def _interval(pair: list[float] | None, digits: int = 3) -> str:
    return "n/a" if pair is None else f"[{pair[0]:.{digits}f}, {pair[1]:.{digits}f}]"


def _calibration(method: dict) -> str:
    calibration = method["calibration"]
    if calibration is None:
        return "none needed"
    low, high = calibration["range"]
    return (f"{calibration['runs']} runs, {calibration['seconds']:.1f} s; [{low:.3g}, {high:.3g}]"
            f"{'' if calibration['status'] == 'calibrated' else ' (' + calibration['status'] + ')'}")


def _verdict(method: dict) -> str:
    versus = method["versus_cup"]
    if versus is None:
        return "(baseline)"
    return f"{versus['verdict']} {versus['difference']:+.3f} {_interval(versus['difference_ci95'])}"


def table(name: str, report: dict, seconds: float) -> str:
    norm = report["normalisation"]
    rows = sorted(report["methods"].values(), key=lambda m: -(m["hypervolume_normalised"] or 0.0))
    lines = [f"### {name}", "",
             f"{POINTS} values per method (calibration runs included), seeds {list(SEEDS)}, whole sweep {seconds:.0f} s. "
             f"Normalised space: ideal ({norm['ideal'][0]:.2f}, {norm['ideal'][1]:.2f}), nadir ({norm['nadir'][0]:.2f}, "
             f"{norm['nadir'][1]:.2f}), reference {norm['reference_normalised'][0]:.2f} normalised "
             f"= ({norm['reference'][0]:.2f}, {norm['reference'][1]:.2f}); the largest possible value is "
             f"{norm['reference_normalised'][0] ** 2:.2f}. Objectives: {', '.join(report['hypervolume']['objectives'])}."
             + (" Degenerate: one point dominates all others, so the nadir is the worst of the methods' own fronts."
                if norm.get("degenerate") else ""),
             "", "| method | normalised HV [95 %] | paper's HV [95 %] | UA span | moves | calibration | vs CUP "
             "(normalised, method − CUP) |", "|---|---|---|---|---|---|---|"]
    for method in rows:
        lines.append(f"| {method['label']} | {method['hypervolume_normalised']:.3f} "
                     f"{_interval(method['hypervolume_normalised_ci95'])} | {method['hypervolume']:.4f} "
                     f"{_interval(method['hypervolume_ci95'], 4)} | {method['controllability']['ua_span']:.1f} | "
                     f"{'yes' if method['moves'] else 'no'} | "
                     f"{_calibration(method)} | {_verdict(method)} |")
    return "\n".join(lines)


def main() -> None:
    device = resolve_device("cpu")
    sections, saved = [], {}
    for name, options in SETTINGS.items():
        with tempfile.TemporaryDirectory() as cache_dir:
            experiment = Experiment(default_config(**options), cache_dir)
            start = time.perf_counter()
            run_sweep(experiment, SweepPlan.default(tuple(METHODS), POINTS, SEEDS), device)
            seconds = time.perf_counter() - start
            report = read_summary(experiment)
        sections.append(table(name, report, seconds))
        print(sections[-1] + "\n", flush=True)
        saved[name] = {"sweep_seconds": seconds, "normalisation": report["normalisation"],
                       "methods": {key: {k: v for k, v in m.items() if k != "table"}
                                   for key, m in report["methods"].items()}}
    verdicts = {name: {key: (m["versus_cup"] or {}).get("verdict") for key, m in data["methods"].items()}
                for name, data in saved.items()}
    text = ("Method comparison with calibrated grids (`bench/compare_settings.py`); verdicts are the method's "
            "against CUP on the normalised hypervolume: win or loss when the paired bootstrap 95 % interval of the "
            "difference excludes 0, tie when it contains 0.\n\n" + "\n\n".join(sections) + "\n")
    (RESULTS / "compare_settings.md").write_text(text)
    save("compare_settings", {"points": POINTS, "seeds": list(SEEDS), "settings": saved, "verdicts": verdicts})


if __name__ == "__main__":
    main()
