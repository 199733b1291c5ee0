"""`runbook run`, `runbook history`, `runbook verify` as an admin or a scheduler sees them."""

import json

from click.testing import CliRunner

from runbook_lib.cli import main
from tests.conftest import DATA

NB = DATA / "notebooks"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_history_and_verify_end_to_end(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("count: 3\nlabel: from-file\n")
    ok = _run("run", NB / "ok.ipynb", "--incident", "inc-7", "-f", params, "-p", "label", "007")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("succeeded: ") and "inc-7" in ok.output and "html: " in ok.output

    fail = _run("run", NB / "fail.ipynb", "--incident", "inc-7")
    assert fail.exit_code == 1
    assert "error: cell" in fail.output and "ValueError: disk 2 is on fire" in fail.output

    breach = _run("run", NB / "breach.ipynb", "--incident", "other")
    assert breach.exit_code == 3 and "breach: 1 finding(s): snapshot x is 30 days old" in breach.output

    table = _run("history", "--incident", "inc-7")
    assert table.exit_code == 0
    rows = table.output.strip().splitlines()
    assert len(rows) == 3 and "succeeded" in rows[1] and "failed" in rows[2] and "breach" not in table.output

    as_json = json.loads(_run("history", "--json").output)
    assert [r["status"] for r in as_json] == ["succeeded", "failed", "breach"]
    assert as_json[0]["parameters"] == {"count": 3, "label": "007"}

    good = _run("verify")
    assert good.exit_code == 0 and good.output.startswith("intact: 3 run(s)")

    notebook = tmp_path / "outputs" / as_json[1]["outputs"][0]["path"]
    notebook.write_text(notebook.read_text().replace("on fire", "fine"))
    bad = _run("verify")
    assert bad.exit_code == 1 and f"output-changed: {notebook}" in bad.output


def test_bad_usage_exits_2_and_runs_nothing(tmp_path):
    unknown = _run("run", NB / "ok.ipynb", "--incident", "x", "-p", "cuont", "1")
    assert unknown.exit_code == 2 and "did you mean count" in unknown.output
    typed = _run("run", NB / "ok.ipynb", "--incident", "x", "-p", "count", "many")
    assert typed.exit_code == 2 and "parameter count must be int" in typed.output
    secret = _run("run", NB / "credentials.ipynb", "--incident", "x", "-p", "password_env", "hunter2!")
    assert secret.exit_code == 2 and "password_env" in secret.output
    missing = _run("run", "no-such-notebook", "--incident", "x")
    assert missing.exit_code == 2 and "notebook not found" in missing.output
    no_incident = _run("run", NB / "ok.ipynb")
    assert no_incident.exit_code == 2
    assert not (tmp_path / "outputs").exists()


def test_history_with_nothing_recorded():
    result = _run("history")
    assert result.exit_code == 0 and "no runs recorded" in result.output


def test_run_names_the_files_the_notebook_wrote_beside_itself(tmp_path):
    result = _run("run", NB / "artifact.ipynb", "--incident", "inc-8", "-p", "text", "exported")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("succeeded: ") and lines[1].startswith("html: ")
    notebook = lines[0].split(": ", 1)[1]
    assert lines[2:] == [f"file: {notebook[:-len('.ipynb')]}.note.md"]
    assert (tmp_path / "outputs" / "inc-8" / lines[2].split(": ", 1)[1].rsplit("/", 1)[1]).read_text() == "exported"
    plain = _run("run", NB / "ok.ipynb", "--incident", "inc-8")
    assert plain.exit_code == 0 and "file: " not in plain.output


def _one_line_error(result, expected: str) -> None:
    """exit 2, nothing but `error: <expected>` on the output, no traceback, nothing ran."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2 and result.output == f"error: {expected}\n", result.output
    assert "Traceback" not in result.output


def test_a_parameters_file_that_is_not_text_or_not_a_file_is_one_line(tmp_path):
    import os

    png = tmp_path / "params.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"label: caf\xe9\n")
    noise = tmp_path / "params.bin"
    noise.write_bytes(bytes(range(256)) * 4)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    cases = [
        (png, f"parameters file {png} is not YAML/JSON text: it holds NUL bytes (a binary file?)"),
        (noise, f"parameters file {noise} is not YAML/JSON text: it holds NUL bytes (a binary file?)"),
        (latin1, f"parameters file {latin1} is not YAML/JSON text: byte 0xe9 at offset 10 is not UTF-8 "
                 "(a binary file?)"),
        (tmp_path, f"parameters file {tmp_path} is a directory"),
        (tmp_path / "none.yaml", f"parameters file not found: {tmp_path / 'none.yaml'}"),
        (fifo, f"parameters file {fifo} is a FIFO (named pipe), not a file"),
        ("/dev/zero", "parameters file /dev/zero is a character device, not a file"),
    ]
    for path, expected in cases:
        _one_line_error(_run("run", NB / "ok.ipynb", "--incident", "x", "-f", path), expected)
    for path, expected in ((tmp_path, f"notebook file {tmp_path} is a directory"),
                           (fifo, f"notebook file {fifo} is a FIFO (named pipe), not a file"),
                           ("/dev/zero", "notebook file /dev/zero is a character device, not a file")):
        _one_line_error(_run("run", path, "--incident", "x"), expected)
    assert not (tmp_path / "outputs").exists()
