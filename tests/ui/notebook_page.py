"""One notebook in JupyterLab, driven as a person does it: open it, Run > Run All Cells, wait
until the kernel is idle and every cell has run (or one failed), save it, and look at what shows.

What the page shows is read from the DOM (text, tables, images); which outputs are errors is read
from JupyterLab's own notebook model (the server exposes it with --LabApp.expose_app_in_browser),
because an error and a line on stderr look alike in the DOM.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

# The notebook in the current tab: JupyterLab's widget and its cells.
_PANEL = "const panel = window.jupyterapp.shell.currentWidget;"
_CODE_CELLS = _PANEL + " const cells = panel.content.widgets.filter(c => c.model.type === 'code');"

_STATE = "() => {" + _CODE_CELLS + """
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const prompts = cells.map(c => (c.node.querySelector('.jp-InputPrompt') || {}).textContent || '');
  const errors = [];
  cells.forEach((c, i) => {
    for (let j = 0; j < c.model.outputs.length; j++) {
      const out = c.model.outputs.get(j).toJSON();
      if (out.output_type === 'error') errors.push({cell: i, ename: out.ename, evalue: out.evalue});
    }
  });
  return {kernel: kernel ? kernel.status : null, counts: cells.map(c => c.model.executionCount),
          queued: prompts.some(p => p.includes('*')), errors: errors};
}"""

ROOT = ".jp-NotebookPanel:not(.lm-mod-hidden)"
_SCROLLER = ROOT + " .jp-WindowedPanel-outer"


@dataclass
class RunState:
    kernel: str | None
    counts: list
    queued: bool
    errors: list

    def finished_since(self, before: int) -> bool:
        """Idle, nothing queued, and every code cell ran after `before` (or one of them failed)."""
        if self.kernel != "idle" or self.queued:
            return False
        return bool(self.errors) or all(c is not None and c > before for c in self.counts)


class NotebookPage:
    def __init__(self, page, lab, name: str):
        self.page, self.lab, self.name = page, lab, name
        self._last_count = 0

    def open(self, timeout_ms: int = 60_000) -> None:
        workspace = f"ui-{Path(self.name).stem}-{time.monotonic_ns()}"
        self.page.goto(self.lab.notebook_url(self.name, workspace))
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=timeout_ms)
        self.page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                    " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=timeout_ms)
        # the kernel is up: what a person waits for before pressing Run All
        self.page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.ready; }")
        self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # the notebook gets the width

    def menu(self, *path: str) -> None:
        """Click through the menu bar: menu("Run", "Run All Cells")."""
        self.page.get_by_role("menuitem", name=path[0], exact=True).click()
        for item in path[1:]:  # an item's accessible name ends with its shortcut: match its label
            label = re.compile(f"^{re.escape(item)}$")
            self.page.locator(".lm-Menu .lm-Menu-itemLabel").filter(has_text=label).click()

    def state(self) -> RunState:
        return RunState(**self.page.evaluate(_STATE))

    def run_all(self, timeout_s: float = 180.0) -> RunState:
        """Run > Run All Cells, then wait until the run is over; returns how it ended."""
        before = max([c for c in self.state().counts if c is not None], default=0)
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.state()
            if state.finished_since(before):
                return state
            time.sleep(0.25)
        raise AssertionError(f"{self.name}: the cells were still running after {timeout_s:.0f} s: {self.state()}")

    def save(self) -> Path:
        """File > Save Notebook; returns the saved file (the lab's copy, with its outputs)."""
        self.menu("File", "Save Notebook")
        self.page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
        return self.lab.notebooks / self.name

    def append_to_parameters(self, text: str) -> None:
        """Type lines at the end of the parameters cell, as a person sets a value."""
        index = self.page.evaluate("() => {" + _PANEL + """
          return panel.content.widgets.findIndex(c => (c.model.getMetadata('tags') || []).includes('parameters')); }""")
        assert index >= 0, f"{self.name} has no parameters cell"
        editor = self.page.locator(f"{ROOT} .jp-Cell").nth(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+End")
        self.page.keyboard.press("End")
        self.page.keyboard.insert_text("\n" + text)
        self.page.keyboard.press("Escape")

    def outputs(self):
        """Where a notebook shows its results (never its source code)."""
        return self.page.locator(f"{ROOT} .jp-OutputArea-output")

    def output_text(self) -> str:
        return "\n".join(self.outputs().all_inner_texts())

    def screenshot(self, path: Path, width: int = 1400, max_height: int = 30_000) -> Path:
        """The whole notebook in one picture: the window is made as tall as the notebook."""
        path.parent.mkdir(parents=True, exist_ok=True)
        viewport = self.page.viewport_size
        self.page.evaluate(f"() => document.querySelector('{_SCROLLER}').scrollTop = 0")
        height = self.page.evaluate(f"() => document.querySelector('{_SCROLLER}').scrollHeight")
        self.page.set_viewport_size({"width": width, "height": min(height + 160, max_height)})
        self.page.wait_for_timeout(300)  # one layout pass at the new size
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size(viewport)
        return path
