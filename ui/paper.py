"""Compare's extras: pick the point that forgets most under accuracy constraints, and the figures and tables for a
paper (SVG, PDF, CSV, LaTeX)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cup_core import Experiment
from cup_core.report import best_under_constraints, hypervolume_csv, hypervolume_latex

from . import figures, static_export
from .components import SELECTED_KEY, hypervolume_table
from .services import caching, compare

MIN_RETAIN_KEY, MIN_TEST_KEY = "min_retain_acc", "min_test_acc"
DEFAULT_MINIMUM = 90.0  # % retain and test accuracy, the constraint's first values
PREPARED_KEY = "paper_figures"  # (what they were built from, {(name, format): bytes})
FIGURE_TITLES = {"fronts": "Fronts", "hypervolume": "Hypervolume", "controllability": "Controllability"}


def _answer(frontier: pd.DataFrame) -> pd.Series | None:
    return best_under_constraints(frontier, float(st.session_state.get(MIN_RETAIN_KEY, DEFAULT_MINIMUM)),
                                  float(st.session_state.get(MIN_TEST_KEY, DEFAULT_MINIMUM)))


def select(method: str, value: float) -> None:
    """Selects a point of the Compare plot as a click does (components.select_compared_point)."""
    st.session_state[SELECTED_KEY] = (str(method), float(value))


def _select_answer(frontier: pd.DataFrame) -> None:
    """on_change of the constraints: the answer is selected on the plot at once."""
    best = _answer(frontier)
    if best is not None:
        select(best["method"], best["value"])


def constraint_picker(frontier: pd.DataFrame, labels: dict[str, str]) -> pd.Series | None:
    """Sidebar: "retain accuracy at least x, test accuracy at least y: which point forgets most?" over every method
    shown; changing a bound selects the answer on the plot (ringed, with its panel below). Returns the answer."""
    with st.sidebar.expander("Pick by constraint", expanded=True, icon=":material/filter_alt:"):
        for key, label in ((MIN_RETAIN_KEY, "Retain accuracy at least (%)"), (MIN_TEST_KEY, "Test accuracy at least (%)")):
            st.number_input(label, min_value=0.0, max_value=100.0, value=DEFAULT_MINIMUM, step=0.5, format="%.1f",
                            key=key, on_change=_select_answer, args=(frontier,))
        best = _answer(frontier)
        if best is None:
            st.warning("No point of the methods shown keeps both accuracies that high (diverged runs are left out).",
                       icon=":material/block:")
            return None
        name = labels.get(best["method"], best["method"])
        st.markdown(f"Forgets most: **{name}, {best['knob']} {best['value']:.4g}**  \n"
                    f"UA {best['ua']:.1f}% · retain {best['retain_acc']:.1f}% · test {best['test_acc']:.1f}%")
        selected = st.session_state.get(SELECTED_KEY)
        if selected != (str(best["method"]), float(best["value"])):
            st.button("Select it on the plot", key="select_constrained", on_click=select,
                      args=(best["method"], best["value"]), icon=":material/my_location:")
        else:
            st.caption("Selected on the plot.")
    return best


def _summary_of(summary: dict, methods: list[str]) -> dict:
    return {**summary, "methods": {name: summary["methods"][name] for name in methods if name in summary["methods"]}}


def paper_figures(view, frontier: pd.DataFrame, labels: dict[str, str], shown: list[str]) -> dict:
    """The page's three figures, laid out for print (white, fixed width, no selection ring)."""
    table = hypervolume_table(view.summary, shown)
    norm = view.summary["normalisation"]
    return {
        "fronts": figures.paper_figure(figures.compare_figure(frontier, view.references, labels=labels,
                                                              axis_titles=view.axis_titles)),
        "hypervolume": figures.paper_figure(figures.hypervolume_figure(
            table.assign(colour=[figures.method_colours(shown)[m] for m in table["method"]]),
            maximum=None if norm is None else norm["reference_normalised"][0] ** 2), width=560),
        "controllability": figures.paper_figure(figures.controllability_figure(
            frontier, labels, compare.knob_positions(frontier, shown)), width=900),
    }


def _shows(frontier: pd.DataFrame) -> int:
    """A hash of what the figures show."""
    return int(pd.util.hash_pandas_object(
        frontier[["method", "value", "objective_x", "objective_y", "ua", "retain_acc"]], index=False).sum())


def downloads(experiment: Experiment, view, frontier: pd.DataFrame, labels: dict[str, str], shown: list[str],
              key: tuple) -> None:
    """The hypervolume table as CSV and LaTeX (written when a button is clicked), and the figures as SVG and PDF
    (built when asked). `key` names what `view` and `shown` are a function of: what the figures show is hashed
    once per key, not on every rerun."""
    st.subheader("Figures and tables for a paper")
    summary = _summary_of(view.summary, shown)
    shows = caching.shared(("paper_shows", *key), lambda: _shows(frontier))
    row = st.container(horizontal=True)
    row.download_button("Hypervolume table (CSV)", data=lambda: hypervolume_csv(summary),
                        file_name=f"hypervolume-{experiment.id}.csv", mime="text/csv", on_click="ignore",
                        icon=":material/table:", key="hypervolume_csv")
    row.download_button("Hypervolume table (LaTeX)", data=lambda: hypervolume_latex(summary),
                        file_name=f"hypervolume-{experiment.id}.tex", mime="application/x-tex", on_click="ignore",
                        icon=":material/functions:", key="hypervolume_latex",
                        help="a booktabs table (\\usepackage{booktabs}): both hypervolumes with their 95 % intervals, "
                             "the verdict against CUP and the calibration's cost; `python -m cup_core report "
                             f"{experiment.id} --format latex` prints the same for all cached methods")
    problem = static_export.export_problem()
    if problem is not None:
        st.caption(f"SVG and PDF figures: {problem}")
        return
    built_from = (experiment.id, tuple(shown), shows)  # what the figures show
    prepared = st.session_state.get(PREPARED_KEY)
    if prepared is None or prepared[0] != built_from:
        if st.button("Prepare the figures as SVG and PDF", key="prepare_figures", icon=":material/image:",
                     help="fronts, hypervolume and controllability, white background, for print (a few seconds)"):
            try:
                with st.spinner("Exporting through a headless browser…"):
                    files = static_export.export_figures(paper_figures(view, frontier, labels, shown))
            except RuntimeError as err:
                st.error(str(err), icon=":material/error:")
                return
            st.session_state[PREPARED_KEY] = prepared = (built_from, files)
        else:
            return
    for name, title in FIGURE_TITLES.items():
        row = st.container(horizontal=True)
        for fmt in static_export.FORMATS:
            row.download_button(f"{title} ({fmt.upper()})", data=prepared[1][name, fmt],
                                   file_name=f"{name}-{experiment.id}.{fmt}", mime=static_export.FORMATS[fmt],
                                   on_click="ignore", icon=":material/download:", key=f"figure_{name}_{fmt}")
