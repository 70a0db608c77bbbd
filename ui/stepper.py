"""Step-through controls: Back / Next buttons and the keyboard, for content revealed in stages.

The keyboard listener is a no-build Streamlit component (``st.components.v2``, as
``ui.live_chart``): a script in the page that turns → and space into "next", ← into "back",
Home into "first" and End into "last", and sends each as a trigger value (one rerun per key).
Keys typed into a text box, a slider, a radio group or a select, and space or Enter on a focused
button (which clicks it), are left alone. While a lecture deck is presented, the deck owns these
keys (``ui.deck_bar`` stops them before they reach the document) and each scene fixes the stage;
the buttons still work. A stage index runs over 0…n − 1; ``None`` is the last
stage, the whole picture, so content whose number of stages changes keeps showing everything.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from ui.toy_stages import Stage

KEYS = {"ArrowRight": "next", " ": "next", "ArrowLeft": "back", "Home": "first", "End": "last"}
ACTIONS = ("first", "back", "next", "last")

# A key pressed in a widget (a text field, a slider, a radio, space on a button) is the widget's,
# and a key with a modifier, already handled, or reaching a component no longer in the page is
# nobody's: ``freeKey``. Shared with the lecture deck's keys (ui/deck_bar.py).
WIDGET_KEY_JS = """
const ignoredRoles = ["slider", "radio", "tab", "listbox", "option", "combobox", "spinbutton",
                      "menuitem", "textbox", "switch", "checkbox"];
function widgetKey(event) {
  const t = event.target instanceof Element ? event.target : null;
  const tag = t ? t.tagName.toLowerCase() : "";
  const role = t ? (t.getAttribute("role") || "") : "";
  if (["input", "textarea", "select"].includes(tag) || (t && t.isContentEditable)) return true;
  if (ignoredRoles.includes(role)) return true;
  return (tag === "button" || role === "button") && event.key === " ";
}
function freeKey(event, parentElement) {
  if (!parentElement.isConnected || event.defaultPrevented) return false;
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return false;
  return !widgetKey(event);
}
"""

JS = (
    WIDGET_KEY_JS
    + """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const keys = data.keys;
  const handler = (event) => {
    const action = keys[event.key];
    if (!action || !freeKey(event, parentElement)) return;
    event.preventDefault();
    setTriggerValue("press", action);
  };
  // One listener per page: a rerun replaces the previous one.
  if (window.__stepperKeys) document.removeEventListener("keydown", window.__stepperKeys);
  window.__stepperKeys = handler;
  document.addEventListener("keydown", handler);
  parentElement.dataset.stepperKeys = "ready";
  return () => {
    document.removeEventListener("keydown", handler);
    if (window.__stepperKeys === handler) window.__stepperKeys = null;
  };
}
"""
)

_mount = st.components.v2.component(
    "stepper_keys", js=JS, html='<span class="stepper-keys"></span>', isolate_styles=False
)


def move(stage: int | None, action: str, n_stages: int) -> int | None:
    """The stage after ``action`` (one of :data:`ACTIONS`) from ``stage``; None is the last one.

    Next on the last stage and Back on the first stay where they are."""
    current = n_stages - 1 if stage is None else min(max(stage, 0), n_stages - 1)
    target = {"first": 0, "back": current - 1, "next": current + 1, "last": n_stages - 1}[action]
    target = min(max(target, 0), n_stages - 1)
    return None if target == n_stages - 1 else target


def keyboard(key: str) -> str | None:
    """Listen to the keyboard on this page; the action of the key pressed since the last run."""
    result = _mount(key=key, data={"keys": KEYS}, on_press_change=lambda: None, height=1)
    action = getattr(result, "press", None)
    return action if action in ACTIONS else None


def _go(state_key: str, action: str, n_stages: int) -> None:
    st.session_state[state_key] = move(st.session_state.get(state_key), action, n_stages)


def stage_controls(state_key: str, stages: Sequence[Stage], *, keyboard_key: str) -> Stage:
    """Back / Next (and first / whole picture) buttons, the keyboard, the stage's title and its
    sentence. The stage index lives in ``session_state[state_key]``; returns the shown stage."""
    n = len(stages)
    action = keyboard(keyboard_key)
    if action is not None:
        st.session_state[state_key] = move(st.session_state.get(state_key), action, n)
    stage = st.session_state.get(state_key)
    index = n - 1 if stage is None else min(stage, n - 1)
    buttons = (
        ("⏮", "first", "The first stage (Home)", index == 0),
        ("◀ Back", "back", "The previous stage (←)", index == 0),
        ("Next ▶", "next", "The next stage (→ or space)", index == n - 1),
        ("⏭", "last", "The whole picture (End)", index == n - 1),
    )
    current = stages[index]
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        for label, act, tip, disabled in buttons:
            st.button(
                label,
                key=f"{state_key}_{act}",
                help=tip,
                on_click=_go,
                args=(state_key, act, n),
                disabled=disabled,
                width="content",
            )
        st.markdown(f"**{index + 1} / {n} · {current.title}**", width="content")
    st.markdown(current.text)
    return current
