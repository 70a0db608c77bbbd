"""Process-wide singletons shared by every page of this Streamlit process."""

from __future__ import annotations

import streamlit as st
import torch

from core.runtime.runner import RunManager
from core.runtime.store_schema import StoreError
from ui.text import plain

_current: list[RunManager] = []  # the manager get_manager made last, for current_manager()


@st.cache_resource
def get_manager() -> RunManager:
    """Return the one run manager (and its store) of this Streamlit process.

    Cached with ``st.cache_resource``: every session, tab and rerun gets the same object, so
    runs outlive page changes and browser refreshes. Runs train in worker processes
    (``PLAYGROUND_WORKERS=thread`` keeps them in this process), forked by a fork server that is
    started now, so a run starts training as soon as Start is pressed.

    The server's own torch work (the labs, the Update Inspector) gets one thread: it shares the
    cores with the workers, and a second OpenMP thread waiting on a core a trainer holds made an
    inspector view take 5 s instead of 0.95 s on the 2-core machine.
    """
    torch.set_num_threads(1)
    manager = RunManager(warm=True)
    _current[:] = [manager]
    return manager


def current_manager() -> RunManager:
    """The manager for code that runs outside a page script: the live feed's HTTP handlers
    (``ui/live_api.py``), on the web server's threads. A page made it already (the feed is only
    asked by a page's component); if not, it is made now."""
    return _current[0] if _current else get_manager()


def ensure_app_navigation() -> None:
    """Route a page that Streamlit ran directly back through ``app.py``'s ``st.navigation``.

    With a ``pages/`` folder next to ``app.py``, Streamlit starts each server process in its
    legacy multipage mode and only leaves it when ``st.navigation`` runs. If the very first request
    is a deep link (``/train?run=…``), the page script is run on its own, without the app's
    navigation or layout. Leaving legacy mode and rerunning sends it through ``app.py``.
    AppTest (whose mock runtime re-enters legacy mode on every run and runs pages directly by
    design) is left alone.
    """
    from streamlit.runtime import Runtime
    from streamlit.runtime.pages_manager import PagesManager

    served = Runtime.exists() and type(Runtime.instance()) is Runtime
    if served and PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def require_manager() -> RunManager:
    """The manager, or a clear message (and the page stops) when the run store cannot be opened."""
    try:
        return get_manager()
    except StoreError as err:
        st.error(
            f"The run store cannot be opened: {plain(err)}. Set `PLAYGROUND_DATA_DIR` to a "
            "writable folder (default: ./data) and reload."
        )
        st.stop()
