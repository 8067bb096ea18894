"""Compare's extras through AppTest: the constraint's answer selected on the plot, the hypervolume table's CSV and
LaTeX downloads (their bytes as the page hands them out), and the static figure export."""

from __future__ import annotations

import os

import pandas as pd
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
def test_the_three_figures_export_as_svg_and_pdf(app_cache, compared):
    if static_export.export_problem():
        if os.environ.get("CI"):
            pytest.fail(static_export.export_problem())
        pytest.skip(static_export.export_problem())
    experiment, plan = compared
    view = compare.compare_view(experiment, compare.compare_plan(METHODS, POINTS, [0]))
    labels = {name: catalogue.method_label(name) for name in METHODS}
    files = static_export.export_figures(paper.paper_figures(view, view.frontier, labels, METHODS))
    assert set(files) == {(name, fmt) for name in paper.FIGURE_TITLES for fmt in ("svg", "pdf")}
    for (name, fmt), data in files.items():
        assert data.startswith(b"%PDF-" if fmt == "pdf" else b"<svg"), (name, fmt)
    assert b"MGDA" in files["fronts", "svg"]  # the legend names the methods
