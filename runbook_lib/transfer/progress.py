"""How a transfer shows what it is doing: in place in a notebook, line by line in a terminal.

Notebooks get IPython display handles updated in place (papermill saves their final state;
tqdm widgets freeze at 0% there). The free-space samples are kept here too, so the live plot,
the notebook's final plot and the journal all show the same numbers.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Callable

from runbook_lib.units import GIB, gib


class Reporter:
    """Base: collects free-space samples and step outcomes; shows nothing."""

    def __init__(self, sr_names: dict[str, str] | None = None):
        self.sr_names = dict(sr_names or {})
        self.samples: list[dict] = []  # {"time", "sr", "name", "free", "phase"}
        self.outcomes: list[dict] = []  # {"step", "vm", "call", "status", "detail"}
        self.phase = ""

    # --- called by the executor ---------------------------------------------------------
    def sample(self, free_by_sr: dict[str, int], when: dt.datetime | None = None) -> None:
        when = when or dt.datetime.now(dt.timezone.utc)
        for sr, free in free_by_sr.items():
            self.samples.append({"time": when, "sr": sr, "name": self.sr_names.get(sr, sr[:8]),
                                 "free": int(free), "phase": self.phase})
        self.on_sample()

    def step_started(self, step) -> None:
        self.phase = step.kind
        self.show_progress(f"{step.kind}: {step.call} on {step.target}")

    def step_ended(self, step, status: str, detail: str = "") -> None:
        self.outcomes.append({"step": step.kind + (f":{step.disk}" if step.disk else ""), "vm": step.vm[:8],
                              "call": step.call, "status": status, "detail": detail})
        self.on_outcome(self.outcomes[-1])

    def progress(self, text: str) -> None:
        self.show_progress(text)

    def message(self, text: str) -> None:
        pass

    # --- what subclasses show -----------------------------------------------------------
    def show_progress(self, text: str) -> None:
        pass

    def on_sample(self) -> None:
        pass

    def on_outcome(self, outcome: dict) -> None:
        pass

    def close(self) -> None:
        pass

    # --- tables for the notebook --------------------------------------------------------
    def samples_frame(self):
        import pandas as pd

        return pd.DataFrame(self.samples, columns=["time", "sr", "name", "free", "phase"])

    def outcomes_frame(self):
        import pandas as pd

        return pd.DataFrame(self.outcomes, columns=["step", "vm", "call", "status", "detail"])


class ConsoleReporter(Reporter):
    """One line per step outcome; progress at most every few seconds (no carriage returns)."""

    def __init__(self, sr_names=None, echo: Callable[[str], None] = print, every_s: float = 5.0):
        super().__init__(sr_names)
        self.echo = echo
        self.every_s = every_s
        self._last = float("-inf")

    def show_progress(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.echo(f"  ... {text}")

    def on_outcome(self, outcome: dict) -> None:
        detail = f" ({outcome['detail']})" if outcome["detail"] else ""
        self.echo(f"{outcome['status']:>11}  {outcome['vm']}  {outcome['step']}{detail}")

    def message(self, text: str) -> None:
        self.echo(text)


class NotebookReporter(Reporter):
    """Three display handles updated in place: the current action, the step table, the plot."""

    def __init__(self, sr_names=None, plot_every_s: float = 2.0):
        super().__init__(sr_names)
        from IPython.display import display

        self._display = display
        self._line = display({"text/plain": "starting"}, raw=True, display_id=True)
        self._table = display({"text/plain": "no step run yet"}, raw=True, display_id=True)
        self._plot = display({"text/plain": "free space: no samples yet"}, raw=True, display_id=True)
        self.plot_every_s = plot_every_s
        self._plotted = float("-inf")

    def show_progress(self, text: str) -> None:
        self._line.update({"text/plain": text}, raw=True)

    def on_outcome(self, outcome: dict) -> None:
        frame = self.outcomes_frame()
        self._table.update(frame)

    def message(self, text: str) -> None:
        self._line.update({"text/plain": text}, raw=True)

    def on_sample(self) -> None:
        now = time.monotonic()
        if now - self._plotted < self.plot_every_s:
            return
        self._plotted = now
        self.redraw()

    def redraw(self) -> None:
        samples = self.samples_frame()
        figure = free_space_figure(samples)
        if figure is None and len(samples):  # one moment (a dry run): the figures, not a chart
            latest = samples.groupby("name")["free"].last()
            self._plot.update({"text/plain": "free space now: " + ", ".join(
                f"{name} {gib(free)}" for name, free in latest.items())}, raw=True)
        if figure is not None:
            self._plot.update(figure)
            import matplotlib.pyplot as plt

            plt.close(figure)

    def close(self) -> None:
        self.redraw()


def free_space_figure(samples):
    """Free space of each SR over time (a step plot), or None without two moments to draw between
    (a dry run samples once: a chart of one instant has no time axis worth reading)."""
    if samples is None or len(samples) == 0 or samples["time"].nunique() < 2:
        return None
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, group in samples.groupby("name"):
        ax.step(group["time"], group["free"] / GIB, where="post", label=name)
    ax.set_ylabel("free (GiB)")
    ax.set_title("SR free space during the transfer")
    ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
