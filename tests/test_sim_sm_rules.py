"""The simulator's own sm rules (sim/sm_rules.py) and its GC's space figures, against numbers
worked out by hand from the storage manager's formulas (gc-space-rules.md).

By hand (MiB 1048576, a 2 MiB block with its 4 KiB bitmap = 2101248 bytes):
- overhead_empty(10 GiB) = 24576; overhead_empty(2 TiB) = 4329472; lvhd_lv_size(2020 GiB) =
  2173203120128 (the seed's 2023.953G).
- base: 10 GiB virtual, 2560 blocks: VHD 24576 + 2560 x 2101248 = 5379219456; its LV rounds up to
  1283 x 4 MiB = 5381292032. Leaf: 512 blocks: VHD 1075863552, LV 257 x 4 MiB = 1077936128.
- merged: 3072 blocks = 6442450944 bytes; lvhd_lv_size of it = 6442450944 + 4329472 + 3072 x 4096
  = 6459363328 -> 1541 x 4 MiB = 6463422464.
- LVM: coalesce need 6463422464 - 5381292032 = 1082130432; snapshot-coalesce + the leaf's LV
  = 2160066560; live (leaf not inflated: nothing to deflate) = 1082130432.
- ext: 6442450944 + 3072 x 4096 + 24576 - 5379219456 = 1075838976; snapshot + 24576 = 1075863552.
"""

import pytest

from runbook_lib.sim import Simulator
from runbook_lib.sim import sm_rules as r

GiB = 1 << 30


def test_formulas_by_hand():
    assert r.calc_overhead_empty(10 * GiB) == 24576
    assert r.calc_overhead_empty(r.LVHD_MSIZE) == 4329472
    assert r.calc_size_vhd_lv(2020 * GiB) == 2173203120128
    assert r.calc_size_vhd_lv(2 * GiB) == 2160066560
    assert r.calc_size_lv(5379219456) == 5381292032
    assert r.vhd_file_size(10 * GiB, 512) == 1075863552
    assert r.can_live_coalesce(100 << 20, 60 << 20, False) and not r.can_live_coalesce(400 << 20, 60 << 20, False)
    assert r.can_live_coalesce(10 << 30, None, True) and not r.can_live_coalesce(20 << 20, None, False)


def _pool(sr_type: str) -> dict:
    return {"name": "hand", "srs": [{"uuid": "11111111-2222-4333-8444-555555555555", "name_label": "sr",
                                     "type": sr_type, "physical_size": "100G"}],
            "vdis": [{"uuid": "aaaaaaaa-0000-4000-8000-000000000001", "sr": "sr", "hidden": True,
                      "virtual_size": "10G", "blocks": 2560},
                     {"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "sr": "sr", "virtual_size": "10G",
                      "blocks": 512, "parent": "aaaaaaaa-0000-4000-8000-000000000001"}],
            "gc": {"interval_s": 0}}


@pytest.mark.parametrize("sr_type, snap, live", [("lvm", 2160066560, 1082130432), ("ext", 1075863552, 1075838976)])
def test_the_simulated_gc_needs_what_sm_s_formulas_give(sr_type, snap, live):
    sim = Simulator(_pool(sr_type))
    leaf = sim.state.ref_by_uuid("VDI", "bbbbbbbb-0000-4000-8000-000000000002")
    assert sim.gc.union_blocks(leaf) == 3072
    assert sim.gc.leaf_needs(leaf) == (snap, live)
