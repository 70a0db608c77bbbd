"""Trust Region Playground engine: configs, environments, trainers, run store and runner.

Nothing in this package imports Streamlit.
"""
