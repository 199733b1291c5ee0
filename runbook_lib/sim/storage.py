"""Per-SR space accounting with the storage manager's rules (gc-space-rules).

Each VDI record (managed leaves and hidden chain nodes alike) has a `Vhd` here holding
what XenAPI does not show: allocated 2 MIB blocks, how many of them its parent also holds,
the parent, and whether its LV is inflated. SR and VDI size fields are derived from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook_lib.sim.model import ApiFailure, Store
from runbook_lib.sim.sm_rules import LVM_SR_TYPES, MIB, VHD_BLOCK, calc_overhead_empty, calc_size_lv, calc_size_vhd_lv

LVM_MGT_BYTES = 4 * MIB  # the SR's metadata LV


def insufficient_space() -> ApiFailure:
    return ApiFailure("SR_BACKEND_FAILURE_44", "", "There is insufficient space", "")


# What a sparse copy onto a full file SR leaves in VDI_COPY_FAILED (sparse_dd's write error)
NO_SPACE_LOG = "sparse_dd: error writing to the destination: No space left on device"

@dataclass
class Vhd:
    sr: str                 # SR ref
    virtual: int
    blocks: int = 0         # allocated 2 MIB blocks
    overlap: int = 0        # of those, blocks the parent also has
    parent: str | None = None   # parent VDI ref
    raw: bool = False
    inflated: bool = False  # LVM: LV at calc_size_vhd_lv(virtual)
    attached: int = 0       # plugged VBDs
    growth: float = 0.0     # bytes/simulated second of new blocks while attached
    growth_carry: float = 0.0
    content: int = 0        # version of the data: advances while a running VM writes, travels with copies
    content_at_attach: int = 0  # the version the disk had when it was last plugged (started)
    size_published: bool = True  # False: the VDI record keeps its create-time size until SR.scan/update

    @property
    def vhd_size(self) -> int:
        """Bytes of the VHD file: metadata, one 4 KiB bitmap and 2 MIB per allocated block."""
        if self.raw:
            return self.virtual
        return calc_overhead_empty(self.virtual) + self.blocks * (VHD_BLOCK + 4096)

    @property
    def allocated(self) -> int:
        return self.blocks * VHD_BLOCK


@dataclass
class SrState:
    ref: str
    type: str
    physical_size: int
    other_used: int = 0          # bytes used by things that are not VDIs
    copy_speed: float = 200 * MIB     # bytes/s of a VDI/VM copy onto or off this SR
    coalesce_speed: float = 100 * MIB  # bytes/s the GC really achieves
    overhead_s_per_tib: float = 0.0   # fixed coalesce time per TIB of virtual size
    speed_log: list = field(default_factory=list)  # measured coalesce speeds (bytes/s)
    reserved: int = 0            # bytes held by operations in flight
    provisioning: str = "thick"  # LVM: sm_config allocation; thick (sm's default) never deflates at detach

    @property
    def is_lvm(self) -> bool:
        return self.type in LVM_SR_TYPES


class Storage:
    """VHD state of every VDI and the SR totals derived from it."""

    def __init__(self, store: Store):
        self.store = store
        self.vhds: dict[str, Vhd] = {}
        self.srs: dict[str, SrState] = {}
        self.gone_content: dict[str, int] = {}  # VDI uuid -> its data version when it was destroyed

    # -- sizes -------------------------------------------------------------------------------
    def vdi_bytes(self, vdi_ref: str) -> int:
        """Bytes the VDI occupies on its SR now (LV size or file size)."""
        v = self.vhds[vdi_ref]
        sr = self.srs[v.sr]
        if sr.is_lvm:
            if v.raw:
                return calc_size_lv(v.virtual)
            return calc_size_vhd_lv(v.virtual) if v.inflated else calc_size_lv(v.vhd_size)
        return v.vhd_size

    def used(self, sr_ref: str) -> int:
        sr = self.srs[sr_ref]
        total = sr.other_used + sr.reserved + (LVM_MGT_BYTES if sr.is_lvm else 0)
        for vdi in self.store.children("VDI", "SR", sr_ref):
            if vdi in self.vhds:
                total += self.vdi_bytes(vdi)
        return total

    def free(self, sr_ref: str) -> int:
        return self.srs[sr_ref].physical_size - self.used(sr_ref)

    def union_blocks(self, vdi_ref: str) -> int:
        """Blocks a flat copy of this VDI's whole chain holds."""
        chain = self.chain(vdi_ref)
        total = 0
        for ref in reversed(chain):          # base first
            v = self.vhds[ref]
            total += v.blocks - (v.overlap if v.parent else 0)
        return max(total, 0)

    def chain(self, vdi_ref: str) -> list[str]:
        """The VDI and its ancestors, leaf first."""
        out = [vdi_ref]
        while self.vhds[out[-1]].parent:
            out.append(self.vhds[out[-1]].parent)
        return out

    def vhd_children(self, vdi_ref: str) -> list[str]:
        return [r for r, v in self.vhds.items() if v.parent == vdi_ref]

    def copy_need(self, dest_sr: str, virtual: int, blocks: int) -> int:
        """Free space a new copy needs on dest while it is written (LVM: fully inflated)."""
        sr = self.srs[dest_sr]
        if sr.is_lvm:
            return calc_size_vhd_lv(virtual)
        return calc_overhead_empty(virtual) + blocks * (VHD_BLOCK + 4096)

    def require(self, sr_ref: str, need: int) -> None:
        if need > self.free(sr_ref):
            raise insufficient_space()

    # -- publishing ----------------------------------------------------------------------------
    def refresh(self, sr_ref: str, vdis: list[str] | None = None) -> None:
        """Write the derived size fields into the SR and VDI records (events follow)."""
        store = self.store
        refs = vdis if vdis is not None else store.children("VDI", "SR", sr_ref)
        for vdi in refs:
            if vdi not in self.vhds or not store.exists("VDI", vdi):
                continue
            v = self.vhds[vdi]
            rec = store.get("VDI", vdi)
            phys = self.vdi_bytes(vdi) if v.size_published else rec["physical_utilisation"]
            sm = dict(rec["sm_config"])
            parent_uuid = store.get("VDI", v.parent)["uuid"] if v.parent else None
            if parent_uuid:
                sm["vhd-parent"] = parent_uuid
            else:
                sm.pop("vhd-parent", None)
            if self.srs[sr_ref].is_lvm:
                sm["vdi_type"] = "aio" if v.raw else "vhd"
            if rec["physical_utilisation"] != phys or rec["sm_config"] != sm \
                    or rec["virtual_size"] != v.virtual:
                store.set("VDI", vdi, physical_utilisation=phys, sm_config=sm,
                          virtual_size=v.virtual)
        rec = store.get("SR", sr_ref)
        used = self.used(sr_ref)
        virt = sum(self.vhds[r].virtual for r in store.children("VDI", "SR", sr_ref)
                   if r in self.vhds and store.get("VDI", r)["managed"])
        size = self.srs[sr_ref].physical_size
        if (rec["physical_utilisation"], rec["virtual_allocation"], rec["physical_size"]) \
                != (used, virt, size):
            store.set("SR", sr_ref, physical_utilisation=used, virtual_allocation=virt,
                      physical_size=size)

    def publish_sizes(self, sr_ref: str) -> None:
        """SR.scan / SR.update: the storage manager writes every VDI's current size."""
        for ref in self.store.children("VDI", "SR", sr_ref):
            if ref in self.vhds:
                self.vhds[ref].size_published = True

    # -- lifecycle -------------------------------------------------------------------------------
    def attach(self, vdi_ref: str) -> None:
        v = self.vhds.get(vdi_ref)
        if v is None:
            return
        sr = self.srs[v.sr]
        if sr.is_lvm and not v.raw and not v.inflated:
            self.require(v.sr, calc_size_vhd_lv(v.virtual) - self.vdi_bytes(vdi_ref))
            v.inflated = True
        v.attached += 1
        v.content_at_attach = v.content
        v.content += 1  # a VM that starts writes (its boot alone changes the disk)
        self.refresh(v.sr, [vdi_ref])

    def deflates_at_detach(self, vdi_ref: str) -> bool:
        """LVHDVDI.detach: only a thin SR deflates a detached VHD, or any SR a snapshot's."""
        v = self.vhds[vdi_ref]
        return self.srs[v.sr].provisioning == "thin" or bool(self.store.get("VDI", vdi_ref)["is_a_snapshot"])

    def detach(self, vdi_ref: str) -> None:
        v = self.vhds.get(vdi_ref)
        if v is None:
            return
        v.attached = max(v.attached - 1, 0)
        if not v.attached and self.deflates_at_detach(vdi_ref):
            v.inflated = False
        self.refresh(v.sr, [vdi_ref])

    def grow(self, seconds: float) -> set[str]:
        """Running VMs write: attached leaves gain blocks. Returns the SRs that changed."""
        changed = set()
        for v in self.vhds.values():
            if v.attached and seconds > 0:
                v.content += 1
            if v.attached and v.growth > 0:
                v.growth_carry += v.growth * seconds
                new = int(v.growth_carry // VHD_BLOCK)
                if new:
                    v.growth_carry -= new * VHD_BLOCK
                    limit = -(-v.virtual // VHD_BLOCK)
                    new = min(new, limit - v.blocks)
                    if new > 0:
                        v.blocks += new
                        changed.add(v.sr)
        return changed


def fmt_bytes(n: int) -> str:
    """The GC's size printout: 1024-based, three decimals, G/M/K, else plain bytes."""
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= unit:
            return f"{n / unit:.3f}{suffix}"
    return str(n)

