"""The New experiment page: the job its settings make, the check's limits and cost estimate,
and the uploads it saves (cup_core.uploads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import streamlit as st

from cup_core import Experiment, SweepPlan, SweepSettings, resolve_device, uploads
from cup_core.config import Sources


@dataclass(frozen=True)
class Job:
    """Checked settings: the experiment they make, where its inputs are, and the points to compute."""

    settings: SweepSettings
    experiment: Experiment
    sources: Sources
    plan: SweepPlan


def make_job(request: Mapping[str, Any]) -> Job:
    """The experiment that the form's values (SweepSettings' fields) describe, checked as far as building it goes;
    ValueError (SettingError where a setting is wrong) says what is wrong. Reads the data folder of a torchvision
    set (resolve_config) but writes nothing."""
    settings = SweepSettings.from_mapping(request)
    with check_limits():
        config = settings.experiment_config()
    return Job(settings, Experiment(config), settings.sources, settings.plan())


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
