"""Explore: drag the intensity and watch the unlearned model move along CUP's frontier."""

import streamlit as st

from ui import components, figures, services

experiment = components.experiment_picker()
config = experiment.config

st.title("Explore the forget / retain trade-off")
st.caption(f"{config.dataset} · forget {config.forget.describe()} · CUP, {config.unlearn.describe()} · "
           f"experiment `{experiment.id}`")

plan = services.explore_plan()
missing = services.missing_count(experiment, plan)
if missing:
    st.info(f"This experiment is not fully cached yet: computing its {missing} missing models now (the original, "
            f"the retrained oracle and one unlearning run per grid point). Finished ones are kept if you leave.")
    if components.compute_with_progress(experiment, plan):
        st.rerun()  # redraw from the cache, without the notice

view = services.explorer_view(experiment)
if view.frontier.empty:
    st.warning("No point of this experiment could be computed; see the server log.")
    st.stop()

value = components.intensity_slider(view.values, view.recommended_value, view.knob)
components.compute_another_intensity(experiment, view.values)
point = view.point(value)
original, oracle = view.reference("original"), view.reference("oracle")

plot_column, cards_column = st.columns([3, 2], gap="medium")
with plot_column:
    st.plotly_chart(
        figures.frontier_figure(view.frontier, view.references, knob=view.knob, axis_titles=view.axis_titles,
                                selected_value=value),
        key=components.CHART_KEY, on_select=components.select_clicked_point, selection_mode="points",
        config={"displaylogo": False})
    st.caption("Each dot is one unlearning run at one intensity (seed mean); ringed dots are non-dominated, the "
               "dashed line is the front, a cross is a run whose loss diverged (stopped at that step). γ sets the direction of every step, not the end point: where a run lands "
               "also depends on the learning rate, epochs and batch size fixed for this experiment.")
with cards_column:
    st.subheader(f"γ = {value:g}")
    components.metric_cards(point, original, oracle)

st.subheader("Test accuracy per class")
st.plotly_chart(figures.per_class_figure(view.per_class(original), view.per_class(point), view.per_class(oracle),
                                         view.forget_class, selected_label=f"CUP γ={value:g}"),
                config={"displaylogo": False})

seeds = view.seeds_at(value)
seed = st.selectbox("Seed to export", seeds) if len(seeds) > 1 else seeds[0]
components.export_button(experiment, services.EXPLORE_METHOD, value, seed,
                         "Export this model (.zip: safetensors + model card)",
                         f"cup-{config.dataset}-{experiment.id}-intensity{value:g}-seed{seed}.zip")
