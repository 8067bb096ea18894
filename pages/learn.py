"""Learn: what unlearning does and why CUP's knob works, on the paper's 2-D toy. Everything is precomputed."""

import math

import streamlit as st

from ui import components, figures, scrubber, services

components.use_app_navigation()
from ui.glossary import GLOSSARY

LEARN_KEY = "learn_intensity"  # the intensity's session key and URL parameter
LEARN_DEFAULT = 0.7
presenter = st.query_params.get("presenter") == "1"  # for slides: no lesson text, no glossary
experiment = services.learn_experiment()
config = experiment.config

st.title("Learn: unlearning on five blobs")
if not presenter:
    st.caption(f"The paper's toy example: 2,000 points in five Gaussian blobs, a 2-16-16-5 MLP, class "
               f"{config.forget.forget_class} forgotten with CUP ({config.unlearn.epochs} full-batch Adam steps, "
               f"lr {config.unlearn.lr:g}). Every picture comes from real runs, cached.")

plan = services.learn_plan()
missing = services.missing_count(experiment, plan)
if missing:
    st.info(f"Computing the toy once: {missing} small models (a few seconds).")
    if not components.compute_with_progress(experiment, plan):
        st.stop()
    st.rerun()

if not presenter:
    lesson = st.tabs(["1 · The problem", "2 · γ = 0", "3 · γ = 1", "4 · Why not plain gradient ascent?",
                      "5 · The pivot"])
    with lesson[0]:
        st.markdown(f"The model below was trained on all five blobs. We ask it to forget class "
                    f"{config.forget.forget_class} (crosses) as if it had never seen it, while the other four keep "
                    "their regions. The **retrained oracle** on the right is the gold standard: the same network "
                    "trained without the forget set.\n\n**Try this:** compare the original's and the oracle's "
                    "regions: where does the forgotten blob's area go?")
    with lesson[1]:
        st.markdown("At **γ = 0** every step is pure retain progress: the step is orthogonal to the forget "
                    "gradient, so to first order the forget loss does not change.\n\n**Try this:** drag the "
                    "slider to 0. Is the forgotten blob still classified correctly?")
    with lesson[2]:
        st.markdown("At **γ = 1** every step is pure forgetting, orthogonal to the retain gradient: to first "
                    "order the retained classes are not hurt.\n\n**Try this:** drag to 1 and watch the forgotten "
                    "blob's region being taken over by its neighbours.")
    with lesson[3]:
        st.markdown("Gradient ascent alone maximises the forget loss with nothing holding the rest of the model "
                    "in place: its steps grow as the loss grows and it over-forgets, dragging the retained "
                    "classes along (see **Compare methods**: GA at larger learning rates). CUP's steps always lie "
                    "in the **dual cone**, so no step makes either loss worse to first order.\n\n**Try this:** "
                    "in the loss plot below, the forget loss falls for every γ > 0, while the retain loss stays "
                    "down.")
    with lesson[4]:
        st.markdown("Each step CUP looks at the two gradients, finds the dual cone of directions that hurt "
                    "neither loss (width Θ = π − φ) and **pivots** from its retain edge u_r towards its forget "
                    "edge u_f by the angle ψ = γ·Θ.\n\n**Try this:** pick a step below and move the slider: the "
                    "bold orange arrow turns across the green cone.")

intensity = components.chosen_intensity(list(services.LEARN_GRID), LEARN_DEFAULT, key=LEARN_KEY)
live = scrubber.learn(experiment, intensity, on_value=lambda value: components.select_intensity(value, key=LEARN_KEY))
with st.container(key=scrubber.LEARN_FALLBACK):
    if not live:  # today's widgets: until the browser has drawn the scrubber, or where it cannot
        intensity = st.select_slider("Intensity γ", options=list(services.LEARN_GRID), value=LEARN_DEFAULT,
                                     key=LEARN_KEY, bind="query-params", format_func=lambda v: f"{v:g}",
                                     help=GLOSSARY["Intensity γ"])
        regions = services.learn_regions(experiment)
        num_classes = experiment.info.num_classes
        columns = st.columns(3)
        for column, (title, grid) in zip(columns, (
                ("Original", regions["references"]["original"]), (f"CUP, γ = {intensity:g}", regions["points"][intensity]),
                ("Retrained oracle", regions["references"]["oracle"]))):
            with column:
                st.plotly_chart(figures.regions_figure(grid, regions["x_range"], regions["y_range"], regions["samples"],
                                                       title, num_classes), config={"displayModeBar": False})
if live:
    components.intensity_in_url(intensity, LEARN_DEFAULT, key=LEARN_KEY)

run = services.learn_trajectory(experiment, intensity)
steps = run["steps"]
st.subheader("The pivot, drawn from the run")
choices = {"first": 0, "middle": len(steps) // 2, "last": len(steps) - 1}
which = st.radio("Step", list(choices), horizontal=True, key="step", bind="query-params")
step = steps[choices[which]]
if live:  # the arrow and ψ turn in the browser with the scrubber above
    scrubber.pivot(step, intensity, services.pivot_sweep(step["plane"]), run_value=intensity)
else:
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(figures.pivot_figure(step["plane"], intensity, services.pivot_sweep(step["plane"])),
                        config={"displayModeBar": False})
    with right:
        st.metric("angle between the gradients φ", f"{math.degrees(step['phi']):.1f}°")
        st.metric("dual cone width Θ = π − φ", f"{math.degrees(step['theta']):.1f}°", help=GLOSSARY["Dual cone"])
        st.metric("pivot ψ = γ·Θ", f"{math.degrees(step['psi']):.1f}°", help=GLOSSARY["Pivot"])
st.caption(f"Step {step['step'] + 1} of {len(steps)} of the γ = {intensity:g} run: forget loss "
           f"{step['forget_loss']:.3f}, retain loss {step['retain_loss']:.3f}; the step's cosine with the "
           f"forget gradient is {step['cos_direction_forget']:.2f} and with the retain gradient "
           f"{step['cos_direction_retain']:.2f} (both ≥ 0: neither loss gets worse to first order).")

st.subheader("Trajectories")
runs = {value: services.learn_trajectory(experiment, value)["steps"] for value in services.LEARN_RUNS}
st.plotly_chart(figures.losses_figure(runs), config={"displayModeBar": False})
st.plotly_chart(figures.path_animation(run["path"], experiment.references(), intensity),
                config={"displayModeBar": False})
st.caption("Press ▶ to watch the γ run travel from the original model towards its end point, one step a frame.")

if not presenter:
    with st.expander("Glossary"):
        st.markdown("\n".join(f"- **{term}**: {text}" for term, text in GLOSSARY.items()))
    st.caption("Presenter mode: add `presenter=1` to the URL to hide the lesson, the glossary and the sidebar.")
