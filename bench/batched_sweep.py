"""The batched engine against the sequential one on the default experiment (digits, CUP), same process;
the cost of a CUP step against a weighted-sum step; memory of the default sweep, whole and chunked.

Targets from the speed issue: batched ≥ 4× faster at K = 21; CUP step ≤ 1.3 × WS step.

    .venv/bin/python bench/batched_sweep.py [--device cuda]     (results: batched_sweep[_cuda].json)"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext

import torch
from _common import REPO, save
from torch.nn import functional as F

import cup_core.device
from cup_core import Experiment, SweepPlan, SweepSettings, default_config, resolve_device, run_sweep
from cup_core.batched import bytes_per_point, chunk_size, loss_gradients
from cup_core.data import load_unlearning_data
from cup_core.methods import get_method

KS = (5, 11, 21, 41)
REPEATS = 3  # interleaved, median: this machine's noise hits every engine alike


def clock() -> float:
    """perf_counter after the GPU's queued work is done, so that CUDA timings measure the work, not the queue."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


@contextmanager
def every_thread():
    """The sequential engine as if the thread policy gave small models every core (it gives them one)."""
    saved = cup_core.device.SMALL_MODEL_PARAMETERS, cup_core.device.SMALL_INPUT_ELEMENTS
    cup_core.device.SMALL_MODEL_PARAMETERS = cup_core.device.SMALL_INPUT_ELEMENTS = 0
    try:
        yield
    finally:
        cup_core.device.SMALL_MODEL_PARAMETERS, cup_core.device.SMALL_INPUT_ELEMENTS = saved


def time_sweeps(experiment: Experiment, device: torch.device) -> dict:
    """Whole sweeps of K CUP points (unlearning, evaluation, cache writes) from a cache holding only the
    reference models, each engine as `run_sweep` runs it."""
    runs = {"sequential": ("sequential", False), "batched": ("batched", False)}
    if device.type == "cpu":
        runs["sequential_every_thread"] = ("sequential", True)
    figures = {}
    for k in KS:
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(REPEATS):
            for name, (engine, all_threads) in runs.items():
                shutil.rmtree(experiment.root / "points", ignore_errors=True)
                with every_thread() if all_threads else nullcontext():
                    start = clock()
                    run_sweep(experiment, SweepPlan.default(points=k), device, settings=SweepSettings(engine=engine))
                    samples[name].append(clock() - start)
        row = {f"{name}_s": sorted(values)[len(values) // 2] for name, values in samples.items()}
        row["speedup"] = row["sequential_s"] / row["batched_s"]
        figures[k] = row
        extra = (f", sequential on every thread {row['sequential_every_thread_s']:.2f} s"
                 if "sequential_every_thread_s" in row else "")
        print(f"K = {k:2d}: sweep sequential {row['sequential_s']:5.2f} s, batched {row['batched_s']:5.2f} s: "
              f"{row['speedup']:.2f}× faster batched{extra}")
    return figures


def time_gradients(original, data, device: torch.device, count: int = 21, repeats: int = 10) -> dict:
    """ms for `count` models' gradients of one forget and one retain batch (a step's two gradients): the
    stacked layer chain (the engine's path), vmap over functional_call, and a loop over the models."""
    model = copy.deepcopy(original).train()
    xf, yf, xr, yr = data.forget.x[:32], data.forget.y[:32], data.retain.x[:32], data.retain.y[:32]
    params = {name: p.detach().unsqueeze(0).repeat(count, *[1] * p.dim()) for name, p in model.named_parameters()}
    l1 = torch.zeros(count, device=device)

    class Opaque(torch.nn.Module):  # not a layer chain: the engine takes vmap for it
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, x):
            return self.inner(x)

    opaque = {f"inner.{name}": value for name, value in params.items()}
    stacked_f, stacked_r = (loss_gradients(model, params, sign, False, xf[:1]) for sign in (-1.0, 1.0))
    vmap_f, vmap_r = (loss_gradients(Opaque(), opaque, sign, False, xf[:1]) for sign in (-1.0, 1.0))

    def loop():
        for _ in range(count):
            torch.autograd.grad(-F.cross_entropy(model(xf), yf), list(model.parameters()))
            torch.autograd.grad(F.cross_entropy(model(xr), yr), list(model.parameters()))

    candidates = {"stacked": lambda: (stacked_f(params, xf, yf, l1), stacked_r(params, xr, yr, l1)),
                  "vmap": lambda: (vmap_f(opaque, xf, yf, l1), vmap_r(opaque, xr, yr, l1)), "loop": loop}
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(5):
        for name, run in candidates.items():
            run()
            start = clock()
            for _ in range(repeats):
                run()
            samples[name].append((clock() - start) / repeats * 1000)
    timings = {f"{name}_ms": sorted(values)[2] for name, values in samples.items()}
    print(f"{count} models' two gradients of one step (threads {torch.get_num_threads()}): stacked "
          f"{timings['stacked_ms']:.1f} ms, vmap {timings['vmap_ms']:.1f} ms, loop {timings['loop_ms']:.1f} ms")
    return timings


def time_steps(data, original, steps: int = 200) -> dict:
    """Seconds per step: CUP (two gradients, as our loop computes them) against the cheapest weighted sum
    (one backward of w·L_f + L_r) and against weighted sum through our loop (two gradients, combined)."""
    cup = get_method("cup").procedure(0.5).rule
    ws = get_method("ws").procedure(1.0).rule
    model = copy.deepcopy(original).train()
    params = list(model.parameters())
    xf, yf, xr, yr = data.forget.x[:32], data.forget.y[:32], data.retain.x[:32], data.retain.y[:32]

    def two_gradients(rule):
        forget_loss = -F.cross_entropy(model(xf), yf)
        retain_loss = F.cross_entropy(model(xr), yr)
        g_f = torch.cat([g.reshape(-1) for g in torch.autograd.grad(forget_loss, params)])
        g_r = torch.cat([g.reshape(-1) for g in torch.autograd.grad(retain_loss, params)])
        return rule(g_forget=g_f, g_retain=g_r)

    def one_forward(rule):
        """The issue's suggestion: one forward over both batches, then a gradient per loss. Each backward now
        runs over both batches' rows (the other loss's rows carry zeros), so it costs more than it saves."""
        logits = model(torch.cat([xf, xr]))
        forget_loss = -F.cross_entropy(logits[:len(xf)], yf)
        retain_loss = F.cross_entropy(logits[len(xf):], yr)
        g_f = torch.cat([g.reshape(-1) for g in torch.autograd.grad(forget_loss, params, retain_graph=True)])
        g_r = torch.cat([g.reshape(-1) for g in torch.autograd.grad(retain_loss, params)])
        return rule(g_forget=g_f, g_retain=g_r)

    def one_backward():
        loss = -F.cross_entropy(model(xf), yf) + F.cross_entropy(model(xr), yr)
        return torch.autograd.grad(loss, params)

    timings = {}
    candidates = (("cup", lambda: two_gradients(cup)), ("ws_two_gradients", lambda: two_gradients(ws)),
                  ("ws_one_backward", one_backward), ("cup_one_forward", lambda: one_forward(cup)))
    samples = {name: [] for name, _ in candidates}
    for _ in range(5):  # interleaved repeats, median: the machine's noise hits all of them alike
        for name, step in candidates:
            for _ in range(10):
                step()
            start = clock()
            for _ in range(steps):
                step()
            samples[name].append((clock() - start) / steps)
    for name, values in samples.items():
        timings[name] = sorted(values)[len(values) // 2]
    timings["cup_over_ws_one_backward"] = timings["cup"] / timings["ws_one_backward"]
    timings["cup_over_ws_two_gradients"] = timings["cup"] / timings["ws_two_gradients"]
    timings["cup_one_forward_over_ws_one_backward"] = timings["cup_one_forward"] / timings["ws_one_backward"]
    print(f"step: CUP {timings['cup'] * 1e3:.2f} ms, WS one backward {timings['ws_one_backward'] * 1e3:.2f} ms "
          f"(ratio {timings['cup_over_ws_one_backward']:.2f}), WS through the loop "
          f"{timings['ws_two_gradients'] * 1e3:.2f} ms (ratio {timings['cup_over_ws_two_gradients']:.2f}); CUP with one "
          f"forward over both batches {timings['cup_one_forward'] * 1e3:.2f} ms "
          f"(ratio {timings['cup_one_forward_over_ws_one_backward']:.2f})")
    return timings


def sweep_in_a_fresh_process(engine: str, max_memory: int | None = None) -> dict:
    """Peak resident memory (MiB) and seconds of a fresh process computing the default experiment from an
    empty cache, on CPU; with `max_memory`, the batched engine's chunks are bounded by it."""
    memory = "" if max_memory is None else f", max_memory={max_memory}"
    with tempfile.TemporaryDirectory() as cache_dir:
        code = ("import resource, sys, time; sys.path.insert(0, %r)\n"
                "from cup_core import Experiment, SweepPlan, SweepSettings, default_config, resolve_device, run_sweep\n"
                "start = time.perf_counter()\n"
                "run_sweep(Experiment(default_config('digits'), %r), SweepPlan.default(), resolve_device('cpu'),"
                " settings=SweepSettings(engine=%r%s))\n"
                "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
                ) % (str(REPO), cache_dir, engine, memory)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, peak = out.strip().splitlines()[-1].split()
    return {"seconds": float(seconds), "peak_mib": int(peak) / 1024}


def memory_figures(experiment: Experiment) -> dict:
    model, recipe, shape = experiment.new_model(), experiment.config.unlearn, experiment.info.input_shape
    per_point = bytes_per_point(model, recipe, shape)
    budget = 8 * per_point  # a --max-memory that fits 8 points: the 21 go as 8 + 8 + 5
    figures = {"estimated_bytes_per_point": per_point, "chunked_budget_bytes": budget,
               "chunked_points_per_chunk": chunk_size(model, recipe, shape, budget)}
    for name, engine, memory in (("batched", "batched", None), ("sequential", "sequential", None),
                                 ("batched_chunked", "batched", budget)):
        figures[name] = sweep_in_a_fresh_process(engine, memory)
        print(f"default sweep in a fresh process, {name.replace('_', ' ')}: {figures[name]['seconds']:.1f} s, "
              f"peak memory {figures[name]['peak_mib']:.0f} MiB")
    print(f"(the engine estimates {per_point / 2**20:.1f} MiB per point; --max-memory {budget / 2**20:.0f}M gives "
          f"chunks of {figures['chunked_points_per_chunk']})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    device = resolve_device(parser.parse_args().device)
    with tempfile.TemporaryDirectory() as cache_dir:
        experiment = Experiment(default_config("digits"), cache_dir)
        run_sweep(experiment, SweepPlan({"cup": (0.5,)}), device)
        data = load_unlearning_data(experiment.config).to(device)
        original = experiment.load_reference_model("original").to(device)
        threads = torch.get_num_threads()
        sweeps = time_sweeps(experiment, device)
        with experiment.threads(device, models=21):
            gradients = time_gradients(original, data, device)
        with experiment.threads(device):
            steps = time_steps(data, original)
        memory = memory_figures(experiment) if device.type == "cpu" else {}
    figures = {"device": str(device), "sweeps": sweeps, "gradients": gradients, "steps": steps, "memory": memory,
               "torch_threads": threads}
    if device.type == "cuda":
        figures["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        print(f"peak GPU memory of these timings: {figures['peak_gpu_memory_mib']:.0f} MiB")
    save("batched_sweep" + ("_cuda" if device.type == "cuda" else ""), figures)


if __name__ == "__main__":
    main()
