"""Pure Plotly figure builders: DataFrames from the store → figures. No Streamlit here.

A run's live charts are built as plain Plotly JSON dicts (no ``go`` objects, no property
validation, so they are cheap to rebuild every second); the charts that compare runs are
``go.Figure`` objects. One module per job:

- ``style``: colours, fonts, the house layout of both kinds of figure;
- ``events``: live hyperparameter changes as texts, markers and step lines;
- ``traces``: the Plotly JSON building blocks of a run's charts (series, lines, subplot grids);
- ``run``: a run's charts (episode return, diagnostics) and all of them by name;
- ``trust_region``: the KL per update against its bound, TRPO's line search;
- ``comparison``: several runs: grid-point labels, mean ± std bands over seeds, summaries.

Inputs are the store's frames (``RunStore.metrics``/``episodes``/``events``): one row per update
with the metrics of ``core/metrics.py``; one row per finished episode (``env_step``, ``ret``); one
row per event (``kind``, ``env_step``, ``payload``). Every x axis of a run's charts is env steps,
so a live hyperparameter change (an event at an env step) is the same vertical marker on every
chart.
"""
