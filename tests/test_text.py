"""User text shown as Markdown (ui.text.plain): rendered, it is the same characters, no markup."""

from __future__ import annotations

import re
import string

import markdown  # Python-Markdown, installed with tensorboard (requirements.txt)
import pytest

from ui.text import plain

MARKUP = [
    "![x](http://h/t.png)",
    "**b**",
    "$x$",
    ":red[x]",
    ":material/home:",
    "<img src=x>",
    "[link](javascript:alert(1))",
    "&lt;img src=x&gt;",
    "a_b_ `code` ~~s~~ \\",
]
PUNCTUATION = re.escape(string.punctuation)
TAGS = ("<img", "<a ", "<strong", "<em", "<code", "<del", "<h1", "<ul", "<ol", "<blockquote")


def unescaped(text: str) -> str:
    """What a CommonMark renderer shows for ``text`` made only of characters and backslash
    escapes: each escaped ASCII punctuation character as itself."""
    return re.sub(rf"\\([{PUNCTUATION}])", r"\1", text)


@pytest.mark.parametrize("text", MARKUP)
def test_every_ascii_punctuation_character_is_escaped_and_shows_as_itself(text):
    escaped = plain(text)
    assert re.fullmatch(rf"(\\[{PUNCTUATION}]|[^{PUNCTUATION}])*", escaped), escaped
    assert unescaped(escaped) == text


@pytest.mark.parametrize("text", MARKUP)
def test_rendered_it_has_no_image_link_emphasis_or_html(text):
    html = markdown.markdown(plain(text))
    assert not any(tag in html for tag in TAGS), html
    assert html.startswith("<p>") and html.count("<") == 2, html  # one paragraph of text


def test_line_breaks_become_spaces_so_no_block_starts():
    escaped = plain("a\n\n# heading\r\n- item\n> quote")
    assert "\n" not in escaped and "\r" not in escaped
    assert unescaped(escaped) == "a  # heading - item > quote"
    html = markdown.markdown(escaped)
    assert not any(tag in html for tag in TAGS), html


def test_text_without_punctuation_is_unchanged():
    assert plain("trpo on CartPole · seed 3 ⏳ δ") == "trpo on CartPole · seed 3 ⏳ δ"
    assert plain(RuntimeError("boom")) == "boom"
