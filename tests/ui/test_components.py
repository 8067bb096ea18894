"""The Compare page's tables, built by ui.components from a report summary and a frontier table."""

from __future__ import annotations

import pandas as pd

from ui import components


def _method(label: str, normalised: float, recommended: float | None, best: dict | None,
            versus: dict | None = None, calibration: dict | None = None) -> dict:
    return {"label": label, "knob": "weight", "hypervolume": normalised / 2, "hypervolume_ci95": [0.1, 0.2],
            "hypervolume_normalised": normalised, "hypervolume_normalised_ci95": None, "seeds": [0, 1],
            "points": 3, "controllability": {"spearman_value_ua": 0.5, "ua_span": 40.0}, "mean_seconds": 0.2,
            "recommended_value": recommended, "best_avg_gap": best, "versus_cup": versus,
            "calibration": calibration, "moves": True}


SUMMARY = {"methods": {
    "cup": _method("CUP", 0.61, 0.5, {"value": 1.0, "avg_gap": 2.5}),
    "ws": _method("WS", 0.72, 2.0, None, versus={"verdict": "win", "difference": 0.11, "difference_ci95": [0.05, 0.2]},
                  calibration={"status": "calibrated", "range": [0.5, 2.0], "runs": 4, "seconds": 1.5}),
    "ga": _method("GA", 0.10, None, None),  # no front point to recommend
}}
FRONTIER = pd.DataFrame({"method": ["cup", "cup", "ws", "ws"], "value": [0.5, 1.0, 1.0, 2.0],
                         "retain_acc": [99.0, 97.0, 98.0, 96.0], "ua": [40.0, 90.0, 50.0, 80.0]})


def test_the_hypervolume_table_lists_the_chosen_methods_best_first():
    table = components.hypervolume_table(SUMMARY, ["cup", "ws", "ga", "mgda"])  # mgda: not in the summary
    assert list(table["method"]) == ["ws", "cup", "ga"]
    assert list(table["normalised"]) == [0.72, 0.61, 0.10] and list(table["paper's"]) == [0.36, 0.305, 0.05]
    ws, cup = table.iloc[0], table.iloc[1]
    assert (ws["label"], ws["seeds"], ws["points"], ws["UA span"]) == ("WS", 2, 3, 40.0)
    assert (ws["vs CUP"], ws["difference 95 %"], ws["calibration runs"]) == ("win", "[+0.050, +0.200]", 4)
    assert (cup["vs CUP"], cup["calibration runs"], cup["paper's 95 %"]) == ("—", 0, "[0.1000, 0.2000]")
    assert list(components.hypervolume_table(SUMMARY, ["cup"])["method"]) == ["cup"]


def test_recommendations_give_each_methods_knee_and_its_point_closest_to_the_oracle():
    table = components.recommendations(SUMMARY, FRONTIER, ["cup", "ws", "ga"])
    assert list(table["method"]) == ["CUP", "WS"]  # GA has no recommended point
    cup, ws = table.iloc[0], table.iloc[1]
    assert (cup["knee value"], cup["knee retain acc"], cup["knee UA"]) == (0.5, 99.0, 40.0)
    assert (cup["closest to oracle: value"], cup["its avg gap"]) == (1.0, 2.5)
    assert (ws["knee value"], ws["knee UA"]) == (2.0, 80.0)
    assert pd.isna(ws["closest to oracle: value"]) and pd.isna(ws["its avg gap"])


def test_the_metric_cards_name_the_attack_and_each_has_its_glossary_entry():
    """Explore's and Compare's cards (server-drawn and scrubbed) share CARDS: the MIA card says which attack."""
    from ui.glossary import GLOSSARY
    from ui.scrub_payload import CARDS

    labels = {name: label for label, name, _ in CARDS}
    assert labels["mia_efficacy"] == "MIA efficacy (SVC)"
    assert all(label in GLOSSARY for label in labels.values())
    assert "SVC" in GLOSSARY[labels["mia_efficacy"]]
