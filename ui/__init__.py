"""Streamlit glue shared by the pages, and pure Plotly figure builders (DataFrame → Figure)."""
