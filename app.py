"""CUP explorer: the entry point. Page config and navigation only; each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="CUP unlearning explorer", page_icon=":material/tune:", layout="wide")

navigation = st.navigation([
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True),
    st.Page("pages/compare.py", title="Compare methods", icon=":material/leaderboard:"),
])
navigation.run()
