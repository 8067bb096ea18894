"""Where the first open on an empty cache spends its time, beside bench/default_experiment.py's compute.

Two fresh processes, one after the other (run it twice to see the machine's noise):
1. the app's path: import streamlit and ui.components (what a fresh server's first page imports), then the
   first run of app.py through AppTest on an empty cache (computing the default experiment, then the
   page drawn from the cache), its script thread under cProfile: the time inside run_sweep, and the rest
   by function (AppTest's own wait and component scan, on its main thread, are outside the profile);
2. the benchmark's path: import cup_core, then run_sweep of the default experiment (bench/default_experiment.py).

Run: .venv/bin/python bench/first_open_profile.py [--top 25]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _common import REPO, save

APP = r"""
import cProfile, io, json, os, pstats, sys, time
start = time.perf_counter()
import streamlit, ui.components, torch
imported = time.perf_counter()
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest
profile = cProfile.Profile()
script_seconds = []
run_script = script_runner.ScriptRunner._run_script
def profiled(self, *args, **kwargs):  # the script runs on its own thread: profile that thread
    began = time.perf_counter()
    profile.enable()
    try:
        return run_script(self, *args, **kwargs)
    finally:
        profile.disable()
        script_seconds.append(time.perf_counter() - began)
script_runner.ScriptRunner._run_script = profiled
app = AppTest.from_file(%(app)r, default_timeout=3000)
begin = time.perf_counter()
app.run()
done = time.perf_counter()
assert not app.exception, app.exception
stats = pstats.Stats(profile)
def cumulative(name):
    return max((v[3] for k, v in stats.stats.items() if k[2] == name), default=0.0)
rows = sorted(((v[3], v[2], f"{os.path.relpath(k[0], %(repo)r) if k[0].startswith(%(repo)r) else os.path.basename(k[0])}:{k[1]}({k[2]})")
               for k, v in stats.stats.items()), reverse=True)
print(json.dumps({"import_s": imported - start, "first_run_s": done - begin, "run_sweep_s": cumulative("run_sweep"),
                  "script_runs_s": script_seconds,
                  "torch_threads": torch.get_num_threads(),
                  "top": [[round(c, 3), round(t, 3), where] for c, t, where in rows[:%(top)d]]}))
"""

BENCH = r"""
import json, time
start = time.perf_counter()
import torch
from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep
imported = time.perf_counter()
run_sweep(Experiment(default_config("digits"), %(cache)r), SweepPlan.default(), resolve_device("cpu"))
print(json.dumps({"import_s": imported - start, "run_sweep_s": time.perf_counter() - imported,
                  "torch_threads": torch.get_num_threads()}))
"""


def fresh(code: str, cache: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO), "CUP_CACHE_DIR": cache}).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--name", default="first_open_profile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as app_cache, tempfile.TemporaryDirectory() as bench_cache:
        app = fresh(APP % {"app": str(REPO / "app.py"), "repo": str(REPO) + "/", "top": args.top}, app_cache)
        bench = fresh(BENCH % {"cache": bench_cache}, bench_cache)
    rest = app["first_run_s"] - app["run_sweep_s"]
    print(f"app: import {app['import_s']:.1f} s, first run {app['first_run_s']:.1f} s (script runs "
          f"{', '.join(f'{s:.1f}' for s in app['script_runs_s'])} s) of which run_sweep {app['run_sweep_s']:.1f} s "
          f"and the rest {rest:.1f} s ({app['torch_threads']} torch threads)")
    print(f"benchmark: import {bench['import_s']:.1f} s, run_sweep {bench['run_sweep_s']:.1f} s "
          f"({bench['torch_threads']} torch threads)")
    print("cumulative s, own s, function (the app's first run):")
    for cumulative, own, where in app["top"]:
        print(f"  {cumulative:8.2f} {own:8.2f}  {where}")
    save(args.name, {"app": app, "benchmark": bench, "app_rest_s": rest})


if __name__ == "__main__":
    main()
