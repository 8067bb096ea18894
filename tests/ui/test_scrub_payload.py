"""What the live scrubbers send the browser: every grid value's point, cards and bars, formatted as the server's."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pandas as pd
import pytest

from ui import scrub_payload


def _frontier(values=(0.0, 0.5, 1.0)) -> pd.DataFrame:
    rows = []
    for value in values:
        rows.append({"method": "cup", "knob": "intensity", "value": value, "retain_acc": 99 - value, "ua": 100 * value,
                     "forget_acc": 100 - 100 * value, "test_acc": 97.0, "mia_efficacy": 50 + 10 * value,
                     "avg_gap": 10 - 5 * value, "objective_x": 99 - value, "objective_y": 100 * value,
                     "non_dominated": True, "diverged": 0.0, "acc_class_0": 100 - 100 * value, "acc_class_1": 98.0})
    return pd.DataFrame(rows)


def _references(oracle: bool = True) -> pd.DataFrame:
    rows = {"original": {"retain_acc": 99.5, "ua": 0.0, "forget_acc": 100.0, "test_acc": 97.5, "mia_efficacy": 10.0,
                         "avg_gap": math.nan, "objective_x": 99.5, "objective_y": 0.0, "acc_class_0": 100.0,
                         "acc_class_1": 99.0}}
    if oracle:
        rows["oracle"] = {"retain_acc": 99.0, "ua": 100.0, "forget_acc": 0.0, "test_acc": 96.0, "mia_efficacy": 100.0,
                          "avg_gap": 0.0, "objective_x": 99.0, "objective_y": 100.0, "acc_class_0": 0.0,
                          "acc_class_1": 98.5}
    return pd.DataFrame.from_dict(rows, orient="index")


def _payload(**overrides):
    arguments = dict(knob="intensity", axis_titles=("retain", "UA"), forget_class=0, selected_value=0.5,
                     has_oracle=True) | overrides
    return scrub_payload.explore_payload(_frontier(), _references(arguments["has_oracle"]), **arguments)


def test_every_grid_value_arrives_with_its_point_cards_and_bars_and_the_selection():
    payload = _payload()
    json.dumps(payload, allow_nan=False)  # strict JSON: what the browser parses
    assert payload["values"] == [0.0, 0.5, 1.0] and payload["selected"] == 1
    point = payload["points"][2]
    assert point["label"] == "γ = 1" and (point["x"], point["y"]) == (98.0, 100.0)
    assert point["per_class"] == [0.0, 98.0]
    forget = point["cards"][0]
    assert forget == {"label": "Forget acc", "value": "0.0%", "delta": "-100.0 vs original", "tone": "good",
                      "caption": "oracle 0.0% · gap 0.0", "help": forget["help"]}
    assert point["cards"][1]["tone"] == "bad"  # retain accuracy fell
    selected = payload["frontier"]["data"][payload["selected_trace"]]
    assert selected["name"] == "selected" and selected["x"] is not None  # (x is plotly's base64 typed array)
    assert payload["bars"]["data"][payload["bar_trace"]]["name"] == "CUP γ=0.5"


def test_a_value_that_is_not_on_the_grid_selects_the_nearest_and_no_oracle_says_so():
    payload = _payload(selected_value=0.9, has_oracle=False)
    assert payload["selected"] == 2
    gap = payload["points"][0]["cards"][-1]
    assert gap["value"] == "n/a" and gap["delta"] == scrub_payload.NO_ORACLE


def test_the_cards_say_what_the_server_drawn_metric_cards_say():
    row = _frontier().iloc[1]
    cards = scrub_payload.card_texts(row, _references().loc["original"], _references().loc["oracle"])
    # γ = 0.5: forget 50, retain 98.5, test 97, UA 50, MIA 55, gap 7.5, as st.metric shows them
    assert [card["value"] for card in cards] == ["50.0%", "98.5%", "97.0%", "50.0%", "55.0%", "7.50"]
    assert cards[-1]["delta"] is None  # the original has no avg gap


def test_a_metric_the_point_leaves_as_the_original_had_it_shows_no_arrow():
    """A change of 0.0 at the shown precision has no sign, so neither the scrubber (which draws an arrow for a
    leading + or -) nor st.metric draws an arrow up for it; a real change keeps its sign."""
    original = _references().loc["original"]
    point = original.copy()
    point["retain_acc"], point["test_acc"] = original["retain_acc"] - 0.04, original["test_acc"] - 0.06
    same = {card["label"]: card for card in scrub_payload.card_texts(point, original, None)}
    assert same["Retain acc"]["delta"] == "0.0 vs original" and same["Retain acc"]["tone"] == "off"
    assert same["Test acc"]["delta"] == "-0.1 vs original" and same["Test acc"]["tone"] == "bad"


def test_a_point_level_with_the_oracle_has_a_gap_of_0_0_not_plus_0_0():
    oracle = _references().loc["oracle"]
    point = oracle.copy()
    point["retain_acc"], point["test_acc"] = oracle["retain_acc"] + 0.04, oracle["test_acc"] + 0.06
    captions = {card["label"]: card["caption"] for card in scrub_payload.card_texts(point, None, oracle)}
    assert captions["Retain acc"] == f"oracle {oracle['retain_acc']:.1f}% · gap 0.0"
    assert captions["Test acc"] == f"oracle {oracle['test_acc']:.1f}% · gap +0.1"


def _numbers(array) -> list:
    """A plotly.js array as a list: plotly.py sends numpy arrays as base64 typed arrays."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_moving_the_selection_on_a_built_payload_equals_building_it_at_that_value():
    base = _payload(selected_value=None)
    assert base["selected"] == 0
    for value in (0.0, 0.5, 1.0, 0.9):
        moved, built = scrub_payload.explore_selection(base, value), _payload(selected_value=value)
        assert moved["selected"] == built["selected"] and moved["points"] == built["points"]
        ring, built_ring = (figure["frontier"]["data"][figure["selected_trace"]] for figure in (moved, built))
        point = built["points"][built["selected"]]
        assert (_numbers(ring["x"]), _numbers(ring["y"])) == ([point["x"]], [point["y"]])
        assert {k: v for k, v in ring.items() if k not in "xy"} == {k: v for k, v in built_ring.items() if k not in "xy"}
        others = [i for i in range(len(built["frontier"]["data"])) if i != built["selected_trace"]]
        assert [moved["frontier"]["data"][i] for i in others] == [built["frontier"]["data"][i] for i in others]
        assert moved["frontier"]["layout"] == built["frontier"]["layout"] and moved["bars"] == built["bars"]
        json.dumps(moved, allow_nan=False)
    assert base["selected"] == 0 and base["bars"]["data"][base["bar_trace"]]["name"] == "CUP γ=0"  # not changed


def test_moving_the_learn_selection_changes_the_index_only():
    payload = {"values": [0.0, 0.25, 0.5], "selected": 0, "points": [[0, 4]] * 3}
    moved = scrub_payload.learn_selection(payload, 0.3)
    assert moved == {**payload, "selected": 1} and payload["selected"] == 0


def _compared() -> pd.DataFrame:
    """CUP over intensities and GA over log-spaced learning rates, as the Compare page's frontier has them."""
    cup = _frontier().assign(seeds=1, objective_x_std=0.0, objective_y_std=0.0)
    learning_rates = (1e-5, 1e-4, 1e-3)
    ga = _frontier(learning_rates).assign(method="ga", knob="learning rate", seeds=1, objective_x_std=0.0,
                                          objective_y_std=0.0, avg_gap=[9.0, 2.0, 5.0])
    return pd.concat([cup, ga], ignore_index=True)


def _compare_payload(**overrides) -> dict:
    arguments = dict(labels={"cup": "CUP", "ga": "GA"}, axis_titles=("retain", "UA"), has_oracle=True) | overrides
    return scrub_payload.compare_payload(_compared(), _references(arguments["has_oracle"]), **arguments)


def test_compare_sends_every_methods_points_with_log_knobs_placed_on_a_log_scale():
    payload = _compare_payload()
    json.dumps(payload, allow_nan=False)
    ga = payload["methods"]["ga"]
    assert ga["values"] == [1e-5, 1e-4, 1e-3] and ga["knob"] == "learning rate"
    assert ga["positions"] == pytest.approx([0.0, 0.5, 1.0])  # evenly in log10, not 0, 0.09, 1
    assert payload["methods"]["cup"]["positions"] == pytest.approx([0.0, 0.5, 1.0])
    point = ga["points"][0]
    assert point["label"] == "GA, learning rate = 1e-05" and point["text"] == "1e-05"  # the slider: 3 digits
    assert [card["value"] for card in point["cards"]] == [
        scrub_payload.format_metric(_compared().iloc[3][name], name) for _, name, _ in scrub_payload.CARDS]
    assert "help" not in point["cards"][0] and len(payload["card_help"]) == len(scrub_payload.CARDS)
    ring = payload["figure"]["data"][payload["ring_trace"]]
    assert ring["name"] == "selected" and ring["x"] == []  # the browser places it
    clickable = [trace for trace in payload["figure"]["data"] if trace.get("customdata")]
    assert {trace["customdata"][0][0] for trace in clickable} == {"cup", "ga"}  # [method, knob, value, ...]


def test_the_selection_picks_the_scrubbed_methods_index_or_its_point_closest_to_the_oracle():
    payload = _compare_payload()
    chosen = scrub_payload.compare_selected(payload, "ga", ("ga", 1e-3), clicked=True)
    assert (chosen["method"], chosen["selected"], chosen["heading"]) == ("ga", 2, "Selected")
    assert chosen["signature"] == payload["signature"] and "method" not in payload  # the shared part is not changed
    best = scrub_payload.compare_selected(payload, "ga", ("cup", 0.5), clicked=False)
    assert best["selected"] == 1 and best["heading"] == "Best overall (lowest avg gap)"  # GA's lowest avg gap
    assert scrub_payload.compare_start(payload, "ga") == 1e-4
    assert scrub_payload.compare_selected(payload, "cup", None, clicked=False)["heading"] == "Not selected yet"
    other = _compare_payload(labels={"cup": "CUP"})
    assert list(other["methods"]) == ["cup"] and other["signature"] != payload["signature"]
