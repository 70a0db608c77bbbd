"""Shared test setup: one torch thread per test process, a private data directory."""

import sys

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    """Every test writes its run store under its own temporary directory."""
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(autouse=True)
def _main_module_restored():
    """AppTest runs a page as ``__main__`` and leaves it there; a worker process started later
    would import that (by then deleted) script as its own main module and exit with status 1."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def app_manager():
    """A fresh process-wide run manager (``ui.state.get_manager``, what every page uses) on this
    test's data directory; its active runs stopped and it shut down afterwards."""
    from ui.state import get_manager

    get_manager.clear()
    manager = get_manager()
    yield manager
    for run_id in manager.active():
        manager.stop(run_id)
    manager.shutdown()
    get_manager.clear()
