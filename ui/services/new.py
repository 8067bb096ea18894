"""The New experiment page: its request as plain values, the job it makes, the check's limits and cost estimate,
and the uploads it saves (cup_core.uploads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from cup_core import Experiment, SweepPlan, resolve_device, uploads
from cup_core.config import Sources
from cup_core.data import dataset_info

from .catalogue import dataset_title


@dataclass(frozen=True)
class NewExperiment:
    """What the New experiment page asks for, as plain values; equal requests are one job (and one estimate)."""

    dataset: str
    data_root: str | None = None  # torchvision and ImageFolder sets only
    download: bool = False
    image_size: int | None = None  # ImageFolder only
    model: str | None = None  # None: the data set's default architecture
    checkpoint: str | None = None  # a saved upload: the original model
    forget_class: int | None = None
    forget_fraction: float | None = None
    forget_seed: int = 0
    forget_indices: tuple[int, ...] | None = None
    oracle: bool = True
    methods: tuple[str, ...] = ("cup",)
    points: int = 11
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None  # unlearning recipe; None: the data set's
    lr: float | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class Job:
    """A checked request: the experiment it makes, where its inputs are, and the points to compute."""

    request: NewExperiment
    experiment: Experiment
    sources: Sources
    plan: SweepPlan


_FORM_WORDS = [  # the library's messages name the CLI's options; the New experiment page names its own fields
    ("; --download (needs internet) creates it and fetches the files",
     "; tick “Download if missing” (needs internet) to create it and fetch the files"),
    ("Pass --download (needs internet) to fetch the official files there.",
     "Tick “Download if missing” (needs internet) to fetch the official files there."),
    ("point --data-root at its folder", "give its folder as the data root"),
    ("give its file with --checkpoint", "upload its file as the checkpoint"),
    ("(--image-size, e.g. 32 or 224)", "(e.g. 32 or 224)"),
    ("--data-root", "the data root"), ("--download", "“Download if missing”"), ("--image-size", "the image size"),
    ("--checkpoint", "the checkpoint"),
]


def form_message(message: str) -> str:
    """A library message in the New experiment page's words."""
    for cli, form in _FORM_WORDS:
        message = message.replace(cli, form)
    return message


def make_job(request: NewExperiment) -> Job:
    """The experiment a request describes, checked as far as building it goes; ValueError says what is wrong.
    Reads the data folder of a torchvision set (resolve_config) but writes nothing."""
    from cup_core.sweep_file import experiment_config

    sources = Sources(data_root=(request.data_root or "").strip() or None, checkpoint=request.checkpoint,
                      download=request.download)
    if not dataset_info(request.dataset).embedded and sources.data_root is None:
        raise ValueError(f"{dataset_title(request.dataset)} is read from a folder on this machine: fill in the data "
                         "root" + ("" if request.dataset == "imagefolder" else
                                   " (tick “Download if missing” to fetch the data there, which needs internet)"))
    if not request.methods:
        raise ValueError("choose at least one method")
    if not request.seeds:
        raise ValueError("choose at least one seed")
    settings = {name: getattr(request, name) for name in (
        "dataset", "image_size", "model", "forget_class", "forget_fraction", "forget_seed", "forget_indices",
        "oracle", "epochs", "lr", "batch_size")}
    with check_limits():
        config = experiment_config(settings, sources)
    plan = SweepPlan.default(tuple(request.methods), request.points, tuple(request.seeds))
    return Job(request, Experiment(config), sources, plan)


CHECK_SECONDS = 300  # the New page's Check reads the data within this time...
CHECK_MEMORY_SHARE = 0.5  # ... and this share of the machine's memory: beyond, the command line is the tool


def check_limits():
    """The New page's Check reads a data root within a time and a memory limit (vision.read_limits): a tree too big
    to read here is refused in one line rather than read for minutes by a server whose browser may have gone."""
    import os

    from cup_core.vision import read_limits

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return read_limits(CHECK_SECONDS, int(CHECK_MEMORY_SHARE * memory))


def estimate(job: Job):
    """cost.estimate_cost on this machine's device: a few real steps timed (about a second on digits)."""
    from cup_core.cost import estimate_cost

    with check_limits():
        return estimate_cost(job.experiment, job.plan, resolve_device(), job.sources)


def earlier_experiments_of_other_content(job: Job) -> list[str]:
    """Cached experiments made from this job's data root when its files had other content (see experiment.py)."""
    from cup_core.experiment import made_from_other_content

    if (job.experiment.root / "config.json").exists():
        return []
    return made_from_other_content(job.experiment, job.sources)


def device_name() -> str:
    return str(resolve_device())


def save_upload(data: bytes, name: str) -> Path:
    """A user's checkpoint, saved once under the cache root (uploads.save_checkpoint), so that the experiment's
    sources point at a file that stays."""
    return uploads.save_checkpoint(data, name)


def read_index_upload(data: bytes, name: str) -> tuple[int, ...]:
    """An uploaded index file (.txt, .csv, .json or .npy), its messages naming the file (uploads.read_indices_bytes)."""
    return uploads.read_indices_bytes(data, name)


@st.cache_resource(show_spinner=False)
def torchvision_models() -> list[str]:
    from torchvision import models

    return sorted(models.list_models(module=models))
