"""Explore and Compare reruns on an experiment of ResNet-18 checkpoints beside the digits default, same run.

The ResNet-18 experiment (CIFAR-10's default model, `resnet18_cifar`, 11.2 M parameters, 44.7 MB per
checkpoint) is not trained here (one point takes ~42 min on these cores, bench/resnet18_cpu.py): its cache
entries are written directly, genuine ones of that size (a real ResNet-18 state dict with random weights,
each entry its own file, record and SHA-256 as a sweep writes them) with synthetic metrics. CUP has 21
intensities x 5 seeds (105 points), and the Compare page's other default methods 11 points each at seed 0 where
their grid needs no calibration (MGDA, NegGrad+, PCGrad; GA's and WS's come from calibration runs, not written
here): 140 entries with the original and the oracle, 6.3 GB. The digits default is computed for real, with the same
points: its CUP grid at the same five seeds, and the same Compare methods at seed 0 (calibrations included). So each
rerun does the same work on both, and the seed change to [0, 1] builds a new view on both (CUP's seed-1 points); a
run in which digits had CUP at seed 0 only compared ResNet-18's new view with digits' cached one.

Measured with AppTest (the server's whole-script rerun, as bench/explore_rerun.py; AppTest runs no fragment alone,
so the fallback slider's fragment rerun is at most this; each script compiled once, as a server does:
_common.compile_scripts_once): Explore after slider moves (the fallback path: every one of the 21 grid values
visited each pass, in an order where each move changes the value), Explore after a live scrubber's release (the
session marked live, as a browser's "ready" does: the page then draws the component, not the slider), Compare after
clicks on points (the selection a click sets), after a live scrubber's release (the session marked live; the
selection a release's callback sets) and after a change of seeds. Two passes, interleaved digits / ResNet-18;
percentiles over all samples of both passes (n is their count). Target: p95 <= 150 ms and <= 1.3x the digits
default's.
Run: .venv/bin/python bench/large_checkpoints.py [--moves 21] [--clicks 20] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import REPO, compile_scripts_once, save

COMPARE_METHODS = ("cup", "ga", "ws", "neggrad+", "mgda", "pcgrad")  # the Compare page's default methods
RESNET_SEEDS = (0, 1, 2, 3, 4)


def _metrics(rng: random.Random, classes: int, forget_class: int, strength: float) -> dict:
    forget = 100.0 * (1.0 - strength) * rng.uniform(0.9, 1.0)
    per_class = [rng.uniform(70, 95) for _ in range(classes)]
    per_class[forget_class] = forget
    return {"forget_acc": forget, "retain_acc": 95.0 - 10 * strength * rng.uniform(0.5, 1.0),
            "test_acc": 85.0 - 8 * strength * rng.uniform(0.5, 1.0), "forget_test_acc": forget * 0.9,
            "ua": 100.0 - forget, "mia_efficacy": 100.0 * strength * rng.uniform(0.7, 1.0), "per_class_acc": per_class}


def write_resnet_experiment(cache_dir: Path) -> tuple[object, int, float]:
    """The ResNet-18 experiment's entries written directly (see the module's docstring); (experiment, entries,
    bytes of checkpoints)."""
    import torch

    from cup_core import Experiment, SweepPlan, default_config
    from cup_core import cache
    from cup_core.methods import get_method

    experiment = Experiment(default_config("cifar10"), cache_dir)
    experiment.save_config()
    model = experiment.new_model(seed=0)
    classes, forget_class = experiment.info.num_classes, experiment.config.forget.forget_class
    rng = random.Random(0)
    generator = torch.Generator().manual_seed(0)

    def state() -> dict:
        return {name: torch.randn(tensor.shape, generator=generator) if tensor.is_floating_point() else tensor
                for name, tensor in model.state_dict().items()}

    written = 0
    for role in experiment.roles:
        cache.write_entry(experiment.reference_entry(role), experiment.reference_key(role), state(),
                          {"role": role, "metrics": _metrics(rng, classes, forget_class, 0.0 if role == "original" else 1.0),
                           "seconds": 3600.0, "device": "cuda", "torch": torch.__version__, "created": "synthetic"})
        written += 1
    plan_points = SweepPlan.default(("cup",), 21, RESNET_SEEDS).points()
    plan_points += SweepPlan.default(COMPARE_METHODS[1:], 11, (0,)).points()
    for method_name, value, seed in plan_points:
        method = get_method(method_name)
        grid = method.grid(21 if method_name == "cup" else 11)
        strength = grid.index(value) / (len(grid) - 1)  # where on its knob: how far the synthetic point forgot
        metrics = _metrics(rng, classes, forget_class, strength)
        payload = {"method": method_name, "knob": method.knob, "value": value, "seed": seed, "metrics": metrics,
                   "avg_gap": rng.uniform(1, 20), "seconds": 2500.0, "steps": 100, "diverged_at_step": None,
                   "recipe": {}, "engine": "synthetic", "device": "cuda", "torch": torch.__version__,
                   "created": "synthetic"}
        cache.write_entry(experiment.point_entry(method_name, value, seed),
                          experiment.point_key(method_name, value, seed), state(), payload)
        written += 1
    experiment.write_tables()
    size = sum(path.stat().st_size for path in experiment.root.rglob("*.safetensors"))
    return experiment, written, size


def compute_digits(cache_dir: Path):
    from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep

    experiment = Experiment(default_config("digits"), cache_dir)
    device = resolve_device("cpu")
    run_sweep(experiment, SweepPlan.default(("cup",), 21, RESNET_SEEDS), device)  # the points ResNet-18's has
    run_sweep(experiment, SweepPlan.default(COMPARE_METHODS, 11, (0,)), device)
    return experiment


def _percentiles(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"n": len(ordered), "p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[round(0.95 * (len(ordered) - 1))], "max_ms": 1000 * ordered[-1]}


def tour(values: list[float], start: float, moves: int) -> list[float]:
    """`moves` slider targets visiting every grid value (all of them when moves >= len(values)), none equal
    to the one before it: a stride coprime with the grid's length, from the value after `start`."""
    count = len(values)
    stride = next(k for k in range(count // 2 - 1, 0, -1) if math.gcd(k, count) == 1)
    at = values.index(start) if start in values else 0
    return [values[(at + stride * (move + 1)) % count] for move in range(moves)]


def measure(experiment_id: str, moves: int, clicks: int) -> dict:
    """Samples in seconds. Explore: slider moves (fallback) and releases (live); Compare: clicks on points (the
    selection a click sets), releases (live) and a seed change."""
    from streamlit.testing.v1 import AppTest

    from ui import components, scrubber

    explore = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    explore.query_params["experiment"] = experiment_id
    start = time.perf_counter()
    explore.run()
    first = time.perf_counter() - start
    assert not explore.exception, explore.exception
    slider = explore.select_slider(key=components.INTENSITY_KEY)
    values = [float(v) for v in slider.options]
    slider_seconds, visited = [], set()
    for value in tour(values, float(slider.value), moves):
        start = time.perf_counter()
        explore.select_slider(key=components.INTENSITY_KEY).set_value(value).run()
        slider_seconds.append(time.perf_counter() - start)
        assert not explore.exception, explore.exception
        visited.add(value)

    live = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    live.query_params["experiment"] = experiment_id
    live.session_state[scrubber.STATUS_KEY] = "ready"
    live.run()
    assert not live.exception and not live.select_slider, live.exception
    release_seconds = []
    for value in tour(values, float(live.session_state[components.INTENSITY_KEY]), moves):
        live.session_state[components.INTENSITY_KEY] = value  # what a release's callback sets
        start = time.perf_counter()
        live.run()
        release_seconds.append(time.perf_counter() - start)
        assert not live.exception, live.exception

    from cup_core.methods import get_method

    grid = [(method, v) for method in COMPARE_METHODS for v in (0.0, 0.5, 1.0)]
    selections = [(method, float(get_method(method).grid(11)[int(position * 10)]))  # (method, knob value) per click
                  for method, position in (grid[(click * 5) % len(grid)] for click in range(clicks))]

    compare = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    compare.query_params["experiment"] = experiment_id
    compare.switch_page("pages/compare.py").run()
    assert not compare.exception, compare.exception
    click_seconds = []
    for selected in selections:
        compare.session_state[components.SELECTED_KEY] = selected
        start = time.perf_counter()
        compare.run()
        click_seconds.append(time.perf_counter() - start)
        assert not compare.exception, compare.exception

    compare_live = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    compare_live.query_params["experiment"] = experiment_id
    compare_live.session_state[scrubber.STATUS_KEY] = "ready"
    compare_live.switch_page("pages/compare.py").run()
    assert not compare_live.exception, compare_live.exception
    live_seconds = []
    for selected in selections:
        compare_live.session_state[components.SELECTED_KEY] = selected  # a release's; the method picker follows
        start = time.perf_counter()
        compare_live.run()
        live_seconds.append(time.perf_counter() - start)
        assert not compare_live.exception, compare_live.exception
    seed_seconds = []
    for seeds in ([0, 1], [0]) * 2:  # seed 1: only CUP has it (in both experiments); the others' missing counted
        start = time.perf_counter()
        compare.multiselect(key="seeds").set_value(seeds).run()
        seed_seconds.append(time.perf_counter() - start)
        assert not compare.exception, compare.exception
    return {"first_open_s": first, "explore_values_visited": len(visited), "explore_slider": slider_seconds,
            "explore_live_release": release_seconds, "compare_click": click_seconds,
            "compare_live_release": live_seconds, "compare_seeds": seed_seconds}


PARTS = ("explore_slider", "explore_live_release", "compare_click", "compare_live_release", "compare_seeds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=21,
                        help="Explore slider moves (and live releases) per pass and experiment; >= 21 visits every value")
    parser.add_argument("--clicks", type=int, default=20, help="clicks on Compare per pass and experiment")
    parser.add_argument("--name", default="large_checkpoints", help="results file name (bench/results/NAME.json)")
    parser.add_argument("--keep", help="build the cache in this folder and keep it (reused when it is there)")
    args = parser.parse_args()
    compile_scripts_once()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cup-large-"))
    try:
        os.environ["CUP_CACHE_DIR"] = str(folder)
        start = time.perf_counter()
        digits = compute_digits(folder)
        print(f"digits default computed in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        from cup_core import Experiment, default_config

        resnet = Experiment(default_config("cifar10"), folder)
        if (resnet.root / "results.csv").exists():
            entries = sum(1 for _ in resnet.root.rglob("weights.safetensors"))
            size = sum(path.stat().st_size for path in resnet.root.rglob("*.safetensors"))
        else:
            resnet, entries, size = write_resnet_experiment(folder)
        print(f"ResNet-18 experiment: {entries} entries, {size / 1e9:.1f} GB of checkpoints "
              f"({time.perf_counter() - start:.0f} s to write)")
        figures = {"resnet18": {"experiment": resnet.id, "entries": entries, "checkpoint_bytes": size,
                                "written_directly": True}}
        # interleaved: digits, ResNet, digits, ResNet; percentiles over both passes' samples, each pass's too
        runs = {"digits": [], "resnet18": []}
        for _ in range(2):
            for name, experiment in (("digits", digits), ("resnet18", resnet)):
                runs[name].append(measure(experiment.id, args.moves, args.clicks))
        for name, passes in runs.items():
            figures[name] = {**figures.get(name, {}),
                             **{part: _percentiles([s for p in passes for s in p[part]]) for part in PARTS},
                             "passes": [{"first_open_s": p["first_open_s"],
                                         "explore_values_visited": p["explore_values_visited"],
                                         **{part: {**_percentiles(p[part]), "samples_ms": [round(1000 * s, 1)
                                                                                         for s in p[part]]}
                                            for part in PARTS}} for p in passes]}
        for part in PARTS:
            d, r = figures["digits"][part], figures["resnet18"][part]
            figures.setdefault("ratio_p50", {})[part] = r["p50_ms"] / d["p50_ms"]
            figures.setdefault("ratio_p95", {})[part] = r["p95_ms"] / d["p95_ms"]
            print(f"{part:20s} n {d['n']:3d} / {r['n']:3d} | digits p50 {d['p50_ms']:6.0f} ms p95 {d['p95_ms']:6.0f} ms "
                  f"| ResNet-18 p50 {r['p50_ms']:6.0f} ms p95 {r['p95_ms']:6.0f} ms | ratio p50 "
                  f"{figures['ratio_p50'][part]:.2f} p95 {figures['ratio_p95'][part]:.2f}")
        save(args.name, figures)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
