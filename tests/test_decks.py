"""Lecture decks: the JSON format and its checks, the store's deck table, the example deck, and
what the app resolves when a scene is shown (``latest:`` placeholders, the deck's URL keys)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace

import pandas as pd
import pytest

from core.runtime.decks import (
    EXAMPLE_DECKS,
    Deck,
    DeckError,
    Scene,
    deck_to_json,
    load_examples,
    parse_deck,
    scene_params,
    slug,
)
from core.runtime.store import RunStore
from core.runtime.store_schema import SCHEMA_VERSION
from ui import deck_url
from ui.deck_bar import move, scene_url_params
from ui.toy_scenario import PRESETS, Scenario

APP_PAGES = {"", "train", "compare", "runs", "trust-region-lab", "gae-lab", "inspector", "deck"}


def _deck(deck_id: str = "week-3") -> Deck:
    return Deck(
        deck_id,
        "Week 3: trust regions",
        (
            Scene("The gradient", "trust-region-lab", {"problem": "softmax", "stage": "1"}, "g."),
            Scene("GAE", "gae-lab", {"lam": "0.9"}),
            Scene("A run", "runs", {"run": "abc123"}, "Über-long notes are fine: ½dᵀFd = δ"),
        ),
        "Three scenes.",
    )


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "data")
    yield s
    s.close()


def test_a_deck_round_trips_through_the_store(store):
    deck = _deck()
    store.save_deck(deck)
    assert store.deck("week-3") == deck
    assert deck in store.decks()
    assert store.deck_names()[deck.deck_id] == deck.name
    moved = replace(deck, scenes=deck.scenes[::-1], name="renamed")
    store.save_deck(moved)
    assert store.deck("week-3") == moved
    store.delete_deck("week-3")
    assert store.deck("week-3") is None


def test_a_deck_exported_and_imported_again_is_identical(store, tmp_path):
    store.save_deck(_deck())
    exported = deck_to_json(store.deck("week-3"))
    other = RunStore(tmp_path / "elsewhere")
    try:
        imported = other.add_deck(parse_deck(exported.encode("utf-8")))
        assert imported == _deck()
        assert deck_to_json(other.deck("week-3")) == exported
    finally:
        other.close()
    # into the same store: replaced in place (identical), or kept beside it under a free id
    assert store.add_deck(parse_deck(exported), replace=True) == _deck()
    assert deck_to_json(store.deck("week-3")) == exported
    copy = store.add_deck(parse_deck(exported))
    assert copy.deck_id == "week-3-2" and copy.scenes == _deck().scenes


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: "not json", r"not JSON: .* line 1, column 1"),
        (lambda d: [], "a deck file holds a JSON object, not a list"),
        (lambda d: d | {"format": "slides"}, "format: expected 'trust-region-playground/deck'"),
        (lambda d: d | {"version": 2}, "version: this app reads version 1, found 2"),
        (lambda d: d | {"id": "Week 3"}, "id: 'Week 3' is not a deck id"),
        (lambda d: d | {"name": ""}, "name: expected 1 to 200 characters, found 0"),
        (lambda d: d | {"scenes": {}}, "scenes: expected a list of scenes, found an object"),
        (lambda d: d | {"colour": "red"}, "colour: not a field of a deck"),
        (lambda d: _scene(d, 1, title=3), r"scenes\[1\].title: expected text, found a number"),
        (lambda d: _scene(d, 2, page="Runs!"), r"scenes\[2\].page: 'Runs!' is not a page path"),
        (lambda d: _scene(d, 0, page="slides"), r"scenes\[0\].page: this app has no page 'slides'"),
        (lambda d: _scene(d, 0, params=["a"]), r"scenes\[0\].params: expected an object"),
        (lambda d: _scene(d, 0, params={"stage": 1}), r"scenes\[0\].params.stage: expected text"),
        (lambda d: _scene(d, 0, params={"deck": "x"}), r"scenes\[0\].params: 'deck' is not"),
        (lambda d: _scene(d, 1, extra=1), r"scenes\[1\].extra: not a field of a scene"),
    ],
)
def test_a_bad_deck_file_is_refused_with_one_line_naming_the_field(mutate, message):
    data = mutate(json.loads(deck_to_json(_deck())))
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(DeckError, match=message) as err:
        parse_deck(text.encode("utf-8"), APP_PAGES)
    assert "\n" not in str(err.value)


def _scene(data: dict, i: int, **fields) -> dict:
    data["scenes"][i].update(fields)
    return data


def test_a_file_that_is_not_utf8_or_too_large_is_refused():
    with pytest.raises(DeckError, match="not UTF-8"):
        parse_deck(b"\xff\xfe{}")
    with pytest.raises(DeckError, match="at most 1 MB"):
        parse_deck(b" " * 1_000_001)


def test_the_example_deck_is_loaded_once_per_store(tmp_path):
    (example,) = load_examples()
    first = RunStore(tmp_path / "data")
    assert first.decks() == [example]
    first.delete_deck(example.deck_id)  # the lecturer's choice survives a restart
    first.close()
    again = RunStore(tmp_path / "data")
    try:
        assert again.decks() == []
    finally:
        again.close()


def test_an_older_store_gains_the_deck_table_and_the_example(tmp_path):
    RunStore(tmp_path / "data").close()
    with sqlite3.connect(tmp_path / "data" / "runs.sqlite") as conn:  # back to schema 2
        conn.execute("DROP TABLE decks")
        conn.execute("PRAGMA user_version = 2")
    store = RunStore(tmp_path / "data")
    try:
        assert [d.deck_id for d in store.decks()] == ["trpo-in-10-scenes"]
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "data" / "runs.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_the_example_deck_walks_from_the_rejected_step_to_a_real_cartpole_run():
    assert [p.name for p in EXAMPLE_DECKS] == ["trpo_in_10_scenes.json"]
    text = EXAMPLE_DECKS[0].read_text(encoding="utf-8")
    deck = parse_deck(text, APP_PAGES)
    assert deck_to_json(deck) == text  # the file is in the canonical form an export writes
    assert deck.name == "TRPO in 10 scenes" and len(deck.scenes) == 10
    lab = [Scenario.from_query(s.params) for s in deck.scenes if s.page == "trust-region-lab"]
    rejected = replace(PRESETS["Rejected full step"], stage=None)
    # the softmax bandit's rejected full step at several stages, the trial j = 0 among them
    assert [sc.stage for sc in lab if replace(sc, stage=None) == rejected] == [0, 1, 5, 7, 8]
    assert replace(lab[5], stage=None) == replace(PRESETS["Coordinate scaling k = 3"], stage=None)
    assert lab[6] == PRESETS["Kakade's plateau"]  # N-update paths, the whole picture
    pages = [s.page for s in deck.scenes]
    assert pages[7:] == ["gae-lab", "train", "inspector"]
    assert deck.scenes[8].params == {"env": "CartPole-v1", "algo": "trpo"}
    assert deck.scenes[9].params == {"run": "latest:trpo:CartPole-v1"}


def test_latest_placeholders_resolve_to_the_newest_matching_run():
    runs = pd.DataFrame(  # newest first, as RunStore.runs
        {
            "run_id": ["ppo1", "trpo2", "trpo1"],
            "algo": ["ppo", "trpo", "trpo"],
            "env_id": ["CartPole-v1", "CartPole-v1", "CartPole-v1"],
        }
    )
    params = {"run": "latest:trpo:CartPole-v1", "update": "3"}
    assert deck_url.resolve(params, lambda: runs) == ({"run": "trpo2", "update": "3"}, [])
    resolved, missing = deck_url.resolve({"run": "latest:npg:Pendulum-v1"}, lambda: runs)
    assert resolved == {} and "newest NPG run on Pendulum-v1" in missing[0]

    def never() -> pd.DataFrame:
        raise AssertionError("no placeholder: the store is not read")

    assert deck_url.resolve({"stage": "3"}, never) == ({"stage": "3"}, [])


def test_a_scene_keeps_the_page_parameters_and_presenting_adds_the_deck_keys():
    query = {"problem": "softmax", "stage": "2", "deck": "d", "scene": "4", "present": "1"}
    assert scene_params(query) == {"problem": "softmax", "stage": "2"}
    assert scene_url_params(_deck(), 2) == {
        "lam": "0.9",
        "deck": "week-3",
        "scene": "2",
        "present": "1",
    }
    assert slug("TRPO in 10 scenes!") == "trpo-in-10-scenes" and slug("¿?") == "deck"


def test_moving_through_a_deck_stops_at_its_ends():
    assert [move(1, a, 3) for a in ("back", "next", "first", "last")] == [1, 2, 1, 3]
    assert move(3, "next", 3) == 3 and move(2, "back", 3) == 1
