"""Compare: every method's frontier and hypervolume beside CUP's, how smoothly each knob steers, and the best point."""

import streamlit as st

from ui import components, figures, services

components.use_app_navigation()

experiment = components.experiment_picker()
config = experiment.config

methods, points, seeds = components.compare_controls()
components.sweep_file_button(experiment, methods, points, seeds)
components.data_root_editor(experiment)

st.title("Compare unlearning methods")
st.caption(f"{services.describe_experiment(experiment)} · every method runs the same recipe "
           f"({config.unlearn.describe()}) and sweeps its own knob · experiment `{experiment.id}`")
plan = services.compare_plan(methods, points, seeds)
missing = services.missing_count(experiment, plan)
if missing:
    st.info(f"{missing} of the models these methods, grids and seeds need are not cached yet "
            "(computed ones are reused, never recomputed).")
    if st.button(f"Compute the {missing} missing models", type="primary", icon=":material/play_arrow:"):
        if components.compute_with_progress(experiment, plan):
            st.rerun()

view = services.compare_view(experiment, plan)
shown = [name for name in methods if name in set(view.frontier["method"])]
if not shown:
    st.warning("None of the chosen methods has a computed point yet: compute them above.")
    st.stop()
labels = {name: services.method_label(name) for name in shown}
frontier = view.frontier[view.frontier["method"].isin(shown)]

selected = components.compare_selection(frontier)
view_key = (services.compare_key(experiment, plan), tuple(shown))  # what the figures below are functions of
fronts = services.cached_figure(("fronts", *view_key), lambda: figures.compare_figure(
    frontier, view.references, labels=labels, axis_titles=view.axis_titles))
st.plotly_chart(figures.ring_selected(fronts, frontier, selected),
                key=components.COMPARE_CHART_KEY, on_select=components.select_compared_point, selection_mode="points",
                config={"displaylogo": False})
st.caption("Dots are seed means (bars: std over seeds), dotted lines each method's non-dominated staircase; "
           "larger outlined dots are non-dominated within their method, crosses are runs that diverged. The view frames the fronts: double-click "
           "it to see every point, including collapsed runs far to the left. Click a point to select it.")

st.subheader("Hypervolume")
table = components.hypervolume_table(view.summary, shown)
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(services.cached_figure(("hypervolume", *view_key), lambda: figures.hypervolume_figure(
        table.assign(colour=[figures.method_colours(shown)[m] for m in table["method"]]))),
        config={"displaylogo": False})
with right:
    st.dataframe(table.drop(columns=["method"]), hide_index=True, width="stretch", column_config={
        "label": "method", "hypervolume": st.column_config.NumberColumn("hypervolume", format="%.4f"),
        "hypervolume_std": st.column_config.NumberColumn("± std", format="%.4f"),
        "knob ρ(value, UA)": st.column_config.NumberColumn("ρ(knob, UA)", format="%.2f",
                                                           help="Spearman rank correlation: ±1 is a monotone knob"),
        "UA span": st.column_config.NumberColumn("UA span", format="%.0f", help="range of UA the grid covers"),
        "s / point": st.column_config.NumberColumn("s / point", format="%.2f")})
reference = view.summary["hypervolume"]
st.caption(f"Hypervolume of each method's seed-averaged points in ({reference['objectives'][0]}, "
           f"{reference['objectives'][1]}), both maximised, reference point ({reference['reference_point'][0]:g}, "
           f"{reference['reference_point'][1]:g}), divided by 100 · 100; ± is the std of the per-seed hypervolumes.")
if config.forget.kind == "random":
    st.caption("This is spec §5's over-forgetting-aware hypervolume for random-subset forgetting: its objectives are "
               "retain acc and 100 − |forget acc − the retrained oracle's forget acc|, so a method that forgets "
               "more of the subset than the oracle does loses hypervolume instead of gaining it.")

st.subheader("Controllability: how each knob moves the model")
st.plotly_chart(services.cached_figure(("controllability", *view_key), lambda: figures.controllability_figure(
    frontier, labels, services.knob_positions(frontier, shown))), config={"displaylogo": False})
with st.expander("What each method does"):
    st.markdown("\n".join(f"- {services.method_about(name)}" for name in shown))

st.subheader("Recommended points")
st.dataframe(components.recommendations(view.summary, frontier, shown), hide_index=True, width="stretch",
             column_config={name: st.column_config.NumberColumn(name, format="%.4g") for name in
                            ("knee value", "closest to oracle: value")} | {
                 name: st.column_config.NumberColumn(name, format="%.2f") for name in
                 ("knee retain acc", "knee UA", "its avg gap")})
st.caption("The knee is the point of a method's front nearest its ideal corner (each objective scaled to [0, 1] "
           "over the front); 'closest to oracle' is the point with the lowest avg gap to the retrained oracle.")

if not config.oracle:
    st.caption("This experiment skipped the retrained oracle: there is no avg gap, so no best point is picked "
               "for you; click a point in the plot to see it and export it.")
components.selected_point_panel(experiment, view, selected, clicked=components.was_clicked(selected))
st.download_button("Download all results (CSV)", view.results.to_csv(index=False).encode(),
                   file_name=f"results-{experiment.id}.csv", mime="text/csv", on_click="ignore",
                   icon=":material/table:")
