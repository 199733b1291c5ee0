"""Each notebook as an admin uses it: JupyterLab in Chromium, Run All Cells, and what shows.

For every notebook: no cell shows an error, the headline answer is on the page as text, every
plot is an image of real size, no table cuts a value with `...` or runs off the right edge, the
values a person acts on (UUIDs, reasons, next steps) are in the tables in full, and no request
leaves the JupyterLab server. The expected values come from what the notebook recorded (the
test saves the notebook through the UI and reads it back), never from constants. The tests run
in file order on one server: 03 leaves the journal of incident `demo` that 04 reviews.
"""

from __future__ import annotations

import re

import pytest

from runbook_lib.record import read_records
from runbook_lib.smlog.show import VERDICT_WORDS
from tests.ui.notebook_page import ROOT, NotebookPage
from tests.ui.page_checks import assert_in_tables as in_tables
from tests.ui.page_checks import check_plots_and_tables


@pytest.fixture
def notebook(lab, browsing):
    opened = []

    def open_notebook(name: str) -> NotebookPage:
        page = NotebookPage(browsing.page, lab, name)
        page.open()
        opened.append(page)
        return page

    yield open_notebook
    lab.shutdown_kernels()
    assert not browsing.leaving(lab.url), f"requests left the JupyterLab server: {browsing.leaving(lab.url)}"


def run_clean(nb: NotebookPage) -> dict:
    """Run all cells through the UI; no cell may show an error. Returns what the notebook recorded."""
    state = nb.run_all()
    assert not state.errors, f"{nb.name}: cells show errors: {state.errors}"
    return read_records(nb.save())


def check_page(nb: NotebookPage, plot_cells: list[str], screenshot) -> None:
    """A plot of real size below each cell whose code holds a `plot_cells` entry, the page-wide
    checks (page_checks), and a screenshot of the whole notebook."""
    for code in plot_cells:
        cell = nb.page.locator(".jp-CodeCell", has_text=code)
        assert cell.locator(".jp-OutputArea-output img").count() >= 1, f"{nb.name}: no plot below `{code}`"
    check_plots_and_tables(nb.name, nb.page, ROOT, plots=len(plot_cells))
    nb.screenshot(screenshot)


def assert_in_tables(nb: NotebookPage, *values: str) -> None:
    in_tables(nb.name, nb.page, ROOT, *values)


def assert_shown(nb: NotebookPage, text: str) -> None:
    """`text` is visible in the notebook's outputs (not only in its code)."""
    located = nb.outputs().get_by_text(text, exact=False).first
    assert located.is_visible(), f"{nb.name}: {text!r} is not visible"


def test_01_diagnose_smlog_shows_the_verdict(notebook, screenshots):
    nb = notebook("01_diagnose_smlog.ipynb")
    records = run_clean(nb)
    verdict = records["verdict"]["verdict"]
    heading = nb.outputs().get_by_role("heading", name=re.compile(r"^Verdict: "))
    assert heading.is_visible() and heading.inner_text().strip() == f"Verdict: {VERDICT_WORDS[verdict]}"
    assert_shown(nb, records["verdict"]["next_step"].replace("`", ""))  # rendered Markdown: code without backticks
    assert_in_tables(nb, *[v["vdi"] for v in records["vdis"]])
    assert "[recorded" not in nb.output_text()
    assert_shown(nb, "recorded for the audit trail: " + ", ".join(records))
    check_page(nb, ["plot_timeline(found.timeline)"], screenshots / "01_diagnose_smlog.png")


def test_02_size_space_shows_the_sr_chart_and_the_plan(notebook, screenshots):
    nb = notebook("02_size_space.ipynb")
    records = run_clean(nb)
    plan = records["plan"]
    assert plan, "the bundled simulator's pool needs a plan"
    assert_shown(nb, "Plan written to")
    assert_in_tables(nb, f"{plan['sr']['name']} ({plan['sr']['uuid']})", plan["remedy"]["reason"],
                     *[vm["uuid"] for vm in plan["vms"]], *[r["reason"] for r in records["remedies"]])
    check_page(nb, ["show.plot_sr_space(sizing)"], screenshots / "02_size_space.png")


def test_03_transfer_dry_run_then_executed(notebook, screenshots, lab):
    """As an admin does it: the dry run first, then the values its next step names, run again."""
    from runbook_lib.transfer import load_plan, plan_steps

    nb = notebook("03_transfer_and_rescan.ipynb")
    dry = run_clean(nb)["transfer"]
    assert dry["status"] == "dry-run"
    assert_shown(nb, "DRY-RUN")
    steps = plan_steps(load_plan(lab.outputs / "demo" / "plan.json"))
    assert_in_tables(nb, *[s.target for s in steps], *[s.note for s in steps if s.note])
    check_page(nb, ["expected_free_space_figure"], screenshots / "03_transfer_and_rescan-dry-run.png")

    vm = re.search(r"confirm_vm_uuid=([0-9a-f-]{36})", nb.output_text()).group(1)
    nb.append_to_parameters(f'dry_run = False\nconfirm_vm_uuid = "{vm}"')
    done = run_clean(nb)["transfer"]
    assert done["status"] == "done", done
    assert_shown(nb, "DONE")
    check_page(nb, ["expected_free_space_figure", "NotebookReporter()"], screenshots / "03_transfer_and_rescan.png")


def test_04_postmortem_shows_the_record(notebook, screenshots):
    nb = notebook("04_postmortem.ipynb")
    records = run_clean(nb)
    summary = records["postmortem"]["summary"]
    assert nb.outputs().get_by_role("heading", name="Summary").is_visible()
    assert_shown(nb, summary.split(";")[0])
    check_page(nb, ["postmortem.plot_timeline(pm)"], screenshots / "04_postmortem.png")


def test_05_snapshot_hygiene_shows_the_summary(notebook, screenshots):
    nb = notebook("05_snapshot_hygiene.ipynb")
    records = run_clean(nb)
    breaches = records["breach"]
    assert_shown(nb, f"{len(breaches)} breach(es)" if breaches else "clean")
    for line in breaches:
        assert_shown(nb, line)
    hygiene = records["hygiene"]
    assert_in_tables(nb, *[row["check"] for row in hygiene["summary"]],
                     *[row["next_step"] for row in hygiene["gc_failures"]])
    check_page(nb, ["hygiene.plot(report)"], screenshots / "05_snapshot_hygiene.png")
