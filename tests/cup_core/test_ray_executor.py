"""The Ray executor's address checks and failure classification, without starting Ray: every socket is on
127.0.0.1 and opened by the test itself."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from cup_core import ray_executor
from cup_core.cli import main
from cup_core.ray_executor import ClusterUnreachable, PointFailed, failure_kind

POINT = ("cup", 0.5, 0)


@pytest.fixture
def no_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def _listener(answer: bytes | None) -> tuple[socket.socket, str]:
    """A TCP server on 127.0.0.1 that is not Ray: it says `answer` and closes, or (None) accepts and stays silent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        try:
            connection, _ = server.accept()
        except OSError:  # closed by the test
            return
        with connection:
            if answer is not None:
                connection.sendall(answer)
                return
            while connection.recv(1024):  # reads and says nothing until the client gives up
                pass

    threading.Thread(target=serve, daemon=True).start()  # a test helper, ended with the server
    return server, f"127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("address", ["local", None, "auto"])
def test_addresses_left_to_ray_are_not_probed(address, no_ray_address):
    ray_executor._probe(address, address)  # "local" is an address Ray accepts: start an instance here


def test_ray_address_from_the_environment_is_resolved_and_named(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    assert ray_executor._resolved(None) == ray_executor._resolved("auto") == \
        ("127.0.0.1:1", "127.0.0.1:1 (from RAY_ADDRESS)")
    assert ray_executor._resolved("local") == ("local", "local")  # an explicit address wins, as in ray.init
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert ray_executor._starts_here(ray_executor._resolved(None)[0])


def test_garbage_is_not_an_address(no_ray_address):
    with pytest.raises(ClusterUnreachable, match="at head-node .*not an address: .* auto or local"):
        ray_executor._probe("head-node", "head-node")


def test_a_silent_listener_is_not_ray(monkeypatch, no_ray_address):
    monkeypatch.setattr(ray_executor, "CONNECT_TIMEOUT_S", 0.5)
    server, address = _listener(None)
    with server, pytest.raises(ClusterUnreachable) as raised:
        ray_executor._probe(address, address)
    message = str(raised.value)
    assert message.startswith(f"Ray did not answer at {address} within 0.5 s; ")
    assert "ray status" in message and "ray start --head" in message and "auth token" in message


def test_a_listener_speaking_another_protocol_is_not_ray(no_ray_address):
    server, address = _listener(b"SSH-2.0-OpenSSH_9.6\r\n")
    with server, pytest.raises(ClusterUnreachable, match=f"at {address} .something that is not Ray listens there"):
        ray_executor._probe(address, address)


def test_an_http2_server_passes_the_probe(no_ray_address):
    server, address = _listener(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # an empty SETTINGS frame, as gRPC sends
    with server:
        ray_executor._probe(address, address)


@pytest.mark.slow  # imports Ray: seconds
def test_the_sweep_names_the_address_from_ray_address(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("RAY_ADDRESS", address)
    code = main(["sweep", "--dataset", "blobs", "--grid", "0.5", "--epochs", "1", "--device", "cpu", "--quiet",
                 "--cache-dir", str(tmp_path), "--executor", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith(f"error: cannot reach a Ray cluster at {address} (from RAY_ADDRESS) "
                                            "(nothing listens there); check that the cluster is up")
    assert "/tmp/ray" not in err[-1]


# Failure classification: one place (failure_kind) for the CLI and the app ------------------------------------------

def test_failure_kinds():
    full = OSError(28, "No space left on device")
    assert failure_kind(full) == "cache"
    assert failure_kind(ClusterUnreachable("cannot reach a Ray cluster at h:1 (...)")) == "cluster"
    assert failure_kind(PointFailed("point failed on Ray: OSError", POINT, full, "cache")) == "cache"
    assert failure_kind(PointFailed("point failed on Ray: WorkerCrashedError", POINT, None, "cluster")) == "cluster"
    assert failure_kind(PointFailed("point failed on Ray: ValueError", POINT, ValueError())) == "task"
    assert failure_kind(RuntimeError("something else")) is None


@pytest.mark.slow  # imports Ray: seconds
def test_a_task_is_classified_by_its_cause():
    ray = pytest.importorskip("ray")

    def failed(cause: BaseException) -> PointFailed:
        class Store:  # ray.get on a task that raised `cause`
            exceptions = ray.exceptions

            @staticmethod
            def get(ref):
                if isinstance(cause, ray.exceptions.RayError):
                    raise cause
                raise ray.exceptions.RayTaskError("_point_task", "Traceback ...", cause).as_instanceof_cause()

        with pytest.raises(PointFailed) as raised:
            ray_executor._result(Store, None, POINT)
        return raised.value

    cache = failed(OSError(28, "No space left on device"))
    assert cache.kind == "cache" and cache.cause.errno == 28
    assert failed(PermissionError(13, "Permission denied")).kind == "cache"
    assert failed(ValueError("no data root")).kind == "task"
    assert failed(ConnectionError("lost the GCS")).kind == "cluster"
    assert failed(ray.exceptions.WorkerCrashedError()).kind == "cluster"


@pytest.mark.parametrize("kind, said", [("cache", "error: cannot write to the cache (point cup 0.5 seed 0 failed on "
                                                  "Ray: OSError: [Errno 28] No space left on device); finished points "
                                                  "are kept"),
                                        ("cluster", "error: point cup 0.5 seed 0 failed on Ray: OSError: [Errno 28]")])
def test_the_cli_says_what_failed(kind, said, tmp_path, capsys, monkeypatch):
    full = OSError(28, "No space left on device")

    def fails(*args, **kwargs):
        raise PointFailed(f"point cup 0.5 seed 0 failed on Ray: OSError: {full}", POINT, full, kind)

    monkeypatch.setattr("cup_core.cli.run_sweep", fails)
    code = main(["sweep", "--dataset", "blobs", "--grid", "0.5", "--epochs", "1", "--device", "cpu", "--quiet",
                 "--cache-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith(said)
    assert ("cannot write to the cache" in err[-1]) == (kind == "cache")


def test_the_app_says_what_failed(tmp_path):
    from cup_core import Experiment
    from cup_core.data import default_config
    from ui.components import failure_message

    experiment = Experiment(default_config("blobs"), tmp_path)
    full = OSError(28, "No space left on device")
    on_worker = failure_message(PointFailed("point cup 0.5 seed 0 failed on Ray: OSError: ...", POINT, full, "cache"),
                                experiment)
    assert on_worker.startswith(f"Cannot write to the cache at {Path(tmp_path)} (No space left on device).")
    assert "Ray cluster" not in on_worker
    assert failure_message(full, experiment) == on_worker
    assert failure_message(ClusterUnreachable("cannot reach a Ray cluster at h:1 (x)"), experiment) \
        .startswith("The Ray cluster failed: cannot reach a Ray cluster at h:1")
    assert failure_message(PointFailed("point cup 0.5 seed 0 failed on Ray: ValueError: x", POINT, ValueError()),
                           experiment).startswith("A Ray task failed: point cup 0.5 seed 0")
