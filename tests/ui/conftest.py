"""Fixtures of the browser tests (`make test-ui`; `make test` does not collect tests/ui).

One JupyterLab and one Chromium for the whole session; each test gets a fresh browser context
that records every request the page makes. Screenshots go to build/test-ui/ (or
$RUNBOOK_UI_SCREENSHOTS), emptied at the start of a session, for a reviewer to look at.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.ui.lab import GET_CHROMIUM, Lab, chromium_path, launch_chromium

SCREENSHOTS_ENV = "RUNBOOK_UI_SCREENSHOTS"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or ROOT / "build" / "test-ui")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture(scope="session")
def browser():
    if chromium_path() is None:
        pytest.exit(GET_CHROMIUM, returncode=1)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.exit("Playwright is not installed: make test-ui installs it (pip install -e '.[ui]')", returncode=1)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory, browser):
    server = Lab(tmp_path_factory.mktemp("lab"))
    with server:
        yield server
    assert not server.running_processes(), f"still running after the lab stopped: {server.running_processes()}"


class Recorded:
    """A browser page and every URL it asked for."""

    def __init__(self, context):
        self.context = context
        self.page = context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))

    def leaving(self, allowed: str) -> list[str]:
        """Requests to anywhere but `allowed` (a URL prefix)."""
        return [url for url in self.requests if not url.startswith(allowed)]


@pytest.fixture
def browsing(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield Recorded(context)
    context.close()
