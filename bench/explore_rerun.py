"""Seconds of an Explore rerun after a slider move, warm cache (AppTest, same process). Target: p95 < 0.3 s."""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from _common import REPO, save

MOVES = 60


def main() -> None:
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as cache_dir:
        os.environ["CUP_CACHE_DIR"] = cache_dir
        app = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
        start = time.perf_counter()
        app.run()  # computes the default experiment
        print(f"first open (computes the default experiment): {time.perf_counter() - start:.1f} s")
        values = [float(v) for v in app.select_slider[0].options]
        seconds = []
        for move in range(MOVES):
            start = time.perf_counter()
            app.select_slider[0].set_value(values[(move * 7) % len(values)]).run()
            seconds.append(time.perf_counter() - start)
            assert not app.exception, app.exception
    seconds.sort()
    p50 = statistics.median(seconds)
    p95 = seconds[int(0.95 * (len(seconds) - 1))]
    print(f"Explore rerun after a slider move, warm cache, {MOVES} moves: p50 {p50 * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms")
    save("explore_rerun", {"moves": MOVES, "p50_s": p50, "p95_s": p95, "max_s": seconds[-1]})


if __name__ == "__main__":
    main()
