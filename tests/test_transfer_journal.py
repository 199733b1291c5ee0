"""The journal: durable lines, a torn last line tolerated, state read back for resuming."""

import json
import os

import pytest

from runbook_lib.errors import InputError
from runbook_lib.transfer.journal import Journal, journal_frame, journal_path


def test_path_is_under_the_incident_outputs(tmp_path):
    path = journal_path("INC-42")
    assert path == tmp_path / "outputs" / "INC-42" / "transfer-journal.jsonl"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x y"])
def test_incident_must_be_a_plain_name(bad):
    with pytest.raises(InputError):
        journal_path(bad)


def test_append_writes_one_json_line_each_and_fsyncs(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    journal = Journal(tmp_path / "j" / "transfer-journal.jsonl")
    journal.append("start", step="vm:copy-out", vm="vm", before={"sr": 5})
    journal.append("done", step="vm:copy-out", vm="vm", result={"copy_uuid": "c"})
    lines = (tmp_path / "j" / "transfer-journal.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["start", "done"]
    assert [json.loads(line)["seq"] for line in lines] == [1, 2]
    assert len(synced) >= 2  # every line, plus the directory when the file was created
    assert oct((tmp_path / "j" / "transfer-journal.jsonl").stat().st_mode & 0o777) == "0o600"


def test_step_status_and_state_come_back_from_disk(tmp_path):
    path = tmp_path / "transfer-journal.jsonl"
    j = Journal(path)
    j.append("start", step="v:record-original", vm="v")
    j.append("done", step="v:record-original", vm="v", result={"original": {"name": "db01"}})
    j.append("start", step="v:copy-out", vm="v")
    j.append("done", step="v:copy-out", vm="v", result={"copy_uuid": "c1"})
    j.append("rolled-back", step="v:copy-out", vm="v", result={"removed": 1})
    j.append("start", step="v:destroy-original", vm="v")
    again = Journal(path)
    assert again.step_status("v:record-original") == "done"
    assert again.step_status("v:copy-out") == "rolled-back"
    assert again.step_status("v:destroy-original") == "started"
    assert again.step_status("v:wait-gc") is None
    state = again.vm_state("v")
    assert state["original"] == {"name": "db01"}
    assert "copy_uuid" not in state  # a rolled-back copy is not a copy


def test_a_torn_last_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "transfer-journal.jsonl"
    Journal(path).append("start", step="v:copy-out", vm="v")
    with path.open("a") as fh:
        fh.write('{"seq": 2, "event": "do')
    j = Journal(path)
    assert j.step_status("v:copy-out") == "started"
    assert j.torn_lines == 1
    j.append("done", step="v:copy-out", vm="v")
    assert Journal(path).step_status("v:copy-out") == "done"


def test_frame_for_the_notebook(tmp_path):
    j = Journal(tmp_path / "transfer-journal.jsonl")
    j.append("failed", step="v:copy-out", vm="v" * 36, error=["SR_BACKEND_FAILURE_44", "", "no space"],
             next_step="free space")
    frame = journal_frame(j)
    assert list(frame["step"]) == ["copy-out"]
    assert frame["error"].iloc[0].startswith("SR_BACKEND_FAILURE_44")


def test_lines_that_are_not_journal_records_are_ignored(tmp_path):
    path = tmp_path / "transfer-journal.jsonl"
    path.write_text('[1, 2]\n"text"\n{"no": "event"}\n'
                    '{"seq": 1, "event": "done", "step": "v:scan-source", "vm": "v"}\n')
    j = Journal(path)
    assert j.step_status("v:scan-source") == "done" and j.torn_lines == 3
    j.append("start", step="v:wait-gc", vm="v")
    assert Journal(path).records()[-1]["seq"] == 2


def test_where_vm_is_reads_the_state_from_the_journal_alone(tmp_path):
    journal = Journal(tmp_path / "j.jsonl")
    vm = {"uuid": "vm-1", "name": "fileserver"}
    assert journal.where_vm_is(vm) == "VM 'fileserver': no step started, nothing was changed"
    journal.append("start", step="vm-1:copy-out", vm="vm-1", kind="copy-out")
    journal.append("done", step="vm-1:copy-out", vm="vm-1", kind="copy-out", result={"copy_uuid": "copy-9"})
    journal.append("start", step="vm-1:destroy-original", vm="vm-1", kind="destroy-original")
    assert journal.step_under_way("vm-1") == "vm-1:destroy-original"
    assert journal.where_vm_is(vm, "Local") == (
        "VM 'fileserver': the original vm-1 is intact on SR 'Local'; a copy copy-9 exists (last finished step: "
        "copy-out; stopped during destroy-original, which the next run checks against the pool)")
    journal.append("done", step="vm-1:destroy-original", vm="vm-1", kind="destroy-original",
                   result={"original_destroyed": True})
    assert journal.step_under_way("vm-1") is None
    assert journal.where_vm_is(vm).startswith(
        "VM 'fileserver': the original is destroyed; the VM is the verified copy copy-9 on the staging SR")
