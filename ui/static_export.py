"""Plotly figures as SVG and PDF files (static export through kaleido, which drives a Chrome or Chromium).

No Streamlit here. Export takes seconds (kaleido starts a browser), so pages call it only when asked.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time

import plotly.graph_objects as go

from cup_core.errors import first_line

FORMATS = {"svg": "image/svg+xml", "pdf": "application/pdf"}
EXPORT_DEADLINE_S = 120.0
_GRACE_S = 2.0  # what the browser is given to end on SIGTERM, and kaleido to wind down, before they are cut
_LOCK = threading.Lock()  # one export browser per process: sessions take turns


def export_problem() -> str | None:
    """Why figures cannot be exported here, in one line, or None when they can (kaleido ≥ 1.0 and a browser)."""
    try:
        import kaleido  # noqa: F401
        from choreographer.browsers.chromium import Chromium  # noqa: F401
    except ImportError:
        return "Figure export needs the kaleido package (≥ 1.0): pip install -r requirements.txt."
    import plotly

    if tuple(int(part) for part in plotly.__version__.split(".")[:2] if part.isdigit()) < (6, 1):
        return f"Figure export through kaleido 1 needs plotly ≥ 6.1; this is plotly {plotly.__version__}."
    if _browser() is None:
        return ("Figure export needs Chrome or Chromium, and none was found: install one (Debian: apt-get install "
                "chromium) or point BROWSER_PATH at it.")
    return None


def _browser() -> str | None:
    """The Chrome or Chromium kaleido would start (BROWSER_PATH first), where it is a program."""
    from choreographer.browsers.chromium import Chromium

    try:
        found = Chromium.find_browser(skip_local=False)
    except Exception:  # noqa: BLE001 - a search that fails finds nothing
        return None
    # choreographer hands BROWSER_PATH back unchecked (a FIFO, a folder, a link to nowhere)
    return str(found) if found and os.path.isfile(found) and os.access(found, os.X_OK) else None


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
    RuntimeError with a one-line reason when the export fails or is not done within `deadline_s` (waiting for
    another session's export included); the browser is ended either way. Blocks the calling thread."""
    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    problem = export_problem()
    if problem is not None:
        raise RuntimeError(problem)
    overdue = (f"figure export took longer than {deadline_s:.0f} s and was stopped; try again when the machine is "
               "less busy")
    started = time.monotonic()
    if not _LOCK.acquire(timeout=deadline_s):
        raise RuntimeError(overdue)
    try:
        left = deadline_s - (time.monotonic() - started)
        outcome: dict = {}

        def run() -> None:  # asyncio.run needs a thread without a running event loop
            try:
                outcome["files"] = asyncio.run(_render(figures, formats, left))
            except BaseException as err:  # noqa: BLE001 - handed to the caller below
                outcome["error"] = err

        # A daemon thread, joined with a bound: should the browser's cleanup itself hang, neither the caller nor the
        # interpreter's exit waits for it.
        worker = threading.Thread(target=run, name="figure-export", daemon=True)
        worker.start()
        worker.join(left + 3 * _GRACE_S)
    finally:
        _LOCK.release()
    if "files" in outcome:
        return outcome["files"]
    err = outcome.get("error")
    if err is None or isinstance(err, _Overdue):
        raise RuntimeError(overdue)
    reason = first_line(err) or type(err).__name__
    raise RuntimeError(f"figure export failed with the browser {_browser()} ({type(err).__name__}: {reason[:300]}); "
                       "point BROWSER_PATH at Chrome or Chromium if that is not one")


class _Overdue(Exception):
    """The export's deadline passed."""


async def _render(figures: dict[str, go.Figure], formats: tuple[str, ...], deadline_s: float) -> dict:
    import kaleido

    # Tasks that end with an error nobody asked for (a render cut short) are logged, traceback formatted, whenever
    # they are collected; on Python 3.11 that can land inside an ast.parse under way (an import's) and break it
    # (SystemError: AST constructor recursion depth mismatch). The export's own error says what went wrong.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    # mathjax=False: kaleido's page otherwise loads MathJax from a CDN, another host (no figure here uses TeX).
    browser = kaleido.Kaleido(n=1, timeout=deadline_s, mathjax=False, browser_cls=_offline_chromium())

    async def every_file() -> dict:
        out = {}
        async with browser:
            for name, fig in figures.items():
                for fmt in formats:  # the size: the figure's own, else plotly's default, as pio.to_image
                    out[name, fmt] = await browser.calc_fig(fig, opts={"format": fmt, "scale": 1})
        return out

    task = asyncio.ensure_future(every_file())
    try:
        done, _ = await asyncio.wait({task}, timeout=deadline_s)
        if task in done:
            return task.result()
        raise _Overdue
    finally:
        # The browser ends first: kaleido's own cancellation waits on it (a tab's reload, Browser.close), so a
        # render cancelled while the browser is busy or stuck would never finish; and a start cancelled midway
        # leaves its processes running.
        await _end(getattr(browser, "subprocess", None))
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=_GRACE_S)
        await asyncio.wait({asyncio.ensure_future(browser.close())}, timeout=_GRACE_S)  # its temporary folders


async def _end(process) -> None:
    """Ends the browser's processes: choreographer starts them in a session of their own, so the whole group, asked
    first (SIGTERM lets Chromium remove its files in /tmp), then killed."""
    if process is None or process.poll() is not None:
        return
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        try:
            os.killpg(process.pid, sig)
        except (AttributeError, ProcessLookupError, PermissionError):  # Windows has no process groups
            process.kill()
        try:
            await asyncio.to_thread(process.wait, _GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue
