"""A labelled set of samples as tensors: what every data set loads into and every loop reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LabelledSet:
    x: Tensor  # (N, *input_shape) float32
    y: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> LabelledSet:
        return LabelledSet(self.x.to(device), self.y.to(device))
