"""Plotly figures as SVG and PDF files (static export through kaleido, which drives a Chrome or Chromium).

No Streamlit here. Export takes seconds (kaleido starts a browser), so pages call it only when asked.
"""

from __future__ import annotations

import threading
import warnings

import plotly.graph_objects as go

FORMATS = {"svg": "image/svg+xml", "pdf": "application/pdf"}
_LOCK = threading.Lock()  # one kaleido server per process: sessions take turns


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


def export_figures(figures: dict[str, go.Figure], formats: tuple[str, ...] = ("svg", "pdf")) -> dict[tuple[str, str], bytes]:
    """{(name, format): file bytes} for every figure in every format, through one browser start. Raises
    RuntimeError with a one-line reason when the export fails."""
    import kaleido
    import plotly.io as pio

    unknown = [fmt for fmt in formats if fmt not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    problem = export_problem()
    if problem is not None:
        raise RuntimeError(problem)
    out = {}
    server = hasattr(kaleido, "start_sync_server")  # kaleido ≥ 1.1: one browser for all; 1.0 starts one per figure
    with _LOCK:
        if server:
            kaleido.start_sync_server(silence_warnings=True)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")  # plotly's, harmless
                for name, fig in figures.items():
                    for fmt in formats:
                        out[name, fmt] = pio.to_image(fig, format=fmt)
        except Exception as err:  # noqa: BLE001 - the browser's failures come in many types
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise RuntimeError(f"figure export failed ({type(err).__name__}: {first})") from None
        finally:
            if server:
                kaleido.stop_sync_server(silence_warnings=True)
    return out
