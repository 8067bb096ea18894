"""The batched engine against the sequential one on the default experiment (digits, CUP), same process;
the cost of a CUP step against a weighted-sum step; peak memory of the default sweep.

Targets from the speed issue: batched ≥ 4× faster at K = 21; CUP step ≤ 1.3 × WS step.

    .venv/bin/python bench/batched_sweep.py [--device cuda]     (results: batched_sweep[_cuda].json)"""

from __future__ import annotations

import argparse
import copy
import resource
import subprocess
import sys
import tempfile
import time

import torch
from _common import REPO, save
from torch.nn import functional as F

from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep
from cup_core.batched import unlearn_batched
from cup_core.data import load_unlearning_data
from cup_core.methods import get_method
from cup_core.training import unlearn

KS = (5, 11, 21, 41)


def clock() -> float:
    """perf_counter after the GPU's queued work is done, so that CUDA timings measure the work, not the queue."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def time_engines(experiment: Experiment, data, original) -> dict:
    figures = {}
    cup = get_method("cup")
    for k in KS:
        setups = [cup.setup(v, experiment.config.unlearn) for v in cup.grid(k)]
        start = clock()
        for procedure, recipe in setups:
            unlearn(copy.deepcopy(original), data.forget, data.retain, procedure, recipe, seed=0)
        sequential = clock() - start
        start = clock()
        unlearn_batched(copy.deepcopy(original), data.forget, data.retain, [p for p, _ in setups],
                        [r for _, r in setups], seed=0)
        batched = clock() - start
        figures[k] = {"sequential_s": sequential, "batched_s": batched, "speedup": sequential / batched}
        print(f"K = {k:2d}: sequential {sequential:6.2f} s, batched {batched:6.2f} s, "
              f"batched speedup {sequential / batched:.2f}×")
    return figures


def time_gradients(original, data, count: int = 21, repeats: int = 10) -> dict:
    """Seconds for `count` models' gradients of one batch: vmap(grad) over stacked weights against a loop."""
    from torch.func import functional_call, grad, vmap

    model = copy.deepcopy(original).train()
    x, y = data.retain.x[:64], data.retain.y[:64]
    stacked = {name: p.detach().unsqueeze(0).repeat(count, *[1] * p.dim()) for name, p in model.named_parameters()}
    batched = vmap(grad(lambda p, x, y: F.cross_entropy(functional_call(model, p, (x,)), y)), in_dims=(0, None, None))

    def loop():
        for _ in range(count):
            torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))

    timings = {}
    for name, run in (("vmap_grad", lambda: batched(stacked, x, y)), ("loop", loop)):
        run()
        start = clock()
        for _ in range(repeats):
            run()
        timings[f"{name}_ms"] = (clock() - start) / repeats * 1000
    print(f"{count} models' gradients of one batch: vmap {timings['vmap_grad_ms']:.1f} ms, loop {timings['loop_ms']:.1f} ms")
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
    for _ in range(5):  # interleaved repeats, median: the machine's noise hits all three alike
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


def peak_memory_of_default_sweep() -> float:
    """MiB: the peak resident set of a fresh process computing the default experiment from an empty cache."""
    with tempfile.TemporaryDirectory() as cache_dir:
        code = ("import resource, sys; sys.path.insert(0, %r)\n"
                "from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep\n"
                "run_sweep(Experiment(default_config('digits'), %r), SweepPlan.default(), resolve_device('cpu'))\n"
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)") % (str(REPO), cache_dir)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


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
        engines = time_engines(experiment, data, original)
        steps = time_steps(data, original)
        gradients = time_gradients(original, data)
    peak = peak_memory_of_default_sweep()
    print(f"peak memory of the default sweep (fresh process, CPU): {peak:.0f} MiB; torch threads {threads}; "
          f"this process's peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    figures = {"device": str(device), "engines": engines, "steps": steps, "gradients": gradients,
               "peak_memory_default_sweep_mib": peak, "torch_threads": threads}
    if device.type == "cuda":
        figures["peak_gpu_memory_mib"] = torch.cuda.max_memory_allocated() / 2**20
        print(f"peak GPU memory of these timings: {figures['peak_gpu_memory_mib']:.0f} MiB")
    save("batched_sweep" + ("_cuda" if device.type == "cuda" else ""), figures)


if __name__ == "__main__":
    main()
