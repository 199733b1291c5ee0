"""runbook_lib.audit.verify: tampered notebooks, edited/removed/reordered index lines, leaked secrets."""

import json

import pytest

from runbook_lib.audit import index
from runbook_lib.audit.verify import verify


@pytest.fixture
def trail(tmp_path):
    """Three runs with one output file each, written the way the runner writes them."""
    root = tmp_path / "outputs"
    folder = root / "inc"
    folder.mkdir(parents=True)
    for n in range(3):
        out = folder / f"20261126T10000{n}Z_nb_{n:08x}.ipynb"
        out.write_text(json.dumps({"run": n}))
        index.append({"run_id": f"{n:08x}" * 4, "incident": "inc", "parameters": {"password_env": "XEN_PASSWORD"},
                      "status": "succeeded", "exit_code": 0,
                      "outputs": [{"path": f"inc/{out.name}", "sha256": index.file_sha256(out)}]}, root)
    return root


def _kinds(report):
    return sorted(p.kind for p in report.problems)


def _lines(root):
    return index.index_path(root).read_text().splitlines(keepends=True)


def test_an_untouched_trail_is_intact(trail):
    report = verify(trail, scan=False)
    assert report.ok and report.runs == 3 and report.files_hashed == 3


def test_a_changed_notebook_is_reported_with_its_path(trail):
    target = sorted((trail / "inc").iterdir())[1]
    target.write_text(json.dumps({"run": "edited"}))
    report = verify(trail, scan=False)
    assert _kinds(report) == ["output-changed"] and report.problems[0].path == str(target)


def test_a_missing_notebook_is_reported(trail):
    target = sorted((trail / "inc").iterdir())[0]
    target.unlink()
    report = verify(trail, scan=False)
    assert _kinds(report) == ["output-missing"] and report.problems[0].path == str(target)


def test_an_output_without_an_index_line_is_reported(trail):
    stray = trail / "inc" / "20261126T110000Z_nb_deadbeef.html"
    stray.write_text("<html>")
    report = verify(trail, scan=False)
    assert _kinds(report) == ["output-unindexed"] and report.problems[0].path == str(stray)


def test_an_edited_index_line_is_reported_with_its_line_number(trail):
    lines = _lines(trail)
    lines[1] = lines[1].replace('"succeeded"', '"failed"')
    index.index_path(trail).write_text("".join(lines))
    report = verify(trail, scan=False)
    assert _kinds(report) == ["index-changed"]
    assert report.problems[0].path.endswith("index.jsonl:2")


def test_reordered_index_lines_are_reported(trail):
    lines = _lines(trail)
    lines[1], lines[2] = lines[2], lines[1]
    index.index_path(trail).write_text("".join(lines))
    report = verify(trail, scan=False)
    assert "index-chain" in _kinds(report)
    assert any("reordered" in p.detail for p in report.problems)


def test_a_removed_index_line_is_reported(trail):
    lines = _lines(trail)
    del lines[1]
    index.index_path(trail).write_text("".join(lines))
    report = verify(trail, scan=False)
    assert "index-chain" in _kinds(report) and any("removed" in p.detail for p in report.problems)
    assert "output-unindexed" in _kinds(report)  # the removed run's notebook is still there


def test_a_removed_last_line_is_caught_by_the_head(trail):
    lines = _lines(trail)
    index.index_path(trail).write_text("".join(lines[:-1]))
    report = verify(trail, scan=False)
    assert "index-head" in _kinds(report)


def test_a_garbled_line_is_reported(trail):
    lines = _lines(trail)
    lines[0] = lines[0][:40] + "\n"
    index.index_path(trail).write_text("".join(lines))
    report = verify(trail, scan=False)
    assert "index-unreadable" in _kinds(report) and report.problems[0].path.endswith(":1")


def test_secret_scan_finds_raw_and_escaped_values_and_never_prints_them(trail, monkeypatch):
    secret = 'p<a"ss&word'
    monkeypatch.setenv("XEN_PASSWORD", secret)
    assert verify(trail).ok
    leaked_json = trail / "inc" / "leak.json"
    leaked_json.write_text(json.dumps({"text": secret}))
    leaked_html = trail / "inc" / "leak.html"
    leaked_html.write_text("<pre>p&lt;a&quot;ss&amp;word</pre>")
    report = verify(trail)
    found = sorted(p.path for p in report.problems if p.kind == "secret-found")
    assert found == sorted([str(leaked_json), str(leaked_html)])
    assert all(secret not in str(p) for p in report.problems)
    assert "XEN_PASSWORD" in report.secrets_scanned


def test_secret_scan_follows_env_names_in_parameters_and_secret_env(trail, monkeypatch):
    monkeypatch.setenv("POOL_LOGIN", "not-named-like-a-secret")
    (trail / "inc" / "notes.txt").write_text("login was not-named-like-a-secret")
    assert verify(trail).ok
    report = verify(trail, secret_env=["POOL_LOGIN"])
    assert [p.kind for p in report.problems] == ["secret-found"]
    assert report.problems[0].detail == "holds the value of POOL_LOGIN"


def test_short_secrets_are_noted_not_scanned(trail, monkeypatch):
    monkeypatch.setenv("XEN_PASSWORD", "ab")
    report = verify(trail)
    assert report.ok and any("shorter than" in n for n in report.notes)


def test_no_outputs_yet_is_not_an_error(tmp_path):
    report = verify(tmp_path / "none")
    assert report.ok and report.notes
