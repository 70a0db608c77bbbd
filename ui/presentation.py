"""Presentation mode: one switch for every page, kept across page changes and in the URL.

The contract (the lecture deck relies on it): ``?present=1`` in a page's URL opens it in
presentation mode, ``?present=0`` turns it off; while it is on every page's URL carries
``present=1``, and turning it off removes the parameter. :func:`presentation_on` reads the mode
without drawing anything; :func:`setup` (``app.py``, before the page runs) settles it for the
run, puts it in the URL and adds the style sheets; :func:`presentation_toggle` is the switch
(``app.py`` draws it once, at the top of the sidebar). A page that writes its whole query string
passes it through :func:`with_flag`, and reads it without the flag with :func:`page_query`.

What the mode does, all in CSS (Streamlit cannot read the viewport from Python):

- a slimmer header and less padding around the page, larger text, metrics, widget labels,
  buttons, tabs and tables;
- every Plotly chart is at most as tall as the screen, and the pages' main charts
  (:data:`SCREEN_CHARTS`) fill the screen from their top down: a small script (a no-build
  component, :data:`FIT_JS`) keeps each one's distance from the top of the page in the CSS
  variable ``--fit-top`` (whatever stands above it: title, buttons, a sentence that wraps), and
  the style sheet makes it ``100vh − --fit-top`` tall. Streamlit's Plotly element draws the
  figure at the height of its container, so sizing the container resizes the figure (its
  ``layout.height`` is only the starting height).

In both modes (:data:`BASE_CSS`): button labels wrap instead of being cut, and a metric's value
shrinks to the width of its column instead of ending in "…".
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from core.runtime.decks import RESERVED_PARAMS

PARAM = "present"  # the URL parameter: present=1
STATE = "ui.present"  # this session's mode (the toggle's key is WIDGET)
WIDGET = "ui.large"
ON_VALUES = ("1", "true", "on", "yes")
HEADER_REM = 2.5  # the header's height in presentation mode (it holds the sidebar's ▸ button)
# The main charts that fill the screen in presentation mode (their Streamlit keys): the lab's
# θ-plane, the inspector's plane, the GAE Lab's curves against λ.
SCREEN_CHARTS = ("trl_chart", "insp_plane", "gae_chart")
FIT_MIN_PX = 320  # a main chart is never shorter than this (the page scrolls instead)
FIT_GAP_PX = 12  # room left under a main chart
FIT_TOP_PX = 300  # the chart's top until the script has measured it
# Sets --fit-top on each main chart's element container: its top in the page, in px. Measured
# again, at most once a frame, when the page's content or the window's size changes.
FIT_JS = """
export default function (component) {
  component.parentElement.dataset.presentFit = "ready";
  if (window.__presentFit) { window.__presentFit(); return; }
  const selector = component.data.selector;
  let queued = false;
  const fit = () => {
    queued = false;
    for (const el of document.querySelectorAll(selector)) {
      let top = el.getBoundingClientRect().top;
      for (let node = el.parentElement; node; node = node.parentElement) top += node.scrollTop;
      const value = `${Math.round(top)}px`, style = el.style;
      if (style.getPropertyValue("--fit-top") !== value) style.setProperty("--fit-top", value);
    }
  };
  const schedule = () => { if (!queued) { queued = true; requestAnimationFrame(fit); } };
  window.__presentFit = schedule;
  new MutationObserver(schedule).observe(document.body, { childList: true, subtree: true });
  window.addEventListener("resize", schedule);
  schedule();
}
"""
_fit = st.components.v2.component(
    "presentation_fit", js=FIT_JS, html='<span class="present-fit"></span>', isolate_styles=False
)

# Both modes: nothing is cut.
BASE_CSS = """
[data-testid="stMain"] [data-testid^="stBaseButton"] :is(p, div) {
  white-space: normal; overflow: visible; text-overflow: clip; text-wrap: balance; }
[data-testid="stMain"] [data-testid^="stBaseButton"] { height: auto; }
[data-testid="stMetric"] { container-type: inline-size; }
[data-testid="stMetricValue"] > div { font-size: min(1em, 24cqi); overflow: visible; }
[data-testid="stMain"] :is([data-testid="stMetricLabel"], [data-testid="stMetricDelta"],
  [data-testid="stWidgetLabel"]) :is(p, div) { white-space: normal; overflow: visible;
  text-overflow: clip; }
"""

PRESENT_CSS = f"""
[data-testid="stHeader"] {{ height: {HEADER_REM}rem; min-height: 0; background: transparent; }}
[data-testid="stMainBlockContainer"] {{
  padding: {HEADER_REM}rem 2rem 2rem; max-width: none; }}
[data-testid="stMain"] h1 {{ font-size: 2.2rem; padding: 0 0 0.5rem; }}
[data-testid="stMain"] h2 {{ font-size: 1.9rem; }}
[data-testid="stMain"] h3 {{ font-size: 1.6rem; }}
[data-testid="stMain"] [data-testid="stMarkdown"] :is(p, li, td, th) {{ font-size: 1.3rem; }}
[data-testid="stMain"] [data-testid="stCaptionContainer"] :is(p, li) {{ font-size: 1.1rem; }}
[data-testid="stMain"] [data-testid="stMetricValue"] {{ font-size: 2.8rem; }}
[data-testid="stMain"] [data-testid="stMetricLabel"] p {{ font-size: 1.25rem; }}
[data-testid="stMain"] [data-testid="stMetricDelta"] {{ font-size: 1.15rem; }}
[data-testid="stMain"] [data-testid="stWidgetLabel"] p {{ font-size: 1.1rem; }}
[data-testid="stMain"] [data-testid^="stBaseButton"] p {{ font-size: 1.15rem; }}
[data-testid="stMain"] [data-testid="stTab"] p {{ font-size: 1.2rem; }}
[data-testid="stMain"] [data-testid="stTable"] {{ font-size: 1.15rem; }}
[data-testid="stMain"] [data-testid="stExpander"] summary p {{ font-size: 1.15rem; }}
[data-testid="stMain"] [data-testid="stProgress"] p {{ font-size: 1.15rem; }}
[data-testid="stMain"] [data-testid^="stPageLink"] p {{ font-size: 1.2rem; }}
[data-testid="stMain"] [data-testid="stPlotlyChart"] {{ max-height: calc(100vh - 1rem); }}
[data-testid="stElementContainer"]:has(.present-fit) {{ display: none; }}
"""


def _selector() -> str:
    return ", ".join(f".st-key-{key}" for key in SCREEN_CHARTS)


def _screen_chart_css() -> str:
    fill = f"calc(100vh - var(--fit-top, {FIT_TOP_PX}px) - {FIT_GAP_PX}px)"
    charts = ", ".join(f'.st-key-{key} [data-testid="stPlotlyChart"]' for key in SCREEN_CHARTS)
    # Streamlit gives the chart's element container the figure's own height as its flex basis:
    # it follows the chart instead (a chart taller than its figure would run into what is below).
    boxes = ", ".join(f'[data-testid="stElementContainer"].st-key-{key}' for key in SCREEN_CHARTS)
    return (
        f"{charts} {{ height: max({FIT_MIN_PX}px, {fill}); max-height: none; }}\n"
        f"{boxes} {{ flex: 0 0 auto; height: auto; }}"
    )


def _is_on(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ON_VALUES


def presentation_on() -> bool:
    """Whether presentation mode is on, drawing nothing: the URL's ``present`` when it has one
    (a link decides), else this session's mode (kept across page changes)."""
    flag = st.query_params.get(PARAM)
    if flag is not None:
        return _is_on(flag)
    return bool(st.session_state.get(STATE, False))


def with_flag(query: Mapping[str, str]) -> dict[str, str]:
    """``query`` plus ``present=1`` when presentation mode is on: for a page that replaces its
    whole query string (``st.query_params.from_dict``), so the mode stays in the URL."""
    return {**query, PARAM: "1"} if presentation_on() else dict(query)


def page_query() -> dict[str, str]:
    """The URL's query parameters without ``present`` and a presented deck's ``deck`` and
    ``scene``: what a page reads as its own state."""
    return {k: v for k, v in st.query_params.to_dict().items() if k not in RESERVED_PARAMS}


def _write_url(on: bool) -> None:
    if on and st.query_params.get(PARAM) != "1":
        st.query_params[PARAM] = "1"
    elif not on and PARAM in st.query_params:
        del st.query_params[PARAM]


def setup() -> bool:
    """Settle the mode for this run (the URL, else the session), write it into the URL and add
    the style sheets (:data:`BASE_CSS` always, the presentation rules when on); returns it."""
    on = presentation_on()
    if on != st.session_state.get(STATE):  # turned on or off (or a link): the sidebar follows
        st.set_page_config(initial_sidebar_state="collapsed" if on else "expanded")
    st.session_state[STATE] = on
    _write_url(on)
    css = BASE_CSS + (PRESENT_CSS + _screen_chart_css() if on else "")
    st.html(f"<style>{css}</style>")
    if on:
        _fit(key="ui.present_fit", data={"selector": _selector()}, height=1)
    return on


def _toggled() -> None:
    on = bool(st.session_state[WIDGET])
    st.session_state[STATE] = on
    _write_url(on)


def presentation_toggle() -> bool:
    """The presentation switch (draw it once per run; ``app.py`` puts it in the sidebar).
    Turning it on or off changes the session's mode and the URL at once."""
    st.session_state[WIDGET] = presentation_on()
    return st.toggle(
        "Presentation mode",
        key=WIDGET,
        on_change=_toggled,
        help="Fit the charts to the screen, large text and numbers: for a projector. "
        "Kept on every page and in the link (`?present=1`).",
    )
