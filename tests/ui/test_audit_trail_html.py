"""The HTML audit trail opens offline: each executed notebook's HTML (what `runbook run` writes
beside it) and the postmortem's own HTML, shown in Chromium with the network cut off, render
their text, tables and plots and ask for nothing but the file itself.

Every request the page makes is recorded; any that is not the file (or an inline `data:` image)
fails the test, and is refused so that a page that needs the network shows it here.
"""

from __future__ import annotations

import pytest

from runbook_lib.audit.runner import run_notebook
from runbook_lib.smlog.show import VERDICT_WORDS
from tests.ui.page_checks import assert_in_tables, check_plots_and_tables

INCIDENT = "ui-html"


@pytest.fixture(scope="module")
def trail(tmp_path_factory):
    """Notebooks 01, 02, 03 (dry run), 05 and 04 run as `runbook run` runs them, into one incident."""
    outputs = tmp_path_factory.mktemp("outputs")
    runs = {name: run_notebook(name, INCIDENT, outputs=outputs) for name in ("01", "02", "03", "05", "04")}
    for name, result in runs.items():
        assert result.exit_code in (0, 3), f"{name}: {result.error}"  # 05 finds breaches on the simulator
        assert result.html is not None and result.html.is_file(), f"{name}: no HTML ({result.index_record})"
    return runs


def open_offline(browser, path, screenshot):
    """Show `path` with the network cut off; returns the page and the requests that left the file."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    url = path.resolve().as_uri()
    leaving: list[str] = []
    # anything but a file is refused (offline=True cuts the network too); every request that is
    # not this file or an inline image is recorded
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page = context.new_page()
    page.on("request", lambda request: None if request.url.split("#")[0] == url or request.url.startswith("data:")
            else leaving.append(request.url))
    page.goto(url, wait_until="load")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), \
        f"{path.name} is wider than the window: it scrolls sideways"
    page.screenshot(path=str(screenshot), full_page=True)
    return context, page, leaving


@pytest.mark.parametrize("name", ["01", "02", "03", "05", "04"])
def test_the_executed_notebook_html_renders_offline(browser, trail, screenshots, name):
    result = trail[name]
    context, page, leaving = open_offline(browser, result.html, screenshots / f"audit-trail-{name}.png")
    try:
        assert not leaving, f"{result.html.name} asked for: {leaving}"
        check_plots_and_tables(result.html.name, page, "body")
        records = result.records
        body = page.locator("body")
        if name == "01":
            heading = f"Verdict: {VERDICT_WORDS[records['verdict']['verdict']]}"
            assert page.get_by_role("heading", name=heading).is_visible()
            assert_in_tables(name, page, "body", *[v["vdi"] for v in records["vdis"]])
        elif name == "02":
            plan = records["plan"]
            assert_in_tables(name, page, "body", f"{plan['sr']['name']} ({plan['sr']['uuid']})",
                             plan["remedy"]["reason"])
        elif name == "03":
            assert "DRY-RUN" in body.inner_text()
        elif name == "05":
            assert all(line in body.inner_text() for line in records["breach"])
        else:
            assert page.get_by_role("heading", name="Summary").is_visible()
            assert records["postmortem"]["summary"] in body.inner_text()
        assert "recorded for the audit trail:" in body.inner_text() and "[recorded" not in body.inner_text()
    finally:
        context.close()


def test_the_postmortem_export_renders_offline(browser, trail, screenshots):
    result = trail["04"]
    html = result.output.with_name(result.records["postmortem"]["html"])
    context, page, leaving = open_offline(browser, html, screenshots / "audit-trail-04-postmortem-export.png")
    try:
        assert not leaving, f"{html.name} asked for: {leaving}"
        assert page.get_by_role("heading", name="Summary").first.is_visible()
        images = page.evaluate("() => [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert images and all(ok and w >= 300 and h >= 150 for ok, w, h in images), images
    finally:
        context.close()
