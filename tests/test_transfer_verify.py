"""Verify before destroy: a copy must be the same VM in every way that matters."""

import copy

import pytest

from runbook_lib.transfer.verify import verify_copy, verify_round_trip

ORIGINAL = {
    "uuid": "orig", "name": "db01", "description": "database", "power_state": "Running",
    "other_config": {"owner": "ops", "mac_seed": "a"},
    "disks": [{"userdevice": "0", "virtual_size": 20 << 30, "vdi": "d0", "sr": "src", "bootable": True},
              {"userdevice": "1", "virtual_size": 2020 << 30, "vdi": "d1", "sr": "src", "bootable": False}],
    "vifs": [{"device": "0", "mac": "aa:bb:cc:00:00:01", "network": "n1"}],
}


def copy_of(**changes):
    c = copy.deepcopy(ORIGINAL)
    c.update(uuid="copy", name="db01 [runbook staging copy]")
    for d in c["disks"]:
        d["sr"] = "stg"
    c.update(changes)
    return c


def test_a_faithful_copy_passes():
    assert verify_copy(ORIGINAL, copy_of(), expect_name="db01 [runbook staging copy]", expect_sr="stg") == []


@pytest.mark.parametrize("change, words", [
    (lambda c: c["disks"].pop(), "disk count"),
    (lambda c: c["disks"][1].update(virtual_size=2019 << 30), "virtual size"),
    (lambda c: c["disks"].reverse(), "device order"),
    (lambda c: c["disks"][0].update(sr="src"), "not on SR stg"),
    (lambda c: c["vifs"][0].update(mac="aa:bb:cc:00:00:02"), "MAC"),
    (lambda c: c["vifs"].clear(), "VIF devices"),
    (lambda c: c.update(name="other"), "named"),
    (lambda c: c.update(uuid="orig"), "original itself"),
])
def test_each_difference_is_named(change, words):
    c = copy_of()
    change(c)
    problems = verify_copy(ORIGINAL, c, expect_name="db01 [runbook staging copy]", expect_sr="stg")
    assert problems and any(words in p for p in problems), problems


def test_live_migration_checks_the_same_vm():
    same = copy.deepcopy(ORIGINAL)
    for d in same["disks"]:
        d["sr"] = "stg"
    assert verify_copy(ORIGINAL, same, expect_name="db01", expect_sr="stg", same_vm=True) == []


def test_round_trip_keeps_identity_but_ignores_the_pools_own_keys():
    final = copy.deepcopy(ORIGINAL)
    final["uuid"] = "new"
    final["other_config"]["mac_seed"] = "b"  # the pool reseeds this on copy
    assert verify_round_trip(ORIGINAL, final, expect_sr="src") == []
    final["other_config"]["owner"] = "someone"
    final["power_state"] = "Halted"
    final["description"] = ""
    problems = verify_round_trip(ORIGINAL, final, expect_sr="src")
    assert any("other_config" in p and "owner" in p for p in problems)
    assert any("power state" in p for p in problems)
    assert any("description" in p for p in problems)


def test_per_disk_expectation_for_live_migration():
    moved = copy.deepcopy(ORIGINAL)
    moved["disks"][1]["sr"] = "stg"  # only the data disk was migrated
    expect = {"0": "src", "1": "stg"}
    assert verify_copy(ORIGINAL, moved, expect_name="db01", expect_sr=expect, same_vm=True) == []
    assert verify_copy(ORIGINAL, ORIGINAL, expect_name="db01", expect_sr=expect, same_vm=True) == [
        "disk 1 is not on SR stg"]
