"""Decision regions of a 2-D classifier on a grid, for the Learn page's pictures."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .labelled import LabelledSet


def plot_bounds(data: LabelledSet, margin: float = 1.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """(x range, y range) around 2-D samples, with a margin."""
    low = data.x.min(dim=0).values.tolist()
    high = data.x.max(dim=0).values.tolist()
    return (low[0] - margin, high[0] + margin), (low[1] - margin, high[1] + margin)


@torch.no_grad()
def decision_regions(model: nn.Module, x_range: tuple[float, float], y_range: tuple[float, float],
                     resolution: int = 120) -> np.ndarray:
    """(resolution, resolution) predicted class on a regular grid; row i is y_range's i-th value."""
    xs = torch.linspace(*x_range, resolution)
    ys = torch.linspace(*y_range, resolution)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1)  # (R², 2)
    model.eval()
    device = next(model.parameters()).device
    return model(points.to(device)).argmax(dim=1).reshape(resolution, resolution).cpu().numpy()


def experiment_regions(experiment, method: str, values: list[float], seed: int = 0,
                       resolution: int = 120) -> dict:
    """Decision regions of the original, the oracle and every cached point at `values` of a 2-D experiment,
    with the training samples to draw over them."""
    from .data import load_unlearning_data
    data = load_unlearning_data(experiment.config)
    if data.forget.x.shape[1:] != (2,):
        raise ValueError(f"decision regions need 2-D inputs; {experiment.config.dataset} has shape "
                         f"{tuple(data.forget.x.shape[1:])}")
    train = data.train
    x_range, y_range = plot_bounds(train)
    with experiment.threads(torch.device("cpu")):
        regions = {role: decision_regions(experiment.load_reference_model(role), x_range, y_range, resolution)
                   for role in experiment.roles}
        points = {value: decision_regions(experiment.load_model(method, value, seed), x_range, y_range, resolution)
                  for value in values}
    return {"x_range": x_range, "y_range": y_range, "references": regions, "points": points,
            "samples": {"x": train.x.numpy(), "y": train.y.numpy(),
                        "forget": np.concatenate([np.ones(len(data.forget), bool), np.zeros(len(data.retain), bool)])}}
