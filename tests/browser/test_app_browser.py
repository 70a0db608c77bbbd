"""The real app in headless Chromium: every page, a live run on Train, screenshots of each page."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, urlsplit

import pytest

from tests.browser.conftest import Demo, screenshot, wait_for_app, wait_idle

PAGES = {
    "home": "/",
    "train": "/train",
    "compare": "/compare",
    "runs": "/runs",
    "trust-region-lab": "/trust-region-lab",
    "gae-lab": "/gae-lab",
    "inspector": "/inspector",
    "deck": "/deck",
}

# Number of points of the trace called `name` in the Plotly chart titled `title`, or (`last`) the
# trace's last x, which grows with every update even where the trace is downsampled to a fixed
# number of points (the return chart's episode dots, ui/charts/run.py MAX_DOTS).
TRACE_JS = """([title, prefix, last]) => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const t = (gd.layout && gd.layout.title && gd.layout.title.text) || '';
    if (!t.includes(title)) continue;
    for (const tr of gd.data || []) {
      // numpy data arrives base64-encoded; Plotly keeps the decoded array in _inputArray
      const x = tr.x && (tr.x._inputArray || tr.x);
      if (!(tr.name || '').startsWith(prefix)) continue;
      if (!x || !x.length) return 0;
      return last ? Number(x[x.length - 1]) : x.length;
    }
  }
  return 0;
}"""


def assert_no_exception(page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def points(page, title: str, prefix: str) -> int:
    return page.evaluate(TRACE_JS, [title, prefix, False])


def wait_points_above(page, title: str, prefix: str, n: int, timeout: float = 60_000) -> int:
    page.wait_for_function(
        f"(args) => ({TRACE_JS})(args) > {n}", arg=[title, prefix, False], timeout=timeout
    )
    return points(page, title, prefix)


def wait_last_x_above(page, title: str, prefix: str, x: float, timeout: float = 60_000) -> float:
    """Wait until the trace's last x (env steps) passes ``x``; return it."""
    page.wait_for_function(
        f"(args) => ({TRACE_JS})(args) > {x}", arg=[title, prefix, True], timeout=timeout
    )
    return page.evaluate(TRACE_JS, [title, prefix, True])


def nav_links(page) -> set[str]:
    hrefs = page.eval_on_selector_all(
        '[data-testid="stSidebarNav"] a', "els => els.map(e => e.getAttribute('href'))"
    )
    return {re.sub(r"^https?://[^/]+", "", h).rstrip("/") or "/" for h in hrefs}


def tour_links(page) -> set[str]:
    """The pages the main area's cards link to (the home page's tour)."""
    hrefs = page.eval_on_selector_all(
        '[data-testid="stMain"] [data-testid="stPageLink"] a',
        "els => els.map(e => e.getAttribute('href'))",
    )
    return {"/" + urlsplit(h).path.strip("/") for h in hrefs}


def test_a_deep_link_as_first_request_still_gets_the_app_navigation(page, app_url, demo: Demo):
    """Runs first in this module, so it is the server's first page request: a shared link."""
    wait_for_app(page, app_url + f"/runs?run={demo.run_ids[0]}")
    assert nav_links(page) == set(PAGES.values())
    page.get_by_role("tab", name=re.compile("Charts")).wait_for()
    assert_no_exception(page)


CHARTS_DRAWN = """() => {
  const charts = document.querySelectorAll('[data-testid="stPlotlyChart"], div.live-chart');
  return charts.length > 0
    && [...charts].every((c) => c.querySelector('.js-plotly-plot .main-svg'));
}"""


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_renders_in_the_browser(page, app_url, demo: Demo, name):
    query = {
        "compare": f"?group={demo.group}",
        "runs": f"?run={demo.run_ids[0]}",
        "inspector": f"?run={demo.run_ids[0]}&update=2",
    }.get(name, "")
    wait_for_app(page, app_url + PAGES[name] + query)
    assert_no_exception(page)
    if name == "home":
        assert nav_links(page) == set(PAGES.values()), "the sidebar lists every page"
        assert tour_links(page) == set(PAGES.values()) - {"/"}, "the tour has a card per page"
    # Train shows charts once a run is started (test below); the deck page lists scenes
    if name not in ("home", "train", "deck"):
        page.wait_for_function(CHARTS_DRAWN, timeout=60_000)
    wait_idle(page)
    screenshot(page, name)


def test_train_run_charts_grow_live_and_stop(page, app_url):
    wait_for_app(page, app_url + "/train?algo=trpo&env=CartPole-v1")
    page.get_by_role("button", name="▶ Start").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]+"))
    kl = wait_points_above(page, "KL per update", "exact mean KL", 0)
    wait_points_above(page, "KL per update", "exact mean KL", kl)  # the chart grows by itself
    last = wait_last_x_above(page, "Episode return", "episode return", 0)
    wait_last_x_above(page, "Episode return", "episode return", last)  # so does the return chart
    assert points(page, "Line search", "accepted") + points(page, "Line search", "rejected") > 0
    assert_no_exception(page)
    if os.environ.get("PLAYGROUND_DOCS_SCREENSHOTS") == "1":  # a fuller picture for the README
        wait_points_above(page, "KL per update", "exact mean KL", 12, timeout=300_000)
    screenshot(page, "train-live")
    page.get_by_role("button", name="⏹ Stop").click()
    page.get_by_text(re.compile(r"\bstopped\b")).first.wait_for()
    assert_no_exception(page)


BAR_COLOR = """() => getComputedStyle(document.querySelector('.run-panel .rp-bar-fill'))
  .backgroundColor"""
RED, GREEN, GREY = "rgb(255, 75, 75)", "rgb(33, 195, 84)", "rgb(128, 132, 149)"


def test_runs_page_plays_a_trained_agent(page, app_url, demo: Demo):
    wait_for_app(page, app_url + f"/runs?run={demo.run_ids[0]}")
    page.locator(".run-panel .rp-bar-fill").wait_for()
    assert page.evaluate(BAR_COLOR) == GREEN  # a finished run's bar is green, not red
    page.get_by_role("tab", name=re.compile("Watch it play")).click()
    page.get_by_role("button", name=re.compile("Play one episode")).click()
    image = page.locator('[data-testid="stImage"] img')
    image.wait_for(timeout=120_000)
    assert "Greedy policy" in page.locator('[data-testid="stImageCaption"]').inner_text()
    assert_no_exception(page)
    screenshot(page, "runs-watch")


# -- the live loop ---------------------------------------------------------------------------------

LIVE = 'div.live-chart[data-chart="{name}"]'


def start_long_run(page, app_url: str) -> None:
    """Start a TRPO run with a budget that outlasts the test (and ends by itself within about
    a minute and a half if a failing test leaves it running), and wait for its first KL point."""
    wait_for_app(page, app_url + "/train?algo=trpo&env=CartPole-v1")
    page.get_by_role("tab", name="Budget and rollout").click()
    budget = page.get_by_label("Budget (env steps)", exact=True)
    budget.fill("400k")
    budget.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="▶ Start").click()
    page.wait_for_url(re.compile(r"run=[0-9a-f]+"))
    wait_points_above(page, "KL per update", "exact mean KL", 0)


def draws(page, name: str) -> int:
    return int(page.locator(LIVE.format(name=name)).get_attribute("data-draws") or 0)


def wait_draws_above(page, name: str, n: int, timeout: float = 60_000) -> None:
    page.wait_for_function(
        "([sel, n]) => Number(document.querySelector(sel)?.dataset.draws || 0) > n",
        arg=[LIVE.format(name=name), n],
        timeout=timeout,
    )


def test_live_charts_keep_their_node_and_zoom_and_raise_no_errors_while_training(page, app_url):
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    start_long_run(page, app_url)
    page.wait_for_function(
        "(sel) => document.querySelector(sel)?.dataset.lastX > 20000",
        arg=LIVE.format(name="kl"),
        timeout=120_000,
    )
    chart = page.locator(LIVE.format(name="kl"))
    chart.evaluate("el => { el.dataset.original = 'yes'; }")  # gone if the node is replaced
    box = page.locator(LIVE.format(name="kl") + " .nsewdrag").first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)  # drag a zoom box over the middle
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    zoomed = chart.evaluate("el => el.layout.xaxis.range.slice()")
    before = draws(page, "kl")
    for i in range(40):  # hover across the chart while it keeps being redrawn
        page.mouse.move(box["x"] + box["width"] * (0.1 + 0.02 * i), y)
        page.wait_for_timeout(50)
    wait_draws_above(page, "kl", before + 2)
    assert chart.evaluate("el => el.dataset.original") == "yes", "the chart's node was replaced"
    after = chart.evaluate("el => el.layout.xaxis.range.slice()")
    assert after == pytest.approx(zoomed), "the zoom was lost on a refresh"
    assert errors == [], errors
    assert_no_exception(page)
    page.get_by_role("button", name="⏹ Stop").click()  # Pause and Stop: the test below


MARKERS_JS = """(name = 'kl') => (document.querySelector(`div.live-chart[data-chart="${name}"]`)
  ?.layout?.shapes || []).length"""
STATUS_IS = """(word) => (document.querySelector('.run-panel .rp-status-text')?.innerText || '')
  .includes(word)"""


def test_a_pause_in_one_tab_shows_in_another_watching_the_same_run(browser, app_url):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    first, second = context.new_page(), context.new_page()
    start_long_run(first, app_url)
    run_url = first.url
    wait_for_app(second, app_url + "/train")
    second.get_by_role("button", name="Watch").first.click()  # the plain tab lists the run
    second.wait_for_url(re.compile(r"run=[0-9a-f]+"))
    assert second.url.split("run=")[1][:12] == run_url.split("run=")[1][:12]
    second.get_by_text(re.compile(r"\brunning\b")).first.wait_for()
    first.get_by_role("button", name="⏸ Pause").click()
    first.get_by_text(re.compile(r"\bpaus(ing…|ed)\b")).first.wait_for()  # the click landed
    second.wait_for_function(STATUS_IS, arg="paused", timeout=30_000)
    first.get_by_role("button", name="⏹ Stop").click()
    first.get_by_text(re.compile(r"\bstopped\b")).first.wait_for(timeout=60_000)
    context.close()


def test_live_changes_pauses_resumes_and_a_stop_leave_the_page_working(page, app_url):
    """Each command reruns part of the page while the live area refreshes on its own; none may
    break the page (a fragment refresh addressed to a moved position blanks the app) or replace
    a chart (a message appearing above it must not move it)."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    start_long_run(page, app_url)
    sidebar = page.locator('[data-testid="stSidebar"]')
    delta = sidebar.locator('[data-testid="stSlider"]', has_text="KL bound δ")
    slider = delta.get_by_role("slider")
    kl = page.locator(LIVE.format(name="kl"))
    kl.evaluate("(el) => { el.tagged = true; }")  # a mark that only this DOM node carries
    for cycle in range(3):
        shapes = page.evaluate(f"() => ({MARKERS_JS})()")
        # a slow chart (redrawn every 5th round, the server leaves it out of the other rounds)
        # gets the marker too
        slow = page.evaluate(f"() => ({MARKERS_JS})('diagnostics')")
        slider.focus()
        slider.press("ArrowRight")
        sidebar.get_by_role("button", name="Apply from the next update").click()
        page.wait_for_function(f"() => ({MARKERS_JS})() > {shapes}", timeout=30_000)
        diagnostics = page.locator(LIVE.format(name="diagnostics"))
        diagnostics.scroll_into_view_if_needed()  # charts out of view are not drawn
        page.wait_for_function(f"() => ({MARKERS_JS})('diagnostics') > {slow}", timeout=30_000)
        kl.scroll_into_view_if_needed()
        page.get_by_role("button", name="⏸ Pause").click()
        page.wait_for_function(STATUS_IS, arg="paused", timeout=30_000)
        assert page.evaluate(BAR_COLOR) == GREY
        page.get_by_role("button", name="⏯️ Resume").click()
        page.wait_for_function(STATUS_IS, arg="running", timeout=30_000)
        assert page.evaluate(BAR_COLOR) == RED
        assert kl.evaluate("(el) => el.tagged") is True, f"cycle {cycle}: the chart was replaced"
    page.get_by_role("button", name="⏹ Stop").click()
    page.wait_for_function(STATUS_IS, arg="stopped", timeout=30_000)
    assert page.evaluate(BAR_COLOR) == GREY
    page.get_by_role("button", name="▶ Start").wait_for()  # the page redrew after the run ended
    assert errors == [], errors
    assert_no_exception(page)


# -- user text is shown as typed, never as Markdown (issue 13, item 4) ----------------------------

OUTSIDE_IMAGE = "![x](http://127.0.0.1:9/x.png)"  # another port: another origin than the app's


def test_markdown_in_a_run_name_or_link_loads_nothing_from_outside(page, app_url, demo: Demo):
    """A run name, its error and a link's value holding a Markdown image show as typed on every
    page that quotes them; the browser asks no other origin for anything."""
    from core.config import RunConfig
    from core.runtime.store import RunStore

    name = f"{OUTSIDE_IMAGE} **bold**"
    store = RunStore(demo.data_dir)  # the server's store, as the CLI writes to it
    run_id = store.create_run(RunConfig(algo="trpo"), name=name, status="failed")
    store.set_status(run_id, "failed", error=f"RuntimeError: {OUTSIDE_IMAGE}")
    store.flush()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    link = quote(OUTSIDE_IMAGE, safe="")
    heading, alert = '[data-testid="stHeading"]', '[data-testid="stAlert"]'
    title = ".run-panel .rp-title"  # the run panel's title, set as text (ui/js/run_panel.js)
    failed = (alert, f"This run failed: RuntimeError: {OUTSIDE_IMAGE}")
    missing = (alert, f"Run {OUTSIDE_IMAGE} is not in the store")
    shown = {
        f"/runs?run={run_id}": [(heading, name), failed],
        f"/train?run={run_id}": [(title, name), failed],
        f"/runs?run={link}": [missing],
        f"/train?run={link}": [missing],
        # every page's note on a link value it cannot use quotes the value as typed
        f"/train?algo={link}": [(alert, f"algorithm (algo) = {OUTSIDE_IMAGE} is not allowed")],
        f"/compare?group={link}": [(alert, f"sweep (group) {OUTSIDE_IMAGE} is not in")],
        f"/inspector?run={link}": [(alert, f"There is no run {OUTSIDE_IMAGE} in")],
        f"/deck?id={link}": [(alert, f"There is no deck {OUTSIDE_IMAGE} in this store")],
        f"/trust-region-lab?delta={link}": [(alert, f"(delta) = {OUTSIDE_IMAGE} is not")],
        f"/gae-lab?lam={link}": [(alert, f"(lam) = {OUTSIDE_IMAGE} is not allowed")],
    }
    try:
        for path, texts in shown.items():
            wait_for_app(page, app_url + path)
            assert page.locator('img[src*="127.0.0.1:9"]').count() == 0, path
            for selector, text in texts:  # shown as typed: no image, no bold
                page.locator(selector, has_text=text).first.wait_for()
            assert_no_exception(page)
    finally:
        store.delete(run_id)
        store.close()
    own = urlsplit(app_url).netloc
    outside = [u for u in requests if urlsplit(u).scheme in ("http", "https")]
    outside = [u for u in outside if urlsplit(u).netloc != own]
    assert outside == [], outside
