"""What a user waits for in Chromium (Playwright) on the digits default, against `streamlit run app.py`.

1. First open on an empty cache (a fresh server): page open to the first progress bar, to the first bar that
   counts models, to the first frame without it (the models computed) and to the frontier drawn where the
   user sees it (the fallback's chart is drawn too, hidden while the live scrubber loads); beside the same work
   as bench/default_experiment.py measures it (run_sweep of the default experiment in a fresh process, cold
   cache), run just before each open; five such pairs by default (one run's pairs ranged from 1.33x to 1.62x),
   their medians and each pair's ratio.
2. Warm, the live scrubber (what a browser that can run it gets): key press on its thumb
   (`.cup-explore [role=slider]`, ArrowLeft / ArrowRight) to the redrawn page (the frame after its heading
   shows the new intensity), and key press to the server's rerun, seen as the URL's change (the scrubber
   sends the value 350 ms after the last key of a burst, then Python reruns and writes the URL); p50 / p95
   over 20 steps, timed in the page (performance.now()).
3. Warm, the fallback (plotly.min.js route-aborted, as tests/ui/test_browser_scrub_fallback.py does, on a
   server of its own): key press on Streamlit's slider to the redrawn page (the heading and the per-class
   chart's legend show the new intensity and nothing is stale); one st.fragment reruns per step. Timed in the
   page as the live scrubber's steps are (the key's event time to the frame after the page shows it), and, as
   this benchmark first did, from Python around Playwright's calls (their round trips included).

Targets: progress within 2 s, frontier within 1.5x the benchmark's compute, key step p50 <= 150 ms.
Run: .venv/bin/python bench/browser_latency.py [--steps 20] [--opens 5] [--skip-first-open] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import REPO, save

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

COMPUTE = """
import time
start = time.perf_counter()
from cup_core import Experiment, SweepPlan, default_config, resolve_device, run_sweep
imported = time.perf_counter()
run_sweep(Experiment(default_config("digits"), %r), SweepPlan.default(), resolve_device("cpu"))
done = time.perf_counter()
print(imported - start, done - imported)
"""


def benchmark_compute(cache_dir: Path) -> dict:
    """bench/default_experiment.py's figure (run_sweep from an empty cache), and the import before it."""
    out = subprocess.run([sys.executable, "-c", COMPUTE % str(cache_dir)], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True).stdout.split()
    return {"import_s": float(out[0]), "compute_s": float(out[1])}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(cache_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env={**os.environ, "CUP_CACHE_DIR": str(cache_dir)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("streamlit did not start")


# In the page, from before its scripts run: calls `check` at each change of the page (a MutationObserver on the
# whole document, its text and attributes included); returns what stops it. What WATCH and FALLBACK_WATCH share.
ON_PAGE_CHANGE = """(check) => {
  const observer = new MutationObserver(check);
  const start = () => observer.observe(document.documentElement,
      {childList: true, subtree: true, characterData: true, attributes: true});
  if (document.documentElement) start(); else document.addEventListener('readystatechange', start, {once: true});
  return () => observer.disconnect();
}"""

# In the page: when each milestone first held, in ms since navigation start (performance.now()): the frame that
# first shows it, found at each change of the page (ON_PAGE_CHANGE) and timed at the next animation frame. A
# requestAnimationFrame loop polled every frame until this round: it made Chromium draw 60 frames a second, 0.03 to
# 0.05 of a core taken from the models it timed (/proc, a page that only shows a bar).
WATCH = """() => {
  const m = window.__milestones = {};
  const framed = (name) => {  // the frame that shows what the page holds now
    if (!(name in m)) { m[name] = null; requestAnimationFrame(() => { m[name] = performance.now(); }); }
  };
  const check = () => {
    const bars = [...document.querySelectorAll('[data-testid="stProgress"]')];
    if (bars.length) framed('progress');
    if (bars.some(b => /\\d+\\/\\d+ models/.test(b.textContent))) framed('counting');
    if (!bars.length && 'counting' in m) framed('computed');  // the first frame without the models' bar
    // A drawn point the user can see: the fallback's chart is drawn too, hidden while the live scrubber loads.
    if ([...document.querySelectorAll('.js-plotly-plot .scatterlayer .point')]
        .some(point => point.getClientRects().length)) { framed('frontier'); stop(); }
  };
  const stop = (%s)(check);
}""" % ON_PAGE_CHANGE


def first_open(browser, steps_url: str | None = None) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        process, url = serve(Path(folder))
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.add_init_script(f"({WATCH})()")
            page.goto(url, wait_until="commit")
            page.wait_for_function("() => window.__milestones && typeof window.__milestones.frontier === 'number'",
                                   timeout=600_000, polling=100)
            milestones = page.evaluate("() => window.__milestones")
            page.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    return {name: milestones.get(name, float("nan")) / 1000
            for name in ("progress", "counting", "computed", "frontier")}


REDRAWN = """([value]) => {
  const heading = [...document.querySelectorAll('h3')].some(h => h.innerText.trim() === 'γ = ' + value);
  const legend = [...document.querySelectorAll('.legendtext')].some(t => t.textContent === 'CUP γ=' + value);
  return heading && legend && !document.querySelector('[data-stale="true"]')
         && !document.querySelector('[data-testid="stStatusWidget"]');
}"""


def _summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"steps": len(ordered), "p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[round(0.95 * (len(ordered) - 1))], "max_ms": 1000 * ordered[-1]}


# In the page, from before its scripts run: each key press's time and the frame after the page shows its value
# redrawn (REDRAWN, checked at each change of the page once the slider shows the value the key chose).
FALLBACK_WATCH = """() => {
  window.__step = null;
  const redrawn = (%s);
  const slider = () => document.querySelector('[data-testid="stSlider"] input[type="range"]');
  document.addEventListener('keydown', (e) => {
    const s = window.__step = {down: e.timeStamp, before: slider() && slider().getAttribute('aria-valuetext'),
                               value: null, drawn: null};
    const chosen = () => {
      const now = slider() && slider().getAttribute('aria-valuetext');
      if (now && now !== s.before) { s.value = now; check(); } else setTimeout(chosen, 1);
    };
    setTimeout(chosen, 0);
  }, true);
  const check = () => {
    const s = window.__step;
    if (s && s.value !== null && s.drawn === null && !s.pending && redrawn([s.value])) {
      s.pending = true;
      requestAnimationFrame((t) => { s.drawn = t; });
    }
  };
  (%s)(check);
}""" % (REDRAWN, ON_PAGE_CHANGE)


def fallback_key_steps(browser, cache_dir: Path, steps: int) -> dict:
    """The fallback's slider (Streamlit's, in one fragment), plotly.min.js blocked so the scrubber never goes live:
    key press to the redrawn page timed in the page, as the live scrubber's is (`in_page`), and as this benchmark
    first timed it, from Python around Playwright's calls, which adds their round trips (`harness`)."""
    process, url = serve(cache_dir)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1400})
        context.route(re.compile(r".*plotly\.min\.js.*"), lambda route: route.abort())
        context.add_init_script(f"({FALLBACK_WATCH})()")
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(url)
        page.get_by_text("Live scrubbing is not available here").wait_for()
        page.wait_for_selector(".js-plotly-plot .scatterlayer .point")
        assert page.locator(".cup-explore [role=slider]").count() == 0
        thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
        slider = "document.querySelector('[data-testid=\"stSlider\"] input[type=\"range\"]')"
        page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
        page.wait_for_timeout(1000)
        seconds, in_page, direction = [], [], "ArrowLeft"
        low, high = thumb.get_attribute("min"), thumb.get_attribute("max")
        for step in range(steps + 2):  # two warm-up steps
            before = page.evaluate(f"() => {slider}.value")
            if before == (low if direction == "ArrowLeft" else high):
                direction = "ArrowRight" if direction == "ArrowLeft" else "ArrowLeft"
            thumb.focus()
            start = time.perf_counter()
            page.keyboard.press(direction)
            page.wait_for_function(f"b => {slider}.value !== b", arg=before, polling="raf")
            value = page.evaluate(f"() => {slider}.getAttribute('aria-valuetext')")
            page.wait_for_function(REDRAWN, arg=[value], polling="raf")
            elapsed = time.perf_counter() - start
            page.wait_for_function("() => window.__step && window.__step.drawn !== null", polling="raf")
            watched = page.evaluate("() => window.__step")
            assert watched["value"] == value, (watched, value)
            if step >= 2:
                seconds.append(elapsed)
                in_page.append((watched["drawn"] - watched["down"]) / 1000)
            page.wait_for_timeout(300)  # a user's pace between key presses
        context.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"in_page": _summary(in_page), "harness": _summary(seconds)}


# In the page, from before its scripts run: each key press's time, the frame after the live heading changes,
# and the first frame at which the URL differs from what it was at the key press.
LIVE_WATCH = """() => {
  window.__step = null;
  document.addEventListener('keydown', (e) => {
    window.__step = {down: e.timeStamp, search: location.search, drawn: null, url: null, urlSearch: null};
  }, true);
  const poll = (t) => {
    const s = window.__step;
    if (s && s.url === null && location.search !== s.search) { s.url = t; s.urlSearch = location.search; }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
  const watch = () => {
    const heading = document.querySelector('.cup-explore .cup-heading');
    if (!heading) return setTimeout(watch, 50);
    new MutationObserver(() => {
      const s = window.__step;
      if (s && s.drawn === null) requestAnimationFrame((t) => { if (s.drawn === null) s.drawn = t; });
    }).observe(heading, {childList: true, characterData: true, subtree: true});
  };
  watch();
}"""
THUMB = ".cup-explore [role=slider]"


def live_key_steps(browser, cache_dir: Path, steps: int) -> dict:
    """The live scrubber: key press to the redrawn page, and to the server's rerun (the URL's change)."""
    process, url = serve(cache_dir)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.set_default_timeout(120_000)
        page.add_init_script(f"({LIVE_WATCH})()")
        page.goto(url)
        thumb = page.locator(THUMB)
        thumb.wait_for()
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stSlider\"]') && "
                               "!document.querySelector('[data-testid=\"stStatusWidget\"]')")  # the live page
        page.wait_for_timeout(1000)
        recommended = thumb.get_attribute("aria-valuenow")  # no intensity in the URL: the default value
        low, high = thumb.get_attribute("aria-valuemin"), thumb.get_attribute("aria-valuemax")
        drawn, rerun, direction = [], [], "ArrowLeft"
        for step in range(steps + 2):  # two warm-up steps
            before = thumb.get_attribute("aria-valuenow")
            if before == (low if direction == "ArrowLeft" else high):
                direction = "ArrowRight" if direction == "ArrowLeft" else "ArrowLeft"
            thumb.focus()
            page.keyboard.press(direction)
            page.wait_for_function("() => window.__step && window.__step.drawn !== null", polling="raf")
            value = thumb.get_attribute("aria-valuenow")
            # the URL names a value unless it is the default, which the page leaves out
            page.wait_for_function("() => window.__step.url !== null", polling="raf")
            page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")
            result = page.evaluate("() => window.__step")
            wanted = None if value == recommended else f"{float(value):g}"
            named = dict(part.split("=", 1) for part in result["urlSearch"].lstrip("?").split("&") if "=" in part)
            assert named.get("intensity") == wanted, (result, value)
            if step >= 2:
                drawn.append((result["drawn"] - result["down"]) / 1000)
                rerun.append((result["url"] - result["down"]) / 1000)
            page.wait_for_timeout(300)  # a user's pace between key presses
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "browser_latency.png"), full_page=True)
        page.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"drawn": _summary(drawn), "server_rerun_url": _summary(rerun)}


def first_opens(browser, opens: int) -> tuple[dict, dict]:
    """`opens` pairs, each the benchmark's compute in a fresh process then a first open on an empty cache; the
    medians, and each pair's ratio (the compute's own time moves by a quarter between runs on this machine)."""
    computes, cold = [], []
    for _ in range(opens):
        with tempfile.TemporaryDirectory() as folder:
            computes.append(benchmark_compute(Path(folder)))
        cold.append(first_open(browser))
        cold[-1]["frontier_over_compute"] = cold[-1]["frontier"] / computes[-1]["compute_s"]
        print(f"bench/default_experiment.py's work in a fresh process: import {computes[-1]['import_s']:.1f} s, "
              f"compute {computes[-1]['compute_s']:.1f} s; first open on an empty cache: a progress bar at "
              f"{cold[-1]['progress']:.1f} s, one counting models at {cold[-1]['counting']:.1f} s, gone at "
              f"{cold[-1]['computed']:.1f} s, the frontier at {cold[-1]['frontier']:.1f} s "
              f"({cold[-1]['frontier_over_compute']:.2f}x the compute)")
    median = {name: statistics.median(run[name] for run in cold) for name in cold[0]}
    print(f"medians of {opens}: progress {median['progress']:.1f} s, frontier {median['frontier']:.1f} s, "
          f"{median['frontier_over_compute']:.2f}x the compute; the frontier "
          f"{statistics.median(run['frontier'] - run['computed'] for run in cold):.2f} s after the models' bar went")
    benchmark = {name: statistics.median(run[name] for run in computes) for name in computes[0]}
    return {**benchmark, "runs": computes}, {**median, "runs": cold}


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--name", default="browser_latency")
    parser.add_argument("--skip-first-open", action="store_true", help="only the warm key steps")
    parser.add_argument("--opens", type=int, default=5, help="first opens, each beside a run of the benchmark's "
                                                              "compute (the machine's noise moves both)")
    parser.add_argument("--cache-dir", help="a cache holding the default experiment, for the warm key steps "
                                            "(else computed in a fresh one)")
    args = parser.parse_args()
    figures: dict = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if not args.skip_first_open:
            figures["benchmark"], figures["first_open"] = first_opens(browser, args.opens)
        with tempfile.TemporaryDirectory() as folder:
            cache_dir = Path(args.cache_dir or folder)
            if not args.cache_dir:
                benchmark_compute(cache_dir)  # the default experiment, cached for the warm servers
            live = live_key_steps(browser, cache_dir, args.steps)
            fallback = fallback_key_steps(browser, cache_dir, args.steps)
        figures["key_steps_live"] = live
        figures["key_steps_fallback"] = fallback
        for label, steps in (("live scrubber, key press to redrawn page", live["drawn"]),
                             ("live scrubber, key press to the server's rerun (URL)", live["server_rerun_url"]),
                             ("fallback slider (one fragment), key press to redrawn page", fallback["in_page"]),
                             ("fallback slider, the same timed from Python around Playwright's calls",
                              fallback["harness"])):
            print(f"{label}, {steps['steps']} steps: p50 {steps['p50_ms']:.0f} ms, p95 {steps['p95_ms']:.0f} ms, "
                  f"max {steps['max_ms']:.0f} ms")
        browser.close()
    save(args.name, figures)


if __name__ == "__main__":
    main()
