"""Lecture deck: the decks in the store, their scenes (reorder, rename, delete), export and import
as JSON, and ▶ Present.

A deck's URL is ``/deck?id=<deck id>``; ``/deck?id=<deck id>&play=<n>`` starts presenting it at
scene n. On this page → (or a presenter remote's PageDown) presents the open deck from its first
scene. Scenes are saved from any page (the sidebar's "Save this view as a scene"); presenting is
``ui.deck_bar``; the deck format and its checks are ``core.runtime.decks``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import streamlit as st

from core.runtime.decks import (
    MAX_FILE_BYTES,
    Deck,
    DeckError,
    deck_to_json,
    load_examples,
    parse_deck,
    slug,
)
from core.runtime.store_schema import StoreError
from ui import deck_bar, widgets
from ui.state import ensure_app_navigation, require_manager
from ui.text import plain

ensure_app_navigation()
store = require_manager().store
PICK, URL_ID = "deck.page.id", "deck.page.url"


def _flash(kind: str, text: str) -> None:
    st.session_state["_flash"] = (kind, text)


def _save(deck: Deck, message: str | None = None) -> None:
    try:
        store.save_deck(deck)
    except (StoreError, DeckError) as err:
        _flash("error", f"Not saved: {plain(err)}")
        return
    if message:
        _flash("success", message)


def _move(deck: Deck, i: int, j: int) -> None:
    scenes = list(deck.scenes)
    scenes.insert(j, scenes.pop(i))
    _save(replace(deck, scenes=tuple(scenes)))


def _drop(deck: Deck, i: int) -> None:
    scenes = deck.scenes[:i] + deck.scenes[i + 1 :]
    _save(replace(deck, scenes=scenes), f"Deleted scene {i + 1} ({deck.scenes[i].title}).")


def _save_texts(deck: Deck) -> None:
    edited = st.session_state["deck.page.texts"]["edited_rows"]
    scenes = list(deck.scenes)
    for row, change in edited.items():
        title = str(change.get("title", scenes[row].title) or "").strip() or scenes[row].title
        scenes[row] = replace(
            scenes[row], title=title, note=str(change.get("note", scenes[row].note) or "")
        )
    _save(replace(deck, scenes=tuple(scenes)), "Titles and notes saved.")


def _rename(deck: Deck) -> None:
    name = st.session_state.get("deck.page.name", "").strip()
    if not name:
        _flash("error", "A deck needs a name.")
        return
    text = st.session_state.get("deck.page.description", "")
    _save(replace(deck, name=name, description=text), "Deck renamed.")


def _delete(deck: Deck) -> None:
    store.delete_deck(deck.deck_id)
    st.session_state.pop(PICK, None)
    if "id" in st.query_params:
        del st.query_params["id"]
    _flash("success", f"Deleted the deck “{deck.name}”.")


def _open(deck_id: str) -> None:
    widgets.set_kept(PICK, deck_id)


def _create() -> None:
    name = st.session_state.get("deck.page.new", "").strip()
    if not name:
        _flash("error", "A new deck needs a name.")
        return
    deck = store.add_deck(Deck(slug(name), name))
    _open(deck.deck_id)
    _flash("success", f"Created “{name}”: save scenes into it from any page's sidebar.")


def _import() -> None:
    upload = st.session_state.get("deck.page.upload")
    if upload is None:
        _flash("error", "Choose a deck file (.json) first.")
        return
    try:
        deck = parse_deck(upload.getvalue(), set(deck_bar.PAGES) or None)
        stored = store.add_deck(deck, replace=bool(st.session_state.get("deck.page.replace")))
    except (DeckError, StoreError) as err:
        _flash("error", f"{upload.name} was not imported: {plain(err)}")
        return
    _open(stored.deck_id)
    where = "" if stored.deck_id == deck.deck_id else f" as {stored.deck_id} (the id was taken)"
    _flash("success", f"Imported “{stored.name}”{where}: {len(stored.scenes)} scenes.")


def _restore_examples() -> None:
    for deck in load_examples():
        store.add_deck(deck, replace=True)
        _open(deck.deck_id)
    _flash("success", "The example deck is back as it was shipped.")


def _page_name(path: str) -> str:
    page = deck_bar.PAGES.get(path)
    return page.title if page is not None else (path or "Home")


def _scene_rows(deck: Deck) -> None:
    last = len(deck.scenes) - 1
    for i, scene in enumerate(deck.scenes):
        with st.container(border=True):
            text, up, down, play, drop = st.columns([12, 1, 1, 1, 1], vertical_alignment="center")
            text.markdown(
                f"**{i + 1} · {plain(scene.title)}**  \n"
                f":gray[{_page_name(scene.page)}"
                + (f" · {plain(scene.note)}]" if scene.note else "]")
            )
            up.button("↑", key=f"deck.up.{i}", help="Move up", on_click=_move,
                      args=(deck, i, i - 1), disabled=i == 0)  # fmt: skip
            down.button("↓", key=f"deck.down.{i}", help="Move down", on_click=_move,
                        args=(deck, i, i + 1), disabled=i == last)  # fmt: skip
            if play.button("▶", key=f"deck.play.{i}", help="Present from this scene"):
                deck_bar.present(deck, i + 1)
            drop.button("🗑", key=f"deck.drop.{i}", help="Delete this scene", on_click=_drop,
                        args=(deck, i))  # fmt: skip


def _manage(deck: Deck) -> None:
    with st.expander("Edit titles and notes"):
        st.data_editor(
            pd.DataFrame(
                {
                    "title": [s.title for s in deck.scenes],
                    "note": [s.note for s in deck.scenes],
                    "page": [_page_name(s.page) for s in deck.scenes],
                }
            ),
            key="deck.page.texts",
            disabled=["page"],
            hide_index=False,
            width="stretch",
        )
        st.button("Save titles and notes", on_click=_save_texts, args=(deck,))
    with st.expander("Rename or delete the deck"):
        st.text_input("Name", value=deck.name, key="deck.page.name", max_chars=200)
        st.text_area("Description", value=deck.description, key="deck.page.description")
        st.button("Save name and description", on_click=_rename, args=(deck,))
        sure = st.checkbox("Yes, delete this deck", key=f"deck.page.sure.{deck.deck_id}")
        st.button("Delete the deck", disabled=not sure, on_click=_delete, args=(deck,))


def _files(deck: Deck | None) -> None:
    c = st.columns(3)
    with c[0], st.container(border=True):
        st.markdown("**Export**")
        if deck is not None:
            st.download_button(
                f"⬇️ {deck.deck_id}.json",
                deck_to_json(deck).encode("utf-8"),
                file_name=f"{deck.deck_id}.json",
                mime="application/json",
                key="deck.page.export",
            )
            st.caption("The deck as one JSON file: its name and every scene's page and URL.")
    with c[1], st.container(border=True):
        st.markdown("**Import**")
        st.file_uploader(
            "A deck file",
            type=["json"],
            key="deck.page.upload",
            max_upload_size=math.ceil(MAX_FILE_BYTES / 1e6),  # what the uploader's hint says
        )
        st.checkbox("Replace the deck with the same id", key="deck.page.replace")
        st.button("Import", on_click=_import, key="deck.page.import")
    with c[2], st.container(border=True):
        st.markdown("**New deck**")
        st.text_input("Name", key="deck.page.new", max_chars=200)
        st.button("Create", on_click=_create, key="deck.page.create")
        st.button("Restore the example deck", on_click=_restore_examples, key="deck.page.examples")


def main() -> None:
    st.title("Lecture deck")
    st.caption(
        "A deck is an ordered list of scenes; a scene is one view of the app as its URL gives it "
        "(a lab at a stage, a run, a comparison, an update in the inspector). Save the view you "
        "see as a scene with **🎞️ Save this view as a scene** in the sidebar of any page. "
        "Presenting hides Streamlit's header and sidebar; → / ← (or a presenter remote's "
        "PageDown / PageUp) move between scenes, F toggles full screen, Esc leaves it."
    )
    flash = st.session_state.pop("_flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])
    try:
        decks = {d.deck_id: d for d in store.decks()}
    except (StoreError, DeckError) as err:
        st.error(f"The decks cannot be read: {plain(err)}")
        return
    wanted = st.query_params.get("id")
    if wanted in decks and wanted != st.session_state.get(URL_ID):
        widgets.set_kept(PICK, wanted)  # a new link wins over the remembered choice
    deck = None
    if decks:
        if widgets.kept(PICK, next(iter(decks))) not in decks:
            widgets.set_kept(PICK, next(iter(decks)))
        deck_id = widgets.kept_widget(
            st.selectbox,
            "Deck",
            PICK,
            next(iter(decks)),
            list(decks),
            format_func=lambda i: f"{decks[i].name} · {len(decks[i].scenes)} scenes",
        )
        deck = decks[deck_id]
        if wanted and wanted not in decks:
            st.warning(
                f"There is no deck {plain(wanted)} in this store (deleted, or from another "
                f"store: import its file below); showing “{plain(deck.name)}”."
            )
        st.session_state[URL_ID] = deck_id
        if st.query_params.get("id") != deck_id:
            st.query_params["id"] = deck_id
    elif wanted:
        st.warning(f"There is no deck {plain(wanted)} in this store: import its file below.")
    else:
        st.info("No deck yet: create one below, or import a deck file.")
    if deck is not None:
        play = st.query_params.get("play", "")
        if play.isdigit() and deck.scenes:
            del st.query_params["play"]
            deck_bar.present(deck, min(max(int(play), 1), len(deck.scenes)))
        if deck.description:
            st.markdown(plain(deck.description))
        st.caption(
            f"This deck's link: `/deck?id={deck.deck_id}` · present it at once: "
            f"`/deck?id={deck.deck_id}&play=1`"
        )
        if deck.scenes:
            start = st.button("▶ Present (→)", type="primary", key="deck.page.present")
            action = deck_bar.keyboard("deck_page_keys", fullscreen=False)
            if start or action in ("next", "first"):
                deck_bar.present(deck, 1)
            if action == "last":
                deck_bar.present(deck, len(deck.scenes))
            _scene_rows(deck)
        else:
            st.info("This deck has no scenes yet: open a page and save its view from the sidebar.")
        _manage(deck)
    _files(deck)


main()
