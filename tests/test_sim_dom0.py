"""What the simulated dom0 answers, and what a host cannot see (sim/dom0.py)."""

from runbook_lib.sim import Simulator, load_scenario
from runbook_lib.sim.dom0 import Dom0

SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"
LEAF = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"
BASE = "3f0b7c2e-8d41-4a6b-9e27-5c1d0f9a8b34"
HALTED = "e91c5b7a-3f0d-4a26-b8e4-2d7c6a1f9b35"  # ubuntu-base's disk: its VM is halted


def _seed_with_a_second_host():
    scenario = load_scenario("seed-stuck-leaf-coalesce")
    scenario["hosts"].append({"uuid": "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5", "name_label": "xen2",
                              "address": "192.168.10.22"})
    sim = Simulator(scenario)
    return sim, Dom0(sim.pool), sim.pool.master, sim.state.ref_by_uuid("host", "1d2e3f40-5a6b-4c7d-8e9f-a0b1c2d3e4f5")


def test_scan_lvs_query_and_bitmaps_come_from_the_model():
    sim, dom0, master, _ = _seed_with_a_second_host()
    status, out, _ = dom0.run(master, f"vhd-util scan -f -m 'VHD-*' -l VG_XenStorage-{SR}")
    lines = out.decode().splitlines()
    assert status == 0 and f"vhd=VHD-{LEAF} capacity=2168958484480 size=130347008 hidden=0 parent=VHD-{BASE}" in lines
    status, out, _ = dom0.run(master, f"lvs --noheadings --units b -o lv_name,lv_size,lv_attr VG_XenStorage-{SR}")
    attrs = {parts[0]: parts[2] for parts in (line.split() for line in out.decode().splitlines())}
    assert attrs[f"VHD-{LEAF}"] == "-wi-ao----" and attrs[f"VHD-{BASE}"] == "-ri-a-----"
    assert attrs[f"VHD-{HALTED}"] == "-wi-------"  # its VM is halted: the LV is not active
    status, out, _ = dom0.run(master, f"vhd-util query --debug -vsaf -n /dev/VG_XenStorage-{SR}/VHD-{LEAF}")
    assert status == 0 and out.decode().splitlines() == ["2068480", "130347008", "hidden: 0", "60"]
    leaf = int.from_bytes(dom0.run(master, f"vhd-util read --debug -B -n /dev/VG_XenStorage-{SR}/VHD-{LEAF}")[1],
                          "little")
    base = int.from_bytes(dom0.run(master, f"vhd-util read --debug -B -n /dev/VG_XenStorage-{SR}/VHD-{BASE}")[1],
                          "little")
    with sim.pool.lock:
        union = sim.gc.union_blocks(sim.state.ref_by_uuid("VDI", LEAF))
    assert leaf.bit_count() == 60 and (leaf | base).bit_count() == union


def test_a_host_sees_only_what_it_attaches_and_what_is_active():
    sim, dom0, master, other = _seed_with_a_second_host()
    status, _, err = dom0.run(other, f"vhd-util scan -f -m 'VHD-*' -l VG_XenStorage-{SR}")
    assert status == 5 and b"not found" in err  # a local SR on another host's disks
    status, _, err = dom0.run(master, f"vhd-util read --debug -B -n /dev/VG_XenStorage-{SR}/VHD-{HALTED}")
    assert status == 2 and b"error opening" in err  # an inactive LV has no device node
    assert dom0.run(master, "rm -rf /")[0] == 127
    assert dom0.run(master, "vhd-util scan -f -m 'VHD-*' -l VG_XenStorage-$(id)")[0] == 127
