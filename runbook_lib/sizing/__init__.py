"""Sizing: how much free space each pending coalesce needs, one job per module (docs/sizing.md).

formulas   the storage manager's VHD / LVHD arithmetic, alone (as sm's vhdutil / lvhdutil)
vhd        each VDI's size and allocated data from the best source there is
offline    how a leaf that does not fit live can be coalesced with its VM offline
engine     the pool sizing: pending coalesces, their needs, each SR's verdict (`size_pool`)
findings   notebook 01's findings as input (verdicts, printout sizes, the measured rate)
given      sizes an admin measured by hand (`--vhd-size`)
host       exact sizes asked from dom0 over SSH (`--ssh`)

The names below are the package's public face; import them from here.
"""

from runbook_lib.sizing.engine import COALESCE_COLUMNS, SR_COLUMNS, Sizing, size_pool
from runbook_lib.sizing.findings import (
    findings_by_sr,
    findings_by_vdi,
    findings_from_smlog,
    gather_findings,
    load_findings,
    measured_rate,
)
from runbook_lib.sizing.formulas import (
    FILE_TYPES,
    LIVE_COALESCE_MAX_SIZE,
    LIVE_COALESCE_TIMEOUT_S,
    LVM_SIZE_INCREMENT,
    LVM_TYPES,
    MIGRATE_SNAPSHOT_EXTRA,
    MSIZE,
    TIMEOUT_SAFETY_MARGIN,
    VHD_BLOCK_SIZE,
    VHD_MAX_CHAIN,
    VHD_MAX_SIZE,
    GiB,
    KiB,
    MiB,
    TiB,
    block_map,
    can_live_coalesce,
    coalesce_need,
    copy_size,
    data_in_vhd,
    live_leaf_need,
    lv_size,
    lvhd_lv_size,
    migrate_snapshot_need,
    overhead_bitmap,
    overhead_empty,
    provisioning,
    roundup,
    snapshot_coalesce_need,
    sr_family,
    suspend_image_need,
    suspend_image_size,
    vhd_full_size,
    vhd_size_for_data,
)
from runbook_lib.sizing.given import exact_size_hint, parse_vhd_sizes
from runbook_lib.units import gc_gib as fmt_gib

__all__ = [
    "COALESCE_COLUMNS", "SR_COLUMNS", "Sizing", "size_pool", "findings_by_sr", "findings_by_vdi",
    "findings_from_smlog", "gather_findings", "load_findings", "measured_rate", "FILE_TYPES",
    "LIVE_COALESCE_MAX_SIZE", "LIVE_COALESCE_TIMEOUT_S", "LVM_SIZE_INCREMENT", "LVM_TYPES",
    "MIGRATE_SNAPSHOT_EXTRA", "MSIZE", "TIMEOUT_SAFETY_MARGIN", "VHD_BLOCK_SIZE", "VHD_MAX_CHAIN",
    "VHD_MAX_SIZE", "GiB", "KiB", "MiB", "TiB", "block_map", "can_live_coalesce", "coalesce_need", "copy_size",
    "data_in_vhd", "live_leaf_need", "lv_size", "lvhd_lv_size", "migrate_snapshot_need", "overhead_bitmap",
    "overhead_empty", "provisioning", "roundup", "snapshot_coalesce_need", "sr_family", "suspend_image_need",
    "suspend_image_size", "vhd_full_size", "vhd_size_for_data", "exact_size_hint", "parse_vhd_sizes", "fmt_gib",
]
