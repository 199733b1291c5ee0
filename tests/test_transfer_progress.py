"""Progress: display handles updated in place in a notebook, plain lines in a terminal."""

import datetime as dt

import IPython.display

from runbook_lib.transfer.plan_steps import Step
from runbook_lib.transfer.progress import ConsoleReporter, NotebookReporter, free_space_figure

STEP = Step("vm:copy-out", "vm" * 18, "copy-out", "Async.VM.copy", "VM 'db01'", True, {"stg": -5})


class Handle:
    def __init__(self, first):
        self.shown = [first]

    def update(self, obj, **kw):
        self.shown.append(obj)


def test_notebook_reporter_updates_three_handles_in_place(monkeypatch):
    handles = []

    def fake_display(obj, raw=False, display_id=False):
        assert display_id is True  # never a new output per update
        handles.append(Handle(obj))
        return handles[-1]

    monkeypatch.setattr(IPython.display, "display", fake_display)
    reporter = NotebookReporter({"src": "Local SATA"}, plot_every_s=0)
    line, table, plot = handles
    reporter.step_started(STEP)
    reporter.progress("copy-out:  60.0%")
    reporter.step_ended(STEP, "done", "copy c1")
    start = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
    reporter.sample({"src": 10}, when=start)
    reporter.sample({"src": 20}, when=start + dt.timedelta(seconds=5))
    assert len(handles) == 3
    assert line.shown[-1] == {"text/plain": "copy-out:  60.0%"}
    assert list(table.shown[-1]["status"]) == ["done"]
    assert len(plot.shown) >= 2 and hasattr(plot.shown[-1], "savefig")


def test_console_reporter_prints_outcomes_and_throttles_progress():
    lines = []
    reporter = ConsoleReporter(echo=lines.append, every_s=3600)
    reporter.progress("first")
    reporter.progress("second")  # within the throttle window: not printed
    reporter.step_ended(STEP, "failed", "SR_BACKEND_FAILURE_44")
    assert lines == ["  ... first", "     failed  vmvmvmvm  copy-out (SR_BACKEND_FAILURE_44)"]


def test_no_samples_no_figure():
    assert free_space_figure(None) is None
    assert free_space_figure(ConsoleReporter(echo=lambda s: None).samples_frame()) is None


def test_one_moment_is_said_in_words_not_drawn(monkeypatch):
    """A dry run samples once: a chart of one instant has a meaningless time axis, so the live
    plot says the free space in words; a second moment makes it a chart."""
    handles = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False, display_id=False: handles.append(Handle(obj)) or handles[-1])
    reporter = NotebookReporter({"src": "Local SATA"}, plot_every_s=0)
    plot = handles[2]
    start = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
    reporter.sample({"src": 3 * 2**30}, when=start)
    assert free_space_figure(reporter.samples_frame()) is None
    assert plot.shown[-1] == {"text/plain": "free space now: Local SATA 3.0 GiB"}
    reporter.sample({"src": 5 * 2**30}, when=start + dt.timedelta(seconds=5))
    assert hasattr(plot.shown[-1], "savefig")
