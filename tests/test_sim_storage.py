"""Space accounting follows the storage manager's rules (gc-space-rules.md)."""

from runbook_lib.sim import Simulator
from runbook_lib.sim.storage import LVM_MGT_BYTES, Vhd, fmt_bytes
from runbook_lib.sizing import GiB, MiB, lv_size, lvhd_lv_size, overhead_empty


def test_printed_sizes():
    assert fmt_bytes(lvhd_lv_size(2020 * GiB)) == "2023.953G"
    assert fmt_bytes(lvhd_lv_size(2 * GiB)) == "2.012G"
    assert fmt_bytes(1536 * 1024) == "1.500M" and fmt_bytes(512) == "512"


def test_vhd_size_counts_metadata_bitmaps_and_blocks():
    v = Vhd(sr="", virtual=10 * GiB, blocks=3)
    assert v.vhd_size == overhead_empty(10 * GiB) + 3 * (2 * MiB + 4096)
    assert v.allocated == 6 * MiB


def test_lvm_inflate_deflate_and_sr_totals():
    sim = Simulator("healthy")
    st, storage = sim.state, sim.storage
    sr = sim.sr_ref("Local storage")
    leaf = st.ref_by_uuid("VDI", "c5e7a9b1-3d5f-4a7c-8e0b-7c9e1a3c5e8f")
    halted = st.ref_by_uuid("VDI", "f7b9d1f3-6a8c-4e0a-b2d4-9e1a3c5e7a0b")
    assert storage.vdi_bytes(leaf) == lvhd_lv_size(40 * GiB)               # attached
    assert storage.vdi_bytes(halted) == lv_size(storage.vhds[halted].vhd_size)
    rec = st.get("SR", sr)
    total = LVM_MGT_BYTES + sum(storage.vdi_bytes(r) for r in st.children("VDI", "SR", sr))
    assert rec["physical_utilisation"] == total
    assert rec["virtual_allocation"] == (40 + 40 + 80) * GiB                # managed VDIs only
    storage.detach(leaf)                       # thick (sm's default): LVHDVDI.detach keeps the LV full
    assert storage.vdi_bytes(leaf) == lvhd_lv_size(40 * GiB)
    assert st.get("SR", sr)["physical_utilisation"] == total
    storage.attach(leaf)
    storage.srs[sr].provisioning = "thin"      # thin: the detached VHD deflates to its LV
    storage.detach(leaf)
    assert storage.vdi_bytes(leaf) == lv_size(storage.vhds[leaf].vhd_size)
    assert st.get("SR", sr)["physical_utilisation"] < total
    storage.attach(leaf)
    assert st.get("SR", sr)["physical_utilisation"] == total


def test_file_sr_uses_vhd_file_sizes():
    sim = Simulator("nfs-only")
    storage = sim.storage
    sr = sim.sr_ref("NFS VM store")
    used = storage.srs[sr].other_used + sum(v.vhd_size for v in storage.vhds.values())
    assert storage.used(sr) == used


def test_leaf_growth_while_attached():
    sim = Simulator("seed-stuck-leaf-coalesce", speed=1)
    leaf = sim.state.ref_by_uuid("VDI", "67558d6a-2f3e-4c8b-a1d9-7e5f3b2c9d10")
    before = sim.storage.vhds[leaf].blocks
    sim.advance(10 * 3600)          # 2 MiB/h: 10 more blocks
    assert sim.storage.vhds[leaf].blocks == before + 10
