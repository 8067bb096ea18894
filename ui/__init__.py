"""Streamlit helpers: components (widgets owning their state), figures (pure Plotly), services (caching, one module
a concern), formatting (text, without Streamlit)."""
