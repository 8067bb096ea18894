"""Strict JSON for everything the project writes: NaN and infinities become null, numpy scalars Python numbers."""

from __future__ import annotations

import math
from typing import Any


def strict(data: Any) -> Any:
    """`data` with every non-finite float replaced by None, recursively (dicts, lists, tuples)."""
    if isinstance(data, dict):
        return {key: strict(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(value) for value in data]
    if hasattr(data, "item") and not isinstance(data, (str, bytes)):  # numpy and torch scalars
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def nan_if_none(value: Any) -> Any:
    """Back from JSON: a stored null is a NaN again."""
    return math.nan if value is None else value
