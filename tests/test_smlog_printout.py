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
