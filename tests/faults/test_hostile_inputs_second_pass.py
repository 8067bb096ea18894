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

from cup_core import Experiment, SweepPlan, read_summary, run_sweep
from cup_core.cli import main
from cup_core.experiment import list_experiments

from ..conftest import new_app
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

@pytest.mark.slow
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
                    read_summary(opened)
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


@pytest.mark.slow
def test_a_table_that_is_a_link_to_itself_is_reported_and_the_pages_still_show_the_points(swept, tmp_path, caplog,
                                                                                           monkeypatch):
    """results.csv or references.csv as a link to itself (a loop): the library reports it in one line and reads the
    point and model records instead; Explore and Compare open on it (the results' stamp stopped both pages with
    the loop's OSError, and results() took the loop for a missing file, silently)."""
    survived = lost = 0
    for name in ("results.csv", "references.csv"):
        experiment = _copy(swept, tmp_path / name)
        points, references = len(experiment.results()), len(experiment.references())
        target = experiment.root / name
        target.unlink()
        target.symlink_to(name)
        caplog.clear()
        with _no_hang():
            read = len(experiment.results())
            ok = read == points and len(experiment.references()) == references
            reports = [r.getMessage() for r in caplog.records if str(target) in r.getMessage()]
            ok &= len(reports) == 1 and "unreadable" in reports[0] and "\n" not in reports[0]
            monkeypatch.setenv("CUP_CACHE_DIR", str(experiment.root.parent))
            for page in ("pages/explore.py", "pages/compare.py"):
                app = new_app(experiment=experiment.id, methods=["CUP"])
                app.switch_page(page).run()
                ok &= not app.exception and not app.error
            ok &= len(app.dataframe[0].value) == 1  # Compare's hypervolume table: CUP's points shown
        survived += ok
        lost += points - read
    record("results.csv or references.csv as a link to itself: reported in one line, read from the records; the "
           "pages open", 2, survived, lost)
    assert survived == 2


# B3, B4. Hostile keys in a point's record -----------------------------------------------------------------------

@pytest.mark.slow
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


# B5, B6. Hostile configs and names shown as Markdown -----------------------------------------------------------

def _rendered(app) -> str:
    """Every Markdown body the page drew (markdown, captions, alerts; not st.text, which is plain), joined."""
    bodies = [element.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
              for element in getattr(app, kind)]
    return "\n".join(str(body) for body in bodies)


@pytest.mark.slow
def test_a_hostile_config_whose_folder_matches_its_hash_is_refused_and_never_rendered(app_cache):
    """config.json files that hash to their folder's name but hold Markdown as the model, the optimizer or the
    epochs, or a batch size of -3: not opened as experiments (each listed with the setting that is wrong), and
    the Experiments and Explore pages open without a traceback and without rendering them."""
    from cup_core.config import ID_SCHEMA, stable_hash
    from cup_core.experiment import experiment_folders, open_experiments

    template = json.loads(next(app_cache.glob("*/config.json")).read_text())
    link = "[click me](http:evil.example)"
    harms = {"the model": (lambda c: c.update(model=link), "architecture"),
             "the unlearning optimizer": (lambda c: c["unlearn"].update(optimizer=link), "optimizer"),
             "the unlearning epochs": (lambda c: c["unlearn"].update(epochs="![p](http:evil.example)"), "epochs"),
             "a training batch size of -3": (lambda c: c["train"].update(batch_size=-3), "batch-size"),
             "the forget class": (lambda c: c["forget"].update(forget_class=link), "forget class")}
    planted = {}
    try:
        for kind, (harm, named) in harms.items():
            config = json.loads(json.dumps(template))
            harm(config)
            folder = app_cache / stable_hash({"schema": ID_SCHEMA, "config": config})
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(config))
            planted[folder.name] = named
        survived = 0
        _, unreadable = open_experiments(experiment_folders(app_cache))
        reasons = {item.folder.name: item.reason for item in unreadable}
        survived += sum(name in reasons and named in reasons[name] and "\n" not in reasons[name]
                        for name, named in planted.items())
        pages = [("pages/experiments.py", {})] + [("pages/explore.py", {"experiment": name}) for name in planted]
        for page, query in pages:
            app = new_app(**query)
            app.switch_page(page).run()
            rendered = _rendered(app)
            survived += not app.exception and "](http:evil" not in rendered.replace("\\]", "")
        trials = len(planted) + len(pages)
        record("hostile config.json files hashing to their folder (Markdown as model, optimizer, epochs, forget class; "
               "batch size -3): refused naming the setting; Experiments and Explore open, nothing rendered",
               trials, survived, 0)
        assert survived == trials, reasons
    finally:
        for name in planted:
            shutil.rmtree(app_cache / name)


@pytest.mark.parametrize("name", ["www.evil.example", "x@evil.example"])
def test_class_folder_names_that_gfm_would_autolink_are_shown_as_text(tmp_cache, tmp_path, name):
    """GitHub-flavoured Markdown links bare `www.` names and e-mail addresses by itself; a class folder so named
    shows in the page's error with the pattern broken (a word joiner), so no link is made."""
    from ..ui.test_new import _check, _widget

    tree = tmp_path / "tree"
    _stand_ins.write_image_tree(tree, (3, 3, 1))  # the third class has 1 image: the check names it
    (tree / "fish").rename(tree / name)
    app = new_app()
    app.switch_page("pages/new.py").run()
    app.selectbox(key="new_dataset").set_value("imagefolder").run()
    _widget(app, "new_data_root").set_value(str(tree))
    app = _check(app.run())
    message = app.error[0].value if app.error else ""
    shown = not app.exception and name.replace(".", "").replace("@", "") in message.replace("\u2060", "").replace(
        ".", "").replace("@", "").replace("\\", "") and "www." not in message and "x@" not in message
    record(f"a class folder named {name!r}: shown as text, not autolinked", 1, int(shown), 0)
    assert shown, message


# B11. Rates and weights beyond float32 ---------------------------------------------------------------------------

def test_rates_and_weights_beyond_float32_are_refused_up_front_naming_the_setting(tmp_path, capsys):
    """A knob of 1e39 (GA's, FT's learning rate, WS's weight), `--lr 1e39`, `[train] lr = 1e39` and a weight decay
    of 1e39: one line naming the setting and float32's bound, before anything trains (the two engines used to
    record different runs, or torch refused the step)."""
    sweep_file = tmp_path / "train_lr.toml"
    sweep_file.write_text('dataset = "blobs"\n[train]\nlr = 1e39\n')
    decay_file = tmp_path / "decay.toml"
    decay_file.write_text('dataset = "blobs"\n[unlearn]\nweight_decay = 1e39\n')
    base = ("--epochs", "2", "--no-oracle", "--device", "cpu", "--quiet", "--cache-dir", str(tmp_path / "cache"))
    cases = {"GA's learning rate 1e39": (("--methods", "ga", "--grid", "1e39"), "3.40282e+38"),
             "FT's learning rate 1e39": (("--methods", "ft", "--grid", "1e39"), "3.40282e+38"),
             "WS's weight 1e39": (("--methods", "ws", "--grid", "1e39"), "3.40282e+38"),
             "--lr 1e39": (("--lr", "1e39", "--grid", "0.5"), "unlearn lr"),
             "[train] lr = 1e39": (("--config", str(sweep_file), "--grid", "0.5"), "train lr"),
             "[unlearn] weight_decay = 1e39": (("--config", str(decay_file), "--grid", "0.5"), "weight decay")}
    survived = 0
    for kind, (args, named) in cases.items():
        extra = () if "--config" in args else ("--dataset", "blobs")
        code, err = _cli(capsys, "sweep", *extra, *args, *base)
        survived += code == 2 and _one_line(err, named) and "overflow" not in err and \
            not (tmp_path / "cache").exists()
    record("learning rates, weights and weight decays beyond float32 (1e39: knobs, --lr, [train] lr): refused in one "
           "line naming the setting, before anything trains", len(cases), survived, 0)
    assert survived == len(cases)


# B7. Exported zips whose weights are not there ------------------------------------------------------------------

_EXPORTED = r'''
import io, json, resource, struct, sys, zipfile
import torch
from cup_core.export import CARD_FORMAT, load_exported
from cup_core.models import build_model

def exported(hidden, card_hidden, padding):
    kwargs = {"in_features": 2, "hidden": [hidden, hidden], "num_classes": 5}
    with torch.device("meta"):
        skeleton = build_model("mlp", kwargs)
    header, offset = {}, 0
    for name, tensor in skeleton.state_dict().items():
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + 4 * tensor.numel()]}
        offset += 4 * tensor.numel()
    text = json.dumps(header).encode()
    card = {"format": CARD_FORMAT, "architecture": "mlp", "architecture_kwargs": {**kwargs, "hidden": [card_hidden] * 2}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model_card.json", json.dumps(card))
        archive.writestr("model.safetensors", struct.pack("<Q", len(text)) + text + bytes(padding))
    return buffer.getvalue()

cases = {"no data, shapes as the card's (245 MB)": exported(7000, 7000, 0),
         "100 MB of zeros under shapes the card does not have": exported(100, 7000, 100 << 20)}
for kind, data in cases.items():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        load_exported(io.BytesIO(data))
        print(kind, "LOADED")
    except ValueError as err:
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(kind, "refused" if grew < 50 and "\n" not in str(err) else f"grew {grew:.0f} MB", len(data))
'''


@pytest.mark.slow
def test_exported_zips_are_checked_against_their_header_before_anything_is_inflated_or_built():
    """A zip of a few hundred bytes whose safetensors header declares the card's shapes but holds no data, and one
    whose header does not fit the card above 100 MB of zeros: ValueError, the process growing by less than 50 MB
    (the model is built only once the data is there, the member inflated only once its header fits)."""
    import subprocess
    import sys

    from ..conftest import REPO

    done = subprocess.run([sys.executable, "-c", _EXPORTED], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines()
    survived = sum(" refused " in line for line in lines)
    record("exported zips whose safetensors header declares data that is not there (245 MB), or does not fit the "
           "card above 100 MB of zeros: ValueError before anything is built or inflated", 2, survived, 0)
    assert survived == 2, done.stdout + done.stderr


# B12, B13. Lock links, uploads and exports inside the cache ------------------------------------------------------

def test_planted_lock_links_and_linked_uploads_are_refused_and_nothing_outside_changes(swept, tmp_path, capsys,
                                                                                       monkeypatch):
    """A point's lock file or the tables' lock file replaced by a link to a file outside the cache (filelock before
    3.20.1 truncated its target: CVE-2025-68146), and uploads/ linked outside: `verify`, a sweep and the New page's
    upload refuse naming the link; the file outside keeps its bytes."""
    from cup_core import uploads
    from ui.services import new

    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.txt"
    survived = 0
    cases = {"a point's lock": lambda e: e.root / "points" / ".cup-1-seed0.lock",
             "the tables' lock": lambda e: e.root / ".results.csv.lock"}
    for number, (kind, lock) in enumerate(cases.items()):
        experiment = _copy(swept, tmp_path / str(number))
        precious.write_text("keep")
        lock(experiment).unlink(missing_ok=True)
        lock(experiment).symlink_to(precious)
        # `verify` locks every point, a sweep the tables (a point it finds cached it does not lock): whichever
        # takes the planted lock refuses, naming the link; neither touches what it points to
        code, err = _cli(capsys, "verify", str(experiment.root))
        refusals = [code == 2 and _one_line(err, "symbolic link")] if code != 0 else []
        try:
            run_sweep(experiment, PLAN, CPU)
        except ValueError as error:
            refusals.append("symbolic link" in str(error))
        survived += bool(refusals) and all(refusals) and precious.read_text() == "keep"
    cache = tmp_path / "upload-cache"
    cache.mkdir()
    (cache / uploads.UPLOADS).symlink_to(outside)
    monkeypatch.setenv("CUP_CACHE_DIR", str(cache))
    try:
        new.save_upload(b"weights", "model.pt")
        uploaded = False
    except ValueError as error:
        uploaded = "symbolic link" in str(error)
    survived += uploaded and sorted(p.name for p in outside.iterdir()) == ["precious.txt"]
    record("a lock file (a point's, the tables') linked outside the cache, uploads/ linked outside: refused naming the "
           "link, the file outside unchanged", len(cases) + 1, survived, 0)
    assert survived == len(cases) + 1


def test_export_never_writes_into_the_cache_and_keeps_a_replaced_files_mode(swept, tmp_path, capsys):
    """`export --out` naming the experiment's own config.json (or any path in the cache) is refused and the config
    stays; an existing regular file it replaces keeps its mode (0644 stays 0644, not mkstemp's 0600)."""
    experiment = _copy(swept, tmp_path / "cache")
    config = (experiment.root / "config.json").read_bytes()
    survived = 0
    for out in (experiment.root / "config.json", experiment.root / "point.zip"):
        code, err = _cli(capsys, "export", str(experiment.root), "--value", "1", "--out", str(out))
        survived += code == 2 and _one_line(err, "inside the cache") and \
            (experiment.root / "config.json").read_bytes() == config and not (experiment.root / "point.zip").exists()
    mine = tmp_path / "mine.zip"
    mine.write_bytes(b"old")
    mine.chmod(0o644)
    code, _ = _cli(capsys, "export", str(experiment.root), "--value", "1", "--out", str(mine))
    survived += code == 0 and (mine.stat().st_mode & 0o777) == 0o644 and mine.read_bytes() != b"old"
    Experiment.open(experiment.root)  # the experiment still opens
    record("export --out into the cache (its config.json, a new file there): refused, the config kept; a replaced "
           "file keeps its mode", 3, survived, 0)
    assert survived == 3


# B9. A nested-tensor checkpoint ---------------------------------------------------------------------------------

def test_a_nested_tensor_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    """A .pt whose state dict holds a nested tensor: one line naming the tensor (was "Internal error:
    NestedTensorImpl doesn't support sizes" from the CLI and a RuntimeError on the New page)."""
    import warnings

    import torch

    from cup_core.checkpoints import load_checkpoint

    experiment = Experiment(tiny_config())
    weights = experiment.new_model().state_dict()
    name = next(iter(weights))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: nested tensors are a prototype
        nested = {**weights, name: torch.nested.nested_tensor([weights[name].clone(), weights[name].clone()])}
    path = tmp_path / "nested.pt"
    torch.save(nested, path)
    code, err = _cli(capsys, "sweep", "--dataset", "blobs", "--cache-dir", str(tmp_path / "cache"),
                     "--checkpoint", str(path))
    survived = int(code == 2 and _one_line(err, "nested tensor", name))
    try:
        load_checkpoint(path, experiment.architecture, experiment.architecture_kwargs)
    except ValueError as error:
        survived += "nested tensor" in str(error)
    record("a checkpoint holding a nested tensor: refused in one line naming the tensor (CLI, library)", 2, survived, 0)
    assert survived == 2


# B14. Huge counts named up front --------------------------------------------------------------------------------

def test_huge_batch_sizes_epochs_and_points_are_refused_up_front_naming_the_setting(tmp_path, capsys):
    """--batch-size, --epochs and --points of 10**23 (CUP's even grid and GA's calibrated one): one line naming
    the setting before anything trains (was: the original trained, then "Overflow when unpacking long long", or
    numpy's "Maximum allowed size exceeded")."""
    huge = str(10**23)
    base = ("sweep", "--dataset", "blobs", "--no-oracle", "--device", "cpu", "--quiet", "--cache-dir",
            str(tmp_path / "cache"))
    cases = {"--batch-size": (("--batch-size", huge), "batch-size"), "--epochs": (("--epochs", huge), "epochs"),
             "--points (CUP)": (("--points", huge), "points"),
             "--points (GA, calibrated)": (("--methods", "ga", "--points", huge), "points")}
    survived = 0
    for kind, (args, named) in cases.items():
        code, err = _cli(capsys, *base, *args)
        survived += code == 2 and _one_line(err, named, "at most") and not (tmp_path / "cache").exists()
    record("--batch-size, --epochs, --points of 10**23: refused in one line naming the setting, before anything "
           "trains", len(cases), survived, 0)
    assert survived == len(cases)


# CIFAR labels beyond any class ------------------------------------------------------------------------------------

@pytest.mark.parametrize("label", [2**70, -1, 10])
def test_cifar_labels_beyond_the_classes_are_refused_naming_the_batch_file(tmp_path, label):
    """A label of 2**70 used to stop the load with "Overflow when unpacking long long", naming no file."""
    import pickle

    from cup_core.vision import load_vision

    _stand_ins.write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    with open(batch, "rb") as file:
        content = pickle.load(file, encoding="latin1")
    key = "labels" if "labels" in content else b"labels"
    content[key] = [label] * len(content[key])
    with open(batch, "wb") as file:
        pickle.dump(content, file, protocol=2)
    with pytest.raises(ValueError, match=f"^{batch} holds labels outside 0..9$"):
        load_vision("cifar10", tmp_path)
    record(f"a CIFAR batch with labels of {label}: refused naming the file and the classes' range", 1, 1, 0)
