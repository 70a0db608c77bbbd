"""A lecture deck in headless Chromium at 1280×720: a deck of three scenes (the lab at two stages
of one TRPO step, then the GAE Lab) plays forward and back with the keyboard, the page and the URL
follow, and the deck owns the arrows (the lab's stepper does not move the stage). The deck page
exports a deck as a file and imports it back unchanged. Its own server on a fresh data directory
holding that deck (no trained runs are needed)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.runtime.decks import Deck, Scene, deck_to_json
from core.runtime.store import RunStore
from tests.browser.conftest import ARTIFACTS, served_app, wait_for_app, wait_idle
from ui.toy_scenario import PRESETS

QUERY_JS = "(name) => new URLSearchParams(location.search).get(name)"
LAB = PRESETS["Rejected full step"]
DECK = Deck(
    "three-scenes",
    "Three scenes",
    (
        Scene("Where we stand", "trust-region-lab", replace(LAB, stage=0).to_query(), "θ_old."),
        Scene("The first CG iterate", "trust-region-lab", replace(LAB, stage=3).to_query()),
        Scene("GAE", "gae-lab", {"lam": "0.5"}, "λ = 0.5."),
    ),
)


@pytest.fixture(scope="module")
def deck_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a fresh data directory that holds :data:`DECK`."""
    data = tmp_path_factory.mktemp("deck-data")
    store = RunStore(data)
    store.save_deck(DECK)
    store.close()
    with served_app(data) as url:
        yield url


@pytest.fixture
def small_page(browser):
    """A 1280×720 page: a lecture-hall projector."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 720}, device_scale_factor=1, accept_downloads=True
    )
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def _param(page, name: str) -> str | None:
    return page.evaluate(QUERY_JS, name)


def _press(page, key: str, scene: str, path: str) -> None:
    """Press ``key``; wait until the URL shows ``scene`` on ``path``, the deck's bar says so (the
    new page's run has started: the URL changes before it) and the page is idle."""
    page.keyboard.press(key)
    page.wait_for_function(
        f"() => new URLSearchParams(location.search).get('scene') === {scene!r}"
        f" && location.pathname.endsWith({path!r})"
    )
    expect(page.locator(".st-key-deck_bar").first).to_contain_text(f"{scene} / 3 · ")
    wait_idle(page)


def _bar(page) -> str:
    return page.locator(".st-key-deck_bar").first.inner_text()


def _stage(page):
    """The lab's step-through title ("4 / 10 · CG iterate x₁")."""
    return page.locator('[data-testid="stMain"] strong', has_text=" / 10 · ").first


def test_a_deck_of_three_scenes_plays_forward_and_back_with_the_keyboard(small_page, deck_url):
    page = small_page
    wait_for_app(page, deck_url)
    wait_for_app(page, deck_url + "/deck?id=three-scenes")
    page.wait_for_function("() => typeof window.__deckKeys === 'function'")
    _press(page, "ArrowRight", "1", "/trust-region-lab")  # → on the deck page: present it
    page.wait_for_function("() => typeof window.__stepperKeys === 'function'")
    assert _param(page, "deck") == "three-scenes" and _param(page, "stage") == "0"
    assert "1 / 3 · Where we stand" in _bar(page)
    expect(_stage(page)).to_contain_text("1 / 10")
    assert not page.locator('[data-testid="stSidebar"]').is_visible()  # presenting: no sidebar

    _press(page, "ArrowRight", "2", "/trust-region-lab")
    assert "2 / 3 · The first CG iterate" in _bar(page)
    assert _param(page, "stage") == "3"  # the scene's stage: the stepper did not take the key
    expect(_stage(page)).to_contain_text("4 / 10 · CG iterate x₁")
    page.locator(".st-key-trl_chart .main-svg").first.wait_for()  # drawn, for the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS) / "deck-scene-2.png"))

    _press(page, "PageDown", "3", "/gae-lab")  # a presenter remote's "next"
    assert "3 / 3 · GAE" in _bar(page)
    assert _param(page, "lam") == "0.5" and _param(page, "present") == "1"
    expect(page.get_by_text("λ = 0.5.")).to_be_visible()  # the scene's note

    _press(page, "ArrowLeft", "2", "/trust-region-lab")
    assert _param(page, "stage") == "3"
    expect(_stage(page)).to_contain_text("4 / 10")
    _press(page, "ArrowLeft", "1", "/trust-region-lab")
    assert _param(page, "stage") == "0"
    expect(_stage(page)).to_contain_text("1 / 10")
    assert page.locator('[data-testid="stException"]').count() == 0

    page.get_by_role("button", name="✕").click()  # leave the deck, stay on the page
    page.wait_for_function("() => !new URLSearchParams(location.search).has('deck')")
    wait_idle(page)
    assert _param(page, "stage") == "0"
    page.locator('[data-testid="stMain"] h1').click()
    page.keyboard.press("ArrowRight")  # out of the deck, → is the lab's stepper again
    page.wait_for_function("() => new URLSearchParams(location.search).get('stage') === '1'")


def test_a_deck_exported_from_the_page_imports_back_identical(small_page, deck_url, tmp_path):
    page = small_page
    wait_for_app(page, deck_url)
    wait_for_app(page, deck_url + "/deck?id=three-scenes")
    with page.expect_download() as download:
        page.get_by_role("button", name="three-scenes.json").click()
    path = tmp_path / "three-scenes.json"
    download.value.save_as(path)
    assert path.read_text(encoding="utf-8") == deck_to_json(DECK)

    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported “Three scenes” as three-scenes-2").wait_for()
    wait_idle(page)
    with page.expect_download() as again:
        page.get_by_role("button", name="three-scenes-2.json").click()
    copy = tmp_path / "copy.json"
    again.value.save_as(copy)
    assert copy.read_text(encoding="utf-8") == deck_to_json(replace(DECK, deck_id="three-scenes-2"))
