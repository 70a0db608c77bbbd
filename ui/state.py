"""Process-wide singletons shared by every page of this Streamlit process."""

from __future__ import annotations

import streamlit as st
from core.runner import RunManager


@st.cache_resource
def get_manager() -> RunManager:
    """Return the one run manager (and its store) of this Streamlit process.

    Cached with ``st.cache_resource``: every session, tab and rerun gets the same object, so
    training threads outlive page changes and browser refreshes.
    """
    return RunManager()
