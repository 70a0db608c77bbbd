"""Presentation mode (``ui.presentation``) under AppTest: one switch for every page, kept across
page changes and in the URL as ``present=1``; pages that write their whole URL keep it; the lab
draws its main chart for the screen. The browser half (sizes on a real screen) is in
``tests/browser/test_presentation.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import run_ok
from ui import presentation

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
LAB = str(ROOT / "pages" / "trust_region_lab.py")


def switch(at: AppTest) -> bool:
    return at.toggle(key=presentation.WIDGET).value


def styles(at: AppTest) -> str:
    return " ".join(h.proto.body for h in at.get("html"))


def fitted(at: AppTest) -> bool:
    """Whether the page has the script that sizes its main charts to the screen."""
    return any(getattr(e, "key", None) == "ui.present_fit" for e in at.main)


def app_frame() -> None:
    """What ``app.py`` does around every page: settle the mode, draw the one switch."""
    import streamlit as st

    from ui import presentation

    presentation.setup()
    with st.sidebar:
        presentation.presentation_toggle()


def test_the_switch_writes_present_in_the_url_and_keeps_it_across_pages():
    at = run_ok(AppTest.from_function(app_frame))
    assert switch(at) is False and "present" not in at.query_params
    assert "stMetricValue" in styles(at)  # nothing is cut, in either mode
    assert not fitted(at)
    at.toggle(key=presentation.WIDGET).set_value(True)
    run_ok(at)
    assert at.query_params["present"] == "1"
    assert fitted(at)  # the main charts fit the screen
    at.query_params.clear()  # another page: Streamlit's navigation drops the query string
    run_ok(at)
    assert switch(at) is True and at.query_params["present"] == "1"
    at.query_params["run"] = "r1"
    at.toggle(key=presentation.WIDGET).set_value(False)
    run_ok(at)
    assert at.query_params == {"run": "r1"}  # off: the flag leaves, the page's own stay
    assert not fitted(at)
    at.query_params.clear()
    run_ok(at)
    assert switch(at) is False and "present" not in at.query_params


def test_the_app_draws_the_switch_once_in_the_sidebar(app_manager):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["present"] = "1"
    run_ok(at)
    assert [t.key for t in at.sidebar.toggle] == [presentation.WIDGET]
    assert switch(at) is True
    assert fitted(at)


@pytest.mark.parametrize("value,on", [("1", True), ("0", False), ("no", False)])
def test_a_link_decides_the_mode(app_manager, value, on):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[presentation.STATE] = not on
    at.query_params["present"] = value
    run_ok(at)
    assert switch(at) is on
    assert at.session_state[presentation.STATE] is on
    assert at.query_params.get("present") == ("1" if on else None)


def test_the_lab_keeps_present_beside_its_scenario_and_draws_its_chart_for_the_screen():
    at = AppTest.from_file(LAB, default_timeout=60)
    at.query_params["present"] = "1"
    run_ok(at)
    assert at.query_params["present"] == "1"
    assert at.query_params["problem"] == "softmax"  # the first preset, not a link's defaults
    assert "stage" not in at.query_params
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "trl_chart" in c.proto.id]
    legend = json.loads(chart.proto.spec)["layout"]["legend"]
    assert legend["orientation"] == "v" and legend["x"] > 1  # beside the plot
    assert not [c for c in at.caption if "whole trust region" in c.value]


def test_with_flag_and_page_query_leave_a_pages_own_parameters_alone():
    def page() -> None:
        import streamlit as st

        from ui import presentation

        st.session_state["flagged"] = presentation.with_flag({"run": "r1"})
        st.session_state["own"] = presentation.page_query()

    at = AppTest.from_function(page)
    at.query_params.update({"present": "1", "run": "r1"})
    run_ok(at)
    assert at.session_state["flagged"] == {"run": "r1", "present": "1"}
    assert at.session_state["own"] == {"run": "r1"}
    at.query_params.clear()
    run_ok(at)
    assert at.session_state["flagged"] == {"run": "r1"}


def summary_table() -> None:
    import pandas as pd

    from ui.tables import data_table

    frame = pd.DataFrame(
        {"group": ["trpo", "ppo"], "return": [487.25, 312.5], "kl": [0.01234, None]}
    )
    data_table(frame, {"return": "%.1f"})


@pytest.mark.parametrize("present", [False, True])
def test_tables_are_html_in_presentation_mode_with_the_same_formats(present):
    """The dataframe's canvas ignores the larger type; presentation mode shows an HTML table."""
    at = AppTest.from_function(summary_table)
    if present:
        at.query_params["present"] = "1"
    run_ok(at)
    assert (len(at.table), len(at.dataframe)) == ((1, 0) if present else (0, 1))
    if present:  # the cells as the table shows them (the Styler's display values)
        shown = pa.ipc.open_stream(at.table[0].proto.arrow_data.styler.display_values)
        cells = shown.read_all().to_pandas()
        assert cells["return"].tolist() == ["487.2", "312.5"]  # "%.1f"
        assert cells["kl"].tolist() == ["0.012", "–"]  # 3 decimals, a gap for a missing value
