"""The secret scan end to end: runs with a known password in the environment leave no trace of it."""

import os

import pytest

from runbook_lib.audit.runner import run_notebook
from runbook_lib.audit.verify import verify
from runbook_lib.locations import notebooks_dir
from tests.conftest import DATA

PASSWORD = "Xen-Test-Pa55word-do-not-leak"
NB = DATA / "notebooks"


def _files_holding(root, value):
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                if value.encode() in handle.read():
                    hits.append(path)
    return hits


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv("XEN_PASSWORD", PASSWORD)
    return PASSWORD


def test_runs_with_a_password_in_the_environment_leave_it_nowhere(tmp_path, password):
    out = tmp_path / "outputs"
    used = run_notebook(NB / "credentials.ipynb", "sec", [("username", "admin")], outputs=out)
    assert used.records["login"] == {"user": "admin", "password_set": True}  # the kernel did read it
    failed = run_notebook(NB / "fail.ipynb", "sec", outputs=out)
    assert failed.exit_code == 1
    assert _files_holding(out, password) == []
    report = verify(out)
    assert report.ok, [str(p) for p in report.problems]
    assert report.secrets_scanned == ["XEN_PASSWORD"] and report.files_scanned >= 5


def test_the_scan_catches_a_notebook_that_prints_the_password(tmp_path, password):
    out = tmp_path / "outputs"
    leaky = run_notebook(NB / "leaky.ipynb", "sec", outputs=out)
    assert leaky.exit_code == 0
    report = verify(out)
    leaks = sorted(p.path for p in report.problems if p.kind == "secret-found")
    assert leaks == sorted([str(leaky.output), str(leaky.html)])
    assert all(password not in str(p) for p in report.problems)



@pytest.mark.parametrize("stem", ["04_postmortem"])  # 02 and 05: with a real login, below
def test_the_audit_notebooks_leave_no_password_behind(tmp_path, password, stem):
    path = notebooks_dir() / f"{stem}.ipynb"
    out = tmp_path / "outputs"
    result = run_notebook(path, "sec", outputs=out)
    assert result.exit_code in (0, 3), result.error
    assert _files_holding(out, password) == []
    assert verify(out).ok


@pytest.mark.parametrize("stem,code", [("02_size_space", 0), ("05_snapshot_hygiene", 3)])
def test_a_real_login_through_password_env_leaves_no_trace(tmp_path, password, stem, code):
    """Notebooks 02 and 05 log in to a simulated pool whose password is only in XEN_PASSWORD."""
    from runbook_lib.sim import Simulator

    out = tmp_path / "outputs"
    with Simulator(password=password, speed=3600) as sim:
        result = run_notebook(notebooks_dir() / f"{stem}.ipynb", "sec",
                              {"url": sim.url, "password_env": "XEN_PASSWORD"}, outputs=out)
    assert result.exit_code == code, result.error
    logged_in = (result.records["sizing"] if stem.startswith("02") else result.records["hygiene"])["pool"]
    assert logged_in["name"] == "xen"  # it did log in
    assert _files_holding(tmp_path, password) == []
    report = verify(out)
    assert report.ok, [str(p) for p in report.problems]
    assert "XEN_PASSWORD" in report.secrets_scanned
