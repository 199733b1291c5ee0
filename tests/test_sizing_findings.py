"""Notebook 01's findings as sizing input."""

from runbook_lib.sizing.findings import findings_by_vdi

VHD = "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10"
QCOW = "b1b2b3b4-0000-4000-8000-000000000001"


def test_a_qcow2_vdis_printed_sizes_are_kept_out_of_the_vhd_formulas():
    findings = {"vdis": [{"vdi": VHD[:8], "format": "vhd", "size": 130000000, "verdict": "stuck-timeout"},
                         {"vdi": QCOW, "format": "qcow2", "size": 5 << 30, "lv_size": 6 << 30,
                          "verdict": "stuck-write-rate"}]}
    known = findings_by_vdi(findings, [VHD, QCOW])
    assert known[VHD]["size"] == 130000000  # a VHD's printed size is the VHD size the GC works with
    assert "size" not in known[QCOW] and "lv_size" not in known[QCOW]
    assert known[QCOW]["verdict"] == "stuck-write-rate" and known[QCOW]["format"] == "qcow2"
