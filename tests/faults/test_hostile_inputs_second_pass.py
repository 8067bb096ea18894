"""Hostile and broken inputs found by a second hostile pass over issue 18's promise (special files in the cache,
hostile record keys and configs, links in data trees, exported zips without their data...), each done for real:
what must come back is a clear one-line error or a reported and recomputed entry, nothing lost, nothing outside
the cache touched, no hang. Each kind prints a summary line (see conftest.py)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from cup_core import Experiment, SweepPlan, run_sweep, summary
from cup_core.cli import main
from cup_core.experiment import list_experiments

from ..cup_core import _stand_ins
from ..cup_core._experiments import CPU, tiny_config
from .conftest import record

pytestmark = pytest.mark.faults

PLAN = SweepPlan({"cup": (0.0, 1.0)})
HANG_S = 60  # in-process cases: one that has not answered by then hangs


@contextlib.contextmanager
def _no_hang(seconds: int = HANG_S):
    """Raises TimeoutError in the block when it runs longer than `seconds` (a blocking open of a FIFO included:
    the signal interrupts it)."""
    def expire(*_):
        raise TimeoutError(f"no answer in {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _cli(capsys, *args: str) -> tuple[int, str]:
    try:
        code = main(list(args))
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def _one_line(err: str, *fragments: str) -> bool:
    lines = [line for line in err.strip().splitlines() if not line.startswith("WARNING")]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err and \
        all(fragment in lines[0] for fragment in fragments)


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A cache holding the tiny experiment swept over PLAN (copied by each case that harms it)."""
    cache = tmp_path_factory.mktemp("swept")
    run_sweep(Experiment(tiny_config(), cache), PLAN, CPU)
    return cache


def _copy(swept: Path, where: Path) -> Experiment:
    shutil.copytree(swept, where)
    return Experiment(tiny_config(), where)


# B2. Special files inside the cache ---------------------------------------------------------------------------

def test_special_files_in_the_cache_are_refused_or_recomputed_never_waited_on(swept, tmp_path, caplog, capsys):
    """A FIFO or a link to /dev/zero as sources.json, results.csv, references.csv, config.json or a trajectory:
    a sweep, `report`, the tables and opening the experiment answer at once (the file reported and rebuilt, or
    refused naming it), never block on the FIFO or read /dev/zero without end."""
    def fifo(path: Path) -> None:
        os.mkfifo(path)

    def zero(path: Path) -> None:
        path.symlink_to("/dev/zero")

    cases = [(name, make) for name in ("sources.json", "results.csv", "references.csv") for make in (fifo, zero)]
    cases += [("config.json", fifo), ("config.json", zero)]
    survived = lost = 0
    for number, (name, make) in enumerate(cases):
        experiment = _copy(swept, tmp_path / str(number))
        points = len(experiment.results())
        target = experiment.root / name
        target.unlink()
        make(target)
        caplog.clear()
        try:
            with _no_hang():
                if name == "config.json":
                    with pytest.raises(ValueError, match="not a regular file"):
                        Experiment.open(experiment.root)
                    code, err = _cli(capsys, "report", str(experiment.root))
                    ok = code != 0 and _one_line(err, name, "not a regular file")
                    ok &= not list_experiments(experiment.root.parent)  # skipped (and reported), not fatal
                else:
                    opened = Experiment.open(experiment.root)
                    summary(opened)
                    try:
                        done = run_sweep(opened, PLAN, CPU)
                        ok = len(done) == points
                    except ValueError as err:  # a link where the sweep writes: refused, naming it
                        ok = make is zero and name in str(err)
                    ok &= len(opened.results()) == points
                    code, _ = _cli(capsys, "report", str(experiment.root))
                    ok &= code == 0
                    lost += points - len(opened.results())
        except TimeoutError:
            ok = False
        survived += ok
    record("a FIFO or a link to /dev/zero as sources.json, results.csv, references.csv or config.json: reported and "
           "rebuilt, or refused naming it, at once", len(cases), survived, lost)
    assert survived == len(cases)


# B3, B4. Hostile keys in a point's record -----------------------------------------------------------------------

def test_records_whose_key_names_no_computable_point_are_broken_entries(swept, tmp_path, capsys):
    """A point folder whose record (hash intact) names a value of 10**400, an unknown method, a knob outside the
    method's bounds or a seed beyond 2**32 - 1, the folder named to match: `verify` reports it, `report`, the
    tables, the experiments list and a sweep read the rest, `verify` removes it."""
    keys = {"value 10**400": {"value": 10**400}, "an unknown method": {"method": "evil"},
            "CUP's γ of 7": {"value": 7.0}, "a seed of 2**40": {"seed": 2**40}, "a seed of 2**64": {"seed": 2**64}}
    survived = lost = 0
    for number, (kind, change) in enumerate(keys.items()):
        experiment = _copy(swept, tmp_path / str(number))
        points = len(experiment.results())
        source = experiment.point_entry("cup", 1.0, 0)
        data = json.loads((source / "record.json").read_text())
        data["key"].update(change)
        key = data["key"]
        value = key["value"]
        name = f"{key['method']}-{'huge' if isinstance(value, int) else format(value, 'g')}-seed{key['seed']}"
        hostile = source.parent / name
        shutil.copytree(source, hostile)
        (hostile / "record.json").write_text(json.dumps(data))
        with _no_hang():
            code = main(["verify", str(experiment.root), "--check-only"])
            out = capsys.readouterr().out
            ok = code == 1 and name in out and "broken" in out
            ok &= _cli(capsys, "report", str(experiment.root))[0] == 0
            ok &= _cli(capsys, "report", str(experiment.root), "--json")[0] == 0
            ok &= len(list_experiments(tmp_path / str(number))) == 1
            ok &= len(run_sweep(Experiment.open(experiment.root), PLAN, CPU)) == points
            ok &= main(["verify", str(experiment.root)]) == 1 and not hostile.exists()
            ok &= main(["verify", str(experiment.root), "--check-only"]) == 0
        capsys.readouterr()
        lost += points - len(experiment.results())
        survived += ok
    record("a point record naming 10**400, an unknown method, a knob out of bounds or a seed beyond 2**32 - 1: a "
           "broken entry, reported and removed; report, tables and sweep read the rest", len(keys), survived, lost)
    assert survived == len(keys)


# B1. Links in an ImageFolder tree -----------------------------------------------------------------------------

def test_looping_links_in_an_image_tree_are_skipped_and_split_links_out_of_the_root_refused(tmp_path, caplog):
    """Links that loop on themselves (`cat/selfloop -> selfloop`, one at the top, `cat/x.png -> x.png`) are
    skipped with a warning, the tree loads; `train`, `test` or `val` linked out of the data root are refused,
    naming the link; an OSError on an input is never called a cache-write failure."""
    from cup_core.cli import _os_error
    from cup_core.vision import load_vision

    def tree(name: str) -> Path:
        _stand_ins.write_image_tree(tmp_path / name, (4, 4, 4))
        return tmp_path / name

    loops = {"cat/selfloop -> selfloop": lambda root: (root / "cat" / "selfloop").symlink_to("selfloop"),
             "selfloop -> selfloop at the top": lambda root: (root / "selfloop").symlink_to("selfloop"),
             "cat/x.png -> x.png": lambda root: (root / "cat" / "x.png").symlink_to("x.png")}
    survived = 0
    for number, (kind, harm) in enumerate(loops.items()):
        root = tree(f"loop{number}")
        harm(root)
        caplog.clear()
        with _no_hang(), caplog.at_level("WARNING"):
            loaded = load_vision("imagefolder", root, image_size=8)
        survived += len(loaded.train) + len(loaded.test) == 12 and any("skipped" in m for m in caplog.messages)
    outside = tree("outside")
    out_links = {"train -> ..": ("train", ".."), "train -> /sys/kernel": ("train", "/sys/kernel"),
                 "val -> a tree outside": ("val", str(outside))}
    for number, (kind, (name, target)) in enumerate(out_links.items()):
        root = tmp_path / f"split{number}"
        root.mkdir()
        _stand_ins.write_image_tree(root / ("test" if name == "train" else "train"), (4, 4, 4))
        (root / name).symlink_to(target)
        try:
            with _no_hang():
                load_vision("imagefolder", root, image_size=8)
            ok = False
        except ValueError as err:
            ok = str(root / name) in str(err) and "link" in str(err) and "\n" not in str(err)
        survived += ok
    message = _os_error(OSError(40, "Too many levels of symbolic links", str(tmp_path / "data" / "x.png")),
                        str(tmp_path / "cache"))
    survived += "cannot write to the cache" not in message and "x.png" in message
    trials = len(loops) + len(out_links) + 1
    record("links that loop in an image tree (a class's, the top's, an image's): skipped with a warning; train/, "
           "val/ linked out of the data root: refused naming the link; an input's OSError not called the cache's",
           trials, survived, 0)
    assert survived == trials
