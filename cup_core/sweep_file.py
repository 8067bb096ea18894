"""Sweep settings as a TOML file: `python -m cup_core sweep --config sweep.toml` reads one, the app writes one.

The keys are the `sweep` command's long options with underscores (`data_root`, `forget_class`, ...), plus
`split_seed` and two optional tables, `[train]` and `[unlearn]`, that set whole recipes (the flat `epochs`,
`lr`, `batch_size` and `optimizer` keys override `[unlearn]`, as the flags do; `lrs`, a list of learning rates,
pools the sweep over them instead of `lr`: see pool.py). Relative paths are taken from the file's folder.
Options given on the command line override the file.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from typing import Any

from ._files import MiB, read_regular
from .config import ExperimentConfig, Sources, TrainRecipe, UnlearnRecipe
from .settings import SweepSettings

# Each setting's accepted TOML types (a float setting also takes an integer); what they mean: settings.py.
SETTINGS: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "data_root": (str,), "download": (bool,), "image_size": (int,), "split_seed": (int,),
    "forget_class": (int,), "forget_fraction": (float,), "forget_seed": (int,), "forget_indices": (str, list),
    "model": (str,), "checkpoint": (str,), "oracle": (bool,),
    "methods": (str, list), "grid": (list,), "points": (int,), "seeds": (int, list), "calibrate": (bool,),
    "epochs": (int,), "lr": (float,), "lrs": (list,), "batch_size": (int,), "optimizer": (str,),
    "device": (str,), "engine": (str,), "executor": (str,), "ray_address": (str,), "max_memory": (str, int),
    "cache_dir": (str,), "train": (dict,), "unlearn": (dict,),
}
MAX_SWEEP_FILE_BYTES = 64 * MiB  # room for a long forget_indices list
PATH_SETTINGS = ("data_root", "checkpoint", "forget_indices", "cache_dir")
RECIPES = {"train": TrainRecipe, "unlearn": UnlearnRecipe}


def read_sweep_file(path: str | os.PathLike) -> dict[str, Any]:
    """The file's settings, type-checked, with relative paths resolved; ValueError names what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(read_regular(path, "sweep file", MAX_SWEEP_FILE_BYTES).decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{path}: not a sweep file (nested too deeply)") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file; a sweep file is TOML") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
    for key, value in data.items():
        if key not in SETTINGS:
            raise ValueError(f"{path}: unknown setting {key!r}; known: {', '.join(SETTINGS)}")
        _check_type(path, key, value, SETTINGS[key])
    for table, recipe in RECIPES.items():
        for key, value in data.get(table, {}).items():
            fields = {f.name: f for f in dataclasses.fields(recipe)}
            if key not in fields:
                raise ValueError(f"{path}: unknown setting {key!r} in [{table}]; known: {', '.join(fields)}")
            default = getattr(recipe(), key)
            _check_type(path, f"{table}.{key}", value, (float,) if isinstance(default, float) else (type(default),))
    for key in PATH_SETTINGS:
        if isinstance(data.get(key), str):
            data[key] = str((path.parent / Path(data[key]).expanduser()).resolve())
    if isinstance(data.get("forget_indices"), list):
        _check_items(path, "forget_indices", data["forget_indices"], int)
    for key, kind in (("grid", float), ("lrs", float), ("seeds", int), ("methods", str)):
        if isinstance(data.get(key), list):
            _check_items(path, key, data[key], kind)
    return data


def load_sweep_file(path: str | os.PathLike) -> SweepSettings:
    """The file's settings, checked."""
    return SweepSettings.from_mapping(read_sweep_file(path))


def _check_type(path: Path, key: str, value: Any, accepted: tuple[type, ...]) -> None:
    ok = any(_is(value, kind) for kind in accepted)
    if not ok:
        names = " or ".join({str: "a string", int: "an integer", float: "a number", bool: "true or false",
                             list: "a list", dict: "a table"}[kind] for kind in accepted)
        raise ValueError(f"{path}: {key} must be {names}, got {value!r}")


def _check_items(path: Path, key: str, values: list, kind: type) -> None:
    for value in values:
        _check_type(path, f"each item of {key}", value, (kind,))


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool  # TOML's true is not the integer 1
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def sweep_file_text(config: ExperimentConfig, sources: Sources, methods: list[str], points: int,
                    seeds: list[int], calibrate: bool = True, lrs: list[float] | None = None) -> str:
    """A sweep file that recomputes `config`'s experiment (the same id) with these methods, grid and seeds; with
    `lrs`, the pool of its config at those learning rates (pool.py)."""
    from .data import dataset_info

    settings: dict[str, Any] = {"dataset": config.dataset}
    if not dataset_info(config.dataset).embedded:
        settings["data_root"] = sources.data_root or "PATH/TO/THE/DATA"
    if config.image_size is not None:
        settings["image_size"] = config.image_size
    settings["split_seed"] = config.split_seed
    forget = config.forget
    if forget.indices is not None:
        settings["forget_indices"] = list(forget.indices)
    elif forget.kind == "class":
        settings["forget_class"] = forget.forget_class
    else:
        settings.update(forget_fraction=forget.fraction, forget_seed=forget.seed)
    if config.model is not None:
        settings["model"] = config.model
    if config.original_sha256 is not None:
        settings["checkpoint"] = sources.checkpoint or "PATH/TO/YOUR/CHECKPOINT"
    if not config.oracle:
        settings["oracle"] = False
    settings.update(methods=list(methods), points=points, seeds=list(seeds))
    if not calibrate:
        settings["calibrate"] = False
    if lrs:
        from .pool import check_lrs, member_config

        settings["lrs"] = [float(lr) for lr in lrs]
        ids = ", ".join(member_config(config, lr).experiment_id for lr in check_lrs(lrs))
        lines = [f"# python -m cup_core sweep --config THIS_FILE  (experiments {ids}, pooled: lrs overrides the "
                 "[unlearn] lr)"]
    else:
        lines = [f"# python -m cup_core sweep --config THIS_FILE  (experiment {config.experiment_id})"]
    if config.original_sha256 is not None:
        lines.append(f"# the checkpoint must be the file with sha256 {config.original_sha256}")
    lines += [f"{key} = {_toml_value(value)}" for key, value in settings.items()]
    for table in RECIPES:
        lines += ["", f"[{table}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in dataclasses.asdict(getattr(config, table)).items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")
