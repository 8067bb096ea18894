"""Compare: every method's frontier and hypervolume beside CUP's, how smoothly each knob steers, and the best point."""

import streamlit as st

from ui import components, figures, formatting, scrubber
from ui.services import caching, catalogue, compare, sweeps

components.use_app_navigation()

experiment = components.experiment_picker()
config = experiment.config

methods, points, seeds, calibrate = components.compare_controls()
lrs = components.pool_control(experiment)  # (): the single recipe
components.sweep_file_button(experiment, methods, points, seeds, calibrate)
components.data_root_editor(experiment)

st.title("Compare unlearning methods")
st.caption(f"{catalogue.describe_experiment(experiment)} · every method runs the same recipe "
           f"({config.unlearn.describe()}) and sweeps its own knob · experiment `{experiment.id}`")
plan = compare.compare_plan(methods, points, seeds, calibrate)
members = compare.compare_members(experiment, methods, points, seeds, calibrate, lrs)
missing = sum(sweeps.missing_count(member, member_plan) for member, member_plan in members)
if missing:
    pending = sweeps.pending_calibrations(experiment, plan)
    searching = (f" First, {', '.join(catalogue.method_label(name) for name in pending)} "
                 f"{'is' if len(pending) == 1 else 'are'} calibrated on this experiment by a few runs each; "
                 "the count is then an upper bound." if pending else "")
    st.info(f"{missing} of the models these methods, runs and seeds need are not cached yet "
            f"(computed ones are reused, never recomputed).{searching}")
    if st.button(f"Compute the {missing} missing models", type="primary", icon=":material/play_arrow:"):
        if all(components.compute_with_progress(member, member_plan) for member, member_plan in members):
            st.rerun()

view = compare.pooled_compare_view(members, lrs) if lrs else compare.compare_view(experiment, plan)
shown = [name for name in methods if name in set(view.frontier["method"])]
if not shown:
    st.warning("None of the chosen methods has a computed point yet: compute them above.")
    st.stop()
labels = compare.compare_labels(view, shown)
frontier = view.frontier[view.frontier["method"].isin(shown)]
# What the figures below are functions of:
view_key = (view.key, tuple(shown))


@st.fragment
def fronts_and_selection() -> None:
    """The fronts, the selection's ring and the selected point: a click, a scrubber's release or a seed picked
    for export reruns this part only, not the hypervolumes and tables below (a fragment)."""
    selected = components.compare_selection(frontier, key=components.SELECTED_KEY)
    clicked = components.was_clicked(selected, key=components.SELECTED_KEY)
    # The scrubber sends this experiment's own points: a pooled view (several learning rates) keeps the chart.
    live = not lrs and scrubber.compare(experiment, plan, shown, selected, clicked,
                                        on_value=components.select_compared_value,
                                        pick=lambda: components.compare_method_picker(
                                            shown, selected, compare.compare_starts(experiment, plan, shown)))
    with st.container(key=scrubber.COMPARE_FALLBACK):
        if not live:  # today's widgets: until the browser has drawn the scrubber, or where it cannot
            fronts = compare.fronts_figure(view_key, view, shown)
            st.plotly_chart(figures.ring_selected(fronts, frontier, selected), key=components.COMPARE_CHART_KEY,
                            on_select=components.select_compared_point, selection_mode="points",
                            config={"displaylogo": False})
            components.selected_point_cards(experiment, view, selected, clicked)
    st.caption("Dots are seed means (bars: std over seeds), dotted lines each method's non-dominated staircase; "
               "larger outlined dots are non-dominated within their method, crosses are runs that diverged. The view "
               "frames the fronts: double-click it to see every point, including collapsed runs far to the left. "
               "Click a point to select it" + (", or drag the slider along the chosen method's knob." if live else "."))
    if not config.oracle:
        st.caption("This experiment skipped the retrained oracle: there is no avg gap, so no best point is picked "
                   "for you; click a point in the plot to see it and export it.")
    components.selected_point_export(experiment, view, selected)


fronts_and_selection()

st.subheader("Hypervolume")
summary = view.summary
table = caching.shared(("hypervolume_table", *view_key), lambda: components.hypervolume_table(summary, shown))
norm = summary["normalisation"]
left, right = st.columns([2, 3])
with left:
    st.plotly_chart(caching.shared(("hypervolume", *view_key), lambda: figures.hypervolume_figure(
        table.assign(colour=[figures.method_colours(shown)[m] for m in table["method"]]),
        maximum=None if norm is None else norm["reference_normalised"][0] ** 2)), config={"displaylogo": False})
with right:
    st.dataframe(table[["label", "normalised", "vs CUP", "difference 95 %", "paper's", "paper's 95 %",
                        "calibration runs", "calibration s", "calibration", "knob ρ(value, UA)", "UA span",
                        "s / point"]], hide_index=True, width="stretch", column_config={
        "label": "method",
        "normalised": st.column_config.NumberColumn("normalised HV", format="%.3f",
                                                    help="hypervolume in the normalised space stated below"),
        "vs CUP": st.column_config.TextColumn("vs CUP", help="the method's verdict against CUP: win / loss when the "
                                              "paired bootstrap 95 % interval of the difference excludes 0, else tie"),
        "difference 95 %": st.column_config.TextColumn("method − CUP, 95 %"),
        "paper's": st.column_config.NumberColumn("paper's HV", format="%.4f",
                                                 help="the paper's: reference (0, 0), divided by 100 · 100"),
        "calibration s": st.column_config.NumberColumn("calibration s", format="%.1f"),
        "knob ρ(value, UA)": st.column_config.NumberColumn("ρ(knob, UA)", format="%.2f",
                                                           help="Spearman rank correlation: ±1 is a monotone knob"),
        "UA span": st.column_config.NumberColumn("UA span", format="%.0f", help="range of UA the grid covers"),
        "s / point": st.column_config.NumberColumn("s / point", format="%.2f")})
reference = summary["hypervolume"]
if norm is not None:
    st.caption(f"**Normalised hypervolume** (bars, sorted): each objective is scaled between the ideal "
               f"({norm['ideal'][0]:.2f}, {norm['ideal'][1]:.2f}) → 0 and the nadir ({norm['nadir'][0]:.2f}, "
               f"{norm['nadir'][1]:.2f}) → 1, the componentwise best and worst of the non-dominated points of all "
               f"methods shown together; the reference point is 1 + 1/H = {norm['reference_normalised'][0]:.3g} in "
               f"each normalised coordinate (H = {norm['intervals']} grid intervals; Ishibuchi et al. 2018), i.e. "
               f"({norm['reference'][0]:.2f}, {norm['reference'][1]:.2f}) in ({reference['objectives'][0]}, "
               f"{reference['objectives'][1]}); at most {norm['reference_normalised'][0] ** 2:.3g}. The nadir is kept "
               "at least 1 point below the ideal in each objective. "
               f"Intervals: {compare.bootstrap_words(len(seeds))}; hover a point of the plot for its exclusive share."
               + (" **Degenerate here**: one point dominates every other method's points, so the nadir is the "
                  "componentwise worst of the methods' own fronts instead." if norm.get("degenerate") else ""))
st.caption(f"**Paper's hypervolume** (spec §5): the same seed-averaged points in ({reference['objectives'][0]}, "
           f"{reference['objectives'][1]}), both maximised, reference point ({reference['reference_point'][0]:g}, "
           f"{reference['reference_point'][1]:g}), divided by 100 · 100. Near 1 for every method that keeps retain "
           "accuracy, it rarely tells methods apart; it is kept so that numbers can be put beside the paper's.")
st.caption(f"**Protocol: {formatting.describe_protocol(summary['protocol'], points)}**. "
           "Every method gets the same number of runs "
           f"({points * max(1, len(lrs))} knob values × {len(seeds)} seed{'s' if len(seeds) > 1 else ''}). "
           + ("CUP's intensity (and the preferences λ, β of the multi-objective baselines) has an intrinsic range "
              "and needs no calibration: its grid is fixed in advance. Learning rates, weights and penalties are "
              "calibrated on this experiment, and their search runs count among their values (cost in the table)."
              if calibrate else "Calibration is off: every knob is swept over its fixed default range, chosen on "
              "the default digits experiment."))
if config.forget.kind == "random":
    st.caption("Both hypervolumes are spec §5's over-forgetting-aware hypervolume for random-subset forgetting: "
               "their objectives are retain acc and "
               "100 − |forget acc − the retrained oracle's forget acc|, so a method that forgets more of the subset "
               "than the oracle does loses hypervolume instead of gaining it.")
still = [catalogue.method_label(name) for name in shown if summary["methods"][name]["moves"] is False]
if still:
    st.warning(f"{', '.join(still)} {'does' if len(still) == 1 else 'do'} not move the model from this original at "
               "any knob value (its points sit on the original); MGDA does this from a Pareto-stationary start, "
               "where no common descent direction exists.", icon=":material/block:")
for line in compare.range_notes(summary, shown):
    st.info(line, icon=":material/tune:")
ties = [catalogue.method_label(name) for name in shown
        if (summary["methods"][name]["versus_cup"] or {}).get("verdict") == "tie"]
deterministic = [catalogue.method_label(name) for name in compare.deterministic_verdicts(summary, shown)]
if deterministic:
    st.info(f"{', '.join(deterministic)}: every seed gave the same points as CUP's did (the seed changes nothing "
            "here), so their verdicts compare single deterministic runs; a difference of one sample counts.")
if ties:
    few = len(seeds) < 5
    st.info(f"{', '.join(ties)} cannot be told apart from CUP with {len(seeds)} seed{'s' if len(seeds) > 1 else ''}: "
            "the 95 % interval of the difference contains 0" + (" (one seed gives no interval at all)"
                                                                  if len(seeds) == 1 else "")
            + (". More seeds narrow the intervals." if few else "."))
    if few:
        st.button(f"Use {len(compare.more_seeds(seeds))} seeds", on_click=components.add_seeds,
                  args=(seeds, components.SEEDS_KEY),
                  icon=":material/add:", help="adds seeds to the sidebar's choice; the missing models are then "
                                              "offered for computing above")

st.subheader("Controllability: how each knob moves the model")
st.plotly_chart(caching.shared(("controllability", *view_key), lambda: figures.controllability_figure(
    frontier, labels, compare.knob_positions(frontier, shown))), config={"displaylogo": False})
with st.expander("What each method does"):
    st.markdown("\n".join(f"- {catalogue.method_about(name)}" for name in shown))

st.subheader("Recommended points")
st.dataframe(caching.shared(("recommendations", *view_key), lambda: components.recommendations(
    view.summary, frontier, shown)), hide_index=True, width="stretch",
             column_config={name: st.column_config.NumberColumn(name, format="%.4g") for name in
                            ("knee value", "closest to oracle: value")} | {
                 name: st.column_config.NumberColumn(name, format="%.2f") for name in
                 ("knee retain acc", "knee UA", "its avg gap")})
st.caption("The knee is the point of a method's front nearest its ideal corner (each objective scaled to [0, 1] "
           "over the front); 'closest to oracle' is the point with the lowest avg gap to the retrained oracle.")

st.download_button("Download all results (CSV)", lambda: view.results.to_csv(index=False).encode(),
                   file_name=f"results-{experiment.id}.csv", mime="text/csv", on_click="ignore",
                   icon=":material/table:")

from ui import paper  # noqa: E402 - the constraint picker (sidebar) and the downloads for a paper

paper.constraint_picker(frontier, labels)
paper.downloads(experiment, view, frontier, labels, shown, view_key)
