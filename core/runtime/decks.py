"""Lecture decks: named, ordered lists of scenes, kept in the run store and shared as JSON files.

A **scene** is one view of the app that its URL reproduces: the page (its ``url_path``: ``""`` is
Home, ``"trust-region-lab"``, ``"inspector"``, …), the page's query parameters (a lab scenario
at a step-through stage, a run, a comparison group), a title, and an optional note shown under
the title while presenting. A **deck** is an id (lower-case letters, digits and dashes: it is
in URLs), a name, a description and its scenes in order.

A deck travels as one JSON file (:func:`deck_to_json` / :func:`parse_deck`)::

    {"format": "trust-region-playground/deck", "version": 1, "id": "trpo-in-10-scenes",
     "name": "TRPO in 10 scenes", "description": "…",
     "scenes": [{"title": "…", "page": "trust-region-lab", "params": {"stage": "0", …},
                 "note": "…"}, …]}

:func:`deck_to_json` writes one canonical text (fixed key order, two-space indent, UTF-8), so a
deck exported, imported and exported again gives the same bytes. :func:`parse_deck` refuses a
file with one :class:`DeckError` line naming the field (``scenes[3].page: …``).

A parameter value may be a placeholder resolved when the scene is shown (:func:`placeholder`):
``latest:<algo>:<env_id>`` is the newest run of that algorithm on that environment, so a deck
can end on "the run the lecturer just started".

In the store (``core/runtime/store_schema.py``, schema 3) a deck is one row of the ``decks``
table; the functions at the end are the SQL behind ``RunStore.decks`` and its siblings.
:data:`EXAMPLE_DECKS` (files under ``decks/`` at the repository root) are inserted when a store is
created or migrated to schema 3: once per store, so a deck the lecturer edits or deletes stays so.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "trust-region-playground/deck"
VERSION = 1
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "decks"
EXAMPLE_DECKS = (EXAMPLE_DIR / "trpo_in_10_scenes.json",)
MAX_FILE_BYTES = 1_000_000
MAX_SCENES = 200
MAX_PARAMS = 64
MAX_TEXT = 200  # a deck's name, a scene's title
MAX_NOTE = 4000  # a deck's description, a scene's note
MAX_VALUE = 2000  # one query parameter's value
RESERVED_PARAMS = ("deck", "scene", "present")  # the deck's own URL parameters, not a scene's
LATEST = "latest"
DECK_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
PAGE = re.compile(r"(?:[a-z0-9][a-z0-9_-]{0,62})?")
PARAM = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class DeckError(ValueError):
    """A deck that cannot be read or kept; ``str()`` is one line naming the field."""


@dataclass(frozen=True)
class Scene:
    """One view: the page's ``url_path``, its query parameters, a title and an optional note."""

    title: str
    page: str
    params: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "page": self.page,
            "params": dict(self.params),
            "note": self.note,
        }


@dataclass(frozen=True)
class Deck:
    """A named, ordered list of scenes; ``deck_id`` is its key in the store and in URLs."""

    deck_id: str
    name: str
    scenes: tuple[Scene, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "id": self.deck_id,
            "name": self.name,
            "description": self.description,
            "scenes": [s.to_dict() for s in self.scenes],
        }


# --- JSON --------------------------------------------------------------------------------------


def deck_to_json(deck: Deck) -> str:
    """The deck's canonical JSON text (what an export writes)."""
    return json.dumps(deck.to_dict(), indent=2, ensure_ascii=False) + "\n"


def parse_deck(text: str | bytes, pages: set[str] | None = None) -> Deck:
    """Read a deck file; :class:`DeckError` (one line, naming the field) if it is not one.
    ``pages``: the app's page paths, to refuse a scene of a page this app does not have."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise DeckError(f"the file is {len(text):,} bytes; a deck file is at most 1 MB")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DeckError(f"the file is not UTF-8 text (byte {e.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DeckError(f"not JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    return deck_from_dict(data, pages)


def deck_from_dict(data: Any, pages: set[str] | None = None) -> Deck:
    """A :class:`Deck` from the parsed JSON of :meth:`Deck.to_dict` (validated, see
    :func:`parse_deck`)."""
    if not isinstance(data, dict):
        raise DeckError(f"a deck file holds a JSON object, not {_kind(data)}")
    if data.get("format") != FORMAT:
        raise DeckError(f"format: expected {FORMAT!r}, found {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise DeckError(f"version: this app reads version {VERSION}, found {data.get('version')!r}")
    _no_other_keys(data, ("format", "version", "id", "name", "description", "scenes"), "")
    deck_id = check_deck_id(data.get("id"), "id")
    name = _text(data.get("name"), "name", MAX_TEXT)
    description = _text(data.get("description", ""), "description", MAX_NOTE, empty=True)
    scenes = data.get("scenes")
    if not isinstance(scenes, list):
        raise DeckError(f"scenes: expected a list of scenes, found {_kind(scenes)}")
    if len(scenes) > MAX_SCENES:
        raise DeckError(f"scenes: {len(scenes)} scenes; a deck has at most {MAX_SCENES}")
    return Deck(
        deck_id,
        name,
        tuple(scene_from_dict(s, f"scenes[{i}]", pages) for i, s in enumerate(scenes)),
        description,
    )


def scene_from_dict(data: Any, where: str = "scene", pages: set[str] | None = None) -> Scene:
    """A validated :class:`Scene`; ``where`` names it in messages (``scenes[2]``)."""
    if not isinstance(data, dict):
        raise DeckError(f"{where}: expected an object, found {_kind(data)}")
    _no_other_keys(data, ("title", "page", "params", "note"), where)
    title = _text(data.get("title"), f"{where}.title", MAX_TEXT)
    page = data.get("page")
    if not isinstance(page, str) or not PAGE.fullmatch(page):
        raise DeckError(
            f"{where}.page: {page!r} is not a page path (lower-case letters, digits, - and _; "
            '"" is Home)'
        )
    if pages is not None and page not in pages:
        known = ", ".join(repr(p) for p in sorted(pages))
        raise DeckError(f"{where}.page: this app has no page {page!r} (it has {known})")
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise DeckError(f"{where}.params: expected an object of strings, found {_kind(params)}")
    if len(params) > MAX_PARAMS:
        raise DeckError(f"{where}.params: {len(params)} parameters; at most {MAX_PARAMS}")
    for key, value in params.items():
        if not PARAM.fullmatch(key) or key in RESERVED_PARAMS:
            raise DeckError(
                f"{where}.params: {key!r} is not allowed as a parameter name (letters, digits, "
                f"_ . -; not {', '.join(RESERVED_PARAMS)})"
            )
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise DeckError(
                f"{where}.params.{key}: expected text of at most {MAX_VALUE} characters, "
                f"found {_kind(value)}"
            )
    note = _text(data.get("note", ""), f"{where}.note", MAX_NOTE, empty=True)
    return Scene(title, page, dict(params), note)


def check_deck_id(deck_id: Any, where: str = "deck id") -> str:
    """``deck_id`` if it is a well-formed id (it goes into URLs), else :class:`DeckError`."""
    if not isinstance(deck_id, str) or not DECK_ID.fullmatch(deck_id):
        raise DeckError(
            f"{where}: {deck_id!r} is not a deck id (1 to 64 lower-case letters, digits and "
            "dashes, not starting or ending with a dash)"
        )
    return deck_id


def slug(name: str) -> str:
    """A deck id made from a name: "TRPO in 10 scenes" → "trpo-in-10-scenes"."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].strip("-")
    return text or "deck"


def scene_params(query: dict[str, str]) -> dict[str, str]:
    """A page's query parameters as a scene keeps them: without the deck's own."""
    return {k: str(v) for k, v in query.items() if k not in RESERVED_PARAMS}


def placeholder(value: str) -> tuple[str, str] | None:
    """(algo, env_id) when ``value`` is ``latest:<algo>:<env_id>``, else None."""
    parts = value.split(":")
    if len(parts) == 3 and parts[0] == LATEST and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None


def _text(value: Any, where: str, limit: int, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise DeckError(f"{where}: expected text, found {_kind(value)}")
    if (not empty and not value.strip()) or len(value) > limit:
        least = 0 if empty else 1
        raise DeckError(f"{where}: expected {least} to {limit} characters, found {len(value)}")
    return value


def _no_other_keys(data: dict, allowed: tuple[str, ...], where: str) -> None:
    extra = [k for k in data if k not in allowed]
    if extra:
        prefix = f"{where}." if where else ""
        raise DeckError(
            f"{prefix}{extra[0]}: not a field of a {'scene' if where else 'deck'} "
            f"(the fields are {', '.join(allowed)})"
        )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    if type(value) in names:
        return names[type(value)] + (f" ({value!r})" if isinstance(value, str) else "")
    return f"a number ({value!r})" if isinstance(value, int | float) else type(value).__name__


def load_examples() -> list[Deck]:
    """The example decks shipped with the app (``decks/``)."""
    return [parse_deck(path.read_bytes()) for path in EXAMPLE_DECKS]


# --- SQL (RunStore's deck methods run these on its connections) -------------------------------

DECKS_TABLE = """
CREATE TABLE IF NOT EXISTS decks (
    deck_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)"""


def insert_examples(conn: sqlite3.Connection) -> None:
    """Add the example decks that the store does not have (part of creating or migrating it;
    a broken example file is left out rather than make the store unusable)."""
    for path in EXAMPLE_DECKS:
        try:
            deck = parse_deck(path.read_bytes())
        except (OSError, DeckError):
            continue
        now = time.time()
        conn.execute(
            "INSERT OR IGNORE INTO decks VALUES (?,?,?,?,?)",
            (deck.deck_id, deck.name, deck_to_json(deck), now, now),
        )


def write_deck(conn: sqlite3.Connection, deck: Deck) -> None:
    """Insert or replace ``deck`` (its creation time is kept)."""
    now = time.time()
    conn.execute(
        "INSERT INTO decks VALUES (?,?,?,?,?) ON CONFLICT(deck_id) DO UPDATE SET "
        "name = excluded.name, body = excluded.body, updated_at = excluded.updated_at",
        (check_deck_id(deck.deck_id), deck.name, deck_to_json(deck), now, now),
    )


def read_decks(conn: sqlite3.Connection) -> list[Deck]:
    """Every deck, by name."""
    rows = conn.execute("SELECT body FROM decks ORDER BY name COLLATE NOCASE, deck_id").fetchall()
    return [parse_deck(body) for (body,) in rows]


def read_deck_names(conn: sqlite3.Connection) -> dict[str, str]:
    """deck id → name of every deck, by name (without reading their scenes)."""
    query = "SELECT deck_id, name FROM decks ORDER BY name COLLATE NOCASE, deck_id"
    return dict(conn.execute(query).fetchall())


def read_deck(conn: sqlite3.Connection, deck_id: str) -> Deck | None:
    row = conn.execute("SELECT body FROM decks WHERE deck_id = ?", (deck_id,)).fetchone()
    return None if row is None else parse_deck(row[0])


def free_deck_id(conn: sqlite3.Connection, wanted: str) -> str:
    """``wanted`` if no deck has it, else ``wanted-2``, ``wanted-3``, …"""
    taken = {r[0] for r in conn.execute("SELECT deck_id FROM decks")}
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted[:58]}-{n}" in taken:
        n += 1
    return f"{wanted[:58]}-{n}"
