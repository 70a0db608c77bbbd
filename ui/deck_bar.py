"""Lecture decks on every page: "save this view as a scene", and the bar that presents a deck.

``app.py`` calls :func:`scene_tools` on every run, before the page. Two cases:

- **Not presenting** (no ``deck`` in the URL): a sidebar popover saves the current view (the page
  that ``st.navigation`` returned and the URL's parameters) as a scene of a deck, new or stored.
- **Presenting** (``?…&deck=<id>&scene=<n>&present=1``): Streamlit's header and sidebar are
  hidden, a slim bar sits above the page ("deck · n / N · title", ◀ ▶, full screen, exit) with the
  scene's note under it, and the keyboard moves through the deck: → / PageDown / space next,
  ← / PageUp back, Home / End the first and last scene, F full screen (the browser's Fullscreen
  API; moving between scenes never reloads the document, so full screen stays). Presenter
  remotes send PageDown / PageUp.

**The deck owns the navigation keys while it is presented.** The lab's stepper (``ui.stepper``)
listens on the document; the deck listens on the window in the capture phase, so it sees a key
first, and stops it: in a deck, → is always the next scene, and each scene fixes its own stage
(a lecture that walks through a TRPO step has one scene per stage it wants to show). The
stepper's ◀ / ▶ buttons still work with the mouse. Keys typed into a text box, a slider, a
select or a radio group are left alone by both.

Moving to scene n is ``st.switch_page`` to the scene's page with its parameters (placeholders
resolved, ``ui.deck_url``); when the page runs with a new (deck, scene), ``ui.deck_url`` makes it
read its URL as on a first visit.
"""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from core.runtime.decks import RESERVED_PARAMS, Deck, DeckError, Scene, scene_params, slug
from core.runtime.store_schema import StoreError
from ui import deck_url
from ui.state import get_manager
from ui.stepper import WIDGET_KEY_JS
from ui.text import plain

PAGES: dict[str, StreamlitPage] = {}  # url_path → the app's page, set by :func:`scene_tools`
ARRIVED = "deck.arrived"  # (deck id, scene number) the page last opened as a scene
PENDING = "deck.pending"  # a bar button's action, carried out before the page runs
NEW_DECK = "➕ A new deck"
KEYS = {
    "ArrowRight": "next",
    "PageDown": "next",
    " ": "next",
    "ArrowLeft": "back",
    "PageUp": "back",
    "Home": "first",
    "End": "last",
}

JS = (
    WIDGET_KEY_JS
    + """
export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const keys = data.keys;
  const fullscreen = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (document.documentElement.requestFullscreen)
      document.documentElement.requestFullscreen().catch(() => {});
  };
  const handler = (event) => {
    if (!freeKey(event, parentElement)) return;
    if (event.key === "f" || event.key === "F") {
      event.preventDefault();
      fullscreen();
      return;
    }
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    event.stopImmediatePropagation();  // the deck owns the key: the lab's stepper never sees it
    setTriggerValue("press", action);
  };
  // One listener per page, on the window in the capture phase: before the document's.
  if (window.__deckKeys) window.removeEventListener("keydown", window.__deckKeys, true);
  window.__deckKeys = handler;
  window.addEventListener("keydown", handler, true);
  const button = parentElement.querySelector("button.deck-fullscreen");
  if (button) {
    button.onclick = fullscreen;
    button.style.display = data.fullscreen ? "" : "none";
  }
  parentElement.dataset.deckKeys = "ready";
  return () => {
    window.removeEventListener("keydown", handler, true);
    if (window.__deckKeys === handler) window.__deckKeys = null;
  };
}
"""
)
HTML = (
    '<button class="deck-fullscreen" title="Full screen (F); Esc leaves it">'
    '<svg width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="2"><path d="M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"/></svg></button>'
)
CSS = """
.deck-fullscreen { display: flex; align-items: center; padding: 0.5rem 0.75rem;
  border-radius: 0.5rem; border: 1px solid rgba(49, 51, 63, 0.2); background: white;
  cursor: pointer; }
.deck-fullscreen:hover { border-color: #ff4b4b; color: #ff4b4b; }
"""
# While presenting: no Streamlit header or sidebar, and the page starts right under the bar, its
# title and the caption under it hidden (the bar names the scene).
PRESENTING_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], [data-testid="stHeader"], [data-testid="stAppHeader"],
header.stAppHeader { display: none !important; }
[data-testid="stMainBlockContainer"] { padding-top: 0.6rem !important; }
[data-testid="stMain"] [data-testid="stElementContainer"]:has(h1),
[data-testid="stMain"] [data-testid="stElementContainer"]:has(h1)
  + [data-testid="stElementContainer"]:has([data-testid="stCaptionContainer"]) { display: none; }
</style>"""

_mount = st.components.v2.component("deck_keys", js=JS, html=HTML, css=CSS, isolate_styles=False)


def move(scene: int, action: str, n_scenes: int) -> int:
    """The scene (1 … n) after ``action`` (first, back, next, last) from ``scene``."""
    target = {"first": 1, "back": scene - 1, "next": scene + 1, "last": n_scenes}[action]
    return min(max(target, 1), n_scenes)


def keyboard(key: str = "deck_keys", fullscreen: bool = True) -> str | None:
    """Listen to the deck's keys on this page (and show the full-screen button); the action of
    the key pressed since the last run."""
    data = {"keys": KEYS, "fullscreen": fullscreen}
    result = _mount(key=key, data=data, on_press_change=lambda: None, height="content")
    action = getattr(result, "press", None)
    return action if action in ("first", "back", "next", "last") else None


def scene_url_params(deck: Deck, n: int) -> dict[str, str]:
    """The URL parameters that present scene ``n`` (1-based) of ``deck`` (placeholders kept)."""
    return deck.scenes[n - 1].params | {"deck": deck.deck_id, "scene": str(n), "present": "1"}


def present(deck: Deck, n: int) -> None:
    """Go to scene ``n`` (1-based) of ``deck``: its page, with its parameters (does not return)."""
    scene = deck.scenes[n - 1]
    page = PAGES.get(scene.page)
    if page is None:
        st.error(f"Scene {n} names the page {scene.page!r}, which this app does not have.")
        st.stop()
    params, _ = deck_url.resolve(scene_url_params(deck, n), get_manager().store.runs)
    st.switch_page(page, query_params=params)


def scene_tools(current: StreamlitPage, sections: dict[str, list[StreamlitPage]]) -> None:
    """The deck's part of every page (module docstring): call it before ``current.run()``."""
    PAGES.clear()
    PAGES.update({p.url_path: p for pages in sections.values() for p in pages})
    if "deck" in st.query_params:
        _presenting(current)
    else:
        st.session_state.pop(ARRIVED, None)
        if current.url_path != "deck":
            with st.sidebar.popover("🎞️ Save this view as a scene", width="stretch"):
                _save_form(current)


# --- presenting --------------------------------------------------------------------------------


def _exit() -> None:
    for key in RESERVED_PARAMS:
        if key in st.query_params:
            del st.query_params[key]


def _press(action: str) -> None:
    st.session_state[PENDING] = action


def _presenting(current: StreamlitPage) -> None:
    try:
        store = get_manager().store
        deck = store.deck(st.query_params["deck"])
    except (StoreError, DeckError) as err:
        deck, problem = None, f"The deck cannot be read: {plain(err)}"
    else:
        problem = f"There is no deck {st.query_params['deck']!r} in this store."
    if deck is None or not deck.scenes:
        st.warning(problem if deck is None else f"The deck “{deck.name}” has no scenes yet.")
        st.button("✕ Leave the deck", on_click=_exit, key="deck.exit")
        return
    n_scenes = len(deck.scenes)
    text = st.query_params.get("scene", "1")
    n = min(max(int(text), 1), n_scenes) if text.isdigit() else 1
    st.html(PRESENTING_CSS)
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="deck_bar"):
        st.markdown(
            f"🎞️ {plain(deck.name)} · **{n} / {n_scenes} · {plain(deck.scenes[n - 1].title)}**",
            width="stretch",
        )
        st.button("◀", key="deck.back", help="Previous scene (← or PageUp)", on_click=_press,
                  args=("back",), disabled=n == 1)  # fmt: skip
        st.button("▶", key="deck.next", help="Next scene (→, PageDown or space)", on_click=_press,
                  args=("next",), disabled=n == n_scenes)  # fmt: skip
        action = keyboard()
        st.button("✕", key="deck.exit", help="Leave the deck (stay on this page)", on_click=_exit)
    action = st.session_state.pop(PENDING, None) or action
    if action is not None and move(n, action, n_scenes) != n:
        present(deck, move(n, action, n_scenes))
    scene = deck.scenes[n - 1]
    if scene.note:
        st.caption(plain(scene.note))
    if st.session_state.get(ARRIVED) != (deck.deck_id, n):
        st.session_state[ARRIVED] = (deck.deck_id, n)
        deck_url.scene_opened(current.url_path)
    _resolve_url(scene, store)


def _resolve_url(scene: Scene, store) -> None:
    """Placeholders in the URL (a deck link opened directly) become run ids; a scene whose
    placeholder has no run yet says so."""
    query = st.query_params.to_dict()
    resolved, _ = deck_url.resolve(query, store.runs)
    if resolved != query:
        for key in query.keys() - resolved.keys():
            del st.query_params[key]
        st.query_params.update({k: v for k, v in resolved.items() if query.get(k) != v})
    _, missing = deck_url.resolve(scene.params, store.runs)
    for message in missing:
        st.info(message, icon="🎞️")


# --- saving ------------------------------------------------------------------------------------


def _save_form(current: StreamlitPage) -> None:
    try:
        names = get_manager().store.deck_names()  # every page, every rerun: ids and names only
    except (StoreError, DeckError) as err:
        st.error(f"The decks cannot be read: {plain(err)}")
        return
    choice = st.selectbox(
        "Deck", [NEW_DECK, *names], key="deck.save.deck", format_func=lambda i: names.get(i, i)
    )
    if choice == NEW_DECK:
        st.text_input("New deck's name", key="deck.save.name", max_chars=200)
    st.text_input("Scene title", value=current.title, key="deck.save.title", max_chars=200)
    st.text_area("Note (optional, shown under the title)", key="deck.save.note", max_chars=4000)
    st.button(
        "Save scene",
        type="primary",
        key="deck.save",
        on_click=_save,
        args=(current.url_path, current.title),
        width="stretch",
    )
    st.caption(
        "A scene is this page with its URL: the lab's scenario and stage, the run, the "
        "comparison. Present a deck from the Lecture deck page."
    )


def _save(page: str, page_title: str) -> None:
    """Append the current view to the chosen deck (or a new one) and say so in a toast."""
    ss = st.session_state
    store = get_manager().store
    title = (ss.get("deck.save.title") or "").strip() or page_title
    scene = Scene(
        title, page, scene_params(st.query_params.to_dict()), ss.get("deck.save.note", "")
    )
    try:
        if ss.get("deck.save.deck", NEW_DECK) == NEW_DECK:
            name = (ss.get("deck.save.name") or "").strip() or "My lecture"
            deck = store.add_deck(Deck(slug(name), name[:200], (scene,)))
        else:
            old = store.deck(ss["deck.save.deck"])
            if old is None:
                raise DeckError(f"the deck {ss['deck.save.deck']!r} is gone")
            deck = Deck(old.deck_id, old.name, (*old.scenes, scene), old.description)
            store.save_deck(deck)
    except (StoreError, DeckError) as err:
        st.toast(f"The scene was not saved: {plain(err)}", icon="⚠️")
        return
    ss["deck.save.deck"] = deck.deck_id
    ss["deck.save.note"] = ""
    st.toast(f"Saved as scene {len(deck.scenes)} of “{deck.name}”.", icon="🎞️")
