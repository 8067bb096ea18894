"""Runs a sweep's points as Ray tasks, on this machine or on a cluster, sharing one cache directory.

Each task calls compute.compute_references or compute.compute_point, which open the data themselves and
write through the cache's per-entry locks and atomic renames; so tasks need nothing from the driver
but a few strings, any number of them may run at once, and every finished point is on disk whatever
happens to the rest. Ray is optional (`pip install ray`) and imported only when a sweep runs on it.

On a cluster, the cache directory and every path in `sources` must be absolute and name the same
folder on every node (a shared file system), and each node needs this project's dependencies (torch,
safetensors, ...). When run_on_ray starts Ray, it ships the cup_core package to the workers (the job's
runtime_env py_modules), so they import the driver's code even where the driver found it through its
own sys.path. Ray accepts a local folder there only at ray.init, so a caller who starts Ray must do the
same (`ray.init(runtime_env={"py_modules": [cup_core]})`) unless the workers can import cup_core
anyway; by default a local instance's workers see only the driver's working directory and the
directory of its script, not the rest of its sys.path.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from .errors import first_line

log = logging.getLogger(__name__)

__all__ = ["ClusterUnreachable", "FailureKind", "PointFailed", "failure_kind", "run_on_ray"]

Point = tuple[str, float, int]  # (method, value, seed)
# (point, computed), and once (None, [(role, computed), ...]) for the reference models.
PointCallback = Callable[[Point | None, Any], None]

_PACKAGE_DIR = str(Path(__file__).resolve().parent)  # shipped to the workers as a py_module (when Ray starts here)


# What went wrong, for the words said to the user (CLI and app): the shared cache could not be written (by this
# process or by a Ray task), Ray itself failed (not reached, or a worker or node lost), or a task's own error.
FailureKind = Literal["cache", "cluster", "task"]


class PointFailed(RuntimeError):
    """A Ray task failed; the message names its point and the cause, the remote traceback is chained.

    `point` is None when the task computed the reference models (original and oracle); `cause` is the task's own
    exception (or Ray's, when its worker or node died) and `kind` what failed (see failure_kind)."""

    def __init__(self, message: str, point: Point | None, cause: BaseException | None = None,
                 kind: FailureKind = "task"):
        super().__init__(message)
        self.point = point
        self.cause = cause
        self.kind = kind


class ClusterUnreachable(RuntimeError):
    """Ray could not be started, reached, joined or authenticated; the message names the address tried and what to
    check. Not an OSError (Ray's own ConnectionError is one), so that nobody takes it for a cache that cannot be
    written: the cache is fine and every finished point stays in it."""


# What Ray waits for a GCS to answer (its gcs_rpc_server_connect_timeout_s); the probe waits no longer.
CONNECT_TIMEOUT_S = float(os.environ.get("RAY_gcs_rpc_server_connect_timeout_s", 5))
_CHECKS = ("check that the cluster is up (`ray status` on the head node), that the address is the one `ray start "
           "--head` printed (HOST:6379 by default, or ray://HOST:10001 for Ray Client) and reachable from here, and "
           "that this machine has the cluster's auth token setting (RAY_AUTH_MODE, RAY_AUTH_TOKEN or ~/.ray/"
           "auth_token) if it uses one; finished points are kept")


# How long joining a cluster (ray.init: the connection, the upload of cup_core to the cluster) may take before the
# run gives up; Ray itself retries a GCS that does not answer for minutes.
INIT_TIMEOUT_S = 30.0
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def _resolved(address: str | None) -> tuple[str | None, str | None]:
    """(the address Ray will use, how to name it), in Ray's own order: RAY_ADDRESS replaces None and "auto"."""
    from_environment = os.environ.get("RAY_ADDRESS")
    if address in (None, "auto") and from_environment:
        return from_environment, f"{from_environment} (from RAY_ADDRESS)"
    return address, address


def _starts_here(address: str | None) -> bool:
    """Whether ray.init(address) starts a local instance rather than joining one. None does only where no cluster
    is recorded in /tmp/ray/ray_current_cluster (Ray joins that one), which is left to Ray."""
    return address is None or address == "local"


def _unreachable(shown: str | None, reason: str) -> ClusterUnreachable:
    if _starts_here(shown):
        return ClusterUnreachable(f"cannot start a local Ray instance ({reason}); check that Ray is installed whole "
                                  "and /tmp/ray is writable; finished points are kept")
    return ClusterUnreachable(f"cannot reach a Ray cluster at {shown} ({reason}); {_CHECKS}")


def _no_answer(shown: str, seconds: float) -> ClusterUnreachable:
    return ClusterUnreachable(f"Ray did not answer at {shown} within {seconds:g} s; {_CHECKS}")


def _probe(address: str | None, shown: str | None) -> None:
    """Fails within CONNECT_TIMEOUT_S, with ClusterUnreachable, when no Ray answers at a HOST:PORT address: nothing
    listens there, or something that does not speak gRPC (Ray's protocol, HTTP/2) does. Ray itself would retry for
    minutes and then report a failure to connect. "local", None (a local instance, or the cluster `ray start`
    recorded on this machine) and "auto" are left to Ray; so is the protocol check where Ray uses TLS."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise _unreachable(shown, "not an address: give HOST:PORT, ray://HOST:PORT, auto or local")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S) as connection:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", ""):
                connection.sendall(_HTTP2_PREFACE)
                reply = connection.recv(9)  # a gRPC server answers with its SETTINGS frame: type 4 at byte 3
                if len(reply) < 4 or reply[3] != 4:
                    raise _unreachable(shown, "something that is not Ray listens there")
    except TimeoutError:
        raise _no_answer(shown, CONNECT_TIMEOUT_S) from None
    except OSError as err:
        reason = "nothing listens there" if isinstance(err, ConnectionRefusedError) else \
            "something that is not Ray listens there" if isinstance(err, ConnectionResetError) else \
            (err.strerror or str(err))
        raise _unreachable(shown, reason) from None


def failure_kind(err: BaseException) -> FailureKind | None:
    """What failed behind `err`, for the CLI and the app to say it in their words: "cache" (the cache could not be
    written, here or by a Ray task: any OSError but Ray's lost connection), "cluster" (Ray could not be reached, or
    lost a worker or node), "task" (a task's own error: its inputs, a bug); None for anything else."""
    if isinstance(err, ClusterUnreachable):
        return "cluster"
    if isinstance(err, PointFailed):
        return err.kind
    if isinstance(err, OSError):
        return "cache"
    return None


def run_on_ray(config: dict[str, Any], cache_dir: str, sources: dict[str, str], points: list[Point], device: str,
               on_point: PointCallback | None = None, address: str | None = None) -> None:
    """Computes the reference models, then every point of `points`, as Ray tasks; cached ones are skipped.

    `device` is 'auto' (one GPU per task when the cluster has GPUs, else one CPU), 'cpu' (one CPU per
    task, even on a GPU cluster) or 'cuda' (one GPU per task; a cluster without GPUs is a ValueError).
    Ray gives each GPU task its own device as cuda:0, so an index in 'cuda:N' is dropped.

    Uses the Ray instance this process is connected to, if any (`address` is then ignored); else
    `ray.init(address)`: "local" starts a local instance; None uses the RAY_ADDRESS environment variable
    where it is set, else joins the cluster `ray start` recorded on this machine if there is one, else
    starts a local instance; "auto" is None without the local start; an address such as "HOST:6379" or
    "ray://head:10001" joins that cluster. An instance started here is shut down (a joined cluster only
    disconnected) when the last run using it returns, so concurrent runs in one process (the app's
    sessions) may share it. Joining gives up after INIT_TIMEOUT_S.

    `on_point(point, computed)` runs in the calling thread as each point finishes, in finishing order, and
    once as on_point(None, [(role, computed), ...]) when the reference models are there.
    A failed task raises PointFailed naming its point, after cancelling the tasks still outstanding, as
    does KeyboardInterrupt (re-raised as it is); the points finished by then stay in the cache.
    Raises ImportError when Ray is not installed, ClusterUnreachable when it cannot be started or reached
    (or does not answer within INIT_TIMEOUT_S); failure_kind says which of these, if any, a cache failed.
    """
    ray = _import_ray()
    cache_dir = os.path.abspath(os.path.expanduser(cache_dir))  # workers need not share the driver's cwd
    _check_device(device)
    with _connection(ray, address), _connection_kept(address):
        resources, task_device = _task_resources(device, ray.cluster_resources().get("GPU", 0))
        # The points read the original and the oracle's metrics, so the references come first, alone.
        references = ray.remote(_references_task).options(name="references", **resources)
        _wait_all(ray, {references.remote(config, cache_dir, sources, task_device): None}, on_point)
        point_task = ray.remote(_point_task)
        outstanding = {
            point_task.options(name=f"point {_label(point)}", **resources).remote(
                config, cache_dir, sources, *point, task_device): point
            for point in points
        }
        _wait_all(ray, outstanding, on_point)


@contextmanager
def _connection_kept(address: str | None) -> Iterator[None]:
    """Ray's ConnectionError while the run goes on (the cluster went away) as ClusterUnreachable, not a cache error."""
    try:
        yield
    except ConnectionError as err:
        shown = _resolved(address)[1]
        raise _unreachable("the local instance" if _starts_here(shown) else shown, f"lost the connection: {err}") \
            from err


def _references_task(config: dict[str, Any], cache_dir: str, sources: dict[str, str],
                     device: str) -> list[tuple[str, bool]]:
    from cup_core import compute  # imported here: the worker loads the module rather than unpickling it

    return compute.compute_references(config, cache_dir, sources, device)


def _point_task(config: dict[str, Any], cache_dir: str, sources: dict[str, str], method: str, value: float,
                seed: int, device: str) -> bool:
    from cup_core import compute

    return compute.compute_point(config, cache_dir, sources, method, value, seed, device)


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(f"running a sweep on Ray needs Ray: pip install ray ({err})") from err
    return ray


def _check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ValueError(f"unknown device {device!r} for Ray tasks; use auto, cpu or cuda")


def _task_resources(device: str, cluster_gpus: float) -> tuple[dict[str, float], str]:
    """(Ray resources of one task, the device string the task computes on)."""
    if device == "cpu" or (device == "auto" and not cluster_gpus):
        return {"num_cpus": 1}, "cpu"
    if not cluster_gpus:
        raise ValueError(f"device {device!r} asked for, but the Ray cluster has no GPU; use auto or cpu")
    return {"num_gpus": 1}, "cuda"  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU


_connection_lock = threading.Lock()
_connection_users = 0  # runs inside _connection right now
_connection_close: Callable[[], None] | None = None  # set while Ray runs because this module started it


@contextmanager
def _connection(ray, address: str | None) -> Iterator[None]:
    global _connection_users, _connection_close
    with _connection_lock:
        if not ray.is_initialized():
            _connection_close = _start(ray, address)
        _connection_users += 1
    try:
        yield
    finally:
        with _connection_lock:
            _connection_users -= 1
            if _connection_users == 0 and _connection_close is not None:
                _connection_close()
                _connection_close = None


class _Abandoned(BaseException):
    """Raised inside a ray.init that passed its deadline, so that its thread ends (BaseException: Ray's retry loop
    catches Exception)."""


def _no_sigterm_warning(record: logging.LogRecord) -> bool:
    """Drops Ray's warning that ray.init off the main thread sets no SIGTERM handler: the owner thread is ours, and
    a driver that joins a cluster needs none; every other record passes."""
    return not record.getMessage().startswith("SIGTERM handler is not set")


_abandoned: threading.Thread | None = None  # an abandoned ray.init's thread, until it has ended


def _start(ray, address: str | None) -> Callable[[], None]:
    """Starts (or joins) Ray; returns what shuts it down.

    Ray's local processes are killed when the thread that started them ends (PR_SET_PDEATHSIG names
    a thread, not a process), so off the main thread (an app session) a thread of our own starts Ray
    and lives until the shutdown; otherwise a session that started it would take it down on leaving.
    Joining a cluster runs in such a thread too, whatever the calling thread, so that it can be given up
    after INIT_TIMEOUT_S: a GCS that accepts connections but does not answer keeps ray.init retrying for
    minutes. A thread cannot be killed, and a daemon one (or os._exit) is no way out in a library; so the
    abandoned ray.init gets an exception raised in its thread (_Abandoned), which ends it as soon as Ray's
    current connection attempt returns to Python (Ray's wait for the GCS, ~30 s here) instead of after
    all its retries. Until then the process cannot exit (the interpreter waits for the thread) and a
    next run waits for it before starting Ray again."""
    global _abandoned
    resolved, shown = _resolved(address)
    if _abandoned is not None:
        _abandoned.join()
        _abandoned = None

    def init() -> None:
        _probe(resolved, shown)
        try:
            ray.init(address=address, ignore_reinit_error=True, include_dashboard=False,
                     runtime_env={"py_modules": [_PACKAGE_DIR]},  # Ray takes a local folder only here, not per task
                     logging_level=logging.WARNING)  # no "Started a local Ray instance" line per sweep
        except Exception as err:  # ConnectionError, RuntimeError, PermissionError, an authentication failure, ...
            raise _unreachable(shown, f"{type(err).__name__}: {first_line(err)}"
                               ) from err

    joins = not _starts_here(resolved)
    if threading.current_thread() is threading.main_thread() and not joins:
        init()
        return ray.shutdown
    started, release, failure, guard = threading.Event(), threading.Event(), [], threading.Lock()

    def own() -> None:
        try:
            try:
                init()
            except BaseException as err:
                failure.append(err)
                return
            finally:
                with guard:
                    started.set()  # from here on, no _Abandoned is sent
            release.wait()
        except _Abandoned:  # sent just before ray.init returned
            failure.append(_Abandoned())
        finally:
            if not failure or isinstance(failure[0], _Abandoned):
                ray.shutdown()  # the normal end, or undoing what an abandoned ray.init had made

    # Not a daemon: a daemon thread inside Ray's C++ code at interpreter exit is not something to leave behind.
    owner = threading.Thread(target=own, name="ray-owner")
    logging.getLogger("ray._private.worker").addFilter(_no_sigterm_warning)  # idempotent
    owner.start()
    if not started.wait(INIT_TIMEOUT_S if joins else None):
        with guard:
            if not started.is_set():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(owner.ident), ctypes.py_object(_Abandoned))
                release.set()
                _abandoned = owner
                log.debug("gave up ray.init at %s after %g s; its thread ends with Ray's current attempt", shown,
                          INIT_TIMEOUT_S)
                raise _no_answer(shown, INIT_TIMEOUT_S)
    if failure:
        raise failure[0]

    def close() -> None:
        release.set()
        owner.join()

    return close


def _wait_all(ray, outstanding: dict[Any, Point | None], on_point: PointCallback | None) -> None:
    """Collects each task as it finishes; on any failure or interrupt, cancels the ones left."""
    try:
        while outstanding:
            done, _ = ray.wait(list(outstanding), num_returns=1)
            for ref in done:
                point = outstanding.pop(ref)
                computed = _result(ray, ref, point)
                if on_point is not None:
                    on_point(point, computed)
    except BaseException:
        for ref in outstanding:
            ray.cancel(ref)  # a running task gets KeyboardInterrupt; its atomic writes leave no partial entry
        if outstanding:
            log.info("cancelled %d Ray task(s); finished points stay in the cache", len(outstanding))
        raise


def _result(ray, ref, point: Point | None) -> Any:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:  # a task's own exception, or its worker's death
        cause = getattr(err, "cause", None) or err
        what = "the reference models (original, oracle)" if point is None else f"point {_label(point)}"
        hint = ("\nThe workers cannot import cup_core: start Ray with runtime_env={'py_modules': [cup_core]}, "
                "or let run_on_ray start it." if "No module named 'cup_core" in str(err) else "")
        raise PointFailed(f"{what} failed on Ray: {type(cause).__name__}: {cause}{hint}", point, cause,
                          _task_failure_kind(ray, err, cause)) from err


def _task_failure_kind(ray, err, cause: BaseException) -> FailureKind:
    """A task that could not write the shared cache failed the cache; one whose worker or node died, or whose
    connection was lost, failed the cluster; anything else the task raised is its own error."""
    if isinstance(cause, OSError) and not isinstance(cause, ConnectionError):
        return "cache"
    if isinstance(err, ray.exceptions.RayTaskError):  # the task's own exception, whatever it was
        return "cluster" if isinstance(cause, ConnectionError) else "task"
    return "cluster"  # WorkerCrashedError, NodeDiedError, ObjectLostError, RaySystemError, ...


def _label(point: Point) -> str:
    method, value, seed = point
    return f"{method} {value:g} seed {seed}"
