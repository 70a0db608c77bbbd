"""The Trust Region Lab in headless Chromium at 1280×720: the keyboard steps through a TRPO step
and the stage follows in the URL. Its own server on an empty data directory (the lab needs no
runs, so the session's trained ``demo`` data is not waited for)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import ARTIFACTS, served_app, wait_for_app, wait_idle

STAGE_JS = "() => new URLSearchParams(location.search).get('stage')"


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on an empty ``PLAYGROUND_DATA_DIR``."""
    with served_app(tmp_path_factory.mktemp("lab-data")) as url:
        yield url


@pytest.fixture
def small_page(browser):
    """A 1280×720 page: a lecture-hall projector."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def _press(page, key: str, stage: str | None) -> None:
    """Press ``key`` and wait until the URL's stage is ``stage`` and the page is idle."""
    page.keyboard.press(key)
    page.wait_for_function(f"() => ({STAGE_JS})() === {stage!r}".replace("None", "null"))
    wait_idle(page)


def _title(page) -> str:
    return page.locator('[data-testid="stMain"] strong', has_text=" / ").first.inner_text()


def test_the_keyboard_steps_through_a_trpo_step_and_the_url_follows(small_page, lab_url):
    page = small_page
    wait_for_app(page, lab_url)  # the app's first page, then the lab by its link
    wait_for_app(page, lab_url + "/trust-region-lab?stage=0")
    page.wait_for_function("() => typeof window.__stepperKeys === 'function'")
    assert page.evaluate(STAGE_JS) == "0"
    assert _title(page).startswith("1 / 10")
    _press(page, "ArrowRight", "1")
    assert _title(page).startswith("2 / 10 · The gradient g")
    _press(page, " ", "2")
    assert _title(page).startswith("3 / 10")
    _press(page, "ArrowLeft", "1")
    _press(page, "End", None)  # the whole picture: no stage in the URL
    assert _title(page).startswith("10 / 10 · The update")
    _press(page, "Home", "0")
    page.locator('[data-testid="stSidebar"] input[type="number"]').first.focus()
    page.keyboard.press("ArrowRight")  # typing in a box moves the caret, not the stage
    wait_idle(page)
    assert page.evaluate(STAGE_JS) == "0"
    page.locator('[data-testid="stMain"] h1').click()
    _press(page, "ArrowRight", "1")
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS) / "trust-region-lab-stage.png"))
