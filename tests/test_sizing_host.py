"""Exact sizes from dom0 over SSH, against the simulator's SSH servers (the real asyncssh client)."""

import pytest

from runbook_lib.dom0 import commands
from runbook_lib.dom0.ssh import Endpoint, SshOptions, ask
from runbook_lib.sim import Simulator
from runbook_lib.sizing import size_pool
from runbook_lib.sizing.host import HostSizes, read_host_sizes
from runbook_lib.xapi.inventory import open_inventory

LEAF = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"
BASE = "3f0b7c2e-8d41-4a6b-9e27-5c1d0f9a8b34"
SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"


@pytest.fixture
def seed(tmp_path, monkeypatch):
    with Simulator("seed-stuck-leaf-coalesce", ssh=True, calls=str(tmp_path / "calls.jsonl")) as sim:
        monkeypatch.setenv("SIM_PW", sim.password)
        inv = open_inventory(url=sim.url, user=sim.user, password_env="SIM_PW")
        known = tmp_path / "known_hosts"
        known.write_text("\n".join(sim.ssh.known_hosts_lines()) + "\n")
        yield sim, inv, known, tmp_path


def _endpoints(sim, inv):
    names = dict(zip(inv.hosts["uuid"], inv.hosts["name"]))
    return {u: Endpoint(host=u, name=names[u], address=a, port=p) for u, (a, p) in sim.ssh.endpoints().items()}


def _options(known, **kw):
    return SshOptions(known_hosts=str(known), password_env="SIM_PW", **kw)


def test_dom0_makes_the_seed_exact_and_equal_to_what_the_simulated_gc_computes(seed):
    sim, inv, known, tmp = seed
    hs = read_host_sizes(inv, _options(known), endpoints=_endpoints(sim, inv))
    assert hs.warnings == [] and hs.hosts == 1 and hs.commands == 5  # scan, lvs, query, two bitmaps
    sz = size_pool(inv, host_sizes=hs)
    (c,) = sz.coalesces.to_dict("records")
    assert c["size_known"] and c["size_source"] == "host" and sz.sr(SR)["sizes_known"]
    with sim.pool.lock:
        leaf = sim.state.ref_by_uuid("VDI", LEAF)
        snap, live = sim.gc.leaf_needs(leaf)
        union = sim.gc.union_blocks(leaf)
    assert c["data"] == union * 2 * 1024 * 1024            # the GC's own "Num combined blocks"
    assert abs(c["needed_snapshot"] - snap) <= 0.01 * snap
    assert c["needed_live"] == max(live, 0) and c["offline_via"] == "force"
    log = (tmp / "calls.jsonl.ssh").read_text().splitlines()
    assert len(log) == 5 and all('"exit": 0' in line for line in log)


def test_saved_inventory_keeps_the_dom0_sizes(seed):
    sim, inv, known, tmp = seed
    inv.host_sizes = read_host_sizes(inv, _options(known), endpoints=_endpoints(sim, inv))
    from runbook_lib.xapi.inventory import Inventory

    back = Inventory.load(inv.save(tmp / "inv.json"))
    assert isinstance(back.host_sizes, HostSizes)
    assert back.host_sizes.by_vdi[LEAF]["bitmap"] == inv.host_sizes.by_vdi[LEAF]["bitmap"]
    assert size_pool(back).sr(SR)["sizes_known"]


def test_a_host_key_that_does_not_match_is_refused_and_nothing_runs(seed):
    sim, inv, known, tmp = seed
    port = next(iter(sim.ssh.ports.values()))
    other = "AAAAC3NzaC1lZDI1NTE5AAAAIJwWBtcG3R1bT0lgTtv1fXwzDSzJkJ5RmWN0pJu2qJ1d"  # some other host's key
    known.write_text(f"[127.0.0.1]:{port} ssh-ed25519 {other}\n")
    hs = read_host_sizes(inv, _options(known), endpoints=_endpoints(sim, inv))
    assert len(hs.warnings) == 1 and "does not match" in hs.warnings[0] and "nothing was run" in hs.warnings[0]
    assert sim.ssh.commands == []
    sz = size_pool(inv, host_sizes=hs)
    assert not sz.sr(SR)["sizes_known"] and sz.warnings == hs.warnings  # XenAPI bounds kept


def test_an_unknown_key_is_refused_unless_trust_on_first_use_is_asked_for(seed):
    sim, inv, known, tmp = seed
    fresh = tmp / "new_known_hosts"
    hs = read_host_sizes(inv, _options(fresh), endpoints=_endpoints(sim, inv))
    assert "is not in" in hs.warnings[0] and sim.ssh.commands == []
    hs = read_host_sizes(inv, _options(fresh, accept_new=True), endpoints=_endpoints(sim, inv))
    assert hs.warnings == [] and fresh.read_text().split()[1:] == sim.ssh.known_hosts_lines()[0].split()[1:]


def test_an_unreachable_dom0_falls_back_to_xapi_with_a_warning(seed):
    sim, inv, known, tmp = seed
    host = inv.hosts.iloc[0]
    gone = {host["uuid"]: Endpoint(host=host["uuid"], name=host["name"], address="127.0.0.1", port=1)}
    hs = read_host_sizes(inv, _options(known, connect_timeout_s=2), endpoints=gone)
    assert len(hs.warnings) == 1 and "unreachable" in hs.warnings[0] and "XenAPI bounds" in hs.warnings[0]
    sz = size_pool(inv, host_sizes=hs)
    assert sz.coalesces.iloc[0]["size_source"] == "upper-bound"


def test_a_command_off_the_allowlist_is_never_sent(seed):
    sim, inv, known, tmp = seed
    ep = _endpoints(sim, inv)
    host = next(iter(ep))
    with pytest.raises(commands.CommandRefused):
        ask({host: (ep[host], [commands.scan(SR), ["vhd-util", "coalesce", "-n", "/dev/x"]])}, _options(known))
    assert sim.ssh.commands == []  # refused before any connection: not even the allowed one went


def test_the_simulated_dom0_refuses_what_it_does_not_answer_and_logs_it(seed):
    import asyncio

    import asyncssh

    sim, inv, known, tmp = seed
    port = next(iter(sim.ssh.ports.values()))

    async def raw():
        async with asyncssh.connect("127.0.0.1", port=port, username=sim.user, password=sim.password,
                                    known_hosts=str(known)) as conn:
            return await conn.run("cat /etc/shadow", check=False)
    result = asyncio.run(raw())
    assert result.exit_status == 127 and sim.ssh.commands[-1]["command"] == "cat /etc/shadow"
