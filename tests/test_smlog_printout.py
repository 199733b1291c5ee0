"""VDI printouts: every shape the GC prints, sizes in bytes (1024-based), flags."""

import pytest

from runbook_lib.smlog.printout import find_printouts, parse_printout, parse_size

GIB = 1 << 30


def test_seed_printout_old_lvm_shape():
    p = parse_printout("Removed leaf-coalesce from 67558d6a[VHD](2020.000G//2023.953G|ao)")
    assert p.uuid8 == "67558d6a" and not p.hidden and p.vdi_type == "VHD"
    assert p.virtual_size == 2020 * GIB == 2168958484480
    assert p.size is None
    assert p.lv_size == round(2023.953 * GIB)
    assert p.flags == "ao"


def test_hidden_four_field_lvm_shape():
    p = parse_printout("*85ff84a8[VHD](65.000G///33.836G|n)")
    assert p.hidden and p.uuid8 == "85ff84a8"
    assert p.virtual_size == 65 * GIB
    assert p.size is None and p.allocated is None
    assert p.lv_size == round(33.836 * GIB)
    assert p.flags == "n"


def test_full_four_field_lvm_shape():
    p = parse_printout("11aa22bb[VHD](10.000G/2.000G/2.500G/10.023G|ao)")
    assert (p.virtual_size, p.size, p.allocated, p.lv_size) == (10 * GIB, 2 * GIB, round(2.5 * GIB), round(10.023 * GIB))


def test_file_sr_shape_has_no_flags_and_no_lv():
    p = parse_printout("*4e5f6a7b(50.000G/1.211G/1.250G)")
    assert p.hidden and p.vdi_type is None and p.flags is None and p.lv_size is None
    assert (p.virtual_size, p.size, p.allocated) == (50 * GIB, round(1.211 * GIB), round(1.25 * GIB))


def test_two_printouts_in_one_message_keep_their_order():
    found = find_printouts("Leaf-coalescing 67558d6a[VHD](2020.000G//2023.953G|ao) -> *85ff84a8[VHD](65.000G///33.836G|n)")
    assert [p.uuid8 for p in found] == ["67558d6a", "85ff84a8"]


@pytest.mark.parametrize("text,expected", [
    ("512", 512), ("1.500K", 1536), ("2.000M", 2 << 20), ("1.000T", 1 << 40), ("?", None), ("", None), ("x1G", None),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_prose_in_parentheses_is_not_a_printout():
    assert parse_printout("checked deadbeef(twice)") is None
    assert parse_printout("no printout here") is None


@pytest.mark.parametrize("text,fmt,style", [
    ("67558d6a[VHD](2020.000G//2023.953G|ao)", "vhd", "lvm-3"),            # sm before 3.0.11
    ("*85ff84a8[VHD](65.000G///33.836G|n)", "vhd", "lvm-4"),
    ("85ff84a8(65.000G/33.836G)", "vhd", "file-2"),                         # sm before 3.0.11
    ("85ff84a8(65.000G/33.836G/30.000G)", "vhd", "file-3"),
    ("*0a1b2c3d[qcow2](2500.000G/600.000G/598.000G/602.125G|n)", "qcow2", "lvm-cow"),  # XCP-ng 8.3 QCOW2
    ("8c9d0e1f[vhd](2500.000G/1.000G/0.900G/3.125G|n)", "vhd", "lvm-cow"),
    ("*a1a2a3a4(3000.000G/812.000G/810.000G)[qcow2]", "qcow2", "file-cow"),
    ("c1c2c3c4(100.000G/12.000G/11.900G)[vhd]", "vhd", "file-cow"),
    ("4e5f6a7b[RAW](2.000G//2.004G|n)", "raw", "lvm-3"),
    ("4e5f6a7b(2.000G)[RAW]", "raw", "file"),
])
def test_format_and_style_of_every_release(text, fmt, style):
    p = parse_printout(f"Coalescing {text} -> x")
    assert (p.format, p.style, p.text) == (fmt, style, text)


def test_qcow2_sizes_are_read_like_any_other():
    lvm = parse_printout("4e5f6a7b[qcow2](2500.000G/30.000G/29.500G/32.125G|ao)")
    assert (lvm.virtual_size, lvm.size, lvm.allocated, lvm.lv_size) == (
        2500 * GIB, 30 * GIB, round(29.5 * GIB), round(32.125 * GIB))
    file = parse_printout("b1b2b3b4(3000.000G/40.500G/40.000G)[qcow2]")
    assert (file.virtual_size, file.size, file.allocated, file.lv_size, file.vdi_type) == (
        3000 * GIB, round(40.5 * GIB), 40 * GIB, None, "qcow2")


def test_unknown_sizes_glued_to_their_neighbour():
    # the GC writes `?` right after the previous size when it does not know one
    p = parse_printout("Set vhd-parent = x for dce4b0fc(2.000G/170.336M?)")
    assert (p.virtual_size, p.size, p.allocated) == (2 * GIB, round(170.336 * 2**20), None)
    p = parse_printout("dce4b0fc(2.000G?/1.000G)")
    assert (p.virtual_size, p.size, p.allocated) == (2 * GIB, None, GIB)


def test_a_type_suffix_on_prose_is_not_a_printout():
    assert parse_printout("checked deadbeef(twice)[RAW]") is None
    assert parse_printout("checked deadbeef(twice)[x]") is None
