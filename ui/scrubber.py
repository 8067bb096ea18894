"""Live scrubbers: Streamlit components (components v2, no iframe) that receive every precomputed point once
and redraw in the browser while the slider moves, handing the chosen value back to Python only on release.

The browser code lives in ui/scrubber/ (served by Streamlit like an installed component's assets), plotly.js
comes from the plotly package's own plotly.min.js, so nothing is fetched from the internet. Each scrubber
reports "ready" once it has drawn; until then (and for good where it reports a failure or Streamlit lacks
components v2) the page draws today's widgets, so AppTest, old Streamlit versions and a browser that
cannot run the component still get a working page."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import streamlit as st

PACKAGE = "cup_explorer"
ASSET_DIR = "scrubber"  # under ui/: the components' JS and CSS
PLOTLY = f"{PACKAGE}.plotly"  # serves plotly.min.js from the plotly package
STATUS_KEY = "scrubber_status"  # the browser's last report: "ready", or "failed: <why>"; kept across pages
PRELOAD_KEY = "scrubber_preload"  # the preload component's key (scrubber.css hides its container)
PRELOADED_KEY = "scrubber_preload_sent"  # set once this session's browser has been sent the preload
FALLBACK_CLASS = "st-key-{key}"  # Streamlit's class for a keyed container: the fallback, hidden once live


def _register_assets() -> str | None:
    """Declares the asset folders on the running Streamlit, as an installed component's pyproject.toml would;
    None, or why the live components cannot be used here."""
    try:
        import plotly
        from streamlit.components.v2.get_bidi_component_manager import get_bidi_component_manager
        from streamlit.components.v2.manifest_scanner import ComponentConfig, ComponentManifest
    except ImportError as err:
        return f"this Streamlit has no components v2 ({err.name})"
    try:
        manager = get_bidi_component_manager()
        if manager.get_component_asset_root(PLOTLY) is None:
            plotly_root = Path(plotly.__file__).parent
            if not (plotly_root / "package_data" / "plotly.min.js").is_file():
                return "the plotly package has no plotly.min.js"
            manager.register_from_manifest(ComponentManifest(PACKAGE, "1", [ComponentConfig("plotly", "package_data")]),
                                           plotly_root)
        names = [name for name in COMPONENTS if manager.get_component_asset_root(f"{PACKAGE}.{name}") is None]
        if names:
            manager.register_from_manifest(
                ComponentManifest(PACKAGE, "1", [ComponentConfig(name, ASSET_DIR) for name in names]),
                Path(__file__).parent)
    except Exception as err:  # an internal API that changed: fall back, say why
        return f"cannot serve the component's files ({type(err).__name__}: {err})"
    return None


COMPONENTS = ("explore", "learn", "pivot", "compare", "preload")


@functools.cache
def _component(name: str):
    return st.components.v2.component(f"{PACKAGE}.{name}", js=f"{name}.js", css="scrubber.css",
                                      html=f'<div class="cup-scrub cup-{name}"></div>', isolate_styles=False)


def unavailable() -> str | None:
    """None where the live components can be drawn, else a short reason (also the browser's reported failure)."""
    reason = _register_assets()
    if reason:
        return reason
    status = st.session_state.get(STATUS_KEY) or ""
    return status.removeprefix("failed: ") if status.startswith("failed") else None


def notice(reason: str) -> None:
    st.caption(f":material/info: Live scrubbing is not available here ({reason}); the slider below updates the "
               "page when it is released.")


def released(value) -> float | tuple[str, float] | None:
    """What a component handed back on release: a knob value, or [method, value, ...] where the component scrubs
    several methods' knobs (a release stamp may follow, so that releasing the same point twice is heard); None
    for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if (isinstance(value, (list, tuple)) and len(value) >= 2 and isinstance(value[0], str)
            and isinstance(value[1], (int, float)) and not isinstance(value[1], bool)):
        return value[0], float(value[1])
    return None


def mount(name: str, key: str, data: dict, fallback_key: str, on_value: Callable[[float], None] | None = None):
    """Mounts component `name`; returns its result, whose .value is the value released last (None before).
    `fallback_key` is the keyed container holding today's widgets, which the browser hides once it has drawn.
    `on_value` gets what `released` reads from the component's value."""

    def value_changed() -> None:
        state = st.session_state.get(key) or {}
        value = released(state.get("value") if hasattr(state, "get") else None)
        if on_value is not None and value is not None:
            on_value(value)

    def status_changed() -> None:
        state = st.session_state.get(key) or {}
        status = state.get("status") if hasattr(state, "get") else None
        if isinstance(status, str):
            st.session_state[STATUS_KEY] = status[:300]

    payload = {**data, "live": is_live(), "fallback": FALLBACK_CLASS.format(key=fallback_key)}
    result = _component(name)(key=key, data=payload, default={"value": None, "status": None},
                              on_value_change=value_changed, on_status_change=status_changed)
    status = getattr(result, "status", None)
    if isinstance(status, str):  # also where the callback did not run (a report that interrupted a run)
        st.session_state[STATUS_KEY] = status[:300]
        if status.startswith("failed"):
            notice(status.removeprefix("failed: "))
    return result


def preload() -> None:
    """While the script is busy for seconds (loading the library on a fresh server, computing models): the browser
    fetches and runs plotly.js and the scrubbers' modules meanwhile, so a scrubber drawn afterwards draws at once
    (plotly.js takes the browser about a second to run without a GPU). Draws nothing; once per session (the page
    keeps plotly.js), and not where the live components cannot be used."""
    if st.session_state.get(PRELOADED_KEY) or is_live() or _register_assets() is not None:
        return
    _component("preload")(key=PRELOAD_KEY, data={"modules": [f"../{PACKAGE}.{name}/{name}.js" for name in COMPONENTS
                                                             if name != "preload"]})
    st.session_state[PRELOADED_KEY] = True  # after: a rerun or a stop asked meanwhile raises before it is sent


def is_live() -> bool:
    """Whether a browser has drawn a live component in this session (then the fallback is not drawn)."""
    return st.session_state.get(STATUS_KEY) == "ready"


EXPLORE_KEY = "explore_scrubber"
EXPLORE_FALLBACK = "explore_fallback"  # the container of Explore's slider, frontier, cards and bars


def explore(experiment, value: float, on_value: Callable[[float], None]) -> bool:
    """Explore's scrubber at `value` (or the notice saying why not); True when a browser draws it live, so the
    page need not draw its fallback."""
    from .services import explore as explore_service

    reason = unavailable()
    if reason:
        notice(reason)
        return False
    mount("explore", EXPLORE_KEY, explore_service.explore_scrub_payload(experiment, value), EXPLORE_FALLBACK, on_value)
    return is_live()


LEARN_KEY = "learn_scrubber"
LEARN_FALLBACK = "learn_fallback"  # the container of Learn's slider and decision regions
PIVOT_KEY = "pivot_scrubber"
LEARN_EVENT = "cup:learn-intensity"  # how the Learn scrubber tells the pivot figure, on the page, where it is


def learn(experiment, value: float, on_value: Callable[[float], None]) -> bool:
    """Learn's scrubber (slider and the three decision-region pictures, every intensity's regions sent once);
    True when a browser draws it live."""
    from .services import learn as learn_service

    reason = unavailable()
    if reason:
        notice(reason)
        return False
    mount("learn", LEARN_KEY, {**learn_service.learn_scrub_payload(experiment, value), "event": LEARN_EVENT},
          LEARN_FALLBACK, on_value)
    return is_live()


def pivot(step: dict, value: float, sweep, run_value: float) -> None:
    """The pivot figure and its angles, turning in the browser with Learn's scrubber (call only when live)."""
    from .scrub_payload import pivot_payload

    mount("pivot", PIVOT_KEY, {**pivot_payload(step, value, sweep, run_value), "event": LEARN_EVENT}, "pivot_fallback")


COMPARE_KEY = "compare_scrubber"
COMPARE_FALLBACK = "compare_fallback"  # the container of Compare's clickable fronts and the selected point's cards


def compare(experiment, plan, shown: list[str], selected: tuple[str, float] | None, clicked: bool,
            pick: Callable[[], str], on_value: Callable[[tuple[str, float]], None]) -> bool:
    """Compare's scrubber: the fronts with the selection's ring and its metric cards, the slider over the knob of
    the method `pick()` draws a picker for (a server-side widget: the browser is sent every shown method's
    points once per view); True when a browser draws it live."""
    from .services import compare as compare_service

    reason = unavailable()
    if reason:
        notice(reason)
        return False
    method = pick()
    payload = compare_service.compare_scrub_payload(experiment, plan, shown, method, selected, clicked)
    mount("compare", COMPARE_KEY, payload, COMPARE_FALLBACK, on_value)
    return is_live()
