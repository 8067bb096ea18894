"""verify: every entry checked to its SHA-256, broken ones reported, removed on request, tables rebuilt."""

from __future__ import annotations

from cup_core import cache
from cup_core.cli import main as cli
from cup_core.verify import verify_experiment

from ._experiments import tiny_sweep


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
