"""Learn: what unlearning does and why CUP's knob works, on the paper's 2-D toy. Everything is precomputed."""

import math

import streamlit as st

from ui import components, figures, lesson, scrubber
from ui.services import learn, sweeps

components.use_app_navigation()
from ui.glossary import GLOSSARY

LEARN_KEY = "learn_intensity"  # the intensity's session key and URL parameter
LEARN_DEFAULT = lesson.TEACHING_INTENSITY  # the paper's figure: see the lesson's last tab
presenter = st.query_params.get("presenter") == "1"  # for slides: no lesson text, no glossary
st.title("Learn: unlearning on five blobs")
optimizer = st.radio("Base optimiser", list(learn.LEARN_OPTIMIZERS), horizontal=True, key="learn_optimizer",
                     bind="query-params", format_func=learn.LEARN_OPTIMIZERS.get,
                     captions=["as in the paper's toy", "plain: θ ← θ − lr·d, no momentum"],
                     help="What consumes CUP's direction d each step: Adam, as in the paper's toy, or plain SGD "
                          "(θ ← θ − lr·d). Both runs are cached over the same intensities.")
experiments = {name: learn.learn_experiment(name) for name in learn.LEARN_OPTIMIZERS}
experiment = experiments[optimizer]
config = experiment.config
if not presenter:
    base = "Adam, as in the paper" if optimizer == "adam" else "SGD without momentum"
    st.caption(f"The CUP authors' toy example: 2,000 points in five Gaussian blobs drawn as in their notebook "
               f"(70 % for training), a 2-16-16-5 MLP, class {config.forget.forget_class} forgotten with CUP in "
               f"{config.unlearn.epochs} full-batch steps of {base}, lr {config.unlearn.lr:g}. Every picture "
               "comes from real runs, cached.")

plan = learn.learn_plan()
missing = sum(sweeps.missing_count(e, plan) for e in experiments.values())
if missing:
    st.info(f"Computing the toy once, with both optimisers: {missing} small models (a few seconds).")
    if not all(components.compute_with_progress(e, plan) for e in experiments.values()):
        st.stop()
    st.rerun()

if not presenter:
    tabs = lesson.lesson_tabs(learn.learn_lesson_facts(), optimizer, config.forget.forget_class)
    for tab, (_, text) in zip(st.tabs([title for title, _ in tabs]), tabs):
        with tab:
            st.markdown(text)

intensity = components.chosen_intensity(list(learn.LEARN_GRID), LEARN_DEFAULT, key=LEARN_KEY)
live = scrubber.learn(experiment, intensity, on_value=lambda value: components.select_intensity(value, key=LEARN_KEY))
with st.container(key=scrubber.LEARN_FALLBACK):
    if not live:  # today's widgets: until the browser has drawn the scrubber, or where it cannot
        intensity = st.select_slider("Intensity γ", options=list(learn.LEARN_GRID), value=LEARN_DEFAULT,
                                     key=LEARN_KEY, bind="query-params", format_func=lambda v: f"{v:g}",
                                     help=GLOSSARY["Intensity γ"])
        regions = learn.learn_regions(experiment)
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

run = learn.learn_trajectory(experiment, intensity)
steps = run["steps"]
st.subheader("The pivot, drawn from the run")
choices = {"first": 0, "middle": len(steps) // 2, "last": len(steps) - 1}
which = st.radio("Step", list(choices), horizontal=True, key="step", bind="query-params")
step = steps[choices[which]]
if live:  # the arrow and ψ turn in the browser with the scrubber above
    scrubber.pivot(step, intensity, learn.pivot_sweep(step["plane"]), run_value=intensity)
else:
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(figures.pivot_figure(step["plane"], intensity, learn.pivot_sweep(step["plane"])),
                        config={"displayModeBar": False})
    with right:
        st.metric("angle between the gradients φ", f"{math.degrees(step['phi']):.1f}°")
        st.metric("dual cone width Θ = π − φ", f"{math.degrees(step['theta']):.1f}°", help=GLOSSARY["Dual cone"])
        st.metric("pivot ψ = γ·Θ", f"{math.degrees(step['psi']):.1f}°", help=GLOSSARY["Pivot"])
st.caption(lesson.step_caption(step, len(steps), intensity))

st.subheader("What each step did to the retain loss")
st.plotly_chart(figures.retain_change_figure(steps, run["path"], f"γ = {intensity:g}, "
                                             f"{learn.LEARN_OPTIMIZERS[optimizer]}"),
                config={"displayModeBar": False})
st.caption(lesson.retain_change_caption(optimizer))

st.subheader("Trajectories")
runs = {value: learn.learn_trajectory(experiment, value)["steps"] for value in learn.LEARN_RUNS}
st.plotly_chart(figures.losses_figure(runs), config={"displayModeBar": False})
st.plotly_chart(figures.path_animation(run["path"], experiment.references(), intensity),
                config={"displayModeBar": False})
st.caption("Press ▶ to watch the γ run travel from the original model towards its end point, one step a frame.")

if not presenter:
    with st.expander("Glossary"):
        st.markdown("\n".join(f"- **{term}**: {text}" for term, text in GLOSSARY.items()))
    st.caption("Presenter mode: add `presenter=1` to the URL to hide the lesson, the glossary and the sidebar.")
