"""Explore: drag the intensity and watch the unlearned model move along CUP's frontier."""

import streamlit as st

from ui import components, scrubber
from ui.services import catalogue, explore, sweeps


def notes(experiment, view) -> None:
    """What the frontier's marks mean, and the on-demand intensity."""
    config = experiment.config
    st.caption("Each dot is one unlearning run at one intensity (seed mean); ringed dots are non-dominated, the "
               "dashed line is the front, a cross is a run whose loss diverged (stopped at that step). γ sets the "
               "direction of every step, not the end point: where a run lands also depends on the learning rate, "
               "epochs and batch size fixed for this experiment.")
    if config.forget.kind == "random":
        st.caption(explore.RANDOM_SUBSET_NOTE)
    if not config.oracle:
        st.caption("This experiment skipped the retrained oracle: there is no green star and no gap to it.")
    components.compute_another_intensity(experiment, view.values, key=components.INTENSITY_KEY)


def export(experiment, view, value: float) -> None:
    config = experiment.config
    seeds = view.seeds_at(value)
    seed = st.selectbox("Seed to export", seeds) if len(seeds) > 1 else seeds[0]
    components.export_button(experiment, explore.EXPLORE_METHOD, value, seed,
                             "Export this model (.zip: safetensors + model card)",
                             f"cup-{config.dataset}-{experiment.id}-intensity{value:g}-seed{seed}.zip")


@st.fragment
def selection(experiment, view) -> None:
    """The fallback (until a browser has drawn the live scrubber, or where it cannot): the server-drawn slider
    and everything it changes, in one fragment, so a slider step or a click on a point reruns and redraws this
    part only (the sidebar, the title and the cache's status are not recomputed, nor redrawn in the browser)."""
    with st.container(key=scrubber.EXPLORE_FALLBACK):
        value = components.intensity_slider(view.values, view.recommended_value, key=components.INTENSITY_KEY)
        components.explore_static(view, value, has_oracle=experiment.config.oracle, key=components.INTENSITY_KEY)
    notes(experiment, view)
    export(experiment, view, value)


components.use_app_navigation()

experiment = components.experiment_picker()
config = experiment.config
plan = explore.explore_plan()
components.sweep_file_button(experiment, list(plan.grids), len(plan.grids[explore.EXPLORE_METHOD]), list(plan.seeds))
components.data_root_editor(experiment)

st.title("Explore the forget / retain trade-off")
st.caption(f"{components.as_text(catalogue.describe_experiment(experiment))} · CUP, "
           f"{components.as_text(config.unlearn.describe())} · "
           f"experiment `{experiment.id}`")

missing = sweeps.missing_count(experiment, plan)
if missing and experiment.info.embedded:
    notice = st.empty()
    notice.info(f"This experiment is not fully cached yet: computing its {missing} missing models now (the "
                f"original, {'the retrained oracle, ' if config.oracle else ''}one unlearning run per grid point). "
                "Finished ones are kept if you leave.")
    if components.compute_with_progress(experiment, plan):
        notice.empty()  # and the page goes on from the cache in this run (a rerun drew it again from its top)
elif missing:  # a real data set: computing may take long and needs the data here, so only on request
    st.info(f"{missing} of the models on CUP's default grid ({len(plan.points())} intensities) are not cached; "
            "the cached ones are shown. Computing the rest needs this experiment's data on this machine.")
    if st.button(f"Compute the {missing} missing models", icon=":material/play_arrow:", key="explore_compute"):
        if components.compute_with_progress(experiment, plan):
            st.rerun()

view = explore.explorer_view(experiment)
if view.frontier.empty:
    st.warning("This experiment has no CUP point yet: compute them above, or see its other methods on "
               "**Compare methods**.")
    st.stop()

value = components.chosen_intensity(view.values, view.recommended_value)
live = scrubber.explore(experiment, value, on_value=components.select_intensity)  # redraws in the browser
if live:  # a release reruns the whole page (the scrubber sits outside any fragment): the URL and export follow
    components.intensity_in_url(value, view.recommended_value)
    notes(experiment, view)
    export(experiment, view, value)
else:
    selection(experiment, view)
