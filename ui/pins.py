"""The two pinned models of A vs B: in session state (so they survive moving between pages) and in the URL of the
A vs B page (so a link reopens the comparison), pinned there or from Explore's and Compare's selected point."""

from __future__ import annotations

import streamlit as st

from cup_core import Experiment
from cup_core.explain import Pin

from .services import inspect

SLOTS = ("A", "B")
PIN_KEYS = {"A": "pinned_a", "B": "pinned_b"}  # plain session keys: a widget's state would be dropped off its page
URL_KEYS = {"A": "a", "B": "b"}
CHOICE_KEYS = {"A": "pin_choice_a", "B": "pin_choice_b"}  # the A vs B page's selectboxes
INSPECT_PAGE = "pages/inspect.py"


def pin(slot: str, text: str) -> None:
    """on_click of "Pin as A/B": remember the model for the A vs B page."""
    st.session_state[PIN_KEYS[slot]] = text


def pin_buttons(experiment: Experiment, method: str, value: float, seed: int) -> None:
    """"Pin as A", "Pin as B" for a selected point, what is pinned so far and a link to the A vs B page."""
    text = str(Pin.point(method, value, seed))
    row = st.container(horizontal=True, vertical_alignment="center")
    for slot in SLOTS:
        row.button(f"Pin as {slot}", key=f"pin_as_{slot.lower()}", on_click=pin, args=(slot, text),
                      icon=":material/push_pin:", help=f"compare this model with another on the A vs B page ({slot})")
    pinned = {slot: st.session_state.get(PIN_KEYS[slot]) for slot in SLOTS}
    if any(pinned.values()):
        described = " · ".join(f"{slot}: {inspect.pin_label(Pin.parse(value)) if Pin.parse(value) else '—'}"
                               for slot, value in pinned.items() if value)
        row.page_link(INSPECT_PAGE, label=f"Open A vs B ({described})", icon=":material/compare:",
                             query_params={"experiment": experiment.id,
                                           **{URL_KEYS[slot]: value for slot, value in pinned.items() if value}})


def _remember(slot: str) -> None:
    st.session_state[PIN_KEYS[slot]] = st.session_state[CHOICE_KEYS[slot]]


def pin_pickers(choices: dict[str, str], defaults: tuple[str, str]) -> tuple[Pin, Pin]:
    """The A vs B page's two selectboxes over `choices` (pin text -> label). Each starts at this session's pin, else
    the URL's, else its default; the choice is kept in the session and written to the URL."""
    chosen = {}
    for slot, column, default in zip(SLOTS, st.columns(2), defaults):
        start = default
        for candidate in (st.session_state.get(PIN_KEYS[slot]), st.query_params.get(URL_KEYS[slot])):
            parsed = Pin.parse(candidate)
            if parsed is not None and str(parsed) in choices:
                start = str(parsed)
                break
        st.session_state[CHOICE_KEYS[slot]] = start  # before the widget exists: it opens on this value
        with column:
            value = st.selectbox(f"Model {slot}", list(choices), key=CHOICE_KEYS[slot], format_func=choices.get,
                                 on_change=_remember, args=(slot,),
                                 help="the original, the retrained oracle, or any cached run of this experiment "
                                      "(method, knob value, seed); pin one from Explore or Compare too")
        st.session_state[PIN_KEYS[slot]] = value
        st.query_params[URL_KEYS[slot]] = value
        chosen[slot] = Pin.parse(value)
    return chosen["A"], chosen["B"]
