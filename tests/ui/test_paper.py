"""Compare's extras through AppTest: the constraint's answer selected on the plot, the hypervolume table's CSV and
LaTeX downloads (their bytes as the page hands them out), and the static figure export."""

from __future__ import annotations

import os
import pathlib
import socket
import threading

import pandas as pd
import plotly.graph_objects as go
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from cup_core import SweepPlan, resolve_device, run_sweep
from cup_core.report import best_under_constraints, hypervolume_csv, hypervolume_latex
from ui import components, paper, static_export
from ui.services import catalogue, compare

from ..conftest import new_app

METHODS = ["cup", "mgda"]  # MGDA's preference needs no calibration: 5 quick points
POINTS = 5


@pytest.fixture(scope="module")
def compared(warm_cache):
    experiment = catalogue.default_experiment("digits", catalogue.default_forget("digits"))
    plan = SweepPlan.default(tuple(METHODS), POINTS, (0,))
    run_sweep(experiment, plan, resolve_device("cpu"))
    return experiment, plan


@pytest.fixture
def downloads(monkeypatch):
    """{file name: bytes} of every download button's data, as the page hands it to Streamlit; data written when the
    button is clicked (a callable) is written here as a click would."""
    found: dict[str, bytes] = {}
    original, deferred = MemoryMediaFileStorage.load_and_get_id, MediaFileManager.add_deferred

    def as_bytes(data) -> bytes:
        return data if isinstance(data, bytes) else str(data).encode()

    def recording(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None:
            found[filename] = as_bytes(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    def clicked(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name is not None:
            found[file_name] = as_bytes(data_callable())
        return deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    monkeypatch.setattr(MediaFileManager, "add_deferred", clicked)
    return found


def _open():
    app = new_app()
    app.switch_page("pages/compare.py").run()
    app.multiselect(key="methods").set_value(METHODS)
    app.select_slider(key="points").set_value(POINTS)
    return app.run()


def _frontier(experiment, plan):
    return compare.compare_view(experiment, compare.compare_plan(METHODS, POINTS, [0])).frontier


@pytest.mark.slow
def test_a_constraint_selects_the_point_that_forgets_most_on_the_plot(app_cache, compared):
    experiment, plan = compared
    app = _open()
    assert not app.exception
    frontier = _frontier(experiment, plan)
    retain = float(frontier["retain_acc"].median())
    app.number_input(key=paper.MIN_RETAIN_KEY).set_value(retain).run()
    app.number_input(key=paper.MIN_TEST_KEY).set_value(50.0).run()
    assert not app.exception
    best = best_under_constraints(frontier, retain, 50.0)
    assert app.session_state[components.SELECTED_KEY] == (best["method"], best["value"])
    heading = next(s.value for s in app.subheader if s.value.startswith("Selected: "))
    assert catalogue.method_label(best["method"]) in heading and f"{best['value']:g}" in heading
    chart = app.get("plotly_chart")[0].proto.spec
    assert '"name":"selected"' in chart.replace(" ", "")  # ringed on the plot
    assert any("Forgets most" in markdown.value for markdown in app.markdown)


@pytest.mark.slow
def test_an_impossible_constraint_says_so(app_cache, compared):
    app = _open()
    app.number_input(key=paper.MIN_RETAIN_KEY).set_value(100.0).run()
    app.number_input(key=paper.MIN_TEST_KEY).set_value(100.0).run()
    assert not app.exception
    assert any("No point of the methods shown" in warning.value for warning in app.warning)


@pytest.mark.slow
def test_the_hypervolume_table_downloads_as_csv_and_latex(app_cache, compared, downloads):
    experiment, plan = compared
    app = _open()
    assert not app.exception
    summary = compare.compare_view(experiment, compare.compare_plan(METHODS, POINTS, [0])).summary
    latex = downloads[f"hypervolume-{experiment.id}.tex"].decode()
    assert latex == hypervolume_latex(summary)
    assert "\\toprule" in latex and "CUP & intensity" in latex and "MGDA & forget preference $\\lambda$" in latex
    table = pd.read_csv(pd.io.common.StringIO(downloads[f"hypervolume-{experiment.id}.csv"].decode()))
    assert sorted(table["method"]) == sorted(METHODS)
    assert downloads[f"hypervolume-{experiment.id}.csv"].decode() == hypervolume_csv(summary)


def test_a_missing_browser_is_said_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    monkeypatch.setattr("choreographer.browsers.chromium.Chromium.find_browser",
                        classmethod(lambda cls, **_: None))
    problem = static_export.export_problem()
    assert problem is not None and "\n" not in problem and "Chromium" in problem
    with pytest.raises(RuntimeError, match="Chromium"):
        static_export.export_figures({})


@pytest.mark.slow
def test_the_three_figures_export_as_svg_and_pdf(app_cache, compared, export_browser):
    experiment, plan = compared
    view = compare.compare_view(experiment, compare.compare_plan(METHODS, POINTS, [0]))
    labels = {name: catalogue.method_label(name) for name in METHODS}
    files = static_export.export_figures(paper.paper_figures(view, view.frontier, labels, METHODS))
    assert set(files) == {(name, fmt) for name in paper.FIGURE_TITLES for fmt in ("svg", "pdf")}
    for (name, fmt), data in files.items():
        assert data.startswith(b"%PDF-" if fmt == "pdf" else b"<svg"), (name, fmt)
    assert b"MGDA" in files["fronts", "svg"]  # the legend names the methods


@pytest.fixture
def black_hole(monkeypatch):
    """A proxy on this machine that takes every connection and never answers, set for every scheme: where the
    network swallows requests to other hosts, as on an offline CI machine. Returns what it was sent."""
    sent: list[bytes] = []
    held = []
    server = socket.create_server(("127.0.0.1", 0))

    def swallow():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            held.append(connection)
            connection.settimeout(1)
            try:
                sent.append(connection.recv(200))
            except OSError:
                sent.append(b"(connected, sent nothing)")

    threading.Thread(target=swallow, daemon=True).start()
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{server.getsockname()[1]}")
    yield sent
    server.close()
    for connection in held:
        connection.close()


@pytest.mark.slow
def test_an_export_asks_no_other_host_and_a_network_that_swallows_requests_does_not_stall_it(black_hole,
                                                                                              export_browser):
    """kaleido's page loaded MathJax from a CDN and Chromium called Google while rendering: through a proxy that
    never answers, the export hung (a CI run waited 180 s for the buttons)."""
    figure = go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).update_layout(width=400, height=300)
    done: dict = {}
    worker = threading.Thread(target=lambda: done.update(files=static_export.export_figures({"fronts": figure})),
                              daemon=True)
    worker.start()
    worker.join(static_export.EXPORT_DEADLINE_S + 30)  # the previous code never returned
    assert "files" in done, f"the export did not finish; the proxy was sent {black_hole}"
    assert done["files"]["fronts", "svg"].startswith(b"<svg") and done["files"]["fronts", "pdf"].startswith(b"%PDF-")
    assert black_hole == []


@pytest.mark.slow
def test_a_browser_that_never_starts_is_given_up_at_the_deadline_in_one_line_and_leaves_no_process(
        monkeypatch, tmp_path):
    marker = f"cup-never-starts-{os.getpid()}"
    browser = tmp_path / "chromium"
    browser.write_text(f"#!/bin/bash\nexec -a {marker} sleep 600\n")
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(browser))
    assert static_export.export_problem() is None
    figure = go.Figure(go.Scatter(x=[1], y=[2]))
    with pytest.raises(RuntimeError) as refused:
        static_export.export_figures({"fronts": figure}, deadline_s=3)
    assert str(refused.value).startswith("figure export took longer than 3 s") and "\n" not in str(refused.value)
    left = [path for path in pathlib.Path("/proc").glob("[0-9]*/cmdline") if _reads(path).startswith(marker)]
    assert left == [], "the browser's process was left running"


def _reads(path: pathlib.Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:  # a process that ended meanwhile
        return ""
