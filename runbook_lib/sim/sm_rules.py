"""The storage manager's size rules as the simulator applies them: its own implementation,
written from the reference facts (gc-space-rules.md, offline-coalesce-and-host-sizes.md) and
named after sm's own functions (vhdutil / lvhdutil / cleanup), so the simulator stands in for
the real pool and never borrows the planner's arithmetic (tests/test_layering.py).
"""

from __future__ import annotations

MIB = 1024 * 1024
GIB = 1024 * MIB
TIB = 1024 * GIB

VHD_BLOCK = 2 * MIB                # vhdutil.VHD_BLOCK_SIZE
VHD_MAX_VIRTUAL = 2040 * GIB       # vhdutil.MAX_VHD_SIZE
VHD_MAX_CHAIN = 30                 # vhdutil.MAX_CHAIN_SIZE
LV_EXTENT = 4 * MIB                # lvutil.LVM_SIZE_INCREMENT
LVHD_MSIZE = 2 * TIB               # lvhdutil.MSIZE: metadata preallocated for this virtual size
LEAF_TIMEOUT_S = 10                # cleanup.VDI.LIVE_LEAF_COALESCE_TIMEOUT
LEAF_SAFETY = 0.5                  # cleanup.VDI.TIMEOUT_SAFETY_MARGIN
LEAF_MAX_WITHOUT_SPEED = 20 * MIB  # cleanup.VDI.LIVE_LEAF_COALESCE_MAX_SIZE
JOURNAL_LV = 4 * MIB               # a journal LV (LVHD snapshots create two)

LVM_SR_TYPES = frozenset({"lvm", "lvmoiscsi", "lvmohba", "lvmofcoe"})
FILE_SR_TYPES = frozenset({"ext", "nfs", "file", "smb", "cifs", "xfs", "zfs", "glusterfs", "cephfs"})


def _up(step: int, n: int) -> int:
    return -(-n // step) * step


def calc_overhead_empty(virtual: int) -> int:
    """vhdutil.calcOverheadEmpty: footer, its copy and header, then the BAT and the batmap."""
    blocks = (virtual // MIB) // 2
    with_bat = _up(512, 3 * 1024 + 4 * blocks)
    return _up(4096, with_bat + blocks // 8)


def calc_overhead_bitmap(virtual: int) -> int:
    """vhdutil.calcOverheadBitmap: a 4 KiB sector bitmap per 2 MiB block, partial ones too."""
    return _up(VHD_BLOCK, virtual) // VHD_BLOCK * 4096


def calc_size_lv(vhd_bytes: int) -> int:
    """lvhdutil.calcSizeLV: a deflated LV, the VHD rounded up to whole extents."""
    return _up(LV_EXTENT, vhd_bytes)


def calc_size_vhd_lv(virtual: int) -> int:
    """lvhdutil.calcSizeVHDLV: a fully inflated LV (metadata for MSIZE, every block's bitmap)."""
    return _up(LV_EXTENT, virtual + calc_overhead_empty(LVHD_MSIZE) + calc_overhead_bitmap(virtual))


def vhd_file_size(virtual: int, blocks: int) -> int:
    """Bytes of a VHD with `blocks` allocated 2 MiB blocks (metadata, bitmap and data per block)."""
    return calc_overhead_empty(virtual) + blocks * (VHD_BLOCK + 4096)


def pool_migrate_snapshot_need(vhd_bytes: int) -> int:
    """LVHDVDI._snapshot of an attached leaf on its source SR (storage migration's first step): the
    base is deflated to its VHD, a thin new leaf and two journal LVs are added (about 16 MiB)."""
    return calc_size_lv(vhd_bytes) + 2 * LV_EXTENT + 2 * JOURNAL_LV


def can_live_coalesce(allocated: int, speed: float | None, forced: bool) -> bool:
    """cleanup.VDI.canLiveCoalesce: small or fast enough for half the 10 s limit, or forced."""
    if forced:
        return True
    if speed:
        return allocated // speed < LEAF_SAFETY * LEAF_TIMEOUT_S
    return allocated < LEAF_MAX_WITHOUT_SPEED
