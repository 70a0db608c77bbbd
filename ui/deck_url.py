"""What a lecture deck needs from the pages' URLs: its own parameters kept, a scene's URL winning
over a page's memory, and ``latest:<algo>:<env>`` placeholders resolved.

While a deck is presented, each scene's URL carries ``deck=<id>&scene=<n>&present=1`` beside the
page's own parameters. A page that writes its whole URL at once (``st.query_params.from_dict``)
keeps them through :func:`carried`.

Every page reproduces its view from its URL, but some read the URL only on their first visit in a
session and then keep their widgets' values (``ui.widgets``). When a scene opens (the deck and
scene of the URL change), :func:`scene_opened` drops that memory for the scene's page, so the
scene's URL wins: the Trust Region Lab reloads its scenario and stage, the GAE Lab its controls,
Train its environment and algorithm, Runs its table selection. The Update Inspector and Compare
already adopt a URL that differs from what they last wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
import streamlit as st

from core.runtime.decks import RESERVED_PARAMS, placeholder
from ui import widgets


def carried(query: Mapping[str, str]) -> dict[str, str]:
    """``query`` plus the deck parameters of the current URL (for ``st.query_params.from_dict``)."""
    current = st.query_params
    return dict(query) | {k: current[k] for k in RESERVED_PARAMS if k in current}


def _forget_lab() -> None:
    for key in ("trl_loaded", "trl_url_query", "trl_url_notes", "trl_url_stage"):
        st.session_state.pop(key, None)


def _forget_gae() -> None:
    widgets.forget("gae.")
    for key in ("gae.url_query", "gae.url_notes"):
        st.session_state.pop(key, None)


def _forget_train() -> None:
    widgets.forget("train.env")
    widgets.forget("train.algo")


def _forget_runs() -> None:
    st.session_state.pop("runs.table", None)


# Page url_path → what makes it read its URL again (pages that always follow their URL: none).
FORGET: dict[str, Callable[[], None]] = {
    "trust-region-lab": _forget_lab,
    "gae-lab": _forget_gae,
    "train": _forget_train,
    "runs": _forget_runs,
}


def scene_opened(page: str) -> None:
    """A scene of page ``page`` opens: the page reads its URL as on a first visit."""
    forget = FORGET.get(page)
    if forget is not None:
        forget()


def newest_run(runs: pd.DataFrame, algo: str, env_id: str) -> str | None:
    """The newest run (``runs`` is newest first, as ``RunStore.runs``) of ``algo`` on ``env_id``."""
    if runs.empty:
        return None
    match = runs[(runs["algo"] == algo) & (runs["env_id"] == env_id)]
    return None if match.empty else str(match["run_id"].iloc[0])


def resolve(params: Mapping[str, str], runs: Callable[[], pd.DataFrame]) -> tuple[dict, list[str]]:
    """``params`` with each ``latest:<algo>:<env>`` replaced by that newest run's id (``runs``
    is called only when there is one to resolve), and a sentence for each that has no run yet
    (its parameter is left out, so the page shows its default)."""
    out, missing = {}, []
    table = None
    for key, value in params.items():
        wanted = placeholder(value)
        if wanted is None:
            out[key] = value
            continue
        table = runs() if table is None else table
        run_id = newest_run(table, *wanted)
        if run_id is None:
            missing.append(
                f"This scene shows the newest {wanted[0].upper()} run on {wanted[1]}, and the "
                "store has none yet: start one on the Train page (the scene before, in the "
                "example deck), then come back."
            )
        else:
            out[key] = run_id
    return out, missing
