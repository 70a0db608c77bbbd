"""When the live area rebuilds its figures (ui.run_view.needs_rebuild)."""

from __future__ import annotations

import pytest

from ui.run_view import FIGURE_CPU_SHARE, needs_rebuild

OLD = ("run-a", 10, 10_240, 0, False)  # run id, last update, last env step, events, large


def test_first_refresh_builds_and_unchanged_data_never_rebuilds():
    assert needs_rebuild(None, OLD, 0.0, 0.0, active=True)
    assert not needs_rebuild(OLD, OLD, 1e6, 0.3, active=True)
    assert not needs_rebuild(OLD, OLD, 1e6, 0.3, active=False)


def test_new_updates_of_an_active_run_wait_until_the_cpu_share_allows_a_rebuild():
    new = ("run-a", 11, 11_264, 0, False)
    wait = 0.3 / FIGURE_CPU_SHARE  # a build that cost 0.3 s
    assert not needs_rebuild(OLD, new, 0.5 * wait, 0.3, active=True)
    assert needs_rebuild(OLD, new, wait, 0.3, active=True)
    # cheap figures (10 ms) rebuild on the next one-second refresh
    assert needs_rebuild(OLD, new, 1.0, 0.01, active=True)


@pytest.mark.parametrize(
    ("new", "active"),
    [
        (("run-b", 11, 11_264, 0, False), True),  # another run
        (("run-a", 11, 11_264, 1, False), True),  # a live change: its marker shows at once
        (("run-a", 10, 10_240, 0, True), True),  # presentation mode (large fonts)
        (("run-a", 11, 11_264, 0, False), False),  # the run finished: show its final data
    ],
)
def test_other_run_new_event_font_size_or_inactive_run_rebuild_at_once(new, active):
    assert needs_rebuild(OLD, new, 0.0, 0.3, active=active)
