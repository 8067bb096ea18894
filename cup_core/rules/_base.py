"""The base class every gradient rule shares: validation of its two inputs, done once."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import Tensor


class GradientRule(ABC):
    """Maps the flat forget and retain gradients of one step to the update direction.

    Both inputs are gradients of losses that are *minimised* (the forget loss is the negated
    cross-entropy), so the returned direction is handed to the optimiser as if it were a gradient.
    A rule is immutable: configure it through its constructor, then call it.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; build a new one instead")

    def __call__(self, *, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        _check_gradients(g_forget, g_retain)
        return self._direction(g_forget, g_retain)

    @abstractmethod
    def _direction(self, g_forget: Tensor, g_retain: Tensor) -> Tensor:
        """The direction for validated inputs: same shape, dtype and device as them."""

    @classmethod
    def directions(cls, rules: Sequence[GradientRule], g_forget: Tensor, g_retain: Tensor) -> Tensor:
        """(K, P): row k is rules[k]'s direction for row k of the (K, P) gradients; every rule of class `cls`.

        The batched engine's step. Rules written for rows (CUP) do it in one pass over the rows, the
        others one row at a time; either way row k equals rules[k](g_forget=g_forget[k], g_retain=g_retain[k])."""
        if any(type(rule) is not cls for rule in rules):
            raise ValueError(f"{cls.__name__}.directions takes {cls.__name__} rules only")
        if g_forget.ndim != 2 or g_forget.shape[0] != len(rules):
            raise ValueError(f"directions need (K, P) gradients with K = {len(rules)} rules, "
                             f"got shape {tuple(g_forget.shape)}")
        _check_gradients(g_forget[0], g_retain[0])
        if g_forget.shape != g_retain.shape:
            raise ValueError(f"g_forget and g_retain must have the same shape, "
                             f"got {tuple(g_forget.shape)} and {tuple(g_retain.shape)}")
        return cls._directions(rules, g_forget, g_retain)

    @classmethod
    def _directions(cls, rules: Sequence[GradientRule], g_forget: Tensor, g_retain: Tensor) -> Tensor:
        return torch.stack([rule._direction(f, r) for rule, f, r in zip(rules, g_forget, g_retain)])

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


def _check_gradients(g_forget: Tensor, g_retain: Tensor) -> None:
    for name, g in (("g_forget", g_forget), ("g_retain", g_retain)):
        if not isinstance(g, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(g).__name__}")
        if g.ndim != 1:
            raise ValueError(f"{name} must be a flat (1-D) tensor, got shape {tuple(g.shape)}; "
                             "flatten the parameter gradients and concatenate them")
        if not g.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {g.dtype}")
    if g_forget.shape != g_retain.shape:
        raise ValueError(f"g_forget and g_retain must have the same shape, "
                         f"got {tuple(g_forget.shape)} and {tuple(g_retain.shape)}")
    if g_forget.dtype != g_retain.dtype:
        raise ValueError(f"g_forget and g_retain must have the same dtype, "
                         f"got {g_forget.dtype} and {g_retain.dtype}")
    if g_forget.device != g_retain.device:
        raise ValueError(f"g_forget and g_retain must be on the same device, "
                         f"got {g_forget.device} and {g_retain.device}")


class PreferenceRule(GradientRule):
    """Base of the rules that combine the preference-scaled tasks λ·g_forget and (1 − λ)·g_retain."""

    __slots__ = ("_preference",)

    def __init__(self, preference: float):
        object.__setattr__(self, "_preference", check_unit_interval("preference", preference))

    @property
    def preference(self) -> float:
        return self._preference

    def __reduce__(self) -> tuple:  # copy, deepcopy and pickle go through the constructor
        return (type(self), (self._preference,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(preference={self._preference!r})"

    def __str__(self) -> str:
        return f"{type(self).__name__} λ={self._preference:g}"

    def _tasks(self, g_forget: Tensor, g_retain: Tensor) -> tuple[Tensor, Tensor]:
        """(λ·g_forget, (1 − λ)·g_retain) in float64."""
        return self._preference * g_forget.double(), (1.0 - self._preference) * g_retain.double()


def check_unit_interval(name: str, value: float) -> float:
    """`value` as a float in [0, 1], or a ValueError that names the knob and its bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    value = float(value)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return value + 0.0  # −0.0 becomes 0.0: rules compare by repr, and R(-0.0) is R(0.0)


def check_non_negative(name: str, value: float) -> float:
    """`value` as a finite float ≥ 0 (−0.0 folded into 0.0), or a ValueError that names the knob."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    return value + 0.0
