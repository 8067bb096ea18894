"""The Learn page's lesson: its texts, written from what the cached runs of both base optimisers measured, so
that every claim holds for the runs the page shows (tests/ui/test_lesson.py checks them). Pure: no Streamlit."""

from __future__ import annotations

from typing import Any

import pandas as pd

FORGOTTEN = 1.0  # forget accuracy (%) at or below which the blob counts as forgotten
KEPT = 90.0  # retain accuracy (%) above which the retained classes count as kept
TEACHING_INTENSITY = 0.7  # the intensity of the paper's figure, and the slider's default


def lesson_facts(results: dict[str, pd.DataFrame], runs: dict[str, dict[float, dict[str, Any]]]) -> dict[str, Any]:
    """Per optimiser, from its CUP results table (one row per intensity) and its step records at γ = 0.7 and 1:
    accuracies by intensity, where forgetting starts and retain accuracy holds, and what the steps at γ = 1
    did to the retain loss against their first-order predictions."""
    facts: dict[str, Any] = {}
    for name, table in results.items():
        table = table.sort_values("value")
        values = [float(v) for v in table["value"]]
        retain = dict(zip(values, table["retain_acc"].astype(float)))
        forget = dict(zip(values, table["forget_acc"].astype(float)))
        forgotten = [v for v in values if forget[v] <= FORGOTTEN]
        # The smallest intensity from which every larger one forgets too.
        forgets_from = next((v for v in values if all(forget[w] <= FORGOTTEN for w in values if w >= v)), None)
        below = [v for v in values if forgets_from is not None and v < forgets_from]
        at_one, at_teaching = runs[name][1.0], runs[name][TEACHING_INTENSITY]
        path = [step["retain_acc"] for step in at_one["path"]]
        facts[name] = {
            "retain": retain, "forget": forget, "forgotten": forgotten, "forgets_from": forgets_from,
            "kept": [v for v in values if retain[v] > KEPT],
            # The intensities below forgets_from and the lowest forget accuracy among them (and where).
            "below": below, "below_min": min((forget[v] for v in below), default=None),
            "below_min_at": min(below, key=lambda v: forget[v], default=None),
            "one_min_retain": min(path), "one_min_retain_after": path.index(min(path)),
            "one_end_retain": path[-1],
            "one_max_change": max(step["retain_loss_change"] for step in at_one["steps"]),
            "one_max_first_order": max(step["retain_change_first_order"] for step in at_one["steps"]),
            "one_max_along_direction": max(abs(step["retain_change_along_direction"]) for step in at_one["steps"]),
            "one_retain_loss": (at_one["steps"][0]["retain_loss"], at_one["steps"][-1]["retain_loss"]),
            "teaching_cos_retain": (min(s["cos_direction_retain"] for s in at_teaching["steps"]),
                                    max(s["cos_direction_retain"] for s in at_teaching["steps"])),
        }
    return facts


def intensities(values: list[float], grid: list[float]) -> str:
    """Where on the grid `values` lie, as ranges of consecutive grid points: "at every intensity",
    "for γ = 0 to 0.975", "for γ = 0.375, 0.4 and 0.5 to 1", "at no intensity"."""
    if not values:
        return "at no intensity"
    if len(values) == len(grid):
        return "at every intensity"
    chosen, ranges, start = set(values), [], None
    for i, value in enumerate(grid):
        if value in chosen and start is None:
            start = value
        if start is not None and (i + 1 == len(grid) or grid[i + 1] not in chosen):
            ranges.append(f"{start:g}" if start == value else f"{start:g} to {value:g}")
            start = None
    return "for γ = " + (ranges[0] if len(ranges) == 1 else ", ".join(ranges[:-1]) + " and " + ranges[-1])


def lesson_tabs(facts: dict[str, Any], optimizer: str, forget_class: int) -> list[tuple[str, str]]:
    """(title, markdown) of each lesson tab, for the base optimiser the page shows (`adam` or `sgd`)."""
    adam, sgd = facts["adam"], facts["sgd"]
    grid = sorted(adam["retain"])
    shown = facts[optimizer]
    other = "sgd" if optimizer == "adam" else "adam"
    names = {"adam": "Adam", "sgd": "plain SGD"}
    t = TEACHING_INTENSITY
    first = grid[1]  # the smallest intensity above 0
    return [
        ("1 · The problem",
         f"The model below was trained on all five blobs. We ask it to forget class {forget_class} (crosses) as "
         "if it had never seen it, while the other four keep their regions. The **retrained oracle** on the right "
         "is the gold standard: the same network trained without the forget set.\n\n**Try this:** compare the "
         "original's and the oracle's regions: where does the forgotten blob's area go?"),
        ("2 · γ = 0",
         "At **γ = 0** every step is pure retain progress: the direction d is orthogonal to the forget gradient, "
         "so to first order the forget loss does not change. Forget accuracy stays at "
         f"{shown['forget'][0.0]:.0f} % ({names[optimizer]}).\n\n**Try this:** drag the slider to 0: the "
         f"forgotten blob is still classified correctly. Then move it one notch, to γ = {first:g}: under Adam "
         f"forget accuracy drops to {adam['forget'][first]:.0f} %, under plain SGD it stays at "
         f"{sgd['forget'][first]:.0f} %. Plain SGD steps by −lr·d, so a small forget component makes a small "
         "change; Adam rescales every coordinate of its step to about the learning rate, so the sliver of "
         f"forgetting at γ = {first:g} is taken at full size. Under Adam the blob is forgotten (forget accuracy "
         f"≤ {FORGOTTEN:g} %) from γ = {adam['forgets_from']:g}, under plain SGD from "
         f"γ = {sgd['forgets_from']:g}: switch the optimiser and compare."),
        ("3 · γ = 1",
         "At **γ = 1** the direction d is orthogonal to the retain gradient: a small enough step *along d* "
         "leaves the retain loss unchanged to first order. That is a promise about d, not about the step the "
         "optimiser takes, nor about twenty finite steps.\n\n"
         f"- **Plain SGD** steps by −lr·d, so the first-order change is 0 (at most "
         f"{sgd['one_max_along_direction']:.0e} a step); the change each step actually caused is at most "
         f"{sgd['one_max_change']:+.4f}, the curvature's share. Retain accuracy ends at "
         f"{sgd['one_end_retain']:.1f} %.\n"
         f"- **Adam** (the paper's toy) rescales d coordinate by coordinate: its step is no longer orthogonal to "
         f"the retain gradient, and its first-order change reaches {adam['one_max_first_order']:+.3f} a step "
         f"(the change caused: up to {adam['one_max_change']:+.3f}). Retain accuracy falls to "
         f"{adam['one_min_retain']:.1f} % after {adam['one_min_retain_after']} steps and ends at "
         f"{adam['one_end_retain']:.1f} %.\n\n"
         f"**Try this:** drag to 1 and read the chart *What each step did to the retain loss*, then switch the "
         f"optimiser. The forgotten blob's region is taken over by its neighbours under both; under Adam the "
         f"regions of the retained blobs move as well."),
        ("4 · Why not plain gradient ascent?",
         "Gradient ascent alone maximises the forget loss with nothing holding the rest of the model in place: "
         "its steps grow as the loss grows and it over-forgets, dragging the retained classes along (see "
         "**Compare methods**: GA at larger learning rates). CUP's direction always lies in the **dual cone**, "
         "so no step along it makes either loss worse to first order.\n\n**Try this:** in the loss plot below, "
         "the forget loss falls for every γ > 0. Retain accuracy stays above "
         f"{KEPT:g} % {intensities(shown['kept'], grid)} under {names[optimizer]} "
         f"({intensities(facts[other]['kept'], grid)} under {names[other]})."),
        ("5 · The pivot",
         "Each step CUP looks at the two gradients, finds the dual cone of directions that hurt neither loss "
         "(width Θ = π − φ) and **pivots** from its retain edge u_r towards its forget edge u_f by the angle "
         "ψ = γ·Θ. The picture shows d, the direction CUP hands to the optimiser; with Adam the step taken is d "
         "rescaled.\n\n**Try this:** pick a step below and move the slider: the bold orange arrow turns across "
         "the green cone."),
        (f"6 · Why γ = {t:g}?",
         f"The paper's figure uses **γ = {t:g}**, and it makes a good first picture. The blob is forgotten under "
         f"both optimisers (forget accuracy {adam['forget'][t]:.0f} % with Adam, {sgd['forget'][t]:.0f} % with "
         f"plain SGD) while the retained classes keep their regions (retain accuracy {adam['retain'][t]:.1f} % "
         f"and {sgd['retain'][t]:.1f} %). Its direction keeps a clear share of retain progress: its cosine with "
         f"the retain gradient is sin((1 − γ)·Θ), between {shown['teaching_cos_retain'][0]:.2f} and "
         f"{shown['teaching_cos_retain'][1]:.2f} over this run's steps, so the first-order guarantee has room to "
         "spare, where at γ = 1 it is exactly 0 and the optimiser's rescaling and the finite steps decide. "
         f"Lower intensities show less: under plain SGD part of the blob is still recognised at every γ below "
         f"{sgd['forgets_from']:g}, forget accuracy falling from {sgd['forget'][0.0]:.0f} % at γ = 0 to "
         f"{sgd['below_min']:.1f} % at γ = {sgd['below_min_at']:g}."),
    ]


def cosine_text(value: float) -> str:
    """A cosine to two decimals, rounding noise around 0 (−4e-6 at γ = 1) printed as 0.00, never −0.00."""
    return f"{round(value, 2) + 0.0:.2f}"  # + 0.0 turns round()'s −0.0 into 0.0


def step_caption(step: dict[str, Any], count: int, intensity: float) -> str:
    """What the page says under the pivot about one recorded step of the γ = `intensity` run."""
    return (f"Step {step['step'] + 1} of {count} of the γ = {intensity:g} run: forget loss {step['forget_loss']:.3f}, "
            f"retain loss {step['retain_loss']:.3f}; the step's cosine with the forget gradient is "
            f"{cosine_text(step['cos_direction_forget'])} and with the retain gradient "
            f"{cosine_text(step['cos_direction_retain'])} (both ≥ 0: a step along d makes neither loss worse to "
            "first order).")


def retain_change_caption(optimizer: str) -> str:
    return ("Bars: the change of the retain loss that each step caused. Solid line: its first-order prediction "
            "⟨g_r, Δθ⟩ for the step taken. Dotted: the prediction for a plain step along CUP's direction, "
            "−lr·⟨g_r, d⟩, which is 0 at γ = 1. "
            + ("With plain SGD the step is −lr·d, so the two lines coincide; the bars differ from them by the "
               "curvature." if optimizer == "sgd" else
               "Adam's step is d rescaled coordinate by coordinate, so it is not −lr·d and the lines part."))
