"""runbook_lib.audit.runner: naming, permissions, no overwrite, timeouts, exit codes, the index line."""

import datetime as dt
import re
import stat

import nbformat
import pytest

from runbook_lib.audit import index, runner
from runbook_lib.errors import InputError, UsageError
from tests.conftest import DATA

NB = DATA / "notebooks"
NAME = re.compile(r"^\d{8}T\d{6}Z_(?P<stem>[a-z]+)_(?P<short>[0-9a-f]{8})\.ipynb$")


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run of each small notebook, shared by the tests below (kernels are slow to start)."""
    out = tmp_path_factory.mktemp("outputs")
    results = {
        "ok": runner.run_notebook(NB / "ok.ipynb", "inc-1", [("count", "0042"), ("label", "0042")], outputs=out),
        "fail": runner.run_notebook(NB / "fail.ipynb", "inc-1", outputs=out),
        "breach": runner.run_notebook(NB / "breach.ipynb", "inc-2", outputs=out),
        "timeout": runner.run_notebook(NB / "slow.ipynb", "inc-2", {"seconds": 30.0}, timeout=1, outputs=out),
        "sysexit": runner.run_notebook(NB / "sysexit.ipynb", "inc-2", outputs=out),
        "artifact": runner.run_notebook(NB / "artifact.ipynb", "inc-3", {"text": "exported"}, outputs=out),
    }
    return out, results


def test_output_is_named_by_time_stem_and_run_id_in_the_incident_folder(runs):
    out, results = runs
    ok = results["ok"]
    match = NAME.match(ok.output.name)
    assert match and match["stem"] == "ok" and ok.run_id.startswith(match["short"])
    assert ok.output.parent == out / "inc-1"
    assert ok.output.name.startswith(ok.start.strftime("%Y%m%dT%H%M%SZ"))
    assert ok.html == ok.output.with_suffix(".html") and ok.html.is_file()
    assert "<html" in ok.html.read_text()[:2000].lower()


def test_the_html_loads_nothing_from_the_network(runs):
    """The audit trail must open offline: no script at all (nbconvert's lab template loads
    require.js, MathJax and mermaid from a CDN), and no src/href to another host. The browser
    check of the same is tests/ui/test_audit_trail_html.py."""
    for result in runs[1].values():
        if result.html is None:
            continue
        page = result.html.read_text()
        assert "<script" not in page, result.html
        assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page), result.html
        assert "jp-Notebook" in page  # still JupyterLab's look


def test_folders_are_0700_and_files_0600(runs):
    out, results = runs
    assert _mode(out) == 0o700
    for result in results.values():
        assert _mode(result.output.parent) == 0o700
        assert _mode(result.output) == 0o600
        assert result.html is None or _mode(result.html) == 0o600
    assert _mode(index.index_path(out)) == 0o600


def test_parameters_are_converted_with_the_declared_types(runs):
    ok = runs[1]["ok"]
    assert ok.parameters == {"count": 42, "label": "0042"}
    assert ok.records["summary"]["count"] == 42 and ok.records["summary"]["label"] == "0042"


@pytest.mark.parametrize("name,status,code", [("ok", "succeeded", 0), ("fail", "failed", 1),
                                              ("breach", "breach", 3), ("timeout", "failed", 1),
                                              ("sysexit", "failed", 1)])
def test_exit_codes(runs, name, status, code):
    result = runs[1][name]
    assert (result.status, result.exit_code) == (status, code)
    assert (result.error is None) == (code in (0, 3))


def test_a_failure_names_the_cell_and_the_error_in_one_line(runs):
    fail = runs[1]["fail"]
    assert re.fullmatch(r"cell \d+ \(In \[3\] `raise ValueError\(f\"disk \{x\} is on fire\"\)`\) "
                        r"failed: ValueError: disk 2 is on fire", fail.error), fail.error
    nb = nbformat.read(str(fail.output), as_version=4)
    assert nb.cells[fail.failed_cell].source.startswith("raise ValueError")


def test_a_timed_out_cell_is_recorded_as_a_failure_in_the_saved_notebook(runs):
    result = runs[1]["timeout"]
    assert "timed out after 1 s" in result.error
    nb = nbformat.read(str(result.output), as_version=4)
    assert nb.metadata.papermill.exception is True
    cell = nb.cells[result.failed_cell]
    assert cell.metadata.papermill.status == "failed"
    assert any(o.get("ename") == "KeyboardInterrupt" for o in cell.outputs if o.output_type == "error")


def test_sys_exit_is_not_taken_for_success(runs):
    assert "SystemExit" in runs[1]["sysexit"].error


def test_each_run_is_indexed_with_hashes_of_its_outputs(runs):
    out, results = runs
    records = {r["run_id"]: r for r in index.read_index(out)}
    assert len(records) == len(results)
    for result in results.values():
        rec = records[result.run_id]
        assert rec == result.index_record
        assert rec["status"] == result.status and rec["exit_code"] == result.exit_code
        for item in rec["outputs"]:
            assert index.file_sha256(out / item["path"]) == item["sha256"]
        assert rec["host"] and rec["user"] and rec["start"] <= rec["end"]
    assert records[results["breach"].run_id]["records"]["breach"] == ["snapshot x is 30 days old"]


def test_files_a_notebook_writes_beside_its_run_are_indexed_too(runs):
    out, results = runs
    art = results["artifact"]
    note = art.output.with_name(art.output.stem + ".note.md")
    assert note.read_text() == "exported" and _mode(note) == 0o600
    paths = [o["path"] for o in art.index_record["outputs"]]
    assert str(note.relative_to(out)) in paths


def test_never_overwrites_an_existing_output(tmp_path, monkeypatch):
    ids = iter(["a" * 32, "a" * 32, "b" * 32])
    monkeypatch.setattr(runner.uuid, "uuid4", lambda: type("U", (), {"hex": next(ids)})())
    start = dt.datetime(2026, 11, 26, 10, 0, 0, tzinfo=dt.timezone.utc)
    first_id, first = runner._reserve(tmp_path, "nb", start)
    first.write_text("first run")
    second_id, second = runner._reserve(tmp_path, "nb", start)
    assert first != second and second_id == "b" * 32
    assert first.read_text() == "first run"


def test_bad_usage_raises_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="has no parameter cuont; did you mean count"):
        runner.run_notebook(NB / "ok.ipynb", "inc", [("cuont", "1")], outputs=out)
    with pytest.raises(UsageError, match="incident id"):
        runner.run_notebook(NB / "ok.ipynb", "../etc", outputs=out)
    with pytest.raises(InputError, match="notebook not found"):
        runner.run_notebook(NB / "missing.ipynb", "inc", outputs=out)
    with pytest.raises(UsageError, match="timeout"):
        runner.run_notebook(NB / "ok.ipynb", "inc", timeout=0, outputs=out)
    assert not out.exists()


def test_notebooks_are_found_by_short_name(tmp_path, monkeypatch):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "05_snapshot_hygiene.ipynb").write_text("{}")
    monkeypatch.setattr(runner, "notebooks_dir", lambda: folder)
    for name in ("05", "05_snapshot_hygiene", "05_snapshot_hygiene.ipynb"):
        assert runner.resolve_notebook(name) == (folder / "05_snapshot_hygiene.ipynb").resolve()


def test_artifact_path_outside_a_run_is_fresh_and_private(monkeypatch):
    monkeypatch.delenv(runner.RUN_OUTPUT_ENV, raising=False)
    a = runner.artifact_path(".postmortem.md", "inc-9")
    b = runner.artifact_path(".postmortem.md", "inc-9")
    assert a != b and a.parent.name == "inc-9" and _mode(a.parent) == 0o700


def test_a_run_executed_by_someone_else_is_judged_from_the_notebook(tmp_path):
    """What the Airflow DAG does: prepare, let papermill (the operator) execute, then finish."""
    import papermill

    out = tmp_path / "out"
    run = runner.prepare_run(NB / "fail.ipynb", "ext", {"count": 5}, outputs=out)
    again = runner.PreparedRun.from_dict(run.to_dict())
    assert again == run
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(str(run.notebook), str(run.output), parameters=run.parameters,
                                   kernel_name="python3", progress_bar=False)
    result = runner.finish_run(again)
    assert (result.status, result.exit_code) == ("failed", 1)
    assert "ValueError: disk 6 is on fire" in result.error and "In [4]" in result.error  # after the injected cell
    assert result.start > run.start and result.end > result.start  # papermill's own times
    missing = runner.prepare_run(NB / "ok.ipynb", "ext", outputs=out)
    missing.output.unlink()
    assert runner.finish_run(missing).error == "the executed notebook is missing or unreadable"
    assert [r["status"] for r in index.read_index(out)] == ["failed", "failed"]


def test_a_relative_path_parameter_means_the_callers_working_directory(tmp_path, monkeypatch):
    """`-p plan_path outputs/X/plan.json` lands where the admin typed the command, not in notebooks/."""
    here = tmp_path / "admin"
    here.mkdir()
    monkeypatch.chdir(here)
    result = runner.run_notebook(NB / "relpath.ipynb", "inc-cwd", [("out_path", "rel/out.txt")],
                                 outputs=tmp_path / "outputs")
    assert result.exit_code == 0, result.error
    assert (here / "rel" / "out.txt").read_text() == str(here)
    assert not (NB / "rel").exists()
    prepared = runner.prepare_run(NB / "relpath.ipynb", "inc-cwd", outputs=tmp_path / "outputs")
    assert runner.PreparedRun.from_dict(prepared.to_dict()).cwd == str(here)
