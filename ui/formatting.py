"""Text for the pages: durations, sizes, ages, a calibration's outcome and a protocol in a few words. Pure
functions of plain values: no Streamlit, no library."""

from __future__ import annotations

import math
import time


def describe_calibration(calibration: dict | None) -> str:
    if calibration is None:
        return "none needed (intrinsic range)"
    low, high = calibration["range"]
    if calibration["status"] == "fixed":
        return f"fixed grid {low:.3g} … {high:.3g}"
    outcome = {"calibrated": "", "no_upper": ", never forgets nor breaks: its own maximum",
               "no_effect": ", moves nothing", "saturated": ", forgets even at its weakest",
               "reverse": ", forgets less as it grows"}.get(calibration["status"], "")
    return f"{low:.3g} … {high:.3g}{outcome}"


def describe_protocol(protocol: dict, points: int) -> str:
    """The protocol a Compare table used (report.summary's `protocol`), in a few words."""
    if protocol["name"] == "single recipe":
        return f"single recipe (unlearning learning rate {protocol['lr']:g})"
    lrs = protocol["lrs"]
    return (f"pooled learning rates: each method's points at {', '.join(f'{lr:g}' for lr in lrs)} form one solution "
            f"set ({points} values at each); methods whose knob is the learning rate, or that use none, run once "
            f"with {points * len(lrs)} values")


def format_duration(seconds: float) -> str:
    """A rough human duration: "about 14 s", "about 3 min", "about 1.5 h"."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def format_seconds(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "estimating…"
    return f"about {seconds:.0f} s left" if seconds >= 1 else "under a second left"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


def human_age(modified: float, now: float | None = None) -> str:
    seconds = max(0.0, (time.time() if now is None else now) - modified)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    return f"{seconds // 86400:.0f} days ago"
