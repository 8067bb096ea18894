"""Streamlit helpers: components (widgets owning their state), figures (pure Plotly), services (caching)."""
