"""Messages, GC tasks and storage drivers read from the simulator as from a pool (xapi/health.py)."""

import json

import pandas as pd

from runbook_lib.sim import Simulator
from runbook_lib.xapi.connect import connect
from runbook_lib.xapi.health import fetch_health, message_frame, open_pool, task_frame
from runbook_lib.xapi.inventory import fetch_inventory

FULL = {
    "name": "full", "smlog": {"style": "modern"},
    "srs": [{"uuid": "11111111-2222-4333-8444-555555555555", "name_label": "full", "type": "lvm", "free": "100M"},
            {"uuid": "22222222-2222-4333-8444-555555555555", "name_label": "nfs", "type": "nfs",
             "physical_size": "1T", "coalesce_speed": "1M"}],
    "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "sr": "full", "hidden": True,
              "virtual_size": "10G", "allocated": "5G"},
             {"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "sr": "full",
              "parent": "aaaaaaaa-0000-4000-8000-000000000001", "virtual_size": "10G", "allocated": "2G"},
             {"uuid": "dddddddd-0000-4000-8000-000000000004", "sr": "nfs", "hidden": True,
              "virtual_size": "10G", "allocated": "5G"},
             {"uuid": "eeeeeeee-0000-4000-8000-000000000005", "sr": "nfs",
              "parent": "dddddddd-0000-4000-8000-000000000004", "virtual_size": "10G", "allocated": "2G"}],
    "vms": [{"uuid": "cccccccc-0000-4000-8000-000000000003", "name_label": "vm", "power_state": "Running",
             "vbds": [{"vdi": "bbbbbbbb-0000-4000-8000-000000000002"}]}],
}


def _read(sim, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(sim.password)
    with connect(sim.url, password_env=None, password_file=pw) as session:
        inv = fetch_inventory(session, source_url=sim.url)
        return inv, fetch_health(session, inv)


def test_no_space_message_running_gc_task_and_drivers(tmp_path):
    calls = tmp_path / "calls.jsonl"
    with Simulator(FULL, speed=1, calls=calls) as sim:
        sim.run_gc("full")           # no room: message and keys, no task
        sim.kick_gc("nfs")
        sim.advance(30)              # the NFS GC is in the middle of a (slow) coalesce
        inv, health = _read(sim, tmp_path)
    (msg,) = health.messages.itertuples()
    assert (msg.name, msg.priority, msg.cls, msg.obj_uuid) == ("SM_GC_NO_SPACE", 3, "SR",
                                                                "11111111-2222-4333-8444-555555555555")
    assert isinstance(msg.timestamp, pd.Timestamp) and msg.timestamp.tzinfo is not None
    assert inv.srs.set_index("name").loc["full", "gc_no_space"] == msg.ref
    (task,) = health.tasks.itertuples()
    assert (task.name, task.status) == ("Garbage Collection", "pending")
    assert task.sr == "22222222-2222-4333-8444-555555555555"
    assert 0 <= task.progress < 1
    assert set(health.sm["type"]) >= {"lvm", "nfs"} and set(health.sm["version"]) == {"1.0"}
    methods = [json.loads(line)["method"] for line in calls.read_text().splitlines()]
    assert "message.get_all_records_where" in methods and "task.get_all_records" in methods
    assert "SM.get_all_records" in methods and not health.errors


def test_frames_from_wire_records_and_a_saved_inventory(tmp_path):
    frame = message_frame({"OpaqueRef:m": {"uuid": "u", "name": "SM_GC_NO_SPACE", "priority": "3", "cls": "SR",
                                           "obj_uuid": "s", "timestamp": "20261110T03:14:15Z", "body": "b"}})
    assert frame.iloc[0]["priority"] == 3 and frame.iloc[0]["timestamp"] == pd.Timestamp("2026-11-10T03:14:15Z")
    tasks = task_frame({"OpaqueRef:t": {"name_label": "Garbage Collection", "status": "pending", "progress": 0.5,
                                        "other_config": {"applies_to": "OpaqueRef:sr"}},
                        "OpaqueRef:x": {"name_label": "Async.VM.copy", "status": "pending"}}, {"OpaqueRef:sr": "S"})
    assert list(tasks["sr"]) == ["S"] and tasks.iloc[0]["progress"] == 0.5
    with Simulator(FULL, speed=1) as sim:
        inv, _ = _read(sim, tmp_path)
    path = inv.save(tmp_path / "inv.json")
    loaded, health = open_pool(inventory=str(path))
    assert len(loaded.vdis) == len(inv.vdis)
    assert health.messages is None and health.tasks is None and "saved inventory" in health.errors["all"]
