"""CUP explorer: the entry point. Page config and navigation only (and, on a fresh server, a bar while the library
loads); each page lives in pages/."""

import sys
from pathlib import Path

import streamlit as st

from ui import process

presenter = st.query_params.get("presenter") == "1"  # slides: the sidebar starts closed
# The icon is an SVG of ours: a Material one's favicon is fetched from fonts.gstatic.com (offline a failure), and an
# emoji made a fresh server's first page wait 0.15 s for Streamlit to compile its emoji catalogue into a pattern.
st.set_page_config(page_title="CUP unlearning explorer", page_icon=str(Path(__file__).parent / "ui" / "icon.svg"),
                   layout="wide", initial_sidebar_state="collapsed" if presenter else "auto")

st.session_state.setdefault("navigation_ran", True)  # see ui.components.use_app_navigation
navigation = st.navigation([
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True),
    st.Page("pages/compare.py", title="Compare methods", icon=":material/leaderboard:"),
    st.Page("pages/inspect.py", title="A vs B", icon=":material/compare:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
    st.Page("pages/new.py", title="New experiment", icon=":material/add_circle:"),
    st.Page("pages/experiments.py", title="Experiments", icon=":material/inventory_2:"),
])
if "ui.services.catalogue" not in sys.modules:  # a fresh server's first page imports PyTorch and the library: seconds
    loading = st.progress(0.0, text="Loading PyTorch and the library (once per server start)…")
    from ui import scrubber
    scrubber.preload()  # the browser runs plotly.js meanwhile
    import ui.components  # noqa: F401  (every page's widgets: the services and, through them, the library)
    loading.empty()
process.freeze_long_lived()  # reruns do not pay a collection of PyTorch's objects
navigation.run()
