"""The live scrubbers in Chromium (Playwright against `streamlit run`), warm cache: on Explore (digits default),
on Learn and on Compare (CUP's knob among CUP, GA and WS, 21 points each, computed first), a mouse drag (down,
30 moves, up) and arrow keys. Prints and saves: how many of the 30 moves
changed the shown point (targets: ≥ 25), the p95 time between animation frames during the drag (≤ 33 ms),
websocket messages the page sent during the drag (0 until release) and key press to the next frame after the
page changed (≤ 50 ms).

    .venv/bin/python bench/browser_scrub.py [--cache-dir DIR] [--pages explore learn compare]
    # DIR: a cache to reuse (else a fresh one)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import REPO, RESULTS, save

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
MOVES = 30
KEYS = 20

# What the page shows (heading + a second reading that must move with it) after the next two frames.
SHOWN = {
    "explore": "[r.querySelector('.cup-heading').textContent, r.querySelector('.cup-cards').textContent]",
    "learn": "[r.querySelector('.cup-heading').textContent, r.dataset.regionsDrawn]",
    "compare": "[r.querySelector('.cup-heading').textContent, r.querySelector('.cup-cards').textContent]",
}
PATHS = {"explore": "/", "learn": "/learn", "compare": "/compare?methods=CUP&methods=GA&methods=WS&points=21"}
COMPARE_METHODS, COMPARE_POINTS = ("cup", "ga", "ws"), 21  # 21: 30 moves can change the point 30 times
# Today's widgets, gone once the live component has drawn (Compare's sidebar has a slider of its own).
FALLBACK = {"explore": '[data-testid="stSlider"]', "learn": '[data-testid="stSlider"]',
            "compare": ".st-key-compare_fallback .js-plotly-plot"}
INSTRUMENT = """() => {
  window.__frames = []; window.__recording = false;
  const tick = (t) => { if (window.__recording) window.__frames.push(t); requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  window.__keys = []; window.__keyDown = 0;
  document.addEventListener('keydown', (e) => { window.__keyDown = e.timeStamp; }, true);
}"""
WATCH_KEYS = """(selector) => {
  const heading = document.querySelector(selector + ' .cup-heading');
  new MutationObserver(() => { const down = window.__keyDown;
    requestAnimationFrame((t) => window.__keys.push(t - down)); }).observe(heading, {childList: true, characterData: true, subtree: true});
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(cache: Path):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env={**os.environ, "CUP_CACHE_DIR": str(cache)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def open_live(page, url: str, selector: str, timeout_ms: int, fallback: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"{selector} [role=slider]", timeout=timeout_ms)
    page.wait_for_function("(fallback) => !document.querySelector(fallback)"
                           " && !document.querySelector('[data-testid=\"stStatusWidget\"]')", arg=fallback,
                           timeout=600_000)
    page.wait_for_timeout(1500)


def pick_cup(page) -> None:
    """Compare: the scrubber moves CUP's intensity (the picker starts on the best point's method)."""
    label = "() => document.querySelector('.cup-compare .cup-slider-label').textContent"
    if page.evaluate(label) == "CUP: intensity":
        return
    page.get_by_test_id("stSelectbox").filter(has_text="Scrub the knob of").click()
    page.get_by_role("option", name="CUP", exact=True).click()
    page.wait_for_function(f"() => ({label})() === 'CUP: intensity'")
    page.wait_for_timeout(1500)


def drag_positions(count: int) -> list[float]:
    """Track fractions of the 30 moves after a press at the left end: one grid value at a time to the right end
    and back (a grid of 21 values has 20 steps: 20 moves right, 10 back), or evenly over a grid of more values."""
    steps = count - 1
    if steps >= MOVES:
        return [k / MOVES for k in range(1, MOVES + 1)]
    forward = [k / steps for k in range(1, steps + 1)]
    return (forward + [(steps - k) / steps for k in range(1, MOVES)])[:MOVES]


def measure(page, url: str, name: str) -> dict:
    selector = f".cup-{name}"
    open_live(page, url, selector, 600_000 if name == "explore" else 180_000, FALLBACK[name])  # Explore's first
    if name == "compare":  # open computes
        pick_cup(page)
    page.evaluate(INSTRUMENT)
    count = int(page.evaluate(f"() => document.querySelector('{selector}').dataset.count"))
    track = page.locator(f"{selector} .cup-slider-track").bounding_box()
    y = track["y"] + track["height"] / 2
    shown = f"() => new Promise(d => requestAnimationFrame(() => requestAnimationFrame(() => {{ const r = document.querySelector('{selector}'); d({SHOWN[name]}); }})))"
    positions = drag_positions(count)
    page.mouse.move(track["x"], y)
    first = page.evaluate(shown)
    sent_before = len(page.sent)
    page.evaluate("() => { window.__frames = []; window.__recording = true; }")
    page.mouse.down()
    readings = [tuple(page.evaluate(shown))]
    for fraction in positions:
        page.mouse.move(track["x"] + track["width"] * fraction, y)
        readings.append(tuple(page.evaluate(shown)))
    sent_during = len(page.sent) - sent_before
    frames = page.evaluate("() => { window.__recording = false; return window.__frames; }")
    page.mouse.up()
    if name == "compare":  # its selection is not in the URL: wait for the release to reach the server
        for _ in range(600):
            if len(page.sent) > sent_before:
                break
            page.wait_for_timeout(100)
    else:
        page.wait_for_function("() => location.search.includes('intensity=')", timeout=60_000)
    changed = sum(1 for before, after in zip(readings, readings[1:]) if before != after and before[1] != after[1])
    gaps = sorted(b - a for a, b in zip(frames, frames[1:]))
    page.wait_for_timeout(1500)

    page.evaluate(WATCH_KEYS, selector)
    thumb = page.locator(f"{selector} [role=slider]")
    thumb.focus()
    at_low_end = thumb.get_attribute("aria-valuenow") == thumb.get_attribute("aria-valuemin")
    for k in range(KEYS):
        done = page.evaluate("() => window.__keys.length")
        # Away from the end the drag left it at (right end: 21 values, 20 moves right and 10 back; left: 11 values).
        thumb.press("ArrowRight" if (k % 2) != at_low_end else "ArrowLeft")
        page.wait_for_function(f"() => window.__keys.length > {done}")
        page.wait_for_timeout(50)
    keys = sorted(page.evaluate("() => window.__keys")[:KEYS])
    p95 = lambda xs: xs[int(0.95 * (len(xs) - 1))]  # noqa: E731
    return {"grid_values": count, "moves": MOVES, "moves_that_changed_the_point": changed,
            "first_shown": list(first), "frames": len(gaps) + 1, "frame_ms_p50": statistics.median(gaps),
            "frame_ms_p95": p95(gaps), "frame_ms_max": gaps[-1], "messages_sent_during_drag": sent_during,
            "key_to_frame_ms_p50": statistics.median(keys), "key_to_frame_ms_p95": p95(keys), "key_to_frame_ms_max": keys[-1]}


def compute_compared(cache: Path) -> None:
    """The Compare page computes only on request: its methods' points are computed here first (reused if cached)."""
    os.environ["CUP_CACHE_DIR"] = str(cache)
    sys.path.insert(0, str(REPO))
    from cup_core import resolve_device, run_sweep
    from ui.services import catalogue, compare

    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    run_sweep(experiment, compare.compare_plan(list(COMPARE_METHODS), COMPARE_POINTS, [0]), resolve_device("cpu"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--pages", nargs="+", choices=list(PATHS), default=list(PATHS))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as fresh:
        cache = args.cache_dir or Path(fresh)
        if "compare" in args.pages:
            compute_compared(cache)
        figures = {}
        with serving(cache) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name in args.pages:
                path = PATHS[name]
                context = browser.new_context(viewport={"width": 1400, "height": 1400})
                page = context.new_page()
                page.sent = []
                page.on("websocket", lambda socket, page=page: socket.on("framesent", lambda _f: page.sent.append(1)))
                try:
                    figures[name] = measure(page, url + path, name)
                except Exception as err:  # e.g. a page without its live component yet: say so, measure the rest
                    figures[name] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
                context.close()
            browser.close()
    lines = []
    for name, row in figures.items():
        if "error" in row:
            lines.append(f"{name}: not measured ({row['error']})")
            continue
        lines.append(
            f"{name}: {row['moves_that_changed_the_point']}/{row['moves']} moves changed the shown point "
            f"(grid of {row['grid_values']}; target ≥ 25) · frame p50 {row['frame_ms_p50']:.1f} ms, p95 "
            f"{row['frame_ms_p95']:.1f} ms, max {row['frame_ms_max']:.1f} ms (target p95 ≤ 33) · "
            f"{row['messages_sent_during_drag']} websocket messages during the drag (target 0) · arrow key to next "
            f"frame p50 {row['key_to_frame_ms_p50']:.1f} ms, p95 {row['key_to_frame_ms_p95']:.1f} ms, max "
            f"{row['key_to_frame_ms_max']:.1f} ms (target ≤ 50)")
    print("\n".join(lines))
    save("browser_scrub", figures)
    (RESULTS / "browser_scrub.md").write_text("# Live scrubbing in Chromium (bench/browser_scrub.py)\n\n"
                                              + "\n".join(f"- {line}" for line in lines) + "\n")


if __name__ == "__main__":
    main()
