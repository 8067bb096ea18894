"""The unlearning methods a sweep can run (spec §6): each names its knob, its default grid and its step.

A method maps one knob value to a training Procedure and the unlearning recipe it runs under: most
knobs configure the rule (CUP's intensity, a weight, a preference); GA, FT, RL, NGDiff and boundary shrink
have none of their own, so their knob is the base optimiser's learning rate. SCRUB and SSD are not one
gradient rule over zipped batches: their procedure is an `Unlearner` that runs its own steps (scrub.py, ssd.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal

import numpy as np

from .config import FLOAT32_MAX, UnlearnRecipe, canonical_value
from .settings import DEFAULT_POINTS
from .rules import CUP, FT, GA, MGDA, NGDiff, CAGrad, GradientRule, NegGradPlus, PCGrad, WeightedSum
from .scrub import Scrub
from .ssd import DAMPENING, SelectiveDampening
from .training import Procedure, Unlearner

# Knobs that accept any non-negative value (weights, penalties, learning rates) that float32, in which the weights
# and gradients are, holds: beyond it a rate or a weight is infinite, and the engines would not agree on the run.
UNBOUNDED = (0.0, FLOAT32_MAX)
MAX_GRID_POINTS = 100_000  # values per method: each is a trained model


@dataclass(frozen=True)
class Method:
    name: str  # identifier used in the CLI, the cache and results.csv
    label: str  # legend label
    knob: str  # what the swept value means
    knob_range: tuple[float, float]  # the default grid spans this interval, ends included
    procedure: Callable[[float], Procedure | Unlearner]  # the step for a knob value
    bounds: tuple[float, float] = (0.0, 1.0)  # the values the knob accepts at all (a custom grid may leave the default range)
    scale: Literal["linear", "log"] = "linear"  # how the default grid is spaced
    knob_is_lr: bool = False  # the value replaces the recipe's learning rate
    fixed_lr: float | None = None  # a learning rate of the method's own instead of the recipe's
    about: str = ""  # one line for the Compare page
    calibrate: bool = False  # no intrinsic range (a learning rate, weight, penalty, share): calibration.py finds
    #                          the grid on each experiment; knob_range is then the search's first bracket
    decreasing: bool = False  # a larger value does less (SSD's α): calibration searches its reciprocal; log scale,
    #                           positive values only
    optimises: bool = True  # takes optimiser steps (SSD does not, so no learning rate reaches it)

    def __post_init__(self) -> None:
        if self.decreasing and self.scale != "log":
            raise ValueError(f"{self.name}: a decreasing knob must be log-spaced (calibration searches 1/value)")

    @property
    def uses_recipe_lr(self) -> bool:
        """Whether the recipe's learning rate changes this method's points: not when its knob is the learning rate,
        it has one of its own, or it takes no optimiser steps (a sweep pooled over learning rates runs it once)."""
        return self.optimises and not self.knob_is_lr and self.fixed_lr is None

    def grid(self, points: int = DEFAULT_POINTS) -> tuple[float, ...]:
        if points < 1:
            raise ValueError(f"a grid needs at least 1 point, got {points}")
        if points > MAX_GRID_POINTS:  # numpy would say only "Maximum allowed size exceeded"
            raise ValueError(f"points must be at most {MAX_GRID_POINTS:,} values per method, got {points:,}")
        low, high = self.knob_range
        if points == 1:
            values = [high if self.knob_is_lr else low]
        elif self.scale == "log":
            values = np.geomspace(low, high, points)
        else:
            values = np.linspace(low, high, points)
        return tuple(self.check_value(v) for v in values)

    def check_value(self, value: float) -> float:
        """`value` in canonical form, or a ValueError naming the knob's bounds."""
        low, high = self.bounds
        value = canonical_value(value)
        if (self.knob_is_lr or self.decreasing) and not value > 0:
            raise ValueError(f"{self.knob} of {self.name} must be positive, got {value:g}")
        if not low <= value <= high:
            raise ValueError(f"{self.knob} of {self.name} must be in [{low:g}, {high:g}], got {value:g}")
        return value

    def position(self, values: np.ndarray) -> np.ndarray:
        """Knob values mapped to [0, 1] over the values given (log-spaced knobs on a log scale), so that
        methods with different knobs share one axis."""
        values = np.asarray(values, dtype=float)
        if self.scale == "log":
            values = np.log10(values)
        low, high = np.nanmin(values), np.nanmax(values)
        return np.zeros_like(values) if high == low else (values - low) / (high - low)

    def setup(self, value: float, recipe: UnlearnRecipe) -> tuple[Procedure, UnlearnRecipe]:
        """The procedure and recipe of the point at `value`."""
        value = self.check_value(value)
        if self.knob_is_lr:
            recipe = replace(recipe, lr=value)
        elif self.fixed_lr is not None:
            recipe = replace(recipe, lr=self.fixed_lr)
        return self.procedure(value), recipe


def _rule(make: Callable[[float], GradientRule]) -> Callable[[float], Procedure]:
    return lambda value: Procedure(make(value))


def _fixed(rule: GradientRule, **options) -> Callable[[float], Procedure]:
    return lambda value: Procedure(rule, **options)


# Default grids were chosen on the default digits experiment (Adam, 10 epochs) so that each method's knob
# moves the model there; a calibrated method (the default) uses its range only as the search's first bracket.
METHODS: dict[str, Method] = {method.name: method for method in (
    Method("cup", "CUP", "intensity", (0.0, 1.0), _rule(lambda v: CUP(intensity=v)),
           about="pivots between the retain and forget gradients by γ of their dual cone"),
    Method("ga", "GA", "learning rate", (1e-5, 3e-4), _fixed(GA()), UNBOUNDED, scale="log", knob_is_lr=True, calibrate=True,
           about="gradient ascent on the forget set only"),
    Method("ft", "FT", "learning rate", (1e-4, 1e-2), _fixed(FT()), UNBOUNDED, scale="log", knob_is_lr=True, calibrate=True,
           about="fine-tunes on the retain set only"),
    Method("rl", "RL", "learning rate", (1e-5, 1e-3), _fixed(WeightedSum(weight=1.0), forget_objective="random_labels"),
           UNBOUNDED, scale="log", knob_is_lr=True, calibrate=True,
           about="cross-entropy to random wrong labels on the forget set, plus the retain loss"),
    Method("ws", "WS", "forget weight", (0.0, 2.0), _rule(lambda v: WeightedSum(weight=v)), UNBOUNDED, calibrate=True,
           about="weighted sum w·L_f + L_r (the paper's multi-objective baseline)"),
    Method("neggrad+", "NegGrad+", "retain weight β", (0.0, 1.0), _rule(lambda v: NegGradPlus(beta=v)),
           about="β·L_r + (1 − β)·L_f (GradDiff)"),
    Method("ngdiff", "NGDiff", "learning rate", (1e-5, 3e-4), _fixed(NGDiff()), UNBOUNDED, scale="log", knob_is_lr=True,
           calibrate=True, about="sum of the unit forget and retain gradients"),
    Method("salun", "SalUn", "salient share of weights", (0.01, 1.0),
           lambda v: Procedure(WeightedSum(weight=1.0), forget_objective="random_labels", saliency_fraction=v),
           scale="log", calibrate=True, about="random labels on the weights most salient to the forget set only"),
    # ℓ1-sparse is fine-tuning: at the recipe's small learning rate (tuned for methods that ascend the forget
    # loss) no strength moved the digits model at all, so it runs at a fine-tuning learning rate of its own.
    Method("l1", "ℓ1-sparse", "ℓ1 strength", (0.0, 4e-3), lambda v: Procedure(FT(), l1_strength=v), UNBOUNDED,
           fixed_lr=2e-3, calibrate=True, about="fine-tunes on the retain set (lr 2e-3) with an ℓ1 penalty on the weights"),
    # λ = 0 or 1 puts a zero vector in the hull, whose min-norm point is then 0: no step at all.
    Method("mgda", "MGDA", "forget preference λ", (0.02, 0.98), _rule(lambda v: MGDA(preference=v)),
           about="min-norm point of the hull of λ·g_f and (1 − λ)·g_r; it equalises the scaled progress "
                 "λ·⟨d, g_f⟩ = (1 − λ)·⟨d, g_r⟩, so a small λ favours forgetting"),
    Method("pcgrad", "PCGrad", "forget preference λ", (0.0, 1.0), _rule(lambda v: PCGrad(preference=v)),
           about="projects away the conflicting parts of λ·g_f and (1 − λ)·g_r"),
    Method("cagrad", "CAGrad", "forget preference λ", (0.0, 1.0), _rule(lambda v: CAGrad(preference=v)),
           about="conflict-averse direction around λ·g_f + (1 − λ)·g_r"),
    # The methods a reviewer expects beside them (issue 17); their constants are the authors' (module docstrings).
    # Log-spaced: under Adam (the embedded sets' recipes) the weight acted over decades on digits class 0 (UA 3 % at
    # 0.003, 100 % at 0.03; retain accuracy falling slowly up to 2); 0, the max-steps off, stays a valid value.
    Method("scrub", "SCRUB", "forget weight", (1e-3, 1.0), lambda v: Scrub(forget_weight=v), UNBOUNDED, scale="log",
           calibrate=True,
           about="a student of the original: max-steps raise its KL from the original on forget batches (in the first "
                 "2/3 of the epochs; the knob weighs them), min-steps lower 0.99·CE + 0.001·KL on retain batches "
                 "(temperature 4)"),
    # α below λ selects parameters whose factor min(λ·I_D/I_f, 1) is 1 (I_f ≤ λ·I_D): the same model as α = λ, so
    # the knob starts at λ, its strongest setting.
    Method("ssd", "SSD", "selection weighting α", (DAMPENING, 100.0), lambda v: SelectiveDampening(selection=v),
           (DAMPENING, float("inf")), scale="log", calibrate=True, decreasing=True, optimises=False,
           about=f"no training: weights whose Fisher importance on the forget set exceeds α times that on the "
                 f"training set are scaled by min(λ·I_D/I_f, 1), λ = {DAMPENING:g}; a smaller α dampens more; "
                 "deterministic (seeds change nothing)"),
    Method("boundary_shrink", "Boundary shrink", "learning rate", (1e-5, 1e-3),
           _fixed(GA(), forget_objective="boundary"), UNBOUNDED, scale="log", knob_is_lr=True, calibrate=True,
           about="fine-tunes on the forget samples relabelled to the original's nearest wrong class, found by one "
                 "FGSM step of size 0.1"),
)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}, or all")
    return METHODS[name]


def parse_methods(text: str) -> tuple[str, ...]:
    """'all' or a comma list of method names, validated."""
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    if names == ("all",):
        return tuple(METHODS)
    for name in names:
        get_method(name)
    return names
