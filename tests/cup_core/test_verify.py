"""verify: every entry checked to its SHA-256, broken ones reported, removed on request, tables rebuilt."""

from __future__ import annotations

import shutil

import pytest

from cup_core import Experiment, cache
from cup_core.cli import main as cli
from cup_core.verify import verify_experiment

from ._experiments import tiny_config, tiny_sweep


@pytest.mark.slow
def test_verify_finds_damage_that_metadata_cannot_see_and_repairs_it(tmp_path, capsys):
    experiment, clean = tiny_sweep(tmp_path)
    assert verify_experiment(experiment).ok
    weights = experiment.point_entry("cup", 0.5, 0) / cache.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size: the app's metadata check still counts it cached
    weights.write_bytes(bytes(data))
    assert experiment.point_cached("cup", 0.5, 0)
    kept = verify_experiment(experiment, repair=False)
    assert [finding.entry for finding in kept.findings] == [weights.parent] and weights.exists()
    assert cli(["verify", str(experiment.root)]) == 1
    assert "1 broken (removed" in capsys.readouterr().out
    assert not weights.parent.exists()
    assert len(experiment.results()) == len(clean) - 1  # the tables no longer list it
    assert cli(["verify", str(experiment.root)]) == 0


@pytest.mark.slow
def test_a_reference_not_computed_yet_is_missing_not_damage(tmp_path, capsys):
    experiment, _ = tiny_sweep(tmp_path)
    oracle = experiment.reference_entry("oracle")
    shutil.rmtree(oracle)  # as before the sweep computed it: no folder at all
    result = verify_experiment(experiment, repair=False)
    assert result.ok and not result.findings and result.not_computed == (oracle,)
    assert cli(["verify", "--check-only", str(experiment.root)]) == 0
    out = capsys.readouterr().out
    assert "0 broken" in out and "1 not computed yet (oracle" in out and "broken:" not in out

    weights = experiment.point_entry("cup", 0.5, 0) / cache.WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 0xFF]))  # damage beside it
    assert cli(["verify", "--check-only", str(experiment.root)]) == 1
    out = capsys.readouterr().out
    assert "1 broken" in out and "1 not computed yet" in out


def test_an_experiment_with_nothing_computed_verifies_clean(tmp_path, capsys):
    experiment = Experiment(tiny_config(), tmp_path)
    experiment.save_config()
    result = verify_experiment(experiment)
    assert result.ok and result.checked == 0
    assert set(result.not_computed) == {experiment.reference_entry(role) for role in experiment.roles}
    assert cli(["verify", str(experiment.root)]) == 0
    assert f"{len(experiment.roles)} not computed yet" in capsys.readouterr().out
