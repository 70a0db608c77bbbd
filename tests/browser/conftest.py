"""Browser fixtures: the real app (``streamlit run app.py``) driven by Playwright + Chromium.

The server runs on a free loopback port with its own ``PLAYGROUND_DATA_DIR``, seeded with a small
comparison group so that the Compare and Runs pages have something to show. Waiting follows
Streamlit's own e2e helpers: poll ``/_stcore/health``, then wait for the app view container.
Screenshots go to ``artifacts/screenshots/``; with ``PLAYGROUND_DOCS_SCREENSHOTS=1`` they are also
copied to ``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DEMO_GROUP = "demo-compare"
DEMO_BUDGET = int(os.environ.get("PLAYGROUND_DEMO_BUDGET", "12288"))
START_TIMEOUT_S = 90.0


@dataclass
class Demo:
    """The data the server starts with: a finished comparison group."""

    data_dir: Path
    run_ids: list[str]
    group: str


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """TRPO vs PPO, two seeds each, a short CartPole budget: trained headless before the app."""
    import torch

    from core.engine.algos import preset_config, presets
    from core.runtime.runner import RunManager
    from core.runtime.store import RunStore

    torch.set_num_threads(1)
    data_dir = tmp_path_factory.mktemp("browser-data")
    manager = RunManager(RunStore(data_dir), max_concurrent=2)
    run_ids = []
    for algo in ("trpo", "ppo"):
        preset = next(iter(presets(algo, "CartPole-v1")))
        for seed in (0, 1):
            config = preset_config(
                algo, "CartPole-v1", preset, total_steps=DEMO_BUDGET, seed=seed, eval_every=0
            )
            run_ids.append(manager.start(config, name=f"{algo} · seed {seed}", sweep_id=DEMO_GROUP))
    for run_id in run_ids:
        assert manager.wait(run_id, timeout=600) == "finished"
    manager.shutdown()
    return Demo(data_dir, run_ids, DEMO_GROUP)


@contextmanager
def served_app(data_dir: Path) -> Iterator[str]:
    """``streamlit run app.py`` on a free loopback port with ``PLAYGROUND_DATA_DIR=data_dir``;
    yields its base URL and stops the server afterwards."""
    port = free_port()
    env = {**os.environ, "PLAYGROUND_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    log_path = data_dir / "streamlit.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", "app.py",
                "--server.port", str(port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, server, log_path)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture(scope="session")
def app_url(demo: Demo) -> Iterator[str]:
    """The app serving the ``demo`` data; yields its base URL."""
    with served_app(demo.data_dir) as url:
        yield url


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    """Poll the health endpoint until it answers ``ok`` (the server process must stay alive)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        try:  # wait on the process itself: returns early if it dies
            server.wait(timeout=0.25)
        except subprocess.TimeoutExpired:
            continue
    raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def wait_for_app(page, url: str) -> None:
    """Open ``url`` and wait like Streamlit's e2e helpers: the app container, then the first run."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stAppViewContainer"]', state="attached")
    page.wait_for_selector('[data-testid="stMain"] h1', state="visible")
    wait_idle(page)


def wait_idle(page) -> None:
    """Wait until the script is not running: the app says so on its root element (the status
    widget's running icon shows only after a delay, so a page whose first run is still drawing
    its widgets looks idle by that alone), and no skeleton waits for content."""
    page.wait_for_function(
        """() => document.querySelector('[data-testid="stApp"]')
                   ?.getAttribute('data-test-script-state') === 'notRunning'
                && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]')
                && !document.querySelector('[data-testid="stSkeleton"]')"""
    )


LIVE_CHARTS_DRAWN = """() => !window.__liveChartDrawing?.busy
  && [...document.querySelectorAll('div.live-chart')].every((el) => !el.next)"""


def screenshot(page, name: str) -> Path:
    """Save the page (the whole scrollable main area) as ``<name>.png`` in the artifacts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    height = page.evaluate(
        "() => Math.max(document.querySelector('[data-testid=\\\"stMain\\\"]')?.scrollHeight || 0,"
        " document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": 1440, "height": min(max(int(height) + 40, 900), 4000)})
    # live charts that were below the fold draw their latest figure once they come into view
    # (ui/js/plotly_queue.js): wait for that, so the picture does not show a stale one
    page.wait_for_function(LIVE_CHARTS_DRAWN, timeout=30_000)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1000})
    if os.environ.get("PLAYGROUND_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / path.name)
    return path
