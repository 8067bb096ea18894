"""Text for the pages: durations, sizes, ages, a calibration's outcome, a protocol in a few words and the
library's errors in the app's words. Pure functions of plain values: no Streamlit, no library."""

from __future__ import annotations

import math
import time


class _FieldNames:
    """Settings as the app's fields name them, for cup_core.settings.SettingError.worded."""

    FIELDS = {"data_root": "the data root", "download": "“Download if missing”", "image_size": "the image size",
              "checkpoint": "the “Checkpoint” upload", "methods": "Methods", "seeds": "Seeds",
              "points": "the grid points per method", "forget_indices": "the list of samples", "lr": "the learning rate",
              "epochs": "the unlearning epochs", "batch_size": "the batch size"}

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):  # copy's and pickle's probes are not settings
            raise AttributeError(name)
        return self.FIELDS.get(name, "the " + name.replace("_", " "))


APP_NAMES = _FieldNames()


def error_text(error: Exception) -> str:
    """A library error in the app's words: a setting named by its field, where the CLI would name its option
    (the library's SettingError carries the setting, not a sentence to rewrite)."""
    worded = getattr(error, "worded", None)
    return worded(APP_NAMES) if callable(worded) else str(error)


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
