"""check-pool --ssh: each host's dom0 asked one read-only question, or why it could not be."""

import json

from click.testing import CliRunner

from runbook_lib.cli import main
from runbook_lib.dom0.reach import probe_dom0
from runbook_lib.dom0.ssh import Endpoint, SshOptions
from runbook_lib.xapi import connect, fetch_inventory


def test_check_pool_with_ssh_reaches_each_dom0_on_the_simulator():
    result = CliRunner().invoke(main, ["check-pool", "--url", "sim:seed-stuck-leaf-coalesce", "--ssh", "--json"])
    items = [i for i in json.loads(result.output)["items"] if i["check"] == "dom0"]
    assert [(i["subject"], i["status"]) for i in items] == [("xen", "ok")]
    assert "answered `lvs " in items[0]["detail"] and "host key known" in items[0]["detail"]


def test_without_ssh_dom0_is_not_asked():
    result = CliRunner().invoke(main, ["check-pool", "--url", "sim:seed-stuck-leaf-coalesce", "--json"])
    assert not [i for i in json.loads(result.output)["items"] if i["check"] == "dom0"]


def test_a_dom0_that_does_not_answer_is_a_problem_in_one_line(tmp_path):
    with connect("sim:seed-stuck-leaf-coalesce") as session:
        inv = fetch_inventory(session)
    host = inv.hosts.iloc[0]
    closed = {host["uuid"]: Endpoint(host=host["uuid"], name=host["name"], address="127.0.0.1", port=1)}
    (reach,) = probe_dom0(inv, SshOptions(known_hosts=str(tmp_path / "known_hosts"), connect_timeout_s=5),
                          endpoints=closed)
    assert reach.status == "problem" and "\n" not in reach.detail and reach.detail


def test_a_host_without_an_lvm_sr_is_not_asked():
    with connect("sim:nfs-only") as session:
        inv = fetch_inventory(session)
    reaches = probe_dom0(inv, SshOptions())
    assert reaches and {r.status for r in reaches} == {"skipped"}
