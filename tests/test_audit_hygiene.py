"""runbook_lib.audit.hygiene and notebook 05: the four checks, on hand-made pools and the simulator."""

import json

import pandas as pd
import pytest

from runbook_lib.audit import hygiene
from runbook_lib.audit.runner import run_notebook
from runbook_lib.locations import notebooks_dir
from runbook_lib.sim import Simulator
from tests.xapi_records import PoolRecords

G = 1 << 30
NOW = "2026-11-26T10:00:00Z"


def _snapshot_vm(pool, of, name, when, disks):
    ref = pool._add("VM", {"name_label": name, "power_state": "Halted", "is_a_template": True,
                           "is_control_domain": False, "is_a_snapshot": True, "snapshot_of": of,
                           "snapshots": [], "VBDs": [], "VIFs": [], "resident_on": "OpaqueRef:NULL",
                           "snapshot_time": when})
    for i, vdi in enumerate(disks):
        vbd = pool._add("VBD", {"VM": ref, "VDI": vdi, "device": "xvda", "userdevice": str(i), "type": "Disk",
                                "mode": "RW", "bootable": False, "currently_attached": False, "empty": False})
        pool.records["VM"][ref]["VBDs"].append(vbd)
    return ref


def _messy_pool():
    """Old and young snapshots, a 27-deep chain, an LVM SR too full for its pending coalesce."""
    pool = PoolRecords("messy")
    nfs = pool.sr("big nfs", "nfs", 100_000 * G, 100 * G)
    lvm = pool.sr("full lvm", "lvm", 600 * G, 600 * G - 64 * (1 << 20))
    disk = pool.vdi(nfs, 10 * G, 5 * G, name="web disk")
    web = pool.vm("web", "Running", [disk])
    old_disk = pool.vdi(nfs, 10 * G, 1 * G, name="web disk snap old", snapshot_of=disk,
                        snapshot_time="20261110T10:00:00Z")
    _snapshot_vm(pool, web, "web before upgrade", "20261110T10:00:00Z", [old_disk])
    young_disk = pool.vdi(nfs, 10 * G, 1 * G, name="web disk snap young", snapshot_of=disk,
                          snapshot_time="20261125T10:00:00Z")
    _snapshot_vm(pool, web, "web yesterday", "20261125T10:00:00Z", [young_disk])
    pool.vdi(nfs, 10 * G, 2 * G, name="orphan snap", snapshot_of=disk, snapshot_time="20261027T10:00:00Z")
    parent = None
    for depth in range(27):
        parent = pool.vdi(nfs, 20 * G, 1 * G, parent=parent, managed=depth == 26, name=f"deep {depth}")
    pool.vm("deep vm", "Halted", [parent])
    base = pool.vdi(lvm, 500 * G, 500 * G + 2 * G, managed=False, name="base")
    leaf = pool.vdi(lvm, 500 * G, 60 * G, parent=base, name="db data")
    pool.vm("db", "Running", [leaf])
    return pool


def _diagnosis(sr, vdi_recent, vdi_old):
    return {"schema": "runbook.smlog.diagnosis/1", "verdict": "stuck-timeout", "vdis": [
        {"vdi": vdi_recent, "sr": sr, "verdict": "stuck-timeout", "failures": 4,
         "last_failure": "2026-11-26T08:30:00+00:00", "next_step": "notebook 02"},
        {"vdi": vdi_old, "sr": sr, "verdict": "stuck-no-space", "failures": 2,
         "last_failure": "2026-11-20T08:30:00+00:00", "next_step": "notebook 02"},
        {"vdi": "healthy1", "sr": sr, "verdict": "healthy", "failures": 0, "last_failure": None}]}


@pytest.fixture(scope="module")
def messy():
    return _messy_pool().inventory(captured=NOW)


def test_old_snapshots_are_flagged_once_each(messy):
    h = hygiene.assess(messy, None, hygiene.Thresholds(snapshot_age_days=7))
    snaps = h.old_snapshots
    assert list(snaps.columns) == hygiene.SNAPSHOT_COLUMNS
    assert list(snaps["name"]) == ["orphan snap", "web before upgrade"]
    assert list(snaps["kind"]) == ["VDI snapshot", "VM snapshot"]
    assert snaps["age_days"].round().tolist() == [30.0, 16.0]
    assert snaps.loc[1, "snapshot_of"] == "web" and snaps.loc[0, "snapshot_of"] == "web disk"
    assert hygiene.assess(messy, None, hygiene.Thresholds(snapshot_age_days=60)).old_snapshots.empty


def test_deep_chains_and_short_srs(messy):
    h = hygiene.assess(messy, None, hygiene.Thresholds(max_chain_depth=25))
    assert h.deep_chains["depth"].tolist() == [27] and h.deep_chains.loc[0, "sr_name"] == "big nfs"
    assert h.deep_chains.loc[0, "vms"] == "deep vm" and not h.deep_chains.loc[0, "too_deep"]
    assert hygiene.assess(messy, None, hygiene.Thresholds(max_chain_depth=27)).deep_chains.empty
    short = h.short_srs
    assert short["name"].tolist() == ["full lvm"]
    row = short.iloc[0]
    assert row["needed"] > row["free"] and row["shortfall"] == row["needed"] - row["free"]


def test_gc_failures_only_inside_the_window(messy):
    sr = messy.srs.loc[messy.srs["name"] == "full lvm", "uuid"].iloc[0]
    diag = _diagnosis(sr, "aaaa1111", "bbbb2222")
    h = hygiene.assess(messy, diag, hygiene.Thresholds(gc_failure_hours=24))
    assert h.gc_failures["vdi"].tolist() == ["aaaa1111"] and h.smlog_checked
    wide = hygiene.assess(messy, diag, hygiene.Thresholds(gc_failure_hours=24 * 7))
    assert sorted(wide.gc_failures["vdi"]) == ["aaaa1111", "bbbb2222"]
    later = hygiene.assess(messy, diag, hygiene.Thresholds(gc_failure_hours=24),
                           smlog_last=pd.Timestamp("2026-11-28T10:00:00Z"))
    assert later.gc_failures.empty


def test_summary_breaches_and_json(messy):
    h = hygiene.assess(messy, None)
    summary = h.summary.set_index("check")["status"].to_dict()
    assert summary == {"snapshots older than": "breach", "chains deeper than": "breach",
                       "SRs short of coalesce space": "breach", "GC failures in the SMlog": "not checked"}
    assert len(h.breaches) == 4 and "orphan snap is 30 days old (limit 7)" in h.breaches[0]
    assert any("no SMlog given" in n for n in h.notes)
    data = json.loads(json.dumps(h.to_json()))
    assert data["schema"] == "runbook.hygiene/1" and data["breaches"] == h.breaches


def test_a_clean_pool_has_no_breach():
    pool = PoolRecords("clean")
    nfs = pool.sr("nfs", "nfs", 10_000 * G, 10 * G)
    pool.vm("app", "Running", [pool.vdi(nfs, 10 * G, 3 * G)])
    h = hygiene.assess(pool.inventory(captured=NOW), {"vdis": [], "verdict": "healthy"})
    assert h.breaches == [] and set(h.summary["status"]) == {"ok"}
    hygiene.plot(h)


def test_the_simulated_seed_pool_breaches_on_space_and_gc_failures():
    inv, diagnosis, last = hygiene.gather("", sim_hours=3)
    h = hygiene.assess(inv, diagnosis, smlog_last=last)
    assert h.short_srs["name"].tolist() == ["Local SATA Storage"]
    # the running 2020 GiB disk's written size is unknown: the breach says it is a worst case
    (line,) = [b for b in h.breaches if b.startswith("SR Local SATA Storage")]
    assert "needs up to 2,394.7 GiB (at least 8 MiB: a running disk" in line, line
    assert h.gc_failures["vdi"].tolist() == ["67558d6a"] and h.gc_failures.loc[0, "verdict"] == "stuck-timeout"
    assert h.old_snapshots.empty and h.deep_chains.empty


def test_notebook_05_exits_3_on_a_breach(tmp_path):
    nb = notebooks_dir() / "05_snapshot_hygiene.ipynb"
    seed = run_notebook(nb, "nightly", {"sim_hours": 2.0}, outputs=tmp_path / "outputs")
    assert seed.exit_code == 3, seed.error
    assert any("Local SATA Storage" in b for b in seed.records["breach"])
    assert seed.records["hygiene"]["schema"] == "runbook.hygiene/1"
    # the pool preflight ran too: warnings only on the seed pool, so none of the breaches is its
    fit = seed.records["pool_check"]
    assert fit["schema"] == "runbook.pool.check/1" and fit["source"]["kind"] == "simulator"
    assert fit["status"] == "warning" and not any(b.startswith("check-pool") for b in seed.records["breach"])


def test_notebook_05_exits_0_on_a_clean_pool(tmp_path):
    nb = notebooks_dir() / "05_snapshot_hygiene.ipynb"
    out = tmp_path / "outputs"
    pool = PoolRecords("clean")
    nfs = pool.sr("nfs", "nfs", 10_000 * G, 10 * G)
    pool.vm("app", "Running", [pool.vdi(nfs, 10 * G, 3 * G)])
    saved = pool.inventory(captured=NOW).save(tmp_path / "clean.json")
    clean = run_notebook(nb, "nightly", {"inventory_path": str(saved)}, outputs=out)
    assert clean.exit_code == 0, clean.error
    assert clean.records["breach"] == [] and clean.status == "succeeded"
    assert clean.records["pool_check"] is None   # a saved inventory: no pool to check


def test_notebook_05_counts_a_pool_check_problem_as_a_breach(tmp_path, monkeypatch):
    nb = notebooks_dir() / "05_snapshot_hygiene.ipynb"
    with Simulator("healthy") as sim:
        with sim.pool.lock:   # an older xapi: VBD records without `bootable`
            for rec in sim.state.tables["VBD"].values():
                rec.pop("bootable")
        monkeypatch.setenv("RUNBOOK_TEST_SIM_PASSWORD", sim.password)
        run = run_notebook(nb, "nightly", {"url": sim.url, "password_env": "RUNBOOK_TEST_SIM_PASSWORD"},
                           outputs=tmp_path / "outputs")
    assert run.exit_code == 3, run.error
    (breach,) = run.records["breach"]
    assert breach.startswith("check-pool fields VBD: VBD records lack bootable")
    assert run.records["pool_check"]["status"] == "problem"
