"""`python -m cup_core sweep` run in-process for the tests: its exit code and outputs, the experiment it made,
and the one-line error check."""

from __future__ import annotations

from cup_core import Experiment
from cup_core.cli import main

QUICK = ["--points", "2", "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--quiet"]


def sweep(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["sweep", *args])
    out, err = capsys.readouterr()
    return code, out, err


def swept_experiment(capsys, *args: str) -> Experiment:
    code, out, err = sweep(capsys, *args)
    assert code == 0, err
    return Experiment.open(out.strip().splitlines()[-1])


def assert_one_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
