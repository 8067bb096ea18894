"""`python -m cup_core`: sweep, report and export without the app."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from . import cache
from .config import OPTIMIZERS, Sources
from .data import DATASETS
from .models import ARCHITECTURES
from .ray_executor import failure_kind
from .settings import CLI_NAMES, DEFAULT_POINTS, ENGINES, EXECUTORS, SettingError, SweepSettings, memory_size
from .sweep_file import read_sweep_file
from .device import resolve_device
from .experiment import Experiment, made_from_other_content
from .export import export_point
from .methods import METHODS, get_method
from .pool import Pool, check_lrs, member_plans, read_summary, share_references
from .report import REPORT_COLUMNS
from .compute import prepare
from .sweep import SweepPlan, missing_points, resolve_plan, run_sweep

REPORT_FORMATS = ("text", "json", "csv", "latex")  # what `report --format` prints


class UsageError(Exception):
    """A bad argument: the message says what to fix."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        """One line, like every other bad argument, instead of argparse's usage block."""
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _float_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    return values


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _lrs(text: str) -> tuple[float, ...]:
    try:
        return check_lrs(_float_list(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("lrs: ")) from None


def _memory(text: str) -> int:
    try:
        return memory_size(text)
    except SettingError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--max-memory: ")) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m cup_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sweep = commands.add_parser("sweep", help="compute an experiment's missing points (cached ones are reused)")
    # Defaults live in settings.SweepSettings, not here: None means "not given", so a --config file's value stands.
    sweep.add_argument("--config", metavar="FILE", help="read these settings from a TOML file (sweep_file.py); "
                                                       "options given here override it")
    sweep.add_argument("--dataset", help=f"one of: {', '.join(DATASETS)} (default digits)")
    sweep.add_argument("--data-root", metavar="DIR", help="folder holding a torchvision data set or an ImageFolder tree")
    sweep.add_argument("--download", action="store_true", default=None,
                       help="let torchvision fetch a missing data set into --data-root (needs internet)")
    sweep.add_argument("--image-size", type=int, help="ImageFolder only: resize and centre-crop images to this size")
    sweep.add_argument("--split-seed", type=int, help="the train/test split of blobs, digits and an ImageFolder tree "
                                                     "without train/ and test/ folders (default 0)")
    forget = sweep.add_mutually_exclusive_group()
    forget.add_argument("--forget-class", type=int, help="forget this whole class (default: the data set's default)")
    forget.add_argument("--forget-fraction", type=float, help="forget a seeded random share of the training set, in (0, 1)")
    forget.add_argument("--forget-indices", metavar="FILE",
                        help="forget the training samples listed in FILE (integers; .txt, .csv, .json or .npy)")
    sweep.add_argument("--forget-seed", type=int, help="which random subset (with --forget-fraction)")
    sweep.add_argument("--model", help="architecture: " + ", ".join(ARCHITECTURES) + ", or torchvision:<name> "
                                       "(default: the data set's)")
    sweep.add_argument("--checkpoint", metavar="FILE", help="your trained original (.safetensors, or a .pt state "
                                                           "dict loaded weights-only) for --model")
    sweep.add_argument("--no-oracle", dest="oracle", action="store_false", default=None,
                       help="skip retraining the oracle (class-wise forgetting; the gap to the oracle is then empty)")
    sweep.add_argument("--methods", help=f"all, or a comma list of: {', '.join(METHODS)} (default cup)")
    grid = sweep.add_mutually_exclusive_group()
    grid.add_argument("--grid", type=_float_list, help="knob values, comma-separated, e.g. 0,0.25,0.5")
    grid.add_argument("--points", type=int, help=f"values per method (default {DEFAULT_POINTS}): calibrated on this "
                                                 "experiment for knobs without an intrinsic range, else evenly spaced")
    sweep.add_argument("--no-calibrate", dest="calibrate", action="store_false", default=None,
                       help="lay every method's grid evenly over its fixed default range instead of calibrating "
                            "learning rates, weights and penalties on this experiment")
    sweep.add_argument("--seeds", type=_int_list, help="comma list of unlearning seeds (default 0)")
    sweep.add_argument("--epochs", type=int, help="unlearning epochs (default: the data set's recipe)")
    lr = sweep.add_mutually_exclusive_group()
    lr.add_argument("--lr", type=float, help="unlearning learning rate")
    lr.add_argument("--lrs", type=_lrs, metavar="LR,LR,...",
                    help="pool each method's solution set over these unlearning learning rates, e.g. 1e-3,1e-4: one "
                         "experiment per learning rate (see pool.py and the README); prints each one's folder, the "
                         "first learning rate's last")
    sweep.add_argument("--batch-size", type=int, help="unlearning batch size (forget and retain batches)")
    sweep.add_argument("--optimizer", choices=OPTIMIZERS, help="unlearning base optimiser")
    sweep.add_argument("--device", help="auto (default: CUDA when present), cpu, cuda or cuda:N")
    sweep.add_argument("--engine", choices=ENGINES,
                       help="batched: a method's grid points train together; sequential: one at a time; "
                            "auto (default): batched, or sequential (with a warning saying why) for a model "
                            "that cannot be batched (batch norm, dropout)")
    sweep.add_argument("--executor", choices=EXECUTORS,
                       help="local (default): this process; ray: one Ray task per point (pip install ray)")
    sweep.add_argument("--ray-address", help="the Ray cluster to join (HOST:PORT, ray://HOST:PORT, auto), or local "
                                             "to start one here (default: $RAY_ADDRESS, else a cluster `ray start` "
                                             "made on this machine, else a local one)")
    sweep.add_argument("--max-memory", type=_memory,
                       help="memory the batched engine may use per chunk of points, e.g. 512M, 4G (default 2G)")
    sweep.add_argument("--cache-dir", help="cache folder (default $CUP_CACHE_DIR or ./cache)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    report = commands.add_parser("report", help="per-method tables and hypervolumes of an experiment")
    report.add_argument("experiment", help="the experiment's folder (the last line of `sweep`) or its id")
    report.add_argument("--format", choices=REPORT_FORMATS, default="text",
                        help="text: tables for reading (default); json: everything as one object; csv, latex: the "
                             "hypervolume table (LaTeX: a booktabs table, \\usepackage{booktabs})")
    report.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    report.add_argument("--lrs", type=_lrs, metavar="LR,LR,...",
                        help="report the pool of the experiment at these learning rates (sweep --lrs): each method's "
                             "points over all of them as one solution set")
    report.add_argument("--cache-dir", help="where to look up an experiment id")

    export = commands.add_parser("export", help="write one point's model and model card as a zip")
    export.add_argument("experiment", help="the experiment's folder or its id")
    export.add_argument("--method", default="cup")
    export.add_argument("--value", type=float, required=True, help="the knob value of the point")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--out", required=True, help="the zip file to write")
    export.add_argument("--cache-dir", help="where to look up an experiment id")

    verify = commands.add_parser("verify", help="check every cached model of an experiment against its SHA-256; "
                                                "remove broken ones (the next sweep recomputes them)")
    verify.add_argument("experiment", help="the experiment's folder or its id")
    verify.add_argument("--check-only", action="store_true", help="report broken entries without removing them")
    verify.add_argument("--cache-dir", help="where to look up an experiment id")
    return parser


# A CLI option of one of these groups replaces the --config file's whole group (a forget set, a grid, a learning rate).
OPTION_GROUPS = (("forget_class", "forget_fraction", "forget_indices"), ("grid", "points"), ("lr", "lrs"))


def _sweep_settings(args: argparse.Namespace) -> SweepSettings:
    """The defaults, then the --config file, then the options given on the command line, checked once."""
    from_file = read_sweep_file(args.config) if args.config else {}
    given = {name: value for name, value in vars(args).items()
             if value is not None and name in SweepSettings.__dataclass_fields__}
    for group in OPTION_GROUPS:
        if any(name in given for name in group):
            for name in group:
                from_file.pop(name, None)
    try:
        return SweepSettings.from_mapping({**from_file, **given})
    except SettingError as err:  # named as the user gave it: a sweep file's key or an option
        raise UsageError(err.worded(_Named(set(from_file) - set(given)))) from None


class _Named:
    """A setting's name as the user gave it: the sweep file's key where the file set it, else the option."""

    def __init__(self, from_file: set[str]) -> None:
        self.from_file = from_file

    def __getattr__(self, name: str) -> str:
        return name if name in self.from_file else getattr(CLI_NAMES, name)  # CLI_NAMES refuses _private names


def _sweep(args: argparse.Namespace) -> int:
    settings = _sweep_settings(args)
    sources = settings.sources
    config = settings.experiment_config(sources)
    # On Ray, the tasks pick their device (a GPU where the cluster has them); this process only checks inputs.
    device = resolve_device("auto" if settings.executor == "ray" else settings.device)
    experiment = Experiment(config, settings.cache_dir)
    if settings.lrs is None:
        _sweep_experiment(experiment, settings.plan(), sources, device, settings, args.quiet)
        print(experiment.root)
        return 0
    # A pool (pool.py): one experiment per learning rate, the first's references copied into the others. Their
    # folders are printed as they finish, the first's last: it holds the methods that run once, and a script that
    # takes the last line gets a folder that `report --lrs` opens.
    pool = Pool.around(experiment, settings.lrs)
    plans = member_plans(settings.methods, settings.points, settings.seeds, pool.lrs, settings.calibrate, settings.grid)
    print(f"pool over learning rates {', '.join(f'{lr:g}' for lr in pool.lrs)}: one experiment each", file=sys.stderr)
    for index, (member, plan) in enumerate(zip(pool.members, plans)):
        if plan is None:  # every method runs once, in the first
            continue
        if index:
            share_references(pool.home, member)
        _sweep_experiment(member, plan, sources, device, settings, args.quiet)
        if index:
            print(member.root, flush=True)
    print(pool.home.root)
    return 0


def _sweep_experiment(experiment: Experiment, plan: SweepPlan, sources: Sources, device, settings: SweepSettings,
                      quiet: bool) -> None:
    config = experiment.config
    with experiment.threads(device):
        data = prepare(experiment, sources, device)  # every input checked before the first line of output
    resolved = resolve_plan(experiment, plan)
    todo = len(missing_points(experiment, resolved)) + sum(resolved.calibrate.values()) * len(resolved.seeds)
    todo_text = (f"up to {todo} to compute, calibrating {', '.join(resolved.calibrate)} first" if resolved.calibrate
                 else f"{todo} to compute")
    changed = made_from_other_content(experiment, sources) if not (experiment.root / "config.json").exists() else []
    if changed:
        print(f"note: the files at {sources.data_root} changed since experiment {', '.join(changed)} was made from "
              "them (their content hashes differ): this is a new experiment, the earlier one stays cached",
              file=sys.stderr)
    lr = f", lr {config.unlearn.lr:g}" if settings.lrs is not None else ""
    print(f"experiment {experiment.id}: {config.dataset}, forget {config.forget.describe()}{lr}, "
          f"{plan.total()} points ({todo_text}) on "
          f"{'Ray, device ' + settings.device if settings.executor == 'ray' else device}", file=sys.stderr)
    with tqdm(total=plan.total() + len(experiment.roles), unit="pt", disable=quiet,
              file=sys.stderr) as bar:
        def on_progress(progress):
            bar.update(progress.done - bar.n)
            bar.set_postfix_str(progress.label)

        run_sweep(experiment, plan, device, on_progress, settings, sources=sources, prepared=data)


def _report(args: argparse.Namespace) -> int:
    experiment = Experiment.open(args.experiment, args.cache_dir)
    pool = None
    if args.lrs is not None:
        pool = Pool.around(experiment, args.lrs)
        if missing := pool.missing():
            raise UsageError(f"no experiment at learning rate {', '.join(f'{lr:g}' for lr in missing)} beside "
                             f"{experiment.id}; run `sweep` with the same settings and --lrs first")
        experiment = pool.home
    result = read_summary(experiment if pool is None else pool)
    if args.format == "json":
        print(json.dumps(result, indent=2))
        return 0
    if args.format in ("csv", "latex"):
        from .report import hypervolume_csv, hypervolume_latex

        if not result["methods"]:
            raise UsageError(f"experiment {experiment.id} has no points yet: run `python -m cup_core sweep` first")
        print((hypervolume_csv if args.format == "csv" else hypervolume_latex)(result), end="")
        return 0
    print(f"experiment {result['experiment']}: {experiment.config.dataset}, forget {result['forget_set']} "
          f"(metrics schema {result['schema']}: mia_efficacy is the SVC MIA)")
    for role, metrics in result["references"].items():
        print(f"  {role:8s} forget_acc {metrics['forget_acc']:6.2f}  retain_acc {metrics['retain_acc']:6.2f}  "
              f"test_acc {metrics['test_acc']:6.2f}  mia_efficacy {metrics['mia_efficacy']:6.2f}")
    if not result["methods"]:
        print("no points yet: run `python -m cup_core sweep` first")
    if result["methods"]:
        print(f"\n{_protocol(result)}")
    for name, method in result["methods"].items():
        print(f"\n{get_method(name).label} ({method['knob']}): {_hypervolumes(method)}")
        print(f"  {method['points']} seed-averaged points, seeds {method['seeds']}; {_calibration_line(method)}")
        if method["moves"] is False:
            print("  does not move the model from this original at any knob value")
        if method["versus_cup"] is not None:
            versus = method["versus_cup"]
            interval = versus["difference_ci95"]
            print(f"  against CUP: {versus['verdict']}" + ("" if interval is None else
                  f" (normalised hypervolume difference {versus['difference']:+.3f}, 95 % [{interval[0]:+.3f}, "
                  f"{interval[1]:+.3f}])") + (f" ({versus['why']})" if "why" in versus else ""))
        import pandas as pd

        pooled = pool is not None
        table = pd.DataFrame(method["table"], columns=(["lr"] if pooled else []) + REPORT_COLUMNS)
        table["value"] = table["value"].map(lambda v: f"{v:.4g}")  # learning rates keep their digits
        if pooled:  # a method that uses no recipe learning rate has none (its knob may be one)
            table["lr"] = table["lr"].map(lambda v: "-" if v is None or v != v else f"{v:.4g}")
        table = table.rename(columns={"value": method["knob"]})
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


def _interval_text(interval: list[float] | None) -> str:
    return "" if interval is None else f" [{interval[0]:.4f}, {interval[1]:.4f}]"


def _hypervolumes(method: dict[str, Any]) -> str:
    normalised = method["hypervolume_normalised"]
    return (f"hypervolume (paper's) {method['hypervolume']:.4f}{_interval_text(method['hypervolume_ci95'])}, "
            f"normalised {'n/a' if normalised is None else f'{normalised:.4f}'}"
            f"{_interval_text(method['hypervolume_normalised_ci95'])}")


def _calibration_line(method: dict[str, Any]) -> str:
    calibration = method["calibration"]
    if calibration is None:
        return "its knob has an intrinsic range: no calibration"
    low, high = calibration["range"]
    if calibration["status"] == "fixed":
        return f"fixed grid over [{low:.4g}, {high:.4g}] (not calibrated)"
    why = f": {calibration['why']}" if calibration.get("why") else ""
    return (f"calibrated on this experiment over [{low:.4g}, {high:.4g}] ({calibration['status']}) by "
            f"{calibration['runs']} runs, {calibration['seconds']:.1f} s{why}")


def _protocol(result: dict[str, Any]) -> str:
    norm = result["normalisation"]
    protocol = result["protocol"]
    lines = [("Protocol: every method sweeps its own knob with the same recipe (single recipe, unlearning lr "
              f"{protocol['lr']:g}), one seed-mean point per value; " if protocol["name"] == "single recipe" else
              "Protocol: pooled learning rates: each method's solution set is its points at unlearning learning "
              f"rates {', '.join(f'{lr:g}' for lr in protocol['lrs'])} together, one seed-mean point per "
              "(learning rate, value); " + protocol["once"] + "; ") + "intervals: " + result["uncertainty"]["method"] + ".",
             "Paper's hypervolume: " + result["hypervolume"]["definition"] + "."]
    if norm is not None:
        lines.append(f"Normalised hypervolume: ideal ({norm['ideal'][0]:.2f}, {norm['ideal'][1]:.2f}), nadir "
                     f"({norm['nadir'][0]:.2f}, {norm['nadir'][1]:.2f}), reference ({norm['reference'][0]:.2f}, "
                     f"{norm['reference'][1]:.2f}) = {norm['reference_normalised'][0]:.3g} normalised "
                     f"(H = {norm['intervals']}); at most {norm['reference_normalised'][0] ** 2:.3g}."
                     + (" Degenerate: one point dominates every other, so the nadir is the worst of the methods' own "
                        "fronts." if norm.get("degenerate") else ""))
    return "\n".join(lines)


def _export(args: argparse.Namespace) -> int:
    experiment = Experiment.open(args.experiment, args.cache_dir)
    method = get_method(args.method)
    value = method.check_value(args.value)
    try:
        path = export_point(experiment, method.name, value, args.seed, args.out)
    except cache.BrokenEntry as err:
        available = experiment.results()
        available = available[available["method"] == method.name]
        values = ", ".join(f"{v:g}" for v in sorted(set(available["value"])))
        raise UsageError(f"no valid point {method.name} {method.knob}={value:g} seed {args.seed} "
                         f"({err}); cached values: {values or 'none'}") from None
    print(path)
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Exit status 0 when no entry is damaged (references not computed yet are reported, not counted as
    damage), 1 when some were broken (removed, unless --check-only)."""
    from .verify import verify_experiment

    experiment = Experiment.open(args.experiment, args.cache_dir)
    result = verify_experiment(experiment, repair=not args.check_only)
    for finding in result.findings:
        print(f"broken{' (removed)' if finding.removed else ''}: {finding.problem}")
    action = ("" if result.ok else " (removed: `sweep` recomputes them)" if not args.check_only
              else " (kept: run without --check-only to remove them)")
    missing = (f"; {len(result.not_computed)} not computed yet ({', '.join(p.name for p in result.not_computed)}: "
               "missing, not damage; `sweep` computes them)" if result.not_computed else "")
    print(f"experiment {experiment.id}: {result.checked} entries checked to their SHA-256, "
          f"{len(result.findings)} broken{action}" + missing + ("; tables rebuilt" if result.tables_rebuilt else ""))
    return 0 if result.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    handler = {"sweep": _sweep, "report": _report, "export": _export, "verify": _verify}[args.command]
    try:
        return handler(args)
    except (UsageError, ValueError, FileNotFoundError, ImportError) as err:  # ImportError: --executor ray, no Ray
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as err:  # a Ray task's, Ray's, the cache's or an input's failure; finished points stay
        if isinstance(err, OSError):  # an input that cannot be read, or a read-only or full cache
            print(f"error: {_os_error(err, getattr(args, 'cache_dir', None))}", file=sys.stderr)
        elif failure_kind(err) == "cache":  # a Ray worker could not write the shared cache: nothing half-written
            print(f"error: cannot write to the cache ({err}); finished points are kept, fix the folder and rerun",
                  file=sys.stderr)
        else:
            print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: finished points are cached; run the same command again to resume", file=sys.stderr)
        return 130


def _os_error(err: OSError, cache_dir: str | None) -> str:
    """An OSError's line: a failure on a file outside the cache (an input that cannot be read) is named as
    such; only one inside the cache, or on no named file (a full disk), is the cache's."""
    root = cache.cache_root(cache_dir)
    where = err.filename
    if where is not None:
        try:
            inside = Path(os.path.abspath(where)).is_relative_to(root)
        except (TypeError, ValueError):
            inside = False
        if not inside:
            return f"cannot read {where} ({err.strerror or err}); fix or remove it and rerun (finished points are kept)"
    return f"cannot write to the cache ({err}); finished points are kept, fix the folder and rerun"
