"""When the live area rebuilds its figures (ui.run_view.needs_rebuild)."""

from __future__ import annotations

import pytest

from ui.run_view import FIGURE_CPU_SHARE, FigureKey, needs_rebuild

OLD = FigureKey("run-a", last_update=10, last_step=10_240, events=0, large=False)


def test_unchanged_data_never_rebuilds():
    assert not needs_rebuild(OLD, OLD, 1e6, 0.3, active=True)
    assert not needs_rebuild(OLD, OLD, 1e6, 0.3, active=False)


def test_new_updates_of_an_active_run_wait_until_the_cpu_share_allows_a_rebuild():
    new = OLD._replace(last_update=11, last_step=11_264)
    wait = 0.3 / FIGURE_CPU_SHARE  # a build that cost 0.3 s
    assert not needs_rebuild(OLD, new, 0.5 * wait, 0.3, active=True)
    assert needs_rebuild(OLD, new, wait, 0.3, active=True)
    # cheap figures (10 ms) rebuild on the next one-second refresh
    assert needs_rebuild(OLD, new, 1.0, 0.01, active=True)


@pytest.mark.parametrize(
    ("new", "active"),
    [
        (OLD._replace(run_id="run-b"), True),  # another run
        (OLD._replace(last_update=11, events=1), True),  # a live change: its marker shows at once
        (OLD._replace(large=True), True),  # presentation mode (large fonts)
        (OLD._replace(last_update=11, last_step=11_264), False),  # finished: show its final data
    ],
)
def test_other_run_new_event_font_size_or_inactive_run_rebuild_at_once(new, active):
    assert needs_rebuild(OLD, new, 0.0, 0.3, active=active)
