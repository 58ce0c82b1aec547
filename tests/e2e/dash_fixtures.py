"""A real HTTP server (waitress in a thread) over a migrated SQLite file, and a Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from orders.store.db import Database, make_engine
from restock.migrate import upgrade
from restock.server import start_web, stop_web
from tests.conftest import AppFactory, require_or_skip
from tests.e2e.conftest import free_port

CHROMIUM = "/usr/bin/chromium"
# Debian's Chromium, not Playwright's download (which can't be fetched here); these flags
# keep it from phoning home or needing a sandbox inside containers.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class LiveServer:
    """A running Restock web server and the database behind it."""

    base_url: str
    db: Database


@pytest.fixture
def live_server(app_factory: AppFactory, tmp_path: Path) -> Iterator[LiveServer]:
    """Restock's WSGI app on waitress, on a free port, over a fresh migrated SQLite file."""
    engine = make_engine(f"sqlite:///{tmp_path / 'restock.db'}")
    upgrade(engine)
    db = Database(engine)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = app_factory(db, public_url=base, http_port=port, config={"TESTING": False})
    server, thread = start_web(app, "127.0.0.1", port, name="e2e-http")
    try:
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        yield LiveServer(base, db)
    finally:
        stop_web(server, thread)
        engine.dispose()


@pytest.fixture
def chromium() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright (skips, or fails under CI, if missing)."""
    if shutil.which(CHROMIUM) is None:
        require_or_skip(f"{CHROMIUM} is not installed (apt package chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - pinned in requirements-dev.txt
        require_or_skip("the playwright Python package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
