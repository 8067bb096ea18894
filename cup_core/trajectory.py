"""Per-step records of one unlearning run, for teaching: the two gradients' geometry, both losses and the
accuracies after every step. Recorded only when asked, by re-running a cached point with an observer,
and cached beside the experiment's points (the point itself is never recomputed or changed)."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from . import cache
from ._files import MiB, read_regular
from ._json import strict
from .batched import ENGINES_AGREE
from .config import SCHEMA_VERSION, canonical_json
from .data import load_unlearning_data
from .experiment import Experiment
from .methods import get_method
from .metrics import accuracy, predict_proba
from .training import StepGradients, Unlearner, unlearn


def plane_geometry(g_forget: Tensor, g_retain: Tensor, direction: Tensor) -> dict[str, Any]:
    """The step seen in the plane of the two gradients: orthonormal basis e1 = ĝ_r, e2 ⟂ e1 towards g_f.

    Returns the norms, φ (angle between the gradients), Θ = π − φ (the dual cone's width), the plane
    coordinates of g_r, g_f and d, the angles of d to both gradients, and how much of d leaves the plane.
    CUP uses only inner products, so its direction for any intensity can be recomputed from the 2-D
    coordinates alone (see `pivot_directions`)."""
    g_f, g_r, d = g_forget.double(), g_retain.double(), direction.double()
    norm_f, norm_r, norm_d = (float(torch.linalg.vector_norm(v)) for v in (g_f, g_r, d))
    e1 = g_r / norm_r if norm_r > 0 else torch.zeros_like(g_r)
    rest = g_f - torch.dot(g_f, e1) * e1
    e2 = rest / torch.linalg.vector_norm(rest) if torch.linalg.vector_norm(rest) > 0 else torch.zeros_like(g_f)
    coords = {name: [float(torch.dot(v, e1)), float(torch.dot(v, e2))] for name, v in
              (("g_retain", g_r), ("g_forget", g_f), ("direction", d))}
    in_plane = math.hypot(*coords["direction"])
    # ψ: how far d has turned from u_r, the retain edge of the dual cone (for CUP, ψ = γ·Θ).
    r, f = np.array(coords["g_retain"]), np.array(coords["g_forget"])
    u_r = r - (r @ f) / (f @ f) * f if f @ f > 0 else r  # the part of g_r orthogonal to g_f
    psi = _angle(u_r, np.array(coords["direction"]))
    cos_phi = float(torch.dot(g_f, g_r)) / (norm_f * norm_r) if norm_f > 0 and norm_r > 0 else math.nan
    phi = math.acos(max(-1.0, min(1.0, cos_phi))) if not math.isnan(cos_phi) else math.nan
    return {
        "norm_forget": norm_f, "norm_retain": norm_r, "norm_direction": norm_d,
        "phi": phi, "theta": math.pi - phi if not math.isnan(phi) else math.nan, "psi": psi,
        "cos_direction_forget": _cos(d, g_f), "cos_direction_retain": _cos(d, g_r),
        "plane": coords, "off_plane": math.sqrt(max(norm_d**2 - in_plane**2, 0.0)),
    }


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return math.acos(max(-1.0, min(1.0, float(a @ b) / norms))) if norms > 0 else math.nan


def _cos(a: Tensor, b: Tensor) -> float:
    denominator = float(torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b))
    return float(torch.dot(a, b)) / denominator if denominator > 0 else math.nan


def pivot_directions(plane: dict[str, list[float]], intensities: list[float]) -> list[list[float]]:
    """CUP's direction at each intensity for one step's gradients, from their plane coordinates."""
    from .rules import CUP

    g_f = torch.tensor(plane["g_forget"], dtype=torch.float64)
    g_r = torch.tensor(plane["g_retain"], dtype=torch.float64)
    return [CUP(intensity=value)(g_forget=g_f, g_retain=g_r).tolist() for value in intensities]


def same_run(engine: str | None, optimizer: str, lr: float, rerun: dict[str, Tensor], cached: dict[str, Tensor],
             rerun_accuracies: dict[str, float], cached_metrics: dict[str, Any]) -> bool:
    """Whether a sequential re-run (`rerun`: its state dict) is the cached point's run (`cached`).

    A point of the sequential engine: bitwise. Of the batched one, which sums in another order: under SGD,
    weights equal to float32 rounding (batched.ENGINES_AGREE). Under Adam no such tolerance holds: Adam divides
    each coordinate of d by its running RMS, so a coordinate where d is at rounding level (on the Learn toy 12 %
    of them, mostly dead units' weights, |d_i| < 1e-6) takes a full lr-sized step whose sign the summation
    order decides. Rounding-sized noise added to d moved the toy's weights by 1.3e-3 (0.13·lr) after 20 Adam
    steps and by 1e-6 under SGD; the engines differed by the same 1.3e-3. So an Adam run is the same run when
    every weight is within one step (lr) of the point's and the accuracies on the forget and retain sets equal
    the point's record."""
    if engine != "batched":
        return all(torch.equal(tensor.cpu(), cached[name]) for name, tensor in rerun.items())
    if optimizer != "adam":
        return all(torch.allclose(tensor.cpu(), cached[name], **ENGINES_AGREE) for name, tensor in rerun.items())
    return (all(torch.allclose(tensor.cpu(), cached[name], rtol=0.0, atol=lr) for name, tensor in rerun.items())
            and all(rerun_accuracies[name] == cached_metrics[name] for name in ("forget_acc", "retain_acc")))


def _entry(experiment: Experiment, method: str, value: float, seed: int):
    point = experiment.point_entry(method, value, seed)
    return experiment.root / "trajectories" / f"{point.name}.json"


TRAJECTORY_LIMIT = 256 * MiB  # bytes: a few KB a step; a bigger file is not one this tool wrote
TRAJECTORY_FORMAT = 4  # bump when a step record gains or changes a field: older files are recorded again
# (4: matches_cached_point compares an Adam run by `same_run`'s rule)


def _key(experiment: Experiment, method: str, value: float, seed: int) -> dict[str, Any]:
    """What the records are of: the point, the metrics' schema it was computed under (a bump of
    config.SCHEMA_VERSION records again, as it recomputes the point) and its weights' SHA-256 (a point
    recomputed for any other reason is re-run too). Raises cache.BrokenEntry when the point is not cached."""
    record = experiment.point_record(method, value, seed)
    return {**experiment.point_key(method, value, seed), "schema": SCHEMA_VERSION,
            "weights_sha256": record["weights_sha256"]}


def _stored(entry, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached records if they are for this point (`_key`) and in this format; None means record again."""
    try:
        stored = json.loads(read_regular(entry, "trajectory", TRAJECTORY_LIMIT))
    except (OSError, ValueError, RecursionError):  # missing, damaged, a FIFO or a device: recorded again
        return None
    if not isinstance(stored, dict) or stored.get("format") != TRAJECTORY_FORMAT:
        return None
    return stored if stored.get("key") == json.loads(canonical_json(key)) else None


def trajectory(experiment: Experiment, method: str, value: float, seed: int,
               device: torch.device = torch.device("cpu")) -> dict[str, Any]:
    """The per-step records of a cached point, recorded on first use and cached as JSON.

    Each step also records what it did to the retain loss L_r (cross-entropy over the whole retain set):
    `retain_loss_change`, the change the step caused, L_r(θ + Δθ) − L_r(θ); `retain_change_first_order`,
    ⟨g_r, Δθ⟩, its first-order prediction for the step the base optimiser took; and
    `retain_change_along_direction`, −lr·⟨g_r, d⟩, the prediction for a plain step along the method's
    direction d, which is CUP's guarantee (0 at γ = 1). For plain SGD the last two are one number; Adam
    rescales d coordinate by coordinate, so its step need not be orthogonal to g_r where d is. g_r is the
    gradient of the step's retain batch, so the three compare like with like for full-batch runs (Learn's).

    The re-run is checked against the cached point: `matches_cached_point` says whether its final
    weights are identical (they are, on the machine that computed the point), or for a point of the batched
    engine (this re-run is sequential) as close as the two engines' arithmetic allows (`same_run`)."""
    entry = _entry(experiment, method, value, seed)
    key = _key(experiment, method, value, seed)
    if (stored := _stored(entry, key)) is not None:
        return stored
    with cache.locked(entry):
        if (stored := _stored(entry, key)) is not None:  # another session recorded it while we waited
            return stored
        record, point_weights = cache.load_entry(experiment.point_entry(method, value, seed),
                                                 experiment.point_key(method, value, seed), experiment.point_check)
        if record["weights_sha256"] != key["weights_sha256"]:  # recomputed since `key` was read: its own key
            key = {**key, "weights_sha256": record["weights_sha256"]}
        data = load_unlearning_data(experiment.config).to(device)
        model = copy.deepcopy(experiment.load_reference_model("original")).to(device)
        procedure, recipe = get_method(method).setup(value, experiment.config.unlearn)
        if isinstance(procedure, Unlearner):
            raise ValueError(f"{get_method(method).label} has no (forget, retain) gradient pair per step to record")
        steps: list[dict[str, Any]] = []
        path: list[dict[str, float]] = []  # accuracies after 0, 1, ..., n steps
        before: dict[str, Any] = {}  # the step in flight: weights, g_r, d and L_r before it

        def weights() -> Tensor:
            return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]).double()

        @torch.no_grad()
        def retain_loss() -> float:
            model.eval()  # no batch-norm statistics updated by a measurement
            loss = float(F.cross_entropy(model(data.retain.x), data.retain.y))
            model.train()
            return loss

        def close_step() -> None:  # the weights have moved: what the previous step did to L_r
            if not before:
                return
            moved = weights() - before["weights"]  # (P,) Δθ
            steps[-1].update(retain_loss_change=retain_loss() - before["retain_loss"],
                             retain_change_first_order=float(torch.dot(before["g_retain"], moved)),
                             retain_change_along_direction=-recipe.lr * float(torch.dot(before["g_retain"],
                                                                                         before["direction"])))

        def measure() -> dict[str, float]:
            forget_acc = accuracy(predict_proba(model, data.forget), data.forget.y)
            retain_acc = accuracy(predict_proba(model, data.retain), data.retain.y)
            model.train()  # predict_proba switched to eval mode; the run goes on training
            return {"forget_acc": forget_acc, "retain_acc": retain_acc, "ua": 100.0 - forget_acc}

        def on_step(seen: StepGradients) -> None:  # called before the optimiser takes step `seen.step`
            close_step()
            path.append(measure())
            before.update(weights=weights(), retain_loss=retain_loss(), g_retain=seen.g_retain.double(),
                          direction=seen.direction.double())
            steps.append({"step": seen.step, "forget_loss": seen.forget_loss, "retain_loss": seen.retain_loss,
                          **plane_geometry(seen.g_forget, seen.g_retain, seen.direction)})

        torch.manual_seed(seed)
        with experiment.threads(device):
            unlearn(model, data.forget, data.retain, procedure, recipe, seed, on_step=on_step)
            close_step()
        path.append(measure())
        matches = same_run(record.get("engine"), recipe.optimizer, recipe.lr, model.state_dict(), point_weights,
                           path[-1], record["metrics"])
        result = {"format": TRAJECTORY_FORMAT, "key": key, "method": method, "value": value, "seed": seed, "steps": steps, "path": path,
                  "matches_cached_point": matches, "metrics": record["metrics"]}
        cache.atomic_write_text(entry, json.dumps(strict(result), allow_nan=False))
    stored = _stored(entry, key)
    if stored is None:
        raise ValueError(f"{entry}: the trajectory just recorded cannot be read back")
    return stored
