"""One run on a page, the Streamlit parts: its label, its outcome, and command messages.

The run's live view itself (status, progress, controls, charts) is the run panel
(``ui/run_panel.py``); what has been read of a run is ``ui/run_data.py``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.config import ConfigError
from core.runtime.runner import RunError
from core.runtime.store_schema import StoreError
from ui.run_data import run_text
from ui.text import plain


def run_label(row: dict[str, Any] | pd.Series) -> str:
    """:func:`ui.run_data.run_text` as Markdown that shows the name as typed (headers, buttons)."""
    return plain(run_text(row))


def show_outcome(row: dict[str, Any]) -> None:
    """A failed run's error and traceback; the note on an interrupted run."""
    if row["status"] == "failed":
        error = row.get("error") or "the run failed without a message"
        st.error(f"This run failed: {plain(error.strip().splitlines()[-1])}")
        with st.expander("Traceback"):
            st.code(error, language="text")
    elif row["status"] == "interrupted":
        st.warning(
            "This run was interrupted (the app stopped while it trained). Its data is kept; "
            "continue it from its last checkpoint on the Runs page."
        )


def command(action: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run a manager command from a callback: (True, result), or (False, None) with the refusal
    left as a message for the page (never a traceback)."""
    try:
        result = fn(*args, **kwargs)
    except (RunError, StoreError, ConfigError) as err:
        st.session_state["_flash"] = ("error", f"Could not {action}: {plain(err)}")
        return False, None
    st.session_state["_flash"] = ("success", f"{action[0].upper()}{action[1:]}: done.")
    return True, result


def show_flash() -> None:
    """Show (once) the message left by the last command callback (Markdown: user text in it is
    escaped where it is set, as in :func:`command`)."""
    flash = st.session_state.pop("_flash", None)
    if flash:
        kind, text = flash
        (st.error if kind == "error" else st.success)(text)
