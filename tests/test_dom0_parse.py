"""dom0's output formats (as sm's vhdutil reads them) and what is refused as unreadable."""

import pytest

from runbook_lib.dom0 import parse

P = "3f0b7c2e-8d41-4a6b-9e27-5c1d0f9a8b34"
L = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"


def test_scan_lines():
    text = (f"vhd=VHD-{P} capacity=2168958484480 size=1775138582528 hidden=1 parent=none\n"
            f"vhd=VHD-{L} capacity=2168958484480 size=130347008 hidden=0 parent=VHD-{P}\n"
            "vhd=VHD-11111111-2222-4333-8444-555555555555 scan-error=-22 error-message='corrupt'\n")
    out = parse.scan(text)
    assert out == {P: {"virtual": 2168958484480, "vhd_size": 1775138582528, "hidden": True, "parent": None},
                   L: {"virtual": 2168958484480, "vhd_size": 130347008, "hidden": False, "parent": P}}


def test_query_lines():
    assert parse.query("2068480\n130347008\nhidden: 0\n60\n") == {
        "virtual": 2068480 << 20, "vhd_size": 130347008, "hidden": False, "allocated": 60 * (2 << 20)}


def test_lvs_lines():
    out = parse.lvs(f"  MGT 4194304B -wi-a-----\n  VHD-{L} 2173203120128B -wi-ao----\n  VHD-{P} 8B -ri-------\n")
    assert out[f"VHD-{L}"] == {"lv_size": 2173203120128, "active": True}
    assert out[f"VHD-{P}"]["active"] is False


def test_bitmap_bytes():
    assert parse.bitmap(b"\xff\x01").bit_count() == 9


@pytest.mark.parametrize("call, text", [
    (parse.query, "Error: no such file\n"), (parse.query, "2068480\nbig\nhidden: 0\n60\n"),
    (parse.lvs, "VHD-x 12 -wi\n"), (parse.scan, "vhd=no-uuid-here capacity=1 size=1 hidden=0 parent=none"),
    (parse.bitmap, b""), (parse.bitmap, "text"), (parse.scan, f"vhd=VHD-{L} capacity=-1 size=1 hidden=0 parent=none"),
])
def test_unreadable_output_is_a_one_line_parse_error(call, text):
    with pytest.raises(parse.ParseError) as err:
        call(text)
    assert "\n" not in str(err.value)
