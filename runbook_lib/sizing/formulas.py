"""The storage manager's space arithmetic, alone: VHD and LVHD sizes and what one coalesce needs.

As the storage manager keeps `vhdutil` / `lvhdutil` (sizes) apart from `cleanup` (the GC's
decisions), this module holds only the formulas (reference: gc-space-rules.md,
offline-coalesce-and-host-sizes.md); the sizing engine (`engine.py`) applies them to a pool.
Everything is int bytes; GiB only when displayed (runbook_lib.units).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

from runbook_lib.units import GIB as GiB
from runbook_lib.units import KIB as KiB
from runbook_lib.units import MIB as MiB
from runbook_lib.units import TIB as TiB

VHD_BLOCK_SIZE = 2 * MiB
VHD_MAX_SIZE = 2040 * GiB
VHD_MAX_CHAIN = 30
LVM_SIZE_INCREMENT = 4 * MiB
MSIZE = 2 * TiB  # LVM VHDs preallocate metadata for this virtual size
LIVE_COALESCE_TIMEOUT_S = 10.0  # a live leaf-coalesce pauses the VM at most this long
TIMEOUT_SAFETY_MARGIN = 0.5     # only this share of the timeout may be planned for
LIVE_COALESCE_MAX_SIZE = 20 * MiB  # allowed without a measured speed

LVM_TYPES = frozenset({"lvm", "lvmoiscsi", "lvmohba", "lvmofcoe"})
FILE_TYPES = frozenset({"ext", "nfs", "file", "smb", "cifs", "xfs", "zfs", "glusterfs", "cephfs"})


def roundup(divisor: int, value: int) -> int:
    return ((value + divisor - 1) // divisor) * divisor


# ---- the storage manager's formulas ------------------------------------------------------

def overhead_empty(virtual_size: int) -> int:
    """VHD metadata (footer, header, BAT, batmap) for a virtual size."""
    mb = virtual_size // MiB
    overhead = 3 * KiB
    overhead += (mb // 2) * 4
    overhead = roundup(512, overhead)
    overhead += (mb // 2) // 8
    return roundup(4096, overhead)


def overhead_bitmap(virtual_size: int) -> int:
    """One 4 KiB sector bitmap per (partial) 2 MiB block."""
    return -(-virtual_size // VHD_BLOCK_SIZE) * 4096


def vhd_full_size(virtual_size: int) -> int:
    """Bytes of a fully allocated VHD file."""
    return virtual_size + overhead_empty(virtual_size) + overhead_bitmap(virtual_size)


def lvhd_lv_size(virtual_size: int) -> int:
    """Bytes of a fully inflated VHD LV (metadata sized for MSIZE)."""
    return roundup(LVM_SIZE_INCREMENT,
                   virtual_size + overhead_empty(MSIZE) + overhead_bitmap(virtual_size))


def lv_size(vhd_bytes: int) -> int:
    """Bytes of a deflated LV holding a VHD of that many bytes."""
    return roundup(LVM_SIZE_INCREMENT, vhd_bytes)


# Live storage migration snapshots the disk on the *source* SR first. On LVM that snapshot
# deflates the inflated leaf to its VHD and keeps it as the base, then adds the VM's new leaf
# (inflated again), a thin leaf (8 MiB: the MSIZE metadata) and two journal LVs (4 MiB each,
# assumed): the source needs about the leaf's VHD size free, which a stuck SR rarely has.
MIGRATE_SNAPSHOT_EXTRA = 16 * 1024 * 1024


def migrate_snapshot_need(vhd_bytes: int) -> int:
    """Free space an LVM source needs for the snapshot a live storage migration of an attached
    leaf of that VHD size takes first; the planner and the simulator both use it."""
    return lv_size(vhd_bytes) + MIGRATE_SNAPSHOT_EXTRA


def sr_family(sr_type: str | None) -> str | None:
    """'lvm' for thick LVM SRs, 'file' for VHD-file SRs, None for what the GC does not size."""
    if sr_type in LVM_TYPES:
        return "lvm"
    if sr_type in FILE_TYPES:
        return "file"
    return None


def vhd_size_for_data(virtual_size: int, data: int) -> int:
    """Bytes of a VHD file holding `data` bytes of blocks (metadata + bitmaps + blocks)."""
    data = roundup(VHD_BLOCK_SIZE, max(0, data))
    return overhead_empty(virtual_size) + data + overhead_bitmap(data)


def data_in_vhd(virtual_size: int, vhd_size: int) -> int:
    """Bytes of allocated blocks in a VHD of that file size (the inverse of vhd_size_for_data)."""
    blocks = max(0, vhd_size - overhead_empty(virtual_size)) // (VHD_BLOCK_SIZE + 4096)
    return min(blocks * VHD_BLOCK_SIZE, roundup(VHD_BLOCK_SIZE, virtual_size))


def coalesce_need(family: str, *, data: int, virtual_size: int, parent_size: int,
                  parent_raw: bool = False) -> int:
    """Extra bytes a (non-leaf) coalesce of a child into its parent needs on the SR.

    File SRs: data + bitmaps(data) + metadata(virtual) - parent VHD file size.
    LVM SRs: the parent's LV inflated to lvhd_lv_size(data), minus its current LV
    (`parent_size`); nothing when the parent is a raw LV.
    """
    if family == "lvm":
        if parent_raw:
            return 0
        return max(0, lvhd_lv_size(data) - parent_size)
    return max(0, data + overhead_bitmap(data) + overhead_empty(virtual_size) - parent_size)


def live_leaf_need(family: str, need: int, *, leaf_size: int, leaf_vhd_size: int) -> int:
    """A live leaf-coalesce: on LVM the leaf is deflated first, which gives some space back."""
    if family == "lvm":
        return max(0, need - max(0, leaf_size - lv_size(leaf_vhd_size)))
    return need


def snapshot_coalesce_need(family: str, need: int, *, virtual_size: int, leaf_vhd_size: int) -> int:
    """Snapshot-coalesce (the GC's first try at a leaf): the coalesce plus a temporary leaf."""
    if family == "lvm":
        return need + lv_size(leaf_vhd_size)
    return need + overhead_empty(virtual_size)


def block_map(text: Any) -> int | None:
    """The GC's cached block bitmap (sm_config 'vhd-blocks': base64 of zlib) as an int whose
    set bits are the VHD's allocated 2 MiB blocks; None when absent or unreadable.

    Little-endian, so two maps of different lengths line up block for block when OR-ed.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        return int.from_bytes(zlib.decompress(base64.b64decode(text)), "little")
    except (ValueError, zlib.error, binascii.Error):
        return None


def can_live_coalesce(allocated_leaf_bytes: int, speed_bps: float | None = None, *,
                      force: bool = False) -> bool:
    """Can a live leaf-coalesce finish inside half the 10 s pause? (the GC's own test)"""
    if force:
        return True
    if speed_bps and speed_bps > 0:
        return allocated_leaf_bytes / speed_bps < TIMEOUT_SAFETY_MARGIN * LIVE_COALESCE_TIMEOUT_S
    return allocated_leaf_bytes < LIVE_COALESCE_MAX_SIZE


def copy_size(family: str | None, virtual_size: int, data: int) -> int:
    """Free space a fresh flat copy needs while it is written to an SR of that family.

    LVM writes into a fully inflated LV; a file SR holds only the allocated blocks.
    """
    if family == "lvm":
        return lvhd_lv_size(virtual_size)
    return vhd_size_for_data(virtual_size, min(data, roundup(VHD_BLOCK_SIZE, virtual_size)))


def bitmap_from_bytes(raw: bytes) -> int:
    """`vhd-util read -B` prints the bitmap as raw bytes: as an int, bit order as block_map's."""
    return int.from_bytes(raw, "little")


def provisioning(sm_config: dict | None) -> str:
    """An LVM SR's provisioning: 'thin' only when its sm_config says so, else 'thick' (sm's default)."""
    value = (sm_config or {}).get("allocation") if isinstance(sm_config, dict) else None
    return "thin" if value == "thin" else "thick"


# xapi's suspend image (xapi_xenops.ml `suspend`): memory_static_max x 1.2 x 1.05 + 100 MiB,
# created as a VDI of that virtual size on the suspend SR (fully inflated on a thick LVM SR)
SUSPEND_EXTRA = 100 * MiB


def suspend_image_size(memory_static_max: int) -> int:
    """Virtual size of the VDI that VM.suspend writes the VM's memory into."""
    return int(float(memory_static_max) * 1.2 * 1.05) + SUSPEND_EXTRA


def suspend_image_need(family: str | None, memory_static_max: int) -> int:
    """Free space VM.suspend needs on the suspend SR: an LVM SR creates the VDI fully inflated,
    a file SR ends up holding the whole image once it is written."""
    virtual = roundup(VHD_BLOCK_SIZE, suspend_image_size(memory_static_max))
    return lvhd_lv_size(virtual) if family == "lvm" else vhd_full_size(virtual)
