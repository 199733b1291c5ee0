"""What the browser tests drive: a JupyterLab server of their own and a Chromium from the system.

`Lab` starts JupyterLab on a temporary copy of notebooks/ (its own token, port, settings,
runtime and outputs folders, so nothing of the user's Jupyter set-up or outputs/ is touched)
and stops it and every process under it. `launch_chromium` starts Debian's Chromium through
Playwright (the registry's browser downloads are not used). Why Playwright for Python and not
Galata: docs/ui-tests.md.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ROOT

CHROMIUM_ENV = "RUNBOOK_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
GET_CHROMIUM = ("Chromium is needed for the browser tests: as root, apt-get update && apt-get install -y chromium "
                f"(or set {CHROMIUM_ENV} to a Chromium binary)")
# Headless, and quiet on the network: no sync, no component or field-trial downloads, no QUIC.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars"]
# JupyterLab settings for the test: every cell in the page (no virtual scrolling, so a cell far
# down is there to check and in the screenshot), no news or update checks (no request leaves).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False,
                                                                         "fetchNews": "false"},
}


def chromium_path() -> str | None:
    """The Chromium to drive: $RUNBOOK_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH."""
    for candidate in (os.environ.get(CHROMIUM_ENV), DEFAULT_CHROMIUM, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch_chromium(playwright):
    path = chromium_path()
    if path is None:
        raise RuntimeError(GET_CHROMIUM)
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on a copy of notebooks/ under `base`; use it as a context manager."""

    def __init__(self, base: Path, notebooks: Path = ROOT / "notebooks"):
        self.base = base
        self.notebooks = base / "notebooks"
        self.outputs = base / "outputs"
        self.log_path = base / "jupyterlab.log"
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        shutil.copytree(notebooks, self.notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.process: subprocess.Popen | None = None
        self._started: set[int] = set()

    def __enter__(self) -> "Lab":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, folder in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                             ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            env[name] = str(self.base / folder)
        env["RUNBOOK_OUTPUTS"] = str(self.outputs)
        env.pop("RUNBOOK_RUN_OUTPUT", None)
        env.pop("RUNBOOK_INCIDENT", None)
        return env

    def _command(self) -> list[str]:
        settings = self.base / "settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={self.port}",
                   "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
                   f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.notebooks}",
                   f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={self.base / 'workspaces'}",
                   "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # CI runs as root
        return command

    def start(self, timeout: float = 90.0) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self._command(), cwd=self.notebooks, env=self._environment(),
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def api(self, method: str, path: str):
        request = urllib.request.Request(self.url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def notebook_url(self, name: str, workspace: str) -> str:
        """A fresh workspace per page: JupyterLab would otherwise reopen the tabs of the last one."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"

    def remember_processes(self) -> None:
        """Note every process under the server (kernels, their simulators) so stop() ends them all."""
        import psutil

        if self.process is not None and self.process.poll() is None:
            try:
                self._started |= {p.pid for p in psutil.Process(self.process.pid).children(recursive=True)}
            except psutil.Error:
                pass

    def shutdown_kernels(self) -> None:
        """End every notebook session (and its kernel), as closing the tabs and shutting down would."""
        self.remember_processes()
        for session in self.api("GET", "/api/sessions") or []:
            self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self) -> None:
        """Stop the server (it shuts its kernels down), then end anything under it still running."""
        import psutil

        if self.process is None:
            return
        self.remember_processes()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        leftovers = []
        for pid in self._started:
            try:
                leftovers.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue
        for proc in leftovers:
            proc.terminate()
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for proc in alive:
            proc.kill()
        self.process = None

    def running_processes(self) -> list[int]:
        """Processes this lab started that are still alive (empty after stop())."""
        import psutil

        alive = []
        for pid in self._started:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        if self.process is not None and self.process.poll() is None:
            alive.append(self.process.pid)
        return alive

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
