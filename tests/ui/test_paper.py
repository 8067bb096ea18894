"""Compare's extras through AppTest: the constraint's answer selected on the plot, the hypervolume table's CSV and
LaTeX downloads (their bytes as the page hands them out), and the static figure export."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import threading
import time

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
    """A server on this machine that takes every connection and never answers (a network that swallows requests,
    as on an offline CI machine), also set as every scheme's proxy, so that a request sent directly and one sent
    through a proxy both land in it. Yields (its port, what it was sent)."""
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
    port = server.getsockname()[1]
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{port}")
    yield port, sent
    server.close()
    for connection in held:
        connection.close()


def _export_in_a_thread(figures: dict, bound_s: float, **options) -> dict:
    """export_figures run where a hang cannot hang the suite: {"files": ...} or {"error": ...}, and {"seconds": ...};
    empty of both if it had not returned after `bound_s`."""
    done: dict = {}

    def run():
        started = time.monotonic()
        try:
            done["files"] = static_export.export_figures(figures, **options)
        except Exception as err:  # noqa: BLE001 - the test reads it
            done["error"] = err
        done["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(bound_s)
    return done


@pytest.mark.slow
def test_an_export_sends_no_request_and_a_network_that_swallows_them_does_not_stall_it(black_hole, export_browser):
    """kaleido's page loaded MathJax from a CDN and Chromium called Google while rendering; where the network
    swallows requests the export hung (a CI run waited 180 s for the buttons). A figure's images at this machine's
    address and name must not be asked for either."""
    port, sent = black_hole
    figure = go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).update_layout(width=400, height=300, images=[
        dict(source=f"http://{host}:{port}/{host}.png", xref="paper", yref="paper", x=0, y=1, sizex=0.2, sizey=0.2)
        for host in ("127.0.0.1", "localhost")])
    done = _export_in_a_thread({"fronts": figure}, static_export.EXPORT_DEADLINE_S + 30)
    assert "files" in done, f"the export did not finish ({done.get('error')}); the network was sent {sent}"
    assert done["files"]["fronts", "svg"].startswith(b"<svg") and done["files"]["fronts", "pdf"].startswith(b"%PDF-")
    assert sent == []


@pytest.mark.slow
def test_an_export_past_its_deadline_stops_there_when_the_browser_is_stuck(export_browser, monkeypatch):
    """A renderer that stops answering mid-export (stopped here with SIGSTOP): cancelling kaleido's render waits on
    the browser (it reloads the tab), so a deadline that cancelled first never ended the export. The browser is
    ended first now."""
    import kaleido

    render, stopped = kaleido.Kaleido.calc_fig, []

    async def stuck(self, *args, **kwargs):
        if not stopped:
            for pid in _processes_in_group(self.subprocess.pid):
                if b"--type=renderer" in _reads(pathlib.Path(f"/proc/{pid}/cmdline")).encode():
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
        return await render(self, *args, **kwargs)

    monkeypatch.setattr(kaleido.Kaleido, "calc_fig", stuck)
    try:
        done = _export_in_a_thread({"fronts": go.Figure(go.Scatter(x=[1], y=[2]))}, 90, deadline_s=5)
    finally:
        for pid in stopped:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert stopped, "no renderer of the export's browser was found to stop"
    assert "error" in done, "the export did not stop within 90 s"
    assert str(done["error"]).startswith("figure export took longer than 5 s")
    assert done["seconds"] < 5 + 20  # the deadline, the browser's ending (SIGTERM, then SIGKILL 2 s on) and slack


def _processes_in_group(group: int) -> list[int]:
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        fields = _reads(stat).rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(group):  # after the state and the parent: the process group
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_a_browser_that_never_starts_is_given_up_at_the_deadline_in_one_line_and_leaves_no_process(
        monkeypatch, tmp_path):
    marker = f"cup-never-starts-{os.getpid()}"
    browser = tmp_path / "chromium"
    browser.write_text(f"#!/bin/bash\nexec -a {marker} sleep 600\n")
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(browser))
    assert static_export.export_problem() is None
    done = _export_in_a_thread({"fronts": go.Figure(go.Scatter(x=[1], y=[2]))}, 60, deadline_s=3)
    assert "error" in done, "the export did not stop within 60 s"
    assert str(done["error"]).startswith("figure export took longer than 3 s") and "\n" not in str(done["error"])
    left = [path for path in pathlib.Path("/proc").glob("[0-9]*/cmdline") if _reads(path).startswith(marker)]
    assert left == [], "the browser's process was left running"


def test_a_browser_path_that_is_not_a_program_is_no_browser(monkeypatch, tmp_path):
    """choreographer hands BROWSER_PATH back unchecked: each export then failed after starting threads and pipes
    it never closed, with kaleido's advice to download Chrome."""
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    assert "none was found" in static_export.export_problem()
    (tmp_path / "not-a-program").write_text("")
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "not-a-program"))
    assert "none was found" in static_export.export_problem()


@pytest.mark.slow
def test_a_browser_path_to_another_program_fails_in_one_line_naming_it(monkeypatch, tmp_path):
    """A program that is not a browser exits at once: said in one sentence with the path, where choreographer's
    error printed as a tuple of sentences advising to download Chrome."""
    program = tmp_path / "not-chromium"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(program))
    done = _export_in_a_thread({"fronts": go.Figure()}, 60, deadline_s=30)
    message = str(done.get("error"))
    assert message.startswith(f"figure export failed with the browser {program} (") and "\n" not in message
    assert "('" not in message and "choreo_get_chrome" not in message


def _reads(path: pathlib.Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:  # a process that ended meanwhile
        return ""
