"""Knob calibration: on this experiment, where a method goes from "barely moves" to "forgotten" (issue 12).

A baseline's knob (a learning rate, a loss weight, a penalty, SalUn's salient share) has no intrinsic range:
a grid chosen on one experiment may not move the model at all on another. Calibration finds, with a few
real runs of the method on this experiment, the knob interval over which it goes

- from **barely moving** the model (ua and retain accuracy within `move` of the original's),
- to the **upper end**: the forget set forgotten (ua within `reach` of the target: the oracle's ua, or 100
  without an oracle) or the model broken (retain accuracy lost half its margin above chance, or the run
  diverged), whichever comes first;

and the method's grid is laid inside it. The search, in the knob's own scale (decades for log knobs):

1. run the default range's top; while it has not reached the upper end, expand upwards (a decade, or ×4
   on a linear knob) up to twice, within the knob's bounds;
2. if some run moved the model, run the default range's bottom; while it already moves the model, expand
   downwards the same way (a linear knob starting at 0 keeps 0: the method's term switched off);
3. bisect, alternately, the upper boundary (between the largest run below it and the smallest at it) and
   the lower boundary (between the largest run that does not move and the smallest that does), until each
   bracket is narrower than a tenth of a decade (2 % of the range on linear knobs) or the runs are spent.

At most `budget` runs (8 at the most); they are ordinary cached points of the calibration seed. The
method's values are then every run of the search plus points filling the largest gaps of the interval,
`points` values in all: every method gets the same number of runs, calibration included.

The search is a pure function of its runs' metrics, so replaying it on cached points (`replay`) gives the
same values without computing anything; a point that is not cached yet leaves the calibration pending.

Everything above assumes that a larger value does more. A knob that works backwards (`Method.decreasing`,
SSD's selection weighting α: a large α changes nothing, a small one dampens much) is searched as its
reciprocal 1/α, which does more as it grows, and the outcome is mapped back to α (its range's ends swap).
Such a knob is log-spaced, and a midpoint in log 1/α is one in log α, so its values are filled in as any
log knob's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

from .methods import Method

MAX_RUNS = 8  # the "at most about 8 runs per method"
EXPANSIONS = 2  # steps beyond the default range, each way
LINEAR_EXPANSION = 4.0  # a linear knob's upper end grows ×4 per step
MOVE = 0.02  # a run "moves" the model when ua or retain accuracy changes by 2 % of the reachable ua span
REACH = 0.05  # ua within 5 % of that span from the target counts as forgotten
MIN_SPAN = 5.0  # percentage points: the span used when original and target are closer (random subsets)
LOG_TOLERANCE = 0.1  # decades: a boundary's bracket this narrow is found
LINEAR_TOLERANCE = 0.02  # of the searched range, on linear knobs

Status = Literal["calibrated", "no_upper", "no_effect", "saturated", "reverse", "pending"]


@dataclass(frozen=True)
class Response:
    """How one run of the method left the model, against the original and the target."""

    moved: bool  # ua or retain accuracy changed visibly
    upper: bool  # forgotten, or broken (retain collapsed, diverged)
    seconds: float  # the run's unlearning time
    progress: float = math.nan  # (ua − original ua) / span: how far towards the target ua the run forgot


@dataclass(frozen=True)
class Criteria:
    """What the responses are measured against: the original's metrics and the ua to reach."""

    original_ua: float
    original_retain: float
    target_ua: float  # the oracle's ua, or 100 without an oracle
    chance: float  # 100 / number of classes

    @property
    def span(self) -> float:
        return max(abs(self.target_ua - self.original_ua), MIN_SPAN)

    def respond(self, metrics: dict[str, Any], diverged: bool, seconds: float) -> Response:
        ua, retain = _number(metrics.get("ua")), _number(metrics.get("retain_acc"))
        broken = diverged or not (math.isfinite(ua) and math.isfinite(retain))
        if broken:
            return Response(moved=True, upper=True, seconds=seconds)
        collapsed = retain < self.chance + 0.5 * (self.original_retain - self.chance)
        moved = abs(ua - self.original_ua) >= MOVE * self.span or abs(retain - self.original_retain) >= MOVE * self.span
        forgotten = ua >= self.target_ua - REACH * self.span
        return Response(moved=moved or collapsed, upper=collapsed or forgotten, seconds=seconds,
                        progress=(ua - self.original_ua) / self.span)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class Calibration:
    """The outcome of one method's search on one experiment."""

    method: str
    seed: int  # the seed of its runs
    status: Status  # calibrated; no_upper: never forgets nor breaks within the searched range (its own maximum);
    #                 no_effect: no run moved the model (within the range searched); saturated: its weakest run
    #                 already forgets (or breaks), so the knob cannot reach "barely moves"; reverse: it forgets
    #                 less as the knob grows; pending: a run is not computed yet
    range: tuple[float, float]  # the interval the grid is laid in (the searched range when nothing moved)
    runs: tuple[float, ...]  # knob values run by the search, in order
    seconds: float  # their unlearning time, summed

    def to_dict(self) -> dict[str, Any]:
        return {"runs": len(self.runs), "seconds": self.seconds, "range": list(self.range), "status": self.status,
                "why": WHY.get(self.status), "seed": self.seed, "values_run": list(self.runs)}


class _Stop(Exception):
    """The search cannot go on: its runs are spent, or (replaying) a run is not cached."""


def budget(points: int) -> int:
    """Runs the search may use out of a method's `points`: half of them, at most MAX_RUNS, at least 2."""
    return min(MAX_RUNS, max(2, (points + 1) // 2))


def search(method: Method, respond: Callable[[float], Response | None], runs: int, seed: int = 0) -> Calibration:
    """Runs the search of the module docstring; `respond(value)` runs (or looks up) one point, None: not cached."""
    if method.decreasing:
        return _reciprocal_search(method, respond, runs, seed)
    tried: dict[float, Response] = {}
    order: list[float] = []
    pending = False

    def run(value: float) -> Response:
        nonlocal pending
        value = method.check_value(value)
        if value in tried:
            return tried[value]
        if len(order) >= runs:
            raise _Stop
        response = respond(value)
        if response is None:
            pending = True
            raise _Stop
        tried[value] = response
        order.append(value)
        return response

    low, high = method.knob_range
    floor, ceiling = _limits(method)
    forward, back = _scale(method)
    anchored = method.scale == "linear" and low == 0.0  # 0 switches the method's term off: the natural bottom
    try:
        top, bottom = high, low
        for _ in range(EXPANSIONS):
            if run(top).upper or top >= ceiling:
                break
            top = min(ceiling, top * 10.0 if method.scale == "log" else top * LINEAR_EXPANSION)
        run(top)
        if any(response.moved for response in tried.values()):  # else the bottom, lower still, moves nothing
            for _ in range(EXPANSIONS):
                if not run(bottom).moved or anchored or bottom <= floor:
                    break
                bottom = max(floor, bottom / 10.0)
            run(bottom)
        searched = (min(tried), max(tried))
        tolerance = (LOG_TOLERANCE if method.scale == "log"
                     else LINEAR_TOLERANCE * (forward(searched[1]) - forward(searched[0])))
        while True:
            progressed = False
            for which in ("upper", "moved"):
                bracket = _bracket(tried, which)
                if bracket and forward(bracket[1]) - forward(bracket[0]) > tolerance:
                    middle = back((forward(bracket[0]) + forward(bracket[1])) / 2)
                    if method.check_value(middle) not in bracket:
                        run(middle)
                        progressed = True
            if not progressed:
                break
    except _Stop:
        pass
    seconds = float(sum(tried[v].seconds for v in order))
    if pending or not tried:
        known = (min(tried), max(tried)) if tried else method.knob_range
        return Calibration(method.name, seed, "pending", known, tuple(order), seconds)
    return Calibration(method.name, seed, *_outcome(tried, method.knob_range), tuple(order), seconds)


def _reciprocal_search(method: Method, respond: Callable[[float], Response | None], runs: int,
                       seed: int) -> Calibration:
    """`search` for a knob that works backwards: over 1/value, then mapped back to the knob's own values."""
    def back(value: float) -> float:
        return method.check_value(1.0 / value)

    low, high = method.knob_range
    bound_low, bound_high = method.bounds
    reciprocal = replace(method, knob_range=(1.0 / high, 1.0 / low), decreasing=False,
                         bounds=(0.0 if bound_high == math.inf else 1.0 / bound_high,
                                 math.inf if bound_low == 0 else 1.0 / bound_low))
    found = search(reciprocal, lambda value: respond(back(value)), runs, seed)
    return Calibration(method.name, seed, found.status, (back(found.range[1]), back(found.range[0])),
                       tuple(back(value) for value in found.runs), found.seconds)


def _outcome(tried: dict[float, Response], default: tuple[float, float]) -> tuple[Status, tuple[float, float]]:
    values = sorted(tried)
    searched = (min(values[0], default[0]), max(values[-1], default[1]))
    moving = [v for v in values if tried[v].moved]
    if not moving:  # the grid shows that: over the default range and what the search tried beyond it
        return "no_effect", searched
    if tried[values[0]].upper:  # even its weakest run forgets or breaks: no bracket to search
        return "saturated", searched
    first_moving = moving[0]
    still = [v for v in values if v < first_moving and not tried[v].moved]
    bottom = still[-1] if still else values[0]
    upper = [v for v in values if tried[v].upper and v > bottom]
    if not upper:
        weakest, strongest = tried[values[0]].progress, tried[values[-1]].progress
        if weakest - strongest >= MOVE:  # NaN (no ua) compares False
            return "reverse", (values[0], values[-1])
        return "no_upper", (bottom, values[-1])
    return "calibrated", (bottom, upper[0])


WHY = {  # one line per outcome that leaves the grid short of the "barely moves" to "forgotten" sweep
    "no_upper": "never forgets the forget set nor breaks within the range searched: its grid ends at its own maximum",
    "no_effect": "moves nothing from this original at any value searched",
    "saturated": "forgets (or breaks) even at its weakest value: what it does is set by the recipe it runs under "
                 "(learning rate, epochs), not by this knob",
    "reverse": "forgets less as its knob grows: the knob works against forgetting here, and the recipe's "
               "learning rate and epochs set how much it forgets",
}


def _bracket(tried: dict[float, Response], which: str) -> tuple[float, float] | None:
    """(largest run without the property below the smallest run with it, that smallest run), if both exist."""
    values = sorted(tried)
    having = [v for v in values if getattr(tried[v], which)]
    if not having:
        return None
    without = [v for v in values if v < having[0] and not getattr(tried[v], which)]
    return (without[-1], having[0]) if without else None


def _limits(method: Method) -> tuple[float, float]:
    """How far the search may leave the default range: EXPANSIONS steps each way, within the knob's bounds."""
    low, high = method.knob_range
    if method.scale == "log":
        floor, ceiling = low / 10.0 ** EXPANSIONS, high * 10.0 ** EXPANSIONS
    else:
        floor, ceiling = low, high * LINEAR_EXPANSION ** EXPANSIONS
    bound_low, bound_high = method.bounds
    return max(floor, bound_low), min(ceiling, bound_high)


def _scale(method: Method) -> tuple[Callable[[float], float], Callable[[float], float]]:
    if method.scale == "log":
        return math.log10, lambda t: 10.0 ** t
    return (lambda v: v), (lambda t: t)


def values(method: Method, calibration: Calibration, points: int) -> tuple[float, ...]:
    """The method's `points` knob values: every run of the search, then the midpoints of the largest gaps
    (in the knob's scale) inside the calibrated range, sorted."""
    forward, back = _scale(method)
    chosen = set(calibration.runs)
    low, high = calibration.range
    if low == high:  # one run decided both ends (it reached the upper end at once): fill the default range too
        low, high = min(low, method.knob_range[0]), max(high, method.knob_range[1])
    for _ in range(4 * points):  # enough for any grid; canonical rounding can make a midpoint repeat
        if len(chosen) >= points:
            break
        inside = sorted({low, high, *(v for v in chosen if low <= v <= high)})
        if len(inside) < 2:
            chosen.add(low)
            continue
        gaps = [(forward(b) - forward(a), a, b) for a, b in zip(inside, inside[1:])]
        width, a, b = max(gaps)
        if width <= 0:
            break
        chosen.add(method.check_value(back((forward(a) + forward(b)) / 2)))
    return tuple(sorted(chosen))


def criteria(original: dict[str, Any], oracle: dict[str, Any] | None, num_classes: int) -> Criteria:
    """The response criteria from the reference models' metrics."""
    target = 100.0 if oracle is None or oracle.get("ua") is None else float(oracle["ua"])
    return Criteria(original_ua=float(original["ua"]), original_retain=float(original["retain_acc"]),
                    target_ua=target, chance=100.0 / num_classes)
