"""Plotly figures as SVG and PDF files (static export through kaleido, which drives a Chrome or Chromium).

No Streamlit here. Export takes seconds (kaleido starts a browser), so pages call it only when asked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import threading
import time

import plotly.graph_objects as go

FORMATS = {"svg": "image/svg+xml", "pdf": "application/pdf"}
DEFAULT_SIZE = (700, 500)  # plotly's own export size, for a figure that sets none
EXPORT_DEADLINE_S = 120.0
_LOCK = threading.Lock()  # one export browser per process: sessions take turns


def export_problem() -> str | None:
    """Why figures cannot be exported here, in one line, or None when they can (kaleido ≥ 1.0 and a browser)."""
    try:
        import kaleido  # noqa: F401
        from choreographer.browsers.chromium import Chromium
    except ImportError:
        return "Figure export needs the kaleido package (≥ 1.0): pip install -r requirements.txt."
    import plotly

    if tuple(int(part) for part in plotly.__version__.split(".")[:2] if part.isdigit()) < (6, 1):
        return f"Figure export through kaleido 1 needs plotly ≥ 6.1; this is plotly {plotly.__version__}."
    try:
        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - a search that fails finds nothing
        found = None
    if not found:
        return ("Figure export needs Chrome or Chromium, and none was found: install one (Debian: apt-get install "
                "chromium) or point BROWSER_PATH at it.")
    return None


def _offline_chromium() -> type:
    """choreographer's Chromium, kept off the network: the export reads only local files, and a request to another
    host can stall it where the network swallows requests (a page load waits for its scripts). Left alone, Chromium
    also asks Google's update, time and account servers and a search engine for things while it renders."""
    from choreographer.browsers.chromium import Chromium

    class OfflineChromium(Chromium):
        def get_cli(self):
            return [*super().get_cli(), "--disable-background-networking", "--no-proxy-server",
                    "--host-resolver-rules=MAP * ~NOTFOUND"]

    return OfflineChromium


def export_figures(figures: dict[str, go.Figure], formats: tuple[str, ...] = ("svg", "pdf"),
                   deadline_s: float = EXPORT_DEADLINE_S) -> dict[tuple[str, str], bytes]:
    """{(name, format): file bytes} for every figure in every format, through one browser start. Raises
    RuntimeError with a one-line reason when the export fails or takes longer than `deadline_s`; the browser is
    closed either way (one that cannot start would otherwise keep the page waiting for ever)."""
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    problem = export_problem()
    if problem is not None:
        raise RuntimeError(problem)
    with _LOCK:
        started = time.monotonic()
        try:
            # A thread of its own: asyncio.run needs a thread without a running event loop.
            with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="figure-export") as pool:
                return pool.submit(asyncio.run, _render(figures, formats, deadline_s)).result()
        except Exception as err:  # noqa: BLE001 - the browser's failures come in many types
            if time.monotonic() - started >= deadline_s:  # a cancelled start comes back as a start that failed
                raise RuntimeError(f"figure export took longer than {deadline_s:.0f} s and was stopped; try again "
                                   "when the machine is less busy") from None
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise RuntimeError(f"figure export failed ({type(err).__name__}: {first})") from None


async def _render(figures: dict[str, go.Figure], formats: tuple[str, ...], deadline_s: float) -> dict:
    import kaleido

    # mathjax=False: kaleido's page otherwise loads MathJax from a CDN, another host (no figure here uses TeX).
    browser = kaleido.Kaleido(n=1, timeout=deadline_s, mathjax=False, browser_cls=_offline_chromium())

    async def every_file() -> dict:
        out = {}
        async with browser:
            for name, fig in figures.items():
                size = {"width": fig.layout.width or DEFAULT_SIZE[0], "height": fig.layout.height or DEFAULT_SIZE[1]}
                for fmt in formats:
                    out[name, fmt] = await browser.calc_fig(fig, opts={"format": fmt, "scale": 1, **size})
        return out

    try:
        return await asyncio.wait_for(every_file(), deadline_s)
    finally:
        # A start cancelled by the deadline skips the browser's own close and leaves its processes running:
        # choreographer starts them in a session of their own, so the whole group goes.
        process = getattr(browser, "subprocess", None)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (AttributeError, ProcessLookupError, PermissionError):  # Windows has no process groups
                process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.wait)
