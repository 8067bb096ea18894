"""The Ray executor: a small sweep on a local Ray instance gives the local executor's results.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import cup_core
from cup_core import Experiment
from cup_core.cli import main

ray = pytest.importorskip("ray")  # in requirements.txt; skipped only where someone installed without it

pytestmark = pytest.mark.slow  # each test starts Ray workers that import torch: seconds

SWEEP = ["sweep", "--dataset", "blobs", "--methods", "cup,ga", "--points", "3", "--seeds", "0,1", "--epochs", "3",
         "--batch-size", "128", "--device", "cpu", "--quiet"]
TIMING_COLUMNS = ["seconds", "checkpoint"]  # wall-clock time differs; every other column must not


@pytest.fixture(scope="module")
def local_ray():
    """A new Ray instance on this machine: "local" and no RAY_ADDRESS, so that neither a cluster named in the
    environment nor one `ray start` recorded in /tmp/ray is joined."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING",
                 runtime_env={"py_modules": [str(Path(cup_core.__file__).parent)]})
        yield
        ray.shutdown()


def test_a_ray_init_that_does_not_answer_is_given_up(monkeypatch):
    """Past the probe (patched out here), a GCS that accepts but never answers: ray.init would retry for minutes.
    The run gives up at INIT_TIMEOUT_S with the address and what to check, and the abandoned ray.init's thread
    ends soon after (with Ray's current connection attempt), so that it cannot keep the process alive."""
    import socket
    import threading
    import time

    from cup_core import ray_executor
    from cup_core.ray_executor import ClusterUnreachable

    assert not ray.is_initialized()  # runs before the tests that use local_ray (a module fixture)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_executor, "INIT_TIMEOUT_S", 3.0)
    monkeypatch.setattr(ray_executor, "_probe", lambda address, shown: None)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        start = time.perf_counter()
        with pytest.raises(ClusterUnreachable) as raised:
            with ray_executor._connection(ray, address):
                pass
        assert time.perf_counter() - start < 3.0 + 2.0
    assert str(raised.value).startswith(f"Ray did not answer at {address} within 3 s; check that the cluster is up")
    owner = ray_executor._abandoned
    assert owner is not None and not owner.daemon
    owner.join(timeout=90)  # Ray's wait for a GCS, ~30-40 s here, then _Abandoned ends the thread
    assert not owner.is_alive() and not ray.is_initialized()
    assert "ray-owner" not in {thread.name for thread in threading.enumerate()}


def swept(capsys, cache_dir: Path, *args: str) -> Experiment:
    code = main([*SWEEP, "--cache-dir", str(cache_dir), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return Experiment.open(out.strip().splitlines()[-1])


def comparable(experiment: Experiment) -> pd.DataFrame:
    return experiment.results().drop(columns=TIMING_COLUMNS)


def test_a_sweep_on_ray_matches_the_local_executor(local_ray, tmp_path, capsys):
    local = swept(capsys, tmp_path / "local")
    on_ray = swept(capsys, tmp_path / "ray", "--executor", "ray")
    assert on_ray.id == local.id and len(comparable(on_ray)) == 2 * 3 * 2
    pd.testing.assert_frame_equal(comparable(on_ray), comparable(local))
    pd.testing.assert_frame_equal(on_ray.references(), local.references())
    assert {record["engine"] for record in on_ray.point_records()} == {"sequential"}


def test_a_second_ray_sweep_computes_nothing(local_ray, tmp_path, capsys):
    from cup_core import SweepPlan, SweepSettings, resolve_device, run_sweep

    first = swept(capsys, tmp_path, "--executor", "ray")
    reports = []
    run_sweep(first, SweepPlan.default(("cup", "ga"), 3, (0, 1)), resolve_device("cpu"), reports.append,
              SweepSettings(executor="ray", device="cpu"))
    assert reports[-1].done == reports[-1].total == 2 + 12 and reports[-1].computed == 0


def test_a_failing_task_is_named(local_ray, tmp_path, monkeypatch):
    from dataclasses import replace

    from cup_core import SweepPlan, SweepSettings, resolve_device, run_sweep
    from cup_core.data import default_config
    from cup_core.ray_executor import PointFailed

    # Inputs that pass the driver's check but not the workers' (a data root that vanished meanwhile).
    monkeypatch.setattr("cup_core.compute.prepare", lambda *args: None)
    experiment = Experiment(replace(default_config("mnist"), split="official files"), tmp_path)
    with pytest.raises(PointFailed, match="the reference models .* failed on Ray: SettingError: .*--data-root"):
        run_sweep(experiment, SweepPlan({"cup": (0.5,)}), resolve_device("cpu"), settings=SweepSettings(executor="ray"))
    assert not experiment.reference_entry("original").exists()


def test_the_probe_lets_a_real_gcs_through(local_ray):
    from cup_core.ray_executor import _probe

    port = ray.get_runtime_context().gcs_address.rpartition(":")[2]
    _probe(f"127.0.0.1:{port}", "this machine's instance")  # answers HTTP/2 as gRPC does: no ClusterUnreachable
