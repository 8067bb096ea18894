"""The New experiment page's parts: the settings form, the check with its cost estimate, and the sweep with
progress and Cancel. Each part owns its session_state keys (prefix "new_").

Cancel works by Streamlit's own interruption: a click during a run makes the server stop the running script
(with runner.fastReruns, the default, it starts the new run at once in a new thread) and the old run is
ended by an exception raised from its next Streamlit call, which is the progress bar's update in the sweep's
on_progress callback. The library reports within a model too (after each training epoch and unlearning
step), so it stops there: the model being made is dropped, every finished one is on disk. The Cancel button's on_click callback runs before the new run and drops the running job from
session_state, so the new run reports instead of starting the sweep again. Any other interruption (a page
switch, say) leaves the job in place, and the next run of this page resumes it (cached points are reused).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import streamlit as st

from cup_core import METHODS
from cup_core.config import UnlearnRecipe
from cup_core.data import DATASETS, dataset_info, parse_indices
from cup_core.models import ARCHITECTURES, TORCHVISION_PREFIX

from . import components, formatting
from .services import catalogue, compare, new, sweeps

log = logging.getLogger(__name__)

RUN_KEY = "new_running"  # the Job being computed; kept across the reruns that a click causes
DONE_KEY = "new_done"  # (Job, "finished" | "cancelled"): what the last run ended with
CHECK_KEY = "new_checked"  # (request, Job | None, CostEstimate | None, error | None): the last check
UPLOADED_KEY = "new_uploaded"  # uploaded checkpoint's file_id -> its saved path (hashed once)

ORIGINAL_TRAIN = "Train it here with the data set's recipe"
ORIGINAL_UPLOAD = "Use my trained checkpoint (upload)"
ORACLE_TRAIN = "Retrain it with the same recipe"
ORACLE_SKIP = "Skip it (class-wise only)"
FORGET_CLASS, FORGET_RANDOM, FORGET_LISTED = "a whole class", "a random share", "listed samples"


def is_running() -> bool:
    return RUN_KEY in st.session_state


def settings_form(disabled: bool) -> dict[str, Any] | None:
    """Every setting of a new experiment, as SweepSettings' fields (checked by the Check button's make_job); None
    (with the reason shown) while an input cannot be read yet."""
    left, right = st.columns(2, gap="large")
    with left:
        chosen = _left_half(disabled)
    with right:  # drawn even while the left half is incomplete, so its widgets keep their values
        rest = _right_half(st.session_state["new_dataset"], st.session_state["new_forget_kind"] == FORGET_CLASS,
                           disabled)
    return None if chosen is None else {**chosen, **rest}


def _left_half(disabled: bool) -> dict | None:
    """Data, model and forget set; None while an upload or index list is missing or unreadable."""
    st.subheader("1 · Data")
    names = list(DATASETS)
    dataset = st.selectbox("Data set", names, index=names.index(catalogue.DEFAULT_DATASET), key="new_dataset",
                           disabled=disabled, format_func=_dataset_label)
    info = dataset_info(dataset)
    data_root, download, image_size = None, False, None
    if not info.embedded:
        from cup_core.vision import VISION_DATASETS

        spec = VISION_DATASETS[dataset]
        data_root = st.text_input("Data root (a folder on the machine that runs this app)", key="new_data_root",
                                  disabled=disabled, placeholder="/data/" + dataset,
                                  help=f"{spec.title} expects under this folder: {spec.layout}")
        st.caption(f"Expected under the folder: {spec.layout}.")
        if dataset == "imagefolder":
            image_size = int(st.number_input("Image size (pixels)", min_value=8, max_value=1024, value=32, step=1,
                                             key="new_image_size", disabled=disabled,
                                             help="images are resized and centre-cropped to this square size"))
        else:
            download = st.checkbox("Download if missing (needs internet)", key="new_download", disabled=disabled,
                                   help="let torchvision fetch the official files into the data root and check "
                                        "their md5 sums; nothing is ever fetched otherwise")
    else:
        st.caption(f"{info.preprocessing}. Embedded: nothing to download.")

    st.subheader("2 · Model")
    model = _model_choice(dataset, info.architecture, disabled)
    original = st.radio("Original model (the one to unlearn from)", [ORIGINAL_TRAIN, ORIGINAL_UPLOAD],
                        key="new_original", disabled=disabled, horizontal=True)
    checkpoint = None
    if original == ORIGINAL_UPLOAD:
        classes = "the classes of the ImageFolder" if dataset == "imagefolder" else f"{info.num_classes} classes"
        st.caption(f"The checkpoint must be a state dict of the model chosen above ({model or info.architecture}) "
                   f"for this data set's inputs and its {classes}: the architecture and the number of classes must "
                   "match. .safetensors, or a .pt/.pth state dict, which is loaded weights-only (no pickled code "
                   "runs).")
        uploaded = st.file_uploader("Checkpoint", type=["safetensors", "pt", "pth"], key="new_checkpoint",
                                    disabled=disabled)
        if uploaded is None:
            st.info("Upload the checkpoint to go on.", icon=":material/upload_file:")
        else:
            checkpoint = _saved_upload(uploaded)
        complete = checkpoint is not None
    else:
        complete = True

    st.subheader("3 · Forget set")
    kind = st.radio("Forget", [FORGET_CLASS, FORGET_RANDOM, FORGET_LISTED], key="new_forget_kind",
                    disabled=disabled, horizontal=True)
    forget: dict = {}
    if kind == FORGET_CLASS:
        top = None if dataset == "imagefolder" else info.num_classes - 1
        forget["forget_class"] = int(st.number_input(
            "Class to forget", min_value=0, max_value=top, value=min(info.default_forget_class, top or 0), step=1,
            key=f"new_forget_class_{dataset}", disabled=disabled,
            help="its label: for an ImageFolder, the position of its folder in sorted order"))
    elif kind == FORGET_RANDOM:
        left, right = st.columns(2)
        forget["forget_fraction"] = left.number_input(
            "Share of the training set (%)", min_value=0.1, max_value=99.0, value=10.0, step=1.0,
            key="new_forget_percent", disabled=disabled) / 100
        forget["forget_seed"] = int(right.number_input("Seed (which subset)", min_value=0, value=0, step=1,
                                                       key="new_forget_seed", disabled=disabled))
    else:
        forget["forget_indices"] = _listed_indices(disabled)
        complete = complete and forget["forget_indices"] is not None
    if not complete:
        return None
    return dict(dataset=dataset, data_root=data_root, download=download, image_size=image_size, model=model,
                checkpoint=checkpoint, **forget)


def _right_half(dataset: str, class_wise: bool, disabled: bool) -> dict:
    """Oracle, methods, grid, seeds and the unlearning recipe."""
    info = dataset_info(dataset)
    st.subheader("4 · Retrained oracle")
    oracle = True
    if class_wise:
        oracle = st.radio("Oracle (the model trained without the forget set)", [ORACLE_TRAIN, ORACLE_SKIP],
                          key="new_oracle", disabled=disabled, horizontal=True) == ORACLE_TRAIN
        st.caption("The avg gap (how far a point is from retraining) needs the oracle. Skipping it saves one full "
                   "training; the frontier and its hypervolume over (retain acc, UA) stay, the gap cards say n/a.")
    else:
        st.caption("Random-subset and listed forgetting retrain the oracle: their hypervolume measures "
                   "over-forgetting against the oracle's forget accuracy (spec §5), and the avg gap needs it too.")

    st.subheader("5 · Methods, grid and recipe")
    names = list(METHODS)
    methods = st.multiselect("Methods", names, default=["cup"], key="new_methods", disabled=disabled,
                             format_func=lambda name: METHODS[name].label,
                             help="each sweeps its own knob over an evenly spaced grid")
    left, right = st.columns(2)
    points = left.select_slider("Grid points per method", list(compare.COMPARE_POINTS), value=11, key="new_points",
                                disabled=disabled)
    seeds = right.multiselect("Seeds", [0, 1, 2, 3, 4], default=[0], key="new_seeds", disabled=disabled,
                              help="unlearning seeds (batch order)")
    recipe = UnlearnRecipe(**info.default_unlearn_recipe)
    columns = st.columns(3)
    epochs = columns[0].number_input("Unlearning epochs", min_value=1, max_value=10_000, value=recipe.epochs,
                                     step=1, key=f"new_epochs_{dataset}", disabled=disabled)
    lr = columns[1].number_input("Learning rate", min_value=0.0, value=recipe.lr, step=recipe.lr / 10,
                                 format="%g", key=f"new_lr_{dataset}", disabled=disabled,
                                 help="of the base optimiser; a learning-rate method sweeps its own instead")
    batch_size = columns[2].number_input("Batch size", min_value=1, max_value=1_000_000, value=recipe.batch_size,
                                         step=1, key=f"new_batch_{dataset}", disabled=disabled,
                                         help="samples per forget batch and per retain batch")
    train = info.default_train_recipe
    st.caption(f"Defaults are {dataset}'s recipe. The rest of it: {recipe.optimizer.upper()}, momentum "
               f"{recipe.momentum:g}, weight decay {recipe.weight_decay:g}. The original (unless uploaded) and the "
               f"oracle train for {train['epochs']} epochs, {train['optimizer'].upper()} lr {train['lr']:g}, batch "
               f"{train['batch_size']}.")
    return dict(oracle=oracle, methods=tuple(methods), points=int(points), seeds=tuple(sorted(seeds)),
                epochs=int(epochs), lr=float(lr), batch_size=int(batch_size))


def _dataset_label(name: str) -> str:
    info = DATASETS[name]
    return f"{catalogue.dataset_title(name)} ({'embedded' if info.embedded else 'from a folder'})"


def _model_choice(dataset: str, default: str, disabled: bool) -> str | None:
    kinds = [f"the data set's default ({default})", "another built-in", "a torchvision architecture"]
    kind = st.radio("Architecture", kinds, key="new_model_kind", disabled=disabled, horizontal=True)
    if kind == kinds[1]:
        others = [name for name in ARCHITECTURES if name != default]
        return st.selectbox("Built-in architecture", others, key="new_builtin", disabled=disabled)
    if kind == kinds[2]:
        names = new.torchvision_models()
        name = st.selectbox("torchvision architecture (untrained; its classifier sized to the data set)", names,
                            index=names.index("resnet18") if "resnet18" in names else 0, key="new_torchvision",
                            disabled=disabled, help="torchvision.models.list_models(); most expect 3-channel images")
        return TORCHVISION_PREFIX + name
    return None


def _saved_upload(uploaded) -> str | None:
    """The uploaded checkpoint's saved path (saved and hashed once per upload)."""
    saved = st.session_state.setdefault(UPLOADED_KEY, {})
    if uploaded.file_id not in saved:
        try:
            saved[uploaded.file_id] = str(new.save_upload(uploaded.getvalue(), uploaded.name))
        except ValueError as err:
            st.error(components.as_text(str(err)), icon=":material/error:")
            return None
        except OSError as err:
            st.error(f"Cannot save the checkpoint in the cache ({components.as_text(str(err.strerror or err))}).",
                     icon=":material/error:")
            return None
    path = saved[uploaded.file_id]
    st.caption(f"Saved in the cache as `uploads/{Path(path).name[:16]}…{Path(path).suffix}` (named by its SHA-256).")
    return path


def _listed_indices(disabled: bool) -> tuple[int, ...] | None:
    left, right = st.columns(2)
    text = left.text_area("Training-sample indices", key="new_indices", disabled=disabled, height=100,
                          placeholder="3, 17, 42, …",
                          help="positions in the experiment's training split, separated by commas, spaces or new lines")
    uploaded = right.file_uploader("…or a file of indices (.txt, .csv, .json, .npy)", key="new_indices_file",
                                   type=["txt", "csv", "json", "npy"], disabled=disabled,
                                   help="a file wins over the typed list")
    try:
        if uploaded is not None:
            return new.read_index_upload(uploaded.getvalue(), uploaded.name)
        if not text.strip():
            st.info("List the samples to forget to go on.", icon=":material/list:")
            return None
        return parse_indices(text)
    except ValueError as err:
        st.error(components.as_text(str(err)), icon=":material/error:")
        return None


def check_and_start(request: dict[str, Any] | None, disabled: bool) -> None:
    """The check button (builds the experiment, reads the data, times a few steps), its verdict, and Start."""
    st.subheader("Cost and start")
    if st.button("Check the settings and estimate the cost", key="new_check", icon=":material/fact_check:",
                 disabled=disabled or request is None):
        with st.spinner("Reading the data and timing a few real steps…"):
            try:
                job = new.make_job(request)
                st.session_state[CHECK_KEY] = (request, job, new.estimate(job), None)
            except ValueError as err:  # the library's refusals: bad settings, files or data, or the check's limits
                st.session_state[CHECK_KEY] = (request, None, None, formatting.error_text(err))
            except OSError as err:  # the cache (an upload's folder) or the data cannot be read
                st.session_state[CHECK_KEY] = (request, None, None, f"cannot read {err.filename or 'a file'} "
                                                                    f"({err.strerror or err})")
            except Exception as err:  # noqa: BLE001 - a bug, not the user's input: one line, the traceback logged
                log.exception("the New experiment page's check failed (data set %s, model %s)", request["dataset"],
                              request["model"])
                st.session_state[CHECK_KEY] = (request, None, None, f"the check failed unexpectedly "
                                               f"({type(err).__name__}: {str(err)[:200]}); the server's log has the "
                                               "details")
    # One slot, emptied at once while a sweep runs: what stood here before would otherwise stay on screen,
    # greyed out, until the run ends (Streamlit keeps a run's old elements until it finishes).
    slot = st.empty()
    if disabled:
        slot.empty()
        return
    with slot.container():
        _verdict(request)


def _verdict(request: dict[str, Any] | None) -> None:
    """What the last check of these settings found: the library's error, or the cost and Start."""
    checked = st.session_state.get(CHECK_KEY)
    if checked is None or request is None:
        return
    if checked[0] != request:
        st.caption("The settings changed since the last check: check them again to see the cost.")
        return
    _, job, cost, error = checked
    if error is not None:
        st.error(components.as_text(error), icon=":material/error:")
        return
    total = job.plan.total() + len(job.experiment.roles)
    cached = total - cost.points - cost.references
    parts = []
    if cost.references:
        roles = cost.reference_roles
        what = {"original": "the original" + (" (your checkpoint, evaluated)" if job.settings.checkpoint else ""),
                "oracle": "the retrained oracle"}
        parts.append(f"make {' and '.join(what[role] for role in roles)} "
                     f"({formatting.format_duration(cost.reference_seconds)})")
    if cost.points:
        parts.append(f"compute {cost.points} point{'s' if cost.points > 1 else ''} "
                     f"({formatting.format_duration(cost.point_seconds)} each)")
    if not parts:
        st.success(f"Everything is cached already: experiment `{job.experiment.id}`.", icon=":material/check:")
        result_links(job)
        return
    changed = new.earlier_experiments_of_other_content(job)
    if changed:
        st.info(f"The files in the data root changed since experiment {', '.join(f'`{id}`' for id in changed)} was "
                "made from them: these settings make a new experiment; the earlier one stays cached.",
                icon=":material/difference:")
    left, right = st.columns([1, 3])
    left.metric("Estimated time", formatting.format_duration(cost.total_seconds))
    right.markdown(f"Experiment `{job.experiment.id}`: {catalogue.describe_experiment(job.experiment)}.  \n"
                   f"This will {' and '.join(parts)} on {new.device_name()}"
                   f"{f'; {cached} of the {total} models are cached already' if cached else ''}.")
    right.caption("Measured from a few real steps on this machine; the sweep shows the time left as it goes.")
    st.button("Start", key="new_start", type="primary", icon=":material/play_arrow:", on_click=_start, args=(job,))


def _start(job: new.Job) -> None:
    st.session_state[RUN_KEY] = job
    st.session_state.pop(DONE_KEY, None)
    st.session_state.pop(CHECK_KEY, None)  # its estimate is spent; the report replaces it


def _cancel() -> None:
    """on_click of Cancel: runs before the rerun that the click causes, so that rerun does not resume the job."""
    job = st.session_state.pop(RUN_KEY, None)
    if job is not None:
        st.session_state[DONE_KEY] = (job, "cancelled")


def run_and_report() -> None:
    """Runs the started job (with progress and Cancel) and then says what came of it, with links and the TOML."""
    job = st.session_state.get(RUN_KEY)
    if job is not None:
        st.markdown(f"Computing experiment `{job.experiment.id}`: {catalogue.describe_experiment(job.experiment)}.")
        st.button("Cancel", key="new_cancel", on_click=_cancel, icon=":material/stop_circle:",
                  help="stops at the end of the current training epoch or unlearning step; the model being made is "
                       "dropped, finished points stay in the cache")
        finished = components.compute_with_progress(job.experiment, job.plan, job.sources,
                                                    after_error="Nothing more was computed.")
        st.session_state.pop(RUN_KEY, None)
        if not finished:
            return
        st.session_state[DONE_KEY] = (job, "finished")
        st.rerun()  # the report, without the progress bar and Cancel
    done = st.session_state.get(DONE_KEY)
    if done is None:
        return
    job, outcome = done
    total = job.plan.total()
    kept = total - sweeps.missing_points_count(job.experiment, job.plan)
    if outcome == "cancelled":
        st.warning(f"Cancelled: {kept} of the {total} points are finished and stay in the cache; the model being made "
                   "when you clicked was dropped at the end of its current epoch or step. Starting the same settings "
                   "again computes only the rest.", icon=":material/stop_circle:")
    else:
        st.success(f"Done: experiment `{job.experiment.id}` has all {total} points.", icon=":material/check_circle:")
    result_links(job)


def result_links(job: new.Job) -> None:
    """Open the experiment in Explore or Compare (its id in the URL), or take its sweep file elsewhere."""
    settings, experiment = job.settings, job.experiment
    columns = st.columns(3)
    columns[0].page_link("pages/explore.py", label="Open in Explore", icon=":material/scatter_plot:",
                         query_params={"experiment": experiment.id})
    columns[1].page_link("pages/compare.py", label="Open in Compare methods", icon=":material/leaderboard:",
                         query_params=compare.compare_query(experiment, settings.methods, settings.points,
                                                             settings.seeds))
    columns[2].download_button(
        "Download sweep file (.toml)", data=sweeps.sweep_file(experiment, list(settings.methods), settings.points,
                                                                list(settings.seeds)),
        file_name=f"sweep-{experiment.id}.toml", mime="application/toml", on_click="ignore",
        icon=":material/description:", key="new_sweep_file")

