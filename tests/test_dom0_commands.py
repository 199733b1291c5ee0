"""The dom0 allowlist: only the read-only templates, every argument validated, quoted for the shell."""

import shlex

import pytest

from runbook_lib.dom0 import commands as c

SR = "db4c3909-4b61-e5f6-8548-16dc56780f61"
VDI = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"


def test_the_templates_and_their_quoting():
    assert c.command_line(c.scan(SR)) == f"vhd-util scan -f -m 'VHD-*' -l VG_XenStorage-{SR}"
    assert c.command_line(c.lvs(SR)) == f"lvs --noheadings --units b -o lv_name,lv_size,lv_attr VG_XenStorage-{SR}"
    assert c.command_line(c.query(c.lv_path(SR, VDI))) == \
        f"vhd-util query --debug -vsaf -n /dev/VG_XenStorage-{SR}/VHD-{VDI}"
    assert c.command_line(c.read_bitmap(c.file_path(SR, VDI))) == \
        f"vhd-util read --debug -B -n /var/run/sr-mount/{SR}/{VDI}.vhd"
    assert shlex.split(c.command_line(c.scan(SR))) == c.scan(SR)  # the far side's shell splits it back exactly


@pytest.mark.parametrize("argv", [
    ["rm", "-rf", "/"],
    ["vhd-util", "coalesce", "--debug", "-n", f"/dev/VG_XenStorage-{SR}/VHD-{VDI}"],
    ["vhd-util", "query", "--debug", "-vsaf", "-n", "/etc/shadow"],
    ["vhd-util", "query", "--debug", "-vsaf", "-n", f"/dev/VG_XenStorage-{SR}/VHD-{VDI}; reboot"],
    ["vhd-util", "scan", "-f", "-m", "VHD-*", "-l", "VG_XenStorage-$(reboot)"],
    ["lvs", "--noheadings", "--units", "b", "-o", "lv_name,lv_size,lv_attr", f"VG_XenStorage-{SR}", "--extra"],
    "vhd-util scan",
])
def test_anything_else_is_refused_before_it_is_sent(argv):
    with pytest.raises(c.CommandRefused):
        c.check(argv)


def test_uuids_are_checked_when_a_command_is_built():
    with pytest.raises(c.CommandRefused):
        c.scan("../../etc")
    with pytest.raises(c.CommandRefused):
        c.lv_path(SR, "not-a-uuid")
