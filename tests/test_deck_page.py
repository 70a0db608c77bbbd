"""The Lecture deck page and the sidebar's "Save this view as a scene" under Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import open_page
from ui.text import plain

APP = str(Path(__file__).resolve().parents[1] / "app.py")
EXAMPLE = "trpo-in-10-scenes"


@pytest.fixture
def app(app_manager):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    return at, app_manager.store


def test_the_deck_page_lists_the_example_deck_and_reorders_its_scenes(app):
    at, store = app
    open_page(at, "pages/deck.py")
    assert at.selectbox(key="deck.page.id").value == EXAMPLE
    text = " ".join(m.value for m in at.markdown)
    assert f"1 · {plain('One TRPO step, drawn exactly')}" in text
    assert f"10 · {plain('One real update in the Update Inspector')}" in text
    before = [s.title for s in store.deck(EXAMPLE).scenes]
    at.button(key="deck.down.0").click().run()
    after = [s.title for s in store.deck(EXAMPLE).scenes]
    assert after == [before[1], before[0], *before[2:]]
    at.button(key="deck.drop.1").click().run()
    assert [s.title for s in store.deck(EXAMPLE).scenes] == [before[1], *before[2:]]
    assert at.query_params["id"] == EXAMPLE  # the deck's URL


def test_a_link_to_a_deck_the_store_lacks_says_so_and_shows_another(app):
    at, _ = app
    at.query_params["id"] = "no-such-deck"
    open_page(at, "pages/deck.py")
    (warning,) = [w.value for w in at.warning if plain("no-such-deck") in w.value]
    assert "There is no deck" in warning and "import its file" in warning
    assert at.selectbox(key="deck.page.id").value == EXAMPLE
    assert at.query_params["id"] == EXAMPLE
    at.run()
    assert not [w for w in at.warning if plain("no-such-deck") in w.value]  # said once


def test_the_sidebar_saves_the_current_view_as_a_scene_of_a_new_deck(app):
    at, store = app
    open_page(at, "pages/trust_region_lab.py")
    query = dict(at.query_params)
    assert query["problem"] == "softmax"
    at.selectbox(key="deck.save.deck").set_value("➕ A new deck")
    at.text_input(key="deck.save.name").input("Week 3")
    at.text_input(key="deck.save.title").input("The rejected step")
    at.button(key="deck.save").click().run()
    assert not at.exception
    deck = store.deck("week-3")
    (scene,) = deck.scenes
    assert (deck.name, scene.title, scene.page) == (
        "Week 3",
        "The rejected step",
        "trust-region-lab",
    )
    assert scene.params == {k: v for k, v in query.items() if k != "present"}
