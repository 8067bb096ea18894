"""The unlearning methods a sweep can run: each names its knob, its default grid and its rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import canonical_value
from .rules import CUP, GradientRule

DEFAULT_POINTS = 21  # grid points per method when the user does not say


@dataclass(frozen=True)
class Method:
    name: str  # identifier used in the CLI, the cache and results.csv
    label: str  # legend label
    knob: str  # what the swept value means
    knob_range: tuple[float, float]  # the default grid spans this interval, ends included
    make_rule: Callable[[float], GradientRule]

    def grid(self, points: int = DEFAULT_POINTS) -> tuple[float, ...]:
        if points < 1:
            raise ValueError(f"a grid needs at least 1 point, got {points}")
        low, high = self.knob_range
        values = [low] if points == 1 else np.linspace(low, high, points)
        return tuple(canonical_value(v) for v in values)

    def check_value(self, value: float) -> float:
        """`value` in canonical form, or a ValueError naming the knob's range."""
        low, high = self.knob_range
        value = canonical_value(value)
        if not low <= value <= high:
            raise ValueError(f"{self.knob} of {self.name} must be in [{low:g}, {high:g}], got {value:g}")
        return value


METHODS: dict[str, Method] = {
    "cup": Method(name="cup", label="CUP", knob="intensity", knob_range=(0.0, 1.0),
                  make_rule=lambda value: CUP(intensity=value)),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]
