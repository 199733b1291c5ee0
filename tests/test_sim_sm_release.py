"""The simulated storage manager's version decides its behaviour (sim/sm_release.py)."""

import pytest
import XenAPI

from runbook_lib.errors import UsageError
from runbook_lib.sim import Simulator
from runbook_lib.sim.sm_release import SmRelease


def _release(version=None, style="modern"):
    return SmRelease.from_scenario({"sm": {"version": version}} if version else {}, style)


@pytest.mark.parametrize("version, task, message, key_left, blocks", [
    ("2.30.8", False, False, False, False),
    ("3.0.10", True, False, False, False),
    ("3.0.11", True, False, False, True),
    ("3.2.3-1.7.xcpng8.3", True, False, False, True),
    ("3.2.3-1.8.xcpng8.3", True, False, False, False),
    ("3.2.11-1.xs8", True, True, True, True),
    ("3.2.12-16.1.xcpng8.3", True, True, True, False),
    ("3.2.12-17.xs8", True, True, False, False),
    ("4.1.7", True, True, True, False),
    ("4.1.8", True, True, False, False),
])
def test_behaviour_by_version(version, task, message, key_left, blocks):
    r = _release(version)
    assert (r.gc_task, r.no_space_message, r.leaves_no_space_key, r.file_sizes_in_blocks) == (
        task, message, key_left, blocks)


def test_defaults_follow_the_log_style_and_bad_versions_are_refused():
    assert str(_release(style="legacy").sm.version) == "2.30.8"
    assert str(_release(style="modern").sm.version) == "3.2.12"
    with pytest.raises(UsageError):
        _release("latest")


def test_the_pool_lists_storage_drivers_and_product_as_a_real_host_does():
    with Simulator("nfs-old-sm", speed=1) as sim:
        s = XenAPI.Session(sim.url)
        s.xenapi.login_with_password(sim.user, sim.password, "1.0", "test")
        try:
            drivers = {r["type"]: r for r in s.xenapi.SM.get_all_records().values()}
            (host,) = s.xenapi.host.get_all_records().values()
        finally:
            s.xenapi.session.logout()
    assert {"lvm", "nfs", "ext", "iso"} <= set(drivers)
    assert drivers["nfs"]["name_label"] == "NFS VHD" and drivers["nfs"]["version"] == "1.0"   # never sm's version
    software = host["software_version"]
    assert (software["product_brand"], software["product_version"]) == ("XCP-ng", "8.3.0")
    assert (host["API_version_major"], host["API_version_minor"]) == ("2", "21")   # the API of that product
