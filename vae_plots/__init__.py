"""Presentation: Plotly figures, SVG and page views built from vae_core results (no streamlit)."""
