"""Scenarios for the check-pool tests (not a test module): what the bundled ones do not show."""

from __future__ import annotations

import copy

from runbook_lib.sim import load_scenario

THICK, THIN, THIN_BY_PBD, NFS, SMALL = "Thick local", "Thin local", "Thin by PBD", "NFS shared", "Small ext"
PBD_SECRET = "s3cret-not-for-output"


def mixed_pool() -> dict:
    """Two hosts: xs01 (XCP-ng 8.3, the plugin), xs02 (XCP-ng 8.2.1, no plugin); a thick, a thin and a
    PBD-thin LVM SR, a shared NFS SR, a small ext SR as the pool's suspend SR; HA on with one
    protected VM on xs01, whose memory does not fit the suspend SR; xs02 suspends to its thin SR."""
    return {
        "name": "check-mixed", "smlog": {"style": "modern"},
        "pool": {"uuid": "0c0c0c0c-0000-4000-8000-000000000001", "name_label": "mixed", "ha_enabled": True,
                 "suspend_image_SR": SMALL, "default_SR": NFS},
        "hosts": [
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000a1", "name_label": "xs01", "master": True},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000a2", "name_label": "xs02", "plugins": [],
             "suspend_image_sr": THIN, "software_version": {"product_brand": "XCP-ng", "product_version": "8.2.1"}},
        ],
        "srs": [
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000b1", "name_label": THICK, "type": "lvm", "host": "xs01",
             "physical_size": "1T"},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000b2", "name_label": THIN, "type": "lvm", "host": "xs02",
             "physical_size": "1T", "sm_config": {"allocation": "thin"}},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000b3", "name_label": THIN_BY_PBD, "type": "lvm",
             "host": "xs01", "physical_size": "1T",
             "device_config": {"device": "/dev/sdc", "allocation": "thin", "chappassword": PBD_SECRET}},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000b4", "name_label": NFS, "type": "nfs", "shared": True,
             "physical_size": "2T"},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000b5", "name_label": SMALL, "type": "ext", "host": "xs01",
             "physical_size": "1G"},
        ],
        "vdis": [
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000c1", "sr": THICK, "name_label": "guarded disk",
             "virtual_size": "20G", "allocated": "5G"},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000c2", "sr": THIN, "name_label": "worker disk",
             "virtual_size": "20G", "allocated": "5G"},
        ],
        "vms": [
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000d1", "name_label": "guarded", "power_state": "Running",
             "host": "xs01", "memory": "4G", "ha_restart_priority": "restart",
             "vbds": [{"vdi": "0c0c0c0c-0000-4000-8000-0000000000c1"}]},
            {"uuid": "0c0c0c0c-0000-4000-8000-0000000000d2", "name_label": "worker", "power_state": "Running",
             "host": "xs02", "memory": "2G", "vbds": [{"vdi": "0c0c0c0c-0000-4000-8000-0000000000c2"}]},
        ],
    }


def ha_without_shared_sr() -> dict:
    """The healthy pool without its NFS SR, HA on, its running VM protected."""
    data = copy.deepcopy(load_scenario("healthy"))
    data["srs"] = [sr for sr in data["srs"] if sr["type"] != "nfs"]
    data["pool"] = {**data["pool"], "ha_enabled": True}
    for vm in data["vms"]:
        if vm["name_label"] == "app":
            vm["ha_restart_priority"] = "restart"
    return data
