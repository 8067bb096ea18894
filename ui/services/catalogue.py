"""Which experiments there are: the cache's experiments, the data sets and forget sets the sidebar offers, and
how each experiment is described; the Experiments page's list and delete."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from cup_core import Experiment, ForgetSet, default_config
from cup_core.cache import cache_root
from cup_core.data import DATASETS, dataset_info
from cup_core.experiment import Unreadable
from cup_core.methods import get_method

DEFAULT_DATASET = "digits"
RANDOM_FRACTION = 0.1  # the random-subset forget set offered in the sidebar


def forget_label(forget: ForgetSet) -> str:
    """A forget set's name in the sidebar, which is also its URL form ("class 0", "random 10%")."""
    if forget.indices is not None:
        return forget.describe()
    if forget.kind == "class":
        return f"class {forget.forget_class}"
    label = f"random {forget.fraction * 100:g}%"
    return label if forget.seed == 0 else f"{label} seed {forget.seed}"


def cache_scan(root: Path) -> tuple[tuple[str, int], ...]:
    """Each experiment folder's name and its config's mtime: changes when an experiment is made or deleted."""
    found = []
    for config_file in root.glob("*/config.json"):
        if config_file.parent.name.startswith("."):  # being deleted (Experiment.delete renames first)
            continue
        try:
            found.append((config_file.parent.name, config_file.stat().st_mtime_ns))
        except OSError:
            continue
    return tuple(sorted(found))


@st.cache_resource(show_spinner=False, max_entries=8)
def _experiments_in(root: str, scan: tuple[tuple[str, int], ...]) -> tuple[list[Experiment], list[Unreadable]]:
    from cup_core.experiment import open_experiments

    ordered = sorted(scan, key=lambda entry: (entry[1], entry[0]))
    return open_experiments([Path(root) / name for name, _ in ordered])


def cached_experiments() -> list[Experiment]:
    """Every experiment in the cache, oldest first, so that a new one never becomes a sidebar's default (a URL
    leaves defaults out); opened once per change of the cache's folder list. Folders that do not open as an
    experiment (a foreign or hostile config.json) are left out: see unreadable_experiments."""
    root = cache_root()
    return _experiments_in(str(root), cache_scan(root))[0]


def unreadable_experiments() -> list[Unreadable]:
    """The cache's folders whose config.json does not open as an experiment, and why (the Experiments page)."""
    root = cache_root()
    return _experiments_in(str(root), cache_scan(root))[1]


def cached_experiment(experiment_id: str | None) -> Experiment | None:
    return next((e for e in cached_experiments() if e.id == experiment_id), None) if experiment_id else None


def find_experiment(experiment_id: str | None) -> Experiment | None:
    """A cached experiment by id, or the default experiment of an embedded set and forget set the sidebar
    offers (computed on first open, so it need not be cached yet)."""
    found = cached_experiment(experiment_id)
    if found is not None or not experiment_id:
        return found
    for name, info in DATASETS.items():
        if info.embedded:
            for forget in forget_choices(name).values():
                candidate = default_experiment(name, forget)
                if candidate.id == experiment_id:
                    return candidate
    return None


def datasets() -> list[str]:
    """The default data set, the other embedded ones, and every other one that has a cached experiment."""
    cached = {experiment.config.dataset for experiment in cached_experiments()}
    others = [name for name, info in DATASETS.items() if (info.embedded or name in cached) and name != DEFAULT_DATASET]
    return [DEFAULT_DATASET, *others]


def dataset_title(name: str) -> str:
    from cup_core.vision import VISION_DATASETS

    return VISION_DATASETS[name].title if name in VISION_DATASETS else name


def forget_choices(dataset: str) -> dict[str, ForgetSet]:
    """By label, the default first: every class and a random 10 % of an embedded set, then the forget sets of
    cached experiments."""
    default = default_forget(dataset)
    choices: dict[str, ForgetSet] = {forget_label(default): default}
    info = dataset_info(dataset)
    if info.embedded:
        for k in range(info.num_classes):
            choices.setdefault(f"class {k}", ForgetSet(forget_class=k))
        random = ForgetSet(forget_class=None, fraction=RANDOM_FRACTION)
        choices.setdefault(forget_label(random), random)
    others = [e.config.forget for e in cached_experiments() if e.config.dataset == dataset]
    for forget in sorted(others, key=lambda f: (f.kind != "class", f.forget_class or 0, forget_label(f))):
        choices.setdefault(forget_label(forget), forget)
    return choices


def default_forget(dataset: str) -> ForgetSet:
    info = dataset_info(dataset)
    if info.embedded:
        return ForgetSet(forget_class=info.default_forget_class)
    oldest = next((e.config.forget for e in cached_experiments() if e.config.dataset == dataset), None)
    return oldest or ForgetSet(forget_class=info.default_forget_class)


def default_experiment(dataset: str, forget: ForgetSet) -> Experiment:
    return Experiment(replace(default_config(dataset), forget=forget))


def experiments_for(dataset: str, forget: ForgetSet) -> list[Experiment]:
    """An embedded set's default-recipe experiment first, then every cached experiment with this data and
    forget set (other recipes, models, checkpoints, no oracle; e.g. made by `python -m cup_core sweep`)."""
    found = [default_experiment(dataset, forget)] if dataset_info(dataset).embedded else []
    ids = {experiment.id for experiment in found}
    for experiment in cached_experiments():
        config = experiment.config
        if experiment.id not in ids and config.dataset == dataset and config.forget == forget:
            found.append(experiment)
    return found


def describe_variant(experiment: Experiment) -> str:
    """How an experiment differs from its data set's default one: model, original, oracle, recipes."""
    config = experiment.config
    base = default_config(config.dataset)
    changed = []
    if config.model is not None:
        changed.append(f"model {config.model}")
    if config.original_sha256 is not None:
        changed.append(f"original: your checkpoint (sha256 {config.original_sha256[:12]}…)")
    if not config.oracle:
        changed.append("no oracle")
    if config.image_size is not None:
        changed.append(f"{config.image_size}×{config.image_size} images, {len(config.classes or ())} classes")
    changed += [f"unlearning {name} {getattr(config.unlearn, name)}" for name in config.unlearn.__dataclass_fields__
                if getattr(config.unlearn, name) != getattr(base.unlearn, name)]
    changed.append(describe_training(experiment))
    return ", ".join(part for part in changed if part) or "default recipe"


def describe_training(experiment: Experiment) -> str:
    """How the original's and the oracle's training and the split differ from the data set's default ("" if not)."""
    config = experiment.config
    base = default_config(config.dataset)
    changed = [f"training {name} {getattr(config.train, name)}" for name in config.train.__dataclass_fields__
               if getattr(config.train, name) != getattr(base.train, name)]
    if config.split_seed != base.split_seed:
        changed.append(f"split seed {config.split_seed}")
    return ", ".join(changed)


def describe_model(experiment: Experiment) -> str:
    config = experiment.config
    name = experiment.architecture + (" (the data set's default)" if config.model is None else "")
    return name + (", original from your checkpoint" if config.original_sha256 else "")


def describe_experiment(experiment: Experiment) -> str:
    """One line: data set, forget set, model, oracle; the pages' captions and the experiments list."""
    config = experiment.config
    oracle = "retrained oracle" if config.oracle else "no oracle"
    return f"{dataset_title(config.dataset)} · forget {config.forget.describe()} · {describe_model(experiment)} · {oracle}"


def method_label(name: str) -> str:
    return get_method(name).label


def method_about(name: str) -> str:
    method = get_method(name)
    return f"{method.label}: {method.about} (knob: {method.knob})"


def list_cached():
    """Every cached experiment with its points, size and last change, newest first (experiment.list_experiments)."""
    from cup_core.experiment import list_experiments

    return list_experiments()


def delete_experiment(experiment_id: str) -> None:
    """Removes a cached experiment's folder (renamed away first, so no reader sees half of it)."""
    experiment = cached_experiment(experiment_id)
    if experiment is not None:
        experiment.delete()
