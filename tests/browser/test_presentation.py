"""Presentation mode in headless Chromium: ``?present=1`` opens a page in it, the switch is kept
across pages and in the URL, the Trust Region Lab's main chart and its legend fit the screen, and
no button label or table column is cut. The lab's tests run on their own server with an empty
data directory; the tour of every page uses the session's ``demo`` runs (Compare and Runs need
them). Screenshots of every page go to ``artifacts/screenshots/present-*.png``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import ARTIFACTS, served_app, wait_for_app, wait_idle

PRESENT_JS = "() => new URLSearchParams(location.search).get('present')"
CHART = ".st-key-trl_chart"
# The lab's chart has been drawn at the height the page gave it (Streamlit redraws the figure
# at its container's height) and the fit script has measured where it starts.
CHART_SETTLED_JS = f"""() => {{
  const box = document.querySelector('{CHART} [data-testid="stPlotlyChart"]');
  const svg = box && box.querySelector('.main-svg');
  const legend = box && box.querySelector('.legend');
  return !!(svg && legend && document.querySelector('{CHART}').style.getPropertyValue('--fit-top')
            && Math.abs(svg.getBoundingClientRect().height - box.clientHeight) < 2);
}}"""
BOXES_JS = f"""() => {{
  const box = e => e && e.getBoundingClientRect().toJSON();
  const chart = document.querySelector('{CHART} [data-testid="stPlotlyChart"]');
  return {{chart: box(chart), legend: box(chart.querySelector('.legend')),
           xtitle: box(chart.querySelector('.xtitle')), plot: box(chart.querySelector('.nsewdrag')),
           scroll: document.querySelector('[data-testid="stMain"]').scrollTop}};
}}"""
# Labels and values that do not fit their box: buttons, widget labels, metric labels, values and
# deltas, tables (a table wider than its frame scrolls, which hides columns).
CUT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const cut = [];
  const sel = ['[data-testid^="stBaseButton"] p', '[data-testid="stMetricValue"] > div',
               '[data-testid="stMetricLabel"] p', '[data-testid="stMetricDelta"] div',
               '[data-testid="stWidgetLabel"] p'];
  for (const el of main.querySelectorAll(sel.join(','))) {
    if (el.offsetParent && el.scrollWidth > el.clientWidth + 1) cut.push(el.innerText);
  }
  for (const t of main.querySelectorAll('[data-testid="stTable"]')) {
    const table = t.querySelector('table');
    if (t.offsetParent && table.scrollWidth > t.clientWidth + 1) cut.push('table: ' +
      table.querySelector('thead').innerText.replace(/\\s+/g, ' '));
  }
  return cut;
}"""
# The first chart of the page that is shown: its box, the main area's scroll, its legend's box.
FIRST_CHART_JS = """(selector) => {
  const main = document.querySelector('[data-testid="stMain"]');
  const chart = [...main.querySelectorAll(selector)].find(e => e.offsetParent !== null);
  const box = e => e && e.getBoundingClientRect().toJSON();
  return {chart: box(chart), legend: box(chart.querySelector('.legend')), scroll: main.scrollTop};
}"""
# Drawn (its legend is there) and, for a chart sized to the screen, at the height it was given.
CHART_DRAWN_JS = """(selector) => {
  const chart = [...document.querySelectorAll(selector)].find(e => e.offsetParent !== null);
  const svg = chart && chart.querySelector('.main-svg');
  return !!(svg && chart.querySelector('.legend')
            && Math.abs(svg.getBoundingClientRect().height - chart.clientHeight) < 2);
}"""
LEAD_CHARTS = {  # page → its first chart (the run panel's and Compare's charts are live charts)
    "train": ".live-chart",
    "runs": ".live-chart",
    "compare": ".live-chart",
    "gae-lab": '.st-key-gae_chart [data-testid="stPlotlyChart"]',
}
TALL_CHARTS_JS = """() => [...document.querySelectorAll('[data-testid="stMain"] .stPlotlyChart')]
  .filter(e => e.offsetParent && e.getBoundingClientRect().height > innerHeight).length"""
PAGES = {  # url path → screenshot name
    "": "home",
    "train": "train",
    "compare": "compare",
    "runs": "runs",
    "trust-region-lab": "trust-region-lab",
    "gae-lab": "gae-lab",
    "inspector": "inspector",
}


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on an empty ``PLAYGROUND_DATA_DIR`` (the labs need no runs)."""
    with served_app(tmp_path_factory.mktemp("present-data")) as url:
        yield url


def _screen(browser, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


@pytest.fixture
def projector(browser):
    """A 1280×720 page: a lecture-hall projector."""
    context, page = _screen(browser, 1280, 720)
    yield page
    context.close()


def _open(page, base: str, path: str) -> None:
    """Open ``base/path`` (the app's first page once, so the deep link runs through the app's
    navigation) and wait until it has run."""
    if page.url == "about:blank":
        wait_for_app(page, base)
    wait_for_app(page, f"{base}/{path}")


def _inside(box: dict, width: int, height: int) -> bool:
    return (
        box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width
        and box["y"] + box["height"] <= height
    )


def _overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _shot(page, name: str, screens: int = 1) -> None:
    """Screenshots of the first ``screens`` screenfuls of the page: ``name.png``, ``name-2.png``…
    (the main area scrolls, so a full-page shot would show only the first screen)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    main = page.locator('[data-testid="stMain"]')
    for i in range(screens):
        if i and not main.evaluate("e => e.scrollTop + e.clientHeight < e.scrollHeight - 1"):
            break
        main.evaluate(f"e => {{ e.scrollTop = {i} * (e.clientHeight - 40); }}")
        page.screenshot(path=str(ARTIFACTS / f"{name}{f'-{i + 1}' if i else ''}.png"))
    main.evaluate("e => { e.scrollTop = 0; }")


@pytest.mark.parametrize("width,height", [(1280, 720), (1920, 1080)])
def test_a_present_link_fits_the_labs_chart_and_legend_on_the_screen(
    browser, lab_url, width, height
):
    context, page = _screen(browser, width, height)
    try:
        _open(page, lab_url, "trust-region-lab?present=1")
        page.wait_for_function(CHART_SETTLED_JS)
        boxes = page.evaluate(BOXES_JS)
        _shot(page, f"present-trust-region-lab-{width}x{height}")
        print(f"{width}×{height}:", boxes)
        assert boxes["scroll"] == 0
        assert _inside(boxes["chart"], width, height), boxes
        assert _inside(boxes["legend"], width, height), boxes
        assert not _overlap(boxes["legend"], boxes["xtitle"]), boxes
        assert not _overlap(boxes["legend"], boxes["plot"]), boxes
        assert boxes["plot"]["height"] >= 250, boxes  # the picture, not just a legend
        assert page.evaluate(CUT_JS) == []
        assert page.evaluate(PRESENT_JS) == "1"
    finally:
        context.close()


def test_the_switch_is_kept_across_pages_and_in_the_url(projector, lab_url):
    page = projector
    _open(page, lab_url, "gae-lab")
    switch = page.locator('[data-testid="stSidebar"] .st-key-ui-large')
    toggle = switch.locator('input[role="switch"]')
    assert not toggle.is_checked()
    assert page.evaluate(PRESENT_JS) is None
    switch.locator("label").click()
    page.wait_for_function(f"() => ({PRESENT_JS})() === '1'")
    wait_idle(page)
    assert "mdp" in page.url  # the page's own parameters stay beside it
    _shot(page, "present-gae-lab-switched-on")

    # Another page, by the sidebar's link: still on, and in that page's URL.
    if not page.locator('[data-testid="stSidebar"] a[href$="trust-region-lab"]').is_visible():
        page.locator('[data-testid="stExpandSidebarButton"]').click()
    page.locator('[data-testid="stSidebar"] a[href$="trust-region-lab"]').click()
    page.wait_for_function("() => location.pathname.endsWith('trust-region-lab')")
    page.wait_for_function(f"() => ({PRESENT_JS})() === '1' && location.search.includes('delta')")
    wait_idle(page)
    page.wait_for_function(CHART_SETTLED_JS)
    assert toggle.is_checked()
    assert _inside(page.evaluate(BOXES_JS)["legend"], 1280, 720)

    # The lab rewrites its URL on every step of the step-through: present=1 stays.
    page.locator('[data-testid="stMain"] h1').click()
    page.keyboard.press("Home")
    page.wait_for_function("() => new URLSearchParams(location.search).get('stage') === '0'")
    wait_idle(page)
    assert page.evaluate(PRESENT_JS) == "1"

    # Off: the parameter leaves the URL, the page's own stay.
    if not switch.is_visible():
        page.locator('[data-testid="stExpandSidebarButton"]').click()
    switch.locator("label").click()
    page.wait_for_function(f"() => ({PRESENT_JS})() === null")
    wait_idle(page)
    assert "stage=0" in page.url
    assert not toggle.is_checked()
    padding = page.evaluate(
        "() => getComputedStyle(document.querySelector('[data-testid=\"stMainBlockContainer\"]'))"
        ".paddingTop"
    )
    assert padding != "40px"  # the normal layout is back


def test_the_labs_buttons_and_trials_table_are_not_cut_in_either_mode(projector, lab_url):
    page = projector
    for query, name in (("", "normal"), ("?present=1", "present")):
        _open(page, lab_url, f"trust-region-lab{query}")
        page.wait_for_selector('[data-testid="stTable"]')
        assert page.evaluate(CUT_JS) == [], name
        verdicts = page.locator('[data-testid="stTable"] td', has_text="rejected")
        assert verdicts.count() >= 1
        assert verdicts.first.evaluate("e => e.scrollWidth <= e.clientWidth + 1")


def test_every_page_in_presentation_mode_fits_and_cuts_nothing(projector, app_url, demo):
    page = projector
    run = f"run={demo.run_ids[0]}&"  # TRPO: the inspector has its updates
    queries = {"runs": run, "inspector": run, "compare": f"group={demo.group}&"}
    for path, name in PAGES.items():
        _open(page, app_url, f"{path}?{queries.get(path, '')}present=1")
        if path == "trust-region-lab":
            page.wait_for_function(CHART_SETTLED_JS)
        if path == "inspector":
            page.wait_for_selector(".st-key-insp_plane .main-svg")
        assert page.locator('[data-testid="stException"]').count() == 0, name
        assert page.evaluate(PRESENT_JS) == "1", name
        assert page.evaluate(CUT_JS) == [], name
        assert page.evaluate(TALL_CHARTS_JS) == 0, name
        if path == "compare":  # the summary as an HTML table in the larger type
            summary = page.locator('[data-testid="stTable"]').first
            summary.scroll_into_view_if_needed()
            text = summary.inner_text()
            assert "trpo" in text and "ppo" in text, text
            size = summary.locator("td").first.evaluate("e => getComputedStyle(e).fontSize")
            assert float(size.removesuffix("px")) >= 18, size
        _shot(page, f"present-{name}", screens=3)
    for path in ("trust-region-lab", "compare"):  # and a few in the normal mode
        _open(page, app_url, f"{path}?{queries.get(path, '')}present=0")
        if path == "trust-region-lab":
            page.wait_for_selector(f"{CHART} .legend")  # drawn: its metrics are there too
        assert page.evaluate(PRESENT_JS) is None
        assert page.evaluate(CUT_JS) == [], path
        _shot(page, f"normal-{PAGES[path]}", screens=2)


@pytest.mark.parametrize("path", list(LEAD_CHARTS))
def test_a_page_leads_with_its_chart_on_a_projector(projector, app_url, demo, path):
    """1280×720, presentation mode, no scrolling: the first chart starts on the screen and at
    least half of it (and its legend) is there; what chooses the view is folded (Train, Runs and
    Compare: under the charts; the GAE Lab: one line above its metrics)."""
    page = projector
    run = f"run={demo.run_ids[0]}&"
    queries = {"train": run, "runs": run, "compare": f"group={demo.group}&"}
    _open(page, app_url, f"{path}?{queries.get(path, '')}present=1")
    selector = LEAD_CHARTS[path]
    page.wait_for_function(CHART_DRAWN_JS, arg=selector)
    boxes = page.evaluate(FIRST_CHART_JS, selector)
    chart, legend = boxes["chart"], boxes["legend"]
    _shot(page, f"present-lead-{PAGES[path]}")
    print(path, boxes)
    assert boxes["scroll"] == 0
    assert 0 <= chart["y"] < 720, boxes
    assert min(chart["y"] + chart["height"], 720) - chart["y"] >= chart["height"] / 2, boxes
    assert _inside(legend, 1280, 720), boxes
    assert page.evaluate(CUT_JS) == [], path
    if path == "runs":  # the table is one click away
        assert page.locator('[data-testid="stExpander"]', has_text="Runs table").count() == 1
    if path == "compare":
        assert page.locator('[data-testid="stExpander"]', has_text=demo.group).count() == 1
    if path == "train":  # a new run's setup, folded under the run
        assert page.locator('[data-testid="stExpander"]', has_text="New run").count() == 1
