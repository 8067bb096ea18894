"""Widgets that own their session_state key (and, where it helps sharing, their URL query parameter)."""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import streamlit as st

from cup_core import METHODS, Experiment, SweepProgress
from cup_core.config import same_knob
from cup_core.ray_executor import ClusterUnreachable, PointFailed, failure_kind
from cup_core.report import method_rows

from . import figures, formatting, process, scrubber
from .pins import pin_buttons
from .scrub_payload import CARDS, card_texts
from .services import caching, catalogue, compare, explore, selected_point, sweeps

# What makes Markdown (and Streamlit's :color[...] directives) out of text: links and images need brackets,
# autolinks and HTML angle brackets; emphasis, code, strike-through and math their marks. Not _: within a word
# (num_classes, file names) CommonMark keeps it literal, and paths are full of it.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*\[\]<>~$])")
# GitHub's autolink literals (Streamlit's Markdown has them): `www.`, `x@host.tld`, `scheme://`. Backslash escapes do
# not stop them (remark links the text that escapes leave), so a word joiner (U+2060: invisible, not a word
# character) goes where each pattern needs two characters side by side.
_WORD_JOINER = "\u2060"
_AUTOLINK_LITERAL = re.compile(r"(?i)(?<=www)(?=\.)|(?=@)|(?<=:)(?=//)")


def as_text(text: str) -> str:
    """Text a user chose (folder, class and file names, paths, library messages quoting them) made safe for an
    element that renders Markdown: every syntax character backslash-escaped, so `[click me](http:evil.example)`
    in a class folder's name shows as those characters instead of a live link (checked in Chromium), and
    `![p](http:evil.example)` loads nothing; `www.evil.example`, `x@evil.example` and `https://evil.example` are
    kept from becoming links (see _AUTOLINK_LITERAL)."""
    return _AUTOLINK_LITERAL.sub(_WORD_JOINER, _MARKDOWN_SYNTAX.sub(r"\\\1", text))


NAVIGATION_KEY = "navigation_ran"  # set by app.py: this session has run through st.navigation


def use_app_navigation() -> None:
    """Called first by every page. When a fresh server's first request is a deep link (/compare?experiment=…,
    or a reloaded tab after a restart), Streamlit has not seen app.py's st.navigation yet and runs the page alone
    in its legacy pages/ mode: no page config, a menu of file names. Leave that mode (PagesManager's flag is
    Streamlit's own; st.navigation clears it the same way) and, in a session that never ran app.py, rerun
    through it. AppTest resets the flag before every run, so there only the flag is cleared: a rerun would
    drop the click that the run carries."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if not st.session_state.get(NAVIGATION_KEY):
            st.rerun()


INTENSITY_KEY = "intensity"
CHART_KEY = "frontier_chart"


def experiment_picker() -> Experiment:
    """Sidebar: data set, forget set and experiment; all three live in the URL so a link reopens them, and
    `?experiment=<id>` alone reopens any cached experiment (its data set and forget set follow)."""
    st.sidebar.header("Experiment")
    _follow_linked_experiment()
    # Each list starts with its default (index 0): a URL leaves defaults out, and a linked experiment may have
    # set the value through session_state, which Streamlit accepts quietly only for a widget at its first option.
    names = catalogue.datasets()
    dataset = st.sidebar.selectbox("Data set", names, key="dataset",
                                   bind="query-params",
                                   help="blobs: the paper's 2-D toy (MLP); digits: scikit-learn's 8×8 digits (small "
                                        "CNN); other data sets appear once an experiment on them is cached")
    choices = catalogue.forget_choices(dataset)
    forget = choices[st.sidebar.selectbox(
        "Forget", list(choices), key="forget",
        bind="query-params", help="a whole class (class-wise forgetting), a seeded random subset or listed samples")]
    candidates = catalogue.experiments_for(dataset, forget)
    by_id = {experiment.id: experiment for experiment in candidates}
    chosen = st.sidebar.selectbox("Experiment", list(by_id), key="experiment", bind="query-params",
                                  help="an embedded data set's default recipe first; experiments made with other "
                                       "settings (on the New experiment page or by the CLI) follow")
    st.sidebar.caption(catalogue.describe_variant(by_id[chosen]))
    return by_id[chosen]


def _follow_linked_experiment() -> None:
    """A link that names an experiment (`?experiment=<id>`) other than the one shown selects its data set and
    forget set first, so that the experiment is among the choices."""
    requested = st.query_params.get("experiment")
    if not requested or requested == st.session_state.get("experiment"):
        return
    experiment = catalogue.find_experiment(requested)
    if experiment is None:
        return  # unknown or hostile: the sidebar's defaults stand
    values = {"dataset": experiment.config.dataset, "forget": catalogue.forget_label(experiment.config.forget),
              "experiment": experiment.id}
    for key, value in values.items():
        st.session_state[key] = value
        st.query_params[key] = value  # a stale data set or forget set in the URL would otherwise win


def data_root_editor(experiment: Experiment) -> None:
    """Sidebar, for an experiment read from a folder: where its data is on this machine. The last sweep's folder
    (sources.json) is the default; a cache copied from another machine needs this one's before it can compute."""
    if experiment.info.embedded:
        return
    sources = experiment.sources()
    with st.sidebar.expander("Data on this machine", icon=":material/folder_open:"):
        root = st.text_input("Data root", value=sources.data_root or "", key=f"data_root_{experiment.id}",
                             help="the folder the experiment's data set is read from when missing points are "
                                  "computed here; it is not part of the experiment's id")
        if root.strip() != (sources.data_root or "") and st.button("Use this folder", key="save_data_root"):
            sweeps.save_data_root(experiment, root.strip())
            st.rerun()


def sweep_file_button(experiment: Experiment, methods: list[str], points: int, seeds: list[int],
                      calibrate: bool = True) -> None:
    """Sidebar: the sweep settings of the experiment on screen as TOML, to run with the CLI elsewhere."""
    st.sidebar.download_button(
        "Download sweep file (.toml)", data=lambda: sweeps.sweep_file(experiment, methods, points, seeds, calibrate),
        file_name=f"sweep-{experiment.id}.toml", mime="application/toml", on_click="ignore",
        icon=":material/description:", key="sweep_file",
        help="`python -m cup_core sweep --config FILE` recomputes this experiment (same id) with these methods, "
             "grid points and seeds, e.g. on a machine with a GPU; copy its cache folder back to open it here")


def compute_with_progress(experiment: Experiment, plan, sources=None,
                          after_error: str | None = None) -> bool:
    """Computes what `plan` lacks with a progress bar; False, with the reason on the page, when the inputs are
    not available here (the library's message) or the cache cannot be written (what is cached stays shown)."""
    bar = st.progress(0.0, text=f"0/{len(experiment.roles) + len(plan.points())} models · starting…")
    scrubber.preload()  # the browser runs plotly.js while the models are computed

    def on_progress(progress: SweepProgress) -> None:
        bar.progress(progress.done / progress.total,
                     text=f"{progress.done}/{progress.total} models · {formatting.format_seconds(progress.eta_s)} "
                          f"· {progress.label}")

    try:
        sweeps.compute(experiment, plan, on_progress, sources)
    except ValueError as err:
        bar.empty()
        if after_error is None:
            after_error = "What is cached is shown below." + (
                "" if experiment.info.embedded else " Say where its data is in the sidebar's *Data on this machine*.")
        st.error(f"Cannot compute the missing models on this machine: "
                 f"{as_text(formatting.error_text(err).rstrip('.'))}. "
                 f"{after_error}",
                 icon=":material/error:")
        return False
    except (ClusterUnreachable, PointFailed, OSError) as err:  # the cache's failure, or Ray's, or a Ray task's
        bar.empty()
        st.error(failure_message(err, experiment, after_error), icon=":material/error:")
        return False
    # What computing imported (scikit-learn, torch._dynamo), out of the collector's sweeps before the page goes on;
    # the few objects of this page's run alive now stay with them (once per wave of imports).
    process.freeze_long_lived()
    bar.empty()
    return True


def _pending(key: str) -> str:
    """Where a value just computed for the slider whose state is under `key` waits until the slider is drawn (a
    widget's state cannot be set after it is drawn in the run)."""
    return f"{key}_pending"


def _take_pending(key: str) -> None:
    if _pending(key) in st.session_state:
        st.session_state[key] = st.session_state.pop(_pending(key))


def intensity_slider(values: list[float], default: float, key: str = INTENSITY_KEY) -> float:
    """CUP's intensity slider over the cached values, its state under `key`; returns the chosen value."""
    _take_pending(key)
    if st.session_state.get(key) not in values:
        st.session_state.pop(key, None)  # a value from another experiment's grid
    return st.select_slider(
        "Intensity γ", options=values, value=default, key=key, bind="query-params",
        format_func=lambda v: f"{v:g}",
        help="γ = 0: every step is pure retain progress; γ = 1: pure forgetting, orthogonal to the retain gradient. "
             "Click a point in the plot to jump to it.")


def chosen_intensity(values: list[float], default: float, key: str = INTENSITY_KEY) -> float:
    """The live scrubber's value, chosen as the slider would: a value just computed, then this session's last
    choice, then the URL's (ignored unless it is a grid value), then `default`."""
    _take_pending(key)
    chosen = st.session_state.get(key)
    if chosen not in values:
        chosen = _grid_value(st.query_params.get(key), values)
    value = default if chosen is None else float(chosen)
    st.session_state[key] = value
    return value


def intensity_in_url(value: float, default: float, key: str = INTENSITY_KEY) -> None:
    """The URL holds the live scrubber's value as the slider's binding would write it (defaults left out)."""
    from streamlit.errors import StreamlitAPIException

    try:
        if value == default:
            st.query_params.pop(key, None)
        else:
            st.query_params[key] = f"{value:g}"
    except StreamlitAPIException:  # the slider drawn in the previous run still owns it; it wrote the same value
        pass


def _grid_value(text: str | None, values: list[float]) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return next((v for v in values if same_knob(v, value)), None)


def select_intensity(value: float, key: str = INTENSITY_KEY) -> None:
    """What a released scrubber does: the page reruns on this value."""
    st.session_state[key] = value


def failure_message(err: BaseException, experiment: Experiment, after_error: str | None = None) -> str:
    """What compute_with_progress says when the cache (here or on a Ray worker), the Ray cluster or a Ray task
    failed: cup_core's failure_kind decides which, as it does for the CLI."""
    if failure_kind(err) == "cache":
        cause = err.cause if isinstance(err, PointFailed) and err.cause is not None else err
        return (f"Cannot write to the cache at {as_text(str(experiment.root.parent))} "
                f"({as_text(str(getattr(cause, 'strerror', None) or cause))}). Nothing cached "
                "is lost and what is cached is shown below; free some space or fix the folder's permissions, "
                "then reload the page.")
    what = "The Ray cluster failed" if failure_kind(err) == "cluster" else "A Ray task failed"
    return f"{what}: {as_text(str(err))}. {after_error or 'What is cached is shown below.'}"


def compute_another_intensity(experiment: Experiment, values: list[float], key: str = INTENSITY_KEY) -> None:
    """A value between the grid points: computed on demand, cached, and selected on the slider whose state is
    under `key`; it joins the frontier."""
    with st.popover("Compute another intensity", icon=":material/add:"):
        value = st.number_input("Intensity γ", min_value=0.0, max_value=1.0, value=0.33, step=0.01, format="%.3f",
                                key="another_intensity")
        value = explore.canonical_intensity(value)
        if value in values:
            st.caption(f"γ = {value:g} is already computed.")
        elif st.button(f"Compute γ = {value:g}", key="compute_another", type="primary"):
            if compute_with_progress(experiment, explore.single_point_plan(value)):
                st.session_state[_pending(key)] = value
                st.rerun()


def select_clicked_point(key: str = INTENSITY_KEY) -> None:
    """on_select callback of the frontier chart: a clicked point moves the slider whose state is under `key`."""
    selection = st.session_state.get(CHART_KEY)
    points = getattr(selection, "selection", {}).get("points", []) if selection else []
    for point in points:
        data = point.get("customdata")  # a list, or a dict keyed "0", "1", ... as the browser sends it
        if data:
            st.session_state[key] = float(data["0"] if isinstance(data, dict) else data[0])
            return


def explore_static(view, value: float, has_oracle: bool, key: str = INTENSITY_KEY) -> None:
    """Explore's server-drawn frontier, metric cards and per-class bars at `value`: what the live scrubber
    (ui/scrubber.py) draws in the browser, for where it cannot. The frontier is built once per view (its `key`)
    and ringed at each move, the bars once per value; a click on a point sets the slider's state under `key`."""
    point = view.point(value)
    original, oracle = view.reference("original"), view.reference("oracle")
    plot_column, cards_column = st.columns([3, 2], gap="medium")
    with plot_column:
        frontier = caching.cached_figure(("explore_frontier", *view.key), lambda: figures.frontier_figure(
            view.frontier, view.references, knob=view.knob, axis_titles=view.axis_titles))
        st.plotly_chart(
            figures.ring_value(frontier, view.frontier, value),
            key=CHART_KEY, on_select=functools.partial(select_clicked_point, key), selection_mode="points",
            config={"displaylogo": False})
    with cards_column:
        st.subheader(f"γ = {value:g}")
        metric_cards(point, original, oracle, has_oracle=has_oracle)
    st.subheader("Test accuracy per class")
    bars = caching.shared(("per_class", *view.key, value), lambda: figures.per_class_figure(
        view.per_class(original), view.per_class(point), view.per_class(oracle), view.forget_class,
        selected_label=f"CUP γ={value:g}"))
    # Streamlit identifies a chart by its figure as well as its key: bars of another γ are a new chart, drawn whole
    st.plotly_chart(bars, key="per_class_chart", config={"displaylogo": False})


def metric_cards(point: pd.Series, original: pd.Series | None, oracle: pd.Series | None,
                 has_oracle: bool = True) -> None:
    """The selected point's metrics, each with its change against the original and the oracle. Without an
    oracle (skipped when the experiment was made) the gap card says so instead of a number."""
    columns = st.columns(2)
    for index, ((label, _, colour), card) in enumerate(zip(CARDS, card_texts(point, original, oracle, has_oracle))):
        with columns[index % 2]:
            moved = card["tone"] != "off"  # else no change at the shown precision, or no oracle: no arrow
            st.metric(label, card["value"], delta=card["delta"], delta_color=colour if moved else "off",
                      delta_arrow="auto" if moved else "off", border=True, help=card["help"])
            if card["caption"]:
                st.caption(card["caption"])


COMPARE_CHART_KEY = "compare_chart"
SELECTED_KEY = "compare_selected"  # (method, value) picked on the Compare page
DEFAULT_COMPARE_METHODS = ["cup", "ga", "ws", "neggrad+", "mgda", "pcgrad"]


def compare_controls() -> tuple[list[str], int, list[int], bool]:
    """Sidebar: which methods, how many values each, which seeds, whether to calibrate (all in the URL)."""
    st.sidebar.header("Methods")
    names = list(METHODS)
    methods = st.sidebar.multiselect("Methods", names, default=DEFAULT_COMPARE_METHODS, key="methods",
                                     format_func=lambda name: METHODS[name].label, bind="query-params")
    points = st.sidebar.select_slider("Runs per method", list(compare.COMPARE_POINTS), value=11, key="points",
                                      bind="query-params", help="knob values per method, calibration runs included: "
                                                                "every method gets the same number")
    seeds = st.sidebar.multiselect("Seeds", SEED_CHOICES, default=[0], key=SEEDS_KEY, bind="query-params",
                                   help="unlearning seeds (batch order); the plot shows their mean and spread, the "
                                        "intervals resample them")
    calibrate = st.sidebar.toggle("Calibrate knobs on this experiment", value=True, key="calibrate",
                                  bind="query-params", help="learning rates, weights and penalties have no intrinsic "
                                  "range: a short search finds where each method goes from barely moving the model "
                                  "to forgetting (or breaking) it, and lays its grid there. Off: fixed default ranges.")
    return methods or ["cup"], int(points), sorted(seeds) or [0], bool(calibrate)


SEED_CHOICES = list(range(10))
SEEDS_KEY = "seeds"  # compare_controls' seeds, which add_seeds extends
LR_CHOICES = (1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)  # learning rates offered to add to a pool


def pool_control(experiment: Experiment) -> tuple[float, ...]:
    """Sidebar: other unlearning learning rates to pool each method's points over (pool.py); () keeps the single
    recipe, else this experiment's lr first. Those with an experiment in the cache are marked and offered first."""
    own = experiment.config.unlearn.lr
    cached = [lr for lr in compare.pool_lrs(experiment) if lr != own]
    options = cached + [lr for lr in LR_CHOICES if lr != own and lr not in cached]
    chosen = st.sidebar.multiselect(
        "Pool learning rates", options, default=[], key="pool_lrs",
        format_func=lambda lr: f"{lr:g}" + (" (cached)" if lr in cached else ""),
        help=f"pools each method's points at these unlearning learning rates with this experiment's ({own:g}) into "
             "one solution set, as the CUP authors' scripts do for CUP; each learning rate is its own experiment. "
             "Methods whose knob is the learning rate (or that use none) run once, with as many values as the others "
             "get over all learning rates.")
    return (own, *chosen) if chosen else ()


def add_seeds(seeds: list[int], key: str = SEEDS_KEY) -> None:
    """on_click of "compute more seeds": the seeds control whose state is under `key` takes the next ones."""
    st.session_state[key] = compare.more_seeds(seeds)


def select_compared_point() -> None:
    """on_select callback of the Compare chart: remember the clicked (method, value)."""
    selection = st.session_state.get(COMPARE_CHART_KEY)
    points = getattr(selection, "selection", {}).get("points", []) if selection else []
    for point in points:
        data = point.get("customdata")
        if data:
            method = data["0"] if isinstance(data, dict) else data[0]
            value = data["2"] if isinstance(data, dict) else data[2]
            st.session_state[SELECTED_KEY] = (str(method), float(value))
            return


COMPARE_METHOD_KEY = "compare_scrub_method"  # whose knob Compare's scrubber moves


def select_compared_value(chosen: tuple[str, float]) -> None:
    """What a released Compare scrubber (or a click on its fronts) does: select that (method, value)."""
    method, value = chosen
    st.session_state[SELECTED_KEY] = (str(method), float(value))
    st.session_state[COMPARE_METHOD_KEY] = str(method)


def _select_compared_method(starts: dict[str, float]) -> None:
    method = st.session_state.get(COMPARE_METHOD_KEY)
    if method in starts:
        st.session_state[SELECTED_KEY] = (method, starts[method])


def compare_method_picker(shown: list[str], selected: tuple[str, float] | None, starts: dict[str, float]) -> str:
    """Whose knob the Compare scrubber moves: the selected point's method (else CUP); picking another selects
    that method's start (`starts`: its point closest to the oracle, else its middle value)."""
    choices = [name for name in shown if name in starts]
    wanted = selected[0] if selected is not None and selected[0] in choices else None
    current = st.session_state.get(COMPARE_METHOD_KEY)
    if wanted is not None and current != wanted:
        st.session_state[COMPARE_METHOD_KEY] = wanted  # the selection moved (a click, a release): follow it
    elif current not in choices:
        st.session_state[COMPARE_METHOD_KEY] = "cup" if "cup" in choices else choices[0]
    column, _ = st.columns([1, 2])
    return column.selectbox("Scrub the knob of", choices, key=COMPARE_METHOD_KEY, format_func=catalogue.method_label,
                            on_change=_select_compared_method, args=(starts,),
                            help="the slider below moves along this method's knob values; the ring and the cards "
                                 "follow in your browser, and the selection is set when you let go")


def compare_selection(frontier: pd.DataFrame, key: str = SELECTED_KEY) -> tuple[str, float] | None:
    """The clicked point (its state under `key`) if it is still shown, else the overall best point by avg gap."""
    chosen = st.session_state.get(key)
    if chosen and ((frontier["method"] == chosen[0]) & same_knob(frontier["value"], chosen[1])).any():
        return chosen
    finite = frontier[frontier["avg_gap"].notna()]
    if finite.empty:
        return None
    best = finite.loc[finite["avg_gap"].idxmin()]
    return str(best["method"]), float(best["value"])


def hypervolume_table(summary: dict, methods: list[str]) -> pd.DataFrame:
    """One row per method, best normalised hypervolume first: both hypervolumes with their intervals, the
    calibration's cost and the verdict against CUP."""
    rows = []
    for name in methods:
        method = summary["methods"].get(name)
        if method is None:
            continue
        control, calibration, versus = method["controllability"], method["calibration"], method["versus_cup"]
        normalised_ci = method["hypervolume_normalised_ci95"] or [None, None]
        paper_ci = method["hypervolume_ci95"] or [None, None]
        rows.append({
            "method": name, "label": method["label"],
            "normalised": method["hypervolume_normalised"], "normalised_low": normalised_ci[0],
            "normalised_high": normalised_ci[1],
            "vs CUP": "—" if versus is None else versus["verdict"],
            "difference": None if versus is None else versus["difference"],
            "difference 95 %": "—" if versus is None else "none: one seed" if versus["difference_ci95"] is None else
            "[{:+.3f}, {:+.3f}]".format(*versus["difference_ci95"]),
            "paper's": method["hypervolume"], "paper's 95 %": "none: one seed" if paper_ci[0] is None else
            "[{:.4f}, {:.4f}]".format(*paper_ci),
            "calibration runs": 0 if calibration is None else calibration["runs"],
            "calibration s": 0.0 if calibration is None else calibration["seconds"],
            "calibration": formatting.describe_calibration(calibration),
            "moves": method["moves"], "seeds": len(method["seeds"]), "points": method["points"],
            "knob ρ(value, UA)": control["spearman_value_ua"], "UA span": control["ua_span"],
            "s / point": method["mean_seconds"]})
    return pd.DataFrame(rows).sort_values("normalised", ascending=False, ignore_index=True, na_position="last")


def recommendations(summary: dict, frontier: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Per method: its knee (the front point nearest the ideal) and its point closest to the oracle."""
    by_method, values = method_rows(frontier), frontier["value"].to_numpy(dtype=float)
    rows = []
    for name in methods:
        method = summary["methods"].get(name)
        if method is None or method["recommended_value"] is None:
            continue
        own = by_method.get(name, np.zeros(0, dtype=int))
        knee = frontier.iloc[own[same_knob(values[own], method["recommended_value"])][0]]
        best = method["best_avg_gap"]
        rows.append({"method": method["label"], "knob": method["knob"], "knee value": knee["value"],
                     "knee retain acc": knee["retain_acc"], "knee UA": knee["ua"],
                     "closest to oracle: value": None if best is None else best["value"],
                     "its avg gap": None if best is None else best["avg_gap"]})
    return pd.DataFrame(rows)


def was_clicked(selected: tuple[str, float] | None, key: str = SELECTED_KEY) -> bool:
    return selected is not None and st.session_state.get(key) == selected


def selected_point_panel(experiment: Experiment, view, selected: tuple[str, float] | None, clicked: bool) -> None:
    """The selected point's metrics against the references, and its export."""
    selected_point_cards(experiment, view, selected, clicked)
    selected_point_export(experiment, view, selected)


def selected_point_cards(experiment: Experiment, view, selected: tuple[str, float] | None, clicked: bool) -> None:
    """The selected point's heading and metric cards (what Compare's live scrubber draws in the browser)."""
    if selected is None:
        return
    method, value = selected
    row = view.frontier[(view.frontier["method"] == method) & same_knob(view.frontier["value"], value)].iloc[0]
    label = METHODS[method].label
    st.subheader(f"{'Selected' if clicked else 'Best overall (lowest avg gap)'}: {label}, {row['knob']} = {value:g}")
    references = view.references
    metric_cards(row, references.loc["original"] if "original" in references.index else None,
                 references.loc["oracle"] if "oracle" in references.index else None,
                 has_oracle=experiment.config.oracle)


def selected_point_export(experiment: Experiment, view, selected: tuple[str, float] | None) -> None:
    """The selected point's export, with a choice of seed where it has several."""
    if selected is None:
        return
    method, value = selected
    seeds = selected_point.seeds_at(view.results, method, value)
    seed = st.selectbox("Seed to export", seeds, key="compare_export_seed") if len(seeds) > 1 else seeds[0]
    export_button(experiment, method, value, seed, "Export this model (.zip)",
                  f"{method}-{experiment.config.dataset}-{experiment.id}-{value:g}-seed{seed}.zip")


def export_button(experiment: Experiment, method: str, value: float, seed: int, label: str, file_name: str) -> None:
    """The download of a point's zip, or a warning when its checkpoint is broken (the next sweep recomputes it),
    then "Pin as A / Pin as B" for the A vs B page (Explore's and Compare's selected point both end here)."""
    if not selected_point.point_is_cached(experiment, method, value, seed):
        st.warning("This point's checkpoint is missing or damaged, so it cannot be exported; computing the "
                   "experiment again recomputes it.", icon=":material/warning:")
        return
    st.download_button(label, data=lambda: selected_point.export_zip(experiment, value, seed, method),
                       file_name=file_name, mime="application/zip", icon=":material/download:", type="primary",
                       on_click="ignore")
    pin_buttons(experiment, method, value, seed)  # the selected point's other action: compare it on A vs B
