"""User text (run names, URL values, messages quoting them) made safe to show as Markdown."""

from __future__ import annotations

import re
import string

_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")


def link_note(
    field: str, given: object, allowed: str, used: str, label: str = "", where: str = "the page"
) -> str:
    """The one line a page shows for a URL value it could not use as given: the parameter (its
    ``label`` and ``field``), the value as typed (:func:`plain`: Markdown in a link shows as
    typed), what is ``allowed``, and what ``where`` uses instead (``used``, written by the app)."""
    name = f"{label} (`{field}`)" if label else f"`{field}`"
    return (
        f"The link's {name} = {plain(given)} is not allowed (allowed: {allowed}); "
        f"{where} uses {used}."
    )


def plain(text: object) -> str:
    """``str(text)`` as Markdown that renders as the same characters, on one line.

    Every ASCII punctuation character gets a backslash (CommonMark allows one before any of them
    and then shows the character itself): no image, link, emphasis, HTML, ``$`` math or
    Streamlit ``:color[…]`` / ``:material/…:`` directive can start in it. Line breaks become
    spaces, so no block (heading, list, quote) can start either.
    """
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).splitlines()))
