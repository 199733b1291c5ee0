"""The pool diagnosis: findings, verdicts and next steps from the pool's frames alone."""

import pandas as pd
import pytest

from runbook_lib.pool_diagnosis import FINDINGS, SEVERITY, diagnose_pool, pending_work, severity
from runbook_lib.xapi.health import message_frame, task_frame
from tests.xapi_records import PoolRecords

GiB = 1 << 30
NOW = "2026-11-26T10:00:00Z"


def _pool():
    """An LVM SR with a base and its running leaf (a leaf-coalesce waits), an NFS SR with nothing waiting."""
    p = PoolRecords("lab")
    lvm = p.sr("Local", "lvm", 100 * GiB, 60 * GiB)
    nfs = p.sr("NFS", "nfs", 500 * GiB, 10 * GiB, shared=True)
    base = p.vdi(lvm, 40 * GiB, 10 * GiB, managed=False)
    leaf = p.vdi(lvm, 40 * GiB, 20 * GiB, parent=base)
    other = p.vdi(nfs, 8 * GiB, 1 * GiB)
    p.vm("web", "Running", [leaf, other])
    return p, {"lvm": lvm, "nfs": nfs, "base": base, "leaf": leaf, "other": other}


def _run(p, messages=None, tasks=None, **kw):
    inv = p.inventory(captured=NOW)
    msgs = message_frame(messages or {}) if messages is not ... else None
    return diagnose_pool(inv.srs, inv.vdis, msgs, task_frame(tasks or {}, {r: v["uuid"] for r, v in
                                                                         p.records["SR"].items()}),
                         captured=inv.captured_at, **kw)


def _msg(name, sr_uuid, body, when=NOW, priority=3):
    return {"uuid": "m-" + name, "name": name, "priority": str(priority), "cls": "SR", "obj_uuid": sr_uuid,
            "timestamp": when, "body": body}


def _sr_row(found, uuid):
    return next(r for r in found.sr_rows if r["sr"] == uuid)


def _vdi_row(found, uuid):
    return next(r for r in found.vdi_rows if r["vdi"] == uuid)


def test_a_waiting_chain_with_nothing_else_is_coalescing_with_xos_count():
    p, o = _pool()
    found = _run(p)
    lvm, nfs = _sr_row(found, p.uuid("SR", o["lvm"])), _sr_row(found, p.uuid("SR", o["nfs"]))
    assert (lvm["verdict"], lvm["to_coalesce"], lvm["findings"]) == ("coalescing", 1, ["chains-waiting"])
    assert "SMlog" in lvm["next_step"] and p.uuid("SR", o["lvm"]) in lvm["next_step"]
    assert (nfs["verdict"], nfs["to_coalesce"]) == ("healthy", 0)
    assert _vdi_row(found, p.uuid("VDI", o["leaf"]))["pending"] == "leaf"
    assert found.verdict == "coalescing" and found.to_json()["schema"] == "runbook.pool.diagnosis/1"


def test_gc_no_space_key_naming_a_live_message_is_stuck_no_space():
    p, o = _pool()
    sr = p.uuid("SR", o["lvm"])
    p.records["SR"][o["lvm"]]["sm_config"] = {"gc_no_space": "OpaqueRef:m1"}
    p.records["VDI"][o["leaf"]]["sm_config"]["gc_no_space"] = "OpaqueRef:m1"
    found = _run(p, {"OpaqueRef:m1": _msg("SM_GC_NO_SPACE", sr, f"Unable to perform data coalesce due to a lack "
                                                                  f"of space in SR {sr}")})
    row = _sr_row(found, sr)
    assert row["verdict"] == "stuck-no-space" and "gc-no-space" in row["findings"]
    assert "notebooks/02_size_space.ipynb" in row["next_step"] and f'sr_uuid="{sr}"' in row["next_step"]
    assert _vdi_row(found, p.uuid("VDI", o["leaf"]))["verdict"] == "stuck-no-space"
    assert found.verdict == "stuck-no-space"


def test_a_key_naming_a_gone_message_with_no_starved_vdi_is_only_a_note():
    p, o = _pool()
    p.records["SR"][o["lvm"]]["sm_config"] = {"gc_no_space": "OpaqueRef:gone"}
    row = _sr_row(_run(p), p.uuid("SR", o["lvm"]))
    assert "gc-no-space-stale" in row["findings"] and row["verdict"] == "coalescing"   # the waiting chain


def test_without_messages_read_the_key_still_counts():
    p, o = _pool()
    p.records["SR"][o["lvm"]]["sm_config"] = {"gc_no_space": "OpaqueRef:m1"}
    row = _sr_row(_run(p, messages=...), p.uuid("SR", o["lvm"]))
    assert row["verdict"] == "stuck-no-space" and "messages not read" in row["evidence"][0]


@pytest.mark.parametrize("key", ["paused", "relinking", "activating"])
def test_keys_left_behind_are_stuck_unless_the_srs_gc_runs(key):
    p, o = _pool()
    p.records["VDI"][o["leaf"]]["sm_config"][key] = "true"
    leaf = p.uuid("VDI", o["leaf"])
    row = _vdi_row(_run(p), leaf)
    assert row["verdict"] == "stuck-error" and row["findings"] == [f"vdi-{key}"]
    assert leaf in row["next_step"]
    task = {"OpaqueRef:t": {"name_label": "Garbage Collection", "status": "pending", "progress": 0.4,
                            "created": "20261126T09:50:00Z", "other_config": {"applies_to": o["lvm"]}}}
    found = _run(p, tasks=task)
    assert _vdi_row(found, leaf)["verdict"] == "coalescing"
    sr = _sr_row(found, p.uuid("SR", o["lvm"]))
    assert sr["gc_running"] and sr["gc_progress"] == pytest.approx(0.4) and sr["verdict"] == "coalescing"


def test_paused_key_names_tap_ctl_and_never_a_read_only_xe_param():
    p, o = _pool()
    p.records["VDI"][o["leaf"]]["sm_config"]["paused"] = "true"
    step = _vdi_row(_run(p), p.uuid("VDI", o["leaf"]))["next_step"]
    assert "tap-ctl unpause" in step and "param-name=sm-config" not in step


def test_gc_switched_off_stops_waiting_work_else_it_is_a_note():
    p, o = _pool()
    p.records["SR"][o["lvm"]]["other_config"] = {"gc": "false"}
    p.records["SR"][o["nfs"]]["other_config"] = {"gc": "false", "auto-scan": "true"}
    found = _run(p)
    lvm = _sr_row(found, p.uuid("SR", o["lvm"]))
    assert lvm["verdict"] == "stuck-disabled" and lvm["switches"] == {"gc": "false"}
    assert "param-key=gc" in lvm["next_step"]
    nfs = _sr_row(found, p.uuid("SR", o["nfs"]))
    assert nfs["verdict"] == "healthy" and set(nfs["findings"]) == {"gc-disabled", "auto-scan"}


def test_reset_on_boot_and_leaf_coalesce_false_stop_a_waiting_leaf():
    for field, value, kind in (("on_boot", "reset", "vdi-reset-on-boot"),
                               ("other_config", {"leaf-coalesce": "false"}, "vdi-leaf-coalesce-disabled"),
                               ("allow_caching", True, "vdi-allow-caching")):
        p, o = _pool()
        p.records["VDI"][o["leaf"]][field] = value
        row = _vdi_row(_run(p), p.uuid("VDI", o["leaf"]))
        assert (row["verdict"], row["findings"]) == ("stuck-disabled", [kind]), kind
    p, o = _pool()
    p.records["VDI"][o["other"]]["on_boot"] = "reset"       # nothing waits for it: a note
    assert _vdi_row(_run(p), p.uuid("VDI", o["other"]))["verdict"] == "healthy"


def test_coalesce_error_messages_count_while_recent():
    p, o = _pool()
    sr = p.uuid("SR", o["nfs"])
    recent = {"OpaqueRef:e": _msg("Input/output error", sr, "I/O error while coalescing.", "2026-11-25T10:00:00Z")}
    assert _sr_row(_run(p, recent), sr)["verdict"] == "stuck-error"
    enospc = {"OpaqueRef:e": _msg("No space left on device", sr, "Run out of space while coalescing.",
                                  "2026-11-25T10:00:00Z")}
    assert _sr_row(_run(p, enospc), sr)["verdict"] == "stuck-no-space"
    old = {"OpaqueRef:e": _msg("Input/output error", sr, "I/O error while coalescing.", "2026-10-01T10:00:00Z")}
    row = _sr_row(_run(p, old), sr)
    assert row["verdict"] == "healthy" and row["findings"] == ["coalesce-error-message"]


def test_an_unpause_failure_of_a_vdi_no_longer_paused_is_a_note():
    p, o = _pool()
    leaf, sr = p.uuid("VDI", o["leaf"]), p.uuid("SR", o["lvm"])
    msg = {"OpaqueRef:u": _msg("failed to unpause tapdisk", sr, f"Failed to unpause tapdisk for VDI {leaf}, VMs "
                               "using this tapdisk have lost access to the corresponding disk(s)", priority=4)}
    row = _vdi_row(_run(p, msg), leaf)
    assert "tapdisk-unpause-failed" in row["findings"] and row["verdict"] == "coalescing"
    p.records["VDI"][o["leaf"]]["sm_config"]["paused"] = "true"
    row = _vdi_row(_run(p, msg), leaf)
    assert row["findings"] == ["vdi-paused"] and row["verdict"] == "stuck-error"


def test_sr_filter_and_pending_kinds():
    p, o = _pool()
    found = _run(p, sr=p.uuid("SR", o["nfs"])[:8])
    assert [r["sr"] for r in found.sr_rows] == [p.uuid("SR", o["nfs"])] and not found.vdi_rows
    inv = p.inventory(captured=NOW)
    assert pending_work(inv.vdis) == {p.uuid("VDI", o["leaf"]): "leaf"}


def test_vocabulary():
    assert set(f for f, v in FINDINGS.items() if v) <= set(FINDINGS)
    assert all(v is None or v in SEVERITY for v in FINDINGS.values())
    assert severity("stuck-something-new") == SEVERITY["stuck-timeout"] and severity("novel") == 0
    assert isinstance(_run(_pool()[0]).findings_frame, pd.DataFrame)
