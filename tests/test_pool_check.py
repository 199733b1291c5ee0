"""runbook_lib.pool_check: the preflight's items on every bundled scenario and on pools made to show each one."""

import json

import pytest

from runbook_lib import pool_check
from runbook_lib.pool_check import CHECKS, Item, check_pool, run_checks
from runbook_lib.pool_diagnosis import GC_SR_TYPES
from runbook_lib.sim import Simulator, list_scenarios
from runbook_lib.sim.model import NULL_REF
from runbook_lib.xapi.connect import connect
from runbook_lib.xapi.preflight_reads import PROBE_FUNCTION, fetch_preflight, open_preflight
from tests.check_pools import NFS, SMALL, THICK, THIN, THIN_BY_PBD, ha_without_shared_sr, mixed_pool
from tests.transfer_pool import calls_made, changing_calls

READS_ONLY = {"session.login_with_password", "session.logout"}


def _check(sim, tmp_path) -> pool_check.PoolCheck:
    password = tmp_path / "password"
    password.write_text(sim.password)
    return check_pool(sim.url, password_env=None, password_file=password)


def _by(result, check: str) -> dict[str, Item]:
    return {i.subject: i for i in result.items if i.check == check}


@pytest.mark.parametrize("scenario", list_scenarios())
def test_every_bundled_scenario_is_checked_without_a_change(scenario, tmp_path):
    calls = tmp_path / "calls.jsonl"
    reads = open_preflight(f"sim:{scenario}", sim_options={"calls": str(calls)})   # what check_pool() reads
    result = run_checks(reads)
    made = calls_made(calls)
    # the only call that is not a read is the plugin probe, always with the function no plugin has
    assert set(changing_calls(calls)) <= {"host.call_plugin"}
    probes = [c for c in made if c["method"] == "host.call_plugin"]
    assert probes and all(c["args"][2:] == ["coalesce-leaf", PROBE_FUNCTION, {}] for c in probes)
    assert all(c["error"][0] == "UNKNOWN_XENAPI_PLUGIN_FUNCTION" for c in probes)
    assert {c["method"] for c in made} >= READS_ONLY
    # a line per host, per SR, per SR the GC works on; every kind of check
    hosts, srs = len(reads.hosts), reads.inventory.srs
    assert len(_by(result, "version")) == len(_by(result, "suspend-sr")) == hosts
    assert len(_by(result, "sr")) == len(srs)
    assert len(_by(result, "plugin")) == int(srs["type"].isin(GC_SR_TYPES).sum())
    assert {i.check for i in result.items} == {"version", "sr", "ha", "default-sr", "suspend-sr", "plugin", "fields"}
    assert all(i.status in pool_check.STATUSES and i.detail and "\n" not in i.detail for i in result.items)
    assert [i.status for i in result.items if i.check == "fields"] == ["ok"]  # the simulator has every field
    assert result.exit_code == (3 if result.status == "problem" else 0)
    data = json.loads(json.dumps(result.to_json()))
    assert data["schema"] == "runbook.pool.check/1" and len(data["items"]) == len(result.items)
    assert data["counts"] == {s: sum(i["status"] == s for i in data["items"]) for s in pool_check.STATUSES}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    with Simulator(mixed_pool()) as sim:
        yield _check(sim, tmp_path_factory.mktemp("mixed"))


def test_thick_and_thin_lvm(mixed):
    srs = _by(mixed, "sr")
    assert srs[THICK].status == "warning"
    assert "thick (no allocation: LVHD's default)" in srs[THICK].detail
    assert "a shutdown frees nothing here" in srs[THICK].detail
    assert srs[THIN].status == "ok" and "thin (sm_config allocation)" in srs[THIN].detail
    assert srs[THIN_BY_PBD].status == "ok" and "thin (device_config allocation)" in srs[THIN_BY_PBD].detail
    assert srs[NFS].detail.startswith("nfs, shared, attached on every host: xs01, xs02;")
    assert srs[SMALL].detail.startswith("ext, local to xs01")


def test_ha_on_names_the_vms_it_keeps_on_shared_srs(mixed):
    (ha,) = _by(mixed, "ha").values()
    assert ha.status == "ok" and "1 protected VM(s) (guarded)" in ha.detail and f"'{NFS}' (nfs)" in ha.detail


def test_ha_on_without_a_shared_sr_is_a_warning(tmp_path):
    with Simulator(ha_without_shared_sr()) as sim:
        result = _check(sim, tmp_path)
    (ha,) = _by(result, "ha").values()
    assert ha.status == "warning" and "(app)" in ha.detail and "no shared VHD SR" in ha.detail


def test_the_plugin_missing_on_an_srs_master(mixed):
    plugin = _by(mixed, "plugin")
    assert plugin[THIN].status == "warning"
    assert "missing on its master xs02 (XENAPI_MISSING_PLUGIN coalesce-leaf)" in plugin[THIN].detail
    assert plugin[THICK].status == "ok" and "present on its master xs01" in plugin[THICK].detail
    assert plugin[NFS].status == "ok" and plugin[NFS].detail.startswith("not needed")


def test_default_and_suspend_srs(mixed):
    (default,) = _by(mixed, "default-sr").values()
    assert default.status == "ok" and default.detail.startswith(f"'{NFS}' (nfs), 2,048.0 GiB free")
    suspend = _by(mixed, "suspend-sr")
    # xs01 suspends to the pool's 1 GiB ext SR: too small for the 4 GiB VM the plugin would suspend
    assert suspend["xs01"].status == "warning" and "the pool's suspend_image_SR" in suspend["xs01"].detail
    assert "guarded (up to 4.0 GiB)" in suspend["xs01"].detail
    # xs02 cannot see that local SR: xapi falls back to the host's own suspend SR
    assert suspend["xs02"].status == "ok" and f"'{THIN}' (lvm)" in suspend["xs02"].detail
    assert "the host's suspend_image_sr" in suspend["xs02"].detail and "worker, up to 2.0 GiB" in suspend["xs02"].detail


def test_versions_per_host(mixed):
    versions = _by(mixed, "version")
    assert versions["xs01"].status == "ok" and "checked as XCP-ng 8.3" in versions["xs01"].detail
    assert versions["xs02"].status == "warning" and "XCP-ng 8.2.1, API 2.15: not a release" in versions["xs02"].detail
    assert mixed.exit_code == 0 and mixed.status == "warning" and mixed.problems == []


def test_no_suspend_sr_for_a_vm_the_plugin_would_suspend(tmp_path):
    with Simulator("healthy") as sim:
        with sim.pool.lock:  # an admin cleared both (an install sets them)
            st = sim.state
            st.set("pool", st.all_refs("pool")[0], suspend_image_SR=NULL_REF)
            st.set("host", st.all_refs("host")[0], suspend_image_sr=NULL_REF)
        result = _check(sim, tmp_path)
    (item,) = _by(result, "suspend-sr").values()
    assert item.status == "warning" and item.detail.startswith("no suspend SR for app")
    assert "VM_NO_SUSPEND_SR" in item.detail


def test_a_missing_field_is_a_problem_and_exit_3(tmp_path):
    with Simulator("healthy") as sim:
        with sim.pool.lock:   # an xapi from before changed block tracking and HA priorities
            for rec in sim.state.tables["VDI"].values():
                rec.pop("cbt_enabled")
            for rec in sim.state.tables["VM"].values():
                rec.pop("ha_restart_priority")
        result = _check(sim, tmp_path)
    fields = _by(result, "fields")
    assert fields["VDI"].status == fields["VM"].status == "problem"
    assert fields["VDI"].detail.startswith("VDI records lack cbt_enabled, which the suite reads")
    assert "ha_restart_priority" in fields["VM"].detail
    assert result.status == "problem" and result.exit_code == 3
    assert result.problems == [f"check-pool fields VDI: {fields['VDI'].detail}",
                               f"check-pool fields VM: {fields['VM'].detail}"]


def test_another_check_is_one_more_function(tmp_path):
    with Simulator("nfs-only") as sim:
        password = tmp_path / "password"
        password.write_text(sim.password)
        with connect(sim.url, sim.user, password_env=None, password_file=password) as session:
            reads = fetch_preflight(session)

    def dom0_reachable(reads):
        return [Item("ssh", h, "problem", "no route to dom0") for h in reads.hosts["name"]]

    result = run_checks(reads, (*CHECKS, dom0_reachable))
    assert result.items[-1] == Item("ssh", "xs02", "problem", "no route to dom0") and result.exit_code == 3
    assert run_checks(reads).exit_code == 0
    with pytest.raises(ValueError, match="unknown status"):
        run_checks(reads, (lambda r: [Item("x", "y", "bad", "z")],))
