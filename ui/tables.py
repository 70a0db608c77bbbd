"""Tables that a lecture hall can read.

``st.dataframe`` draws its cells on a canvas, so the presentation mode's larger type
(``ui/presentation.py``) cannot reach them. :func:`data_table` shows a frame as ``st.dataframe``
(sortable, scrollable) normally and as ``st.table`` (HTML, which takes the larger type) in
presentation mode, with the same number formats in both.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import streamlit as st

from ui.presentation import presentation_on


def data_table(
    frame: pd.DataFrame, formats: Mapping[str, str] | None = None, *, height: int | None = None
) -> None:
    """``frame`` without its index; ``formats`` maps a column to a printf format ("%.1f"),
    other numbers show 3 decimals in presentation mode. ``height`` (px) applies to the
    dataframe."""
    formats = dict(formats or {})
    if presentation_on():
        styler = frame.style.hide(axis="index").format(precision=3, na_rep="–")
        if formats:  # (a dict without ``subset`` would reset the other columns' format)
            printf = {c: (lambda x, f=f: f % x) for c, f in formats.items()}
            styler = styler.format(printf, subset=list(formats), na_rep="–")
        st.table(styler)
        return
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        height="auto" if height is None else height,
        column_config={c: st.column_config.NumberColumn(format=f) for c, f in formats.items()},
    )
