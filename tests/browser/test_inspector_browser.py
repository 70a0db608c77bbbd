"""The Update Inspector in headless Chromium: a TRPO run's update opened from its URL shows the
δ contour, the ellipse, the trials and θ_new; the slider moves to another update and the URL
follows; the URL reproduces the view."""

from __future__ import annotations

import re

from tests.browser.conftest import Demo, screenshot, wait_for_app, wait_idle

TITLE_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  return gd && gd.layout && gd.layout.title ? gd.layout.title.text : '';
}"""
NAMES_JS = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  return gd ? (gd.data || []).map((t) => t.name || '') : [];
}"""


def _title(page) -> str:
    return page.evaluate(TITLE_JS)


def _wait_update(page, update: int) -> None:
    page.wait_for_function(f"() => ({TITLE_JS})().includes('Update {update}:')")


def test_the_inspector_opens_an_update_and_the_slider_moves_it(page, app_url, demo: Demo):
    trpo = demo.run_ids[0]  # the demo's first run is TRPO
    wait_for_app(page, app_url + f"/inspector?run={trpo}&update=2")
    _wait_update(page, 2)
    names = page.evaluate(NAMES_JS)
    assert {"exact KL = δ", "quadratic ½dᵀFd = δ", "θ_new", "θ_old"} <= set(names)
    assert any(n.startswith("line search:") for n in names)
    assert not page.locator('[data-testid="stException"]').count()
    screenshot(page, "inspector")

    page.get_by_role("slider").first.press("ArrowRight")
    _wait_update(page, 3)
    page.wait_for_url(re.compile(r"update=3"))
    wait_idle(page)

    wait_for_app(page, page.url)  # the URL alone reproduces the view
    _wait_update(page, 3)


POINT_JS = """([name, i]) => {
  const gd = document.querySelector('div.live-chart[data-chart="kl"]');
  const k = gd.data.findIndex((t) => t.name === name);
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const trace = gd.data[k];
  return [box.left + xa.l2p(trace.x[i]), box.top + ya.l2p(trace.y[i]), trace.customdata[i]];
}"""


def test_a_click_on_a_runs_kl_chart_opens_that_update_in_the_inspector(page, app_url, demo: Demo):
    from ui.charts.trust_region import KL_NAMES

    trpo = demo.run_ids[0]
    wait_for_app(page, app_url + f"/runs?run={trpo}")
    page.wait_for_function(
        "() => Number(document.querySelector('div.live-chart[data-chart=\"kl\"]')"
        "?.dataset.draws || 0) > 0"
    )
    assert page.get_by_text("open that update in the Update Inspector").count() == 1
    x, y, update = page.evaluate(POINT_JS, [KL_NAMES["kl_mean"], 1])
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"/inspector\?run={trpo}&update={int(update)}$"))
    _wait_update(page, int(update))
    assert "θ_new" in page.evaluate(NAMES_JS)
