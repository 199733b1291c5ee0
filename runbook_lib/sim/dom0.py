"""What each simulated host's dom0 answers to the read-only commands the storage manager itself
runs (vhd-util scan/query/read, lvs), from the simulator's own storage model, in the real output
formats (offline-coalesce-and-host-sizes.md). Anything else is refused with exit 127.

What a host can see: a local SR only on the host whose PBD attaches it; an LV's device exists
only where the LV is active (the chain of a disk a VM on that host has open, or a VHD the GC
works on, on the SR's master); a file SR's files wherever its PBD is attached.

Block bitmaps are laid out from the model's counts (blocks, and how many of them the parent
also has) so that a child's OR its parent's has exactly the blocks the simulated GC merges.
"""

from __future__ import annotations

import re
import shlex

from runbook_lib.sim.model import NULL_REF
from runbook_lib.sim.sm_rules import MIB, VHD_BLOCK

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_VG = re.compile(rf"^VG_XenStorage-({_UUID})$")
_LV_PATH = re.compile(rf"^/dev/VG_XenStorage-({_UUID})/VHD-({_UUID})$")
_FILE_PATH = re.compile(rf"^/var/run/sr-mount/({_UUID})/({_UUID})\.vhd$")
MGT_LV = ("MGT", 4 * MIB)


def _ranges_to_int(ranges: list[tuple[int, int]]) -> int:
    return sum(((1 << length) - 1) << start for start, length in ranges if length > 0)


def _take(ranges: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    out = []
    for start, length in ranges:
        if count <= 0:
            break
        n = min(length, count)
        out.append((start, n))
        count -= n
    return out


def _gaps(ranges: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    out, at = [], 0
    for start, length in sorted(ranges):
        if start > at:
            out.append((at, start - at))
        at = max(at, start + length)
    if at < limit:
        out.append((at, limit - at))
    return out


class Dom0:
    """The answers of every simulated host's dom0."""

    def __init__(self, pool):
        self.pool = pool

    # -- what a host sees ----------------------------------------------------------------------
    def _attached_here(self, host: str, sr: str) -> bool:
        st = self.pool.store
        return any(st.get("PBD", p)["host"] == host and st.get("PBD", p)["currently_attached"]
                   for p in st.children("PBD", "SR", sr))

    def active_on(self, host: str) -> set[str]:
        """VDI refs whose LV is active on this host: chains of disks its running VMs hold open,
        and what the GC works on (it runs on the SR's master)."""
        st, storage = self.pool.store, self.pool.storage
        out: set[str] = set()
        for vm in st.children("VM", "resident_on", host):
            for _, vbd in self.pool.disks(vm):
                if vbd["currently_attached"] and vbd["VDI"] in storage.vhds:
                    out.update(storage.chain(vbd["VDI"]))
        gc = self.pool.gc
        for sr, g in (gc.srs.items() if gc is not None else ()):
            if self._attached_here(host, sr):
                out.update(r for r in g.active if r in storage.vhds)
        return out

    def _vdi(self, sr_uuid: str, vdi_uuid: str | None = None):
        st = self.pool.store
        sr = st.by_uuid["SR"].get(sr_uuid)
        vdi = st.by_uuid["VDI"].get(vdi_uuid) if vdi_uuid else None
        return sr, vdi

    # -- the commands ----------------------------------------------------------------------------
    def run(self, host: str, line: str) -> tuple[int, bytes, bytes]:
        """(exit status, stdout, stderr) of one command line, as the host's shell would run it."""
        try:
            argv = shlex.split(line)
        except ValueError:
            return 127, b"", b"sh: syntax error\n"
        with self.pool.lock:
            return self._dispatch(host, argv)

    def _dispatch(self, host: str, argv: list[str]) -> tuple[int, bytes, bytes]:
        if argv[:5] == ["vhd-util", "scan", "-f", "-m", "VHD-*"] and len(argv) == 7 and argv[5] == "-l" \
                and _VG.match(argv[6]):
            return self._scan(host, _VG.match(argv[6]).group(1))
        if argv[:6] == ["lvs", "--noheadings", "--units", "b", "-o", "lv_name,lv_size,lv_attr"] \
                and len(argv) == 7 and _VG.match(argv[6]):
            return self._lvs(host, _VG.match(argv[6]).group(1))
        if len(argv) == 6 and argv[0] == "vhd-util" and argv[2] == "--debug" and argv[4] == "-n" \
                and (argv[1], argv[3]) in (("query", "-vsaf"), ("read", "-B")):
            return self._vhd(host, argv[1], argv[5])
        return 127, b"", f"refused: {' '.join(argv)[:80]} is not a command this host answers\n".encode()

    def _no_vg(self, sr_uuid: str) -> tuple[int, bytes, bytes]:
        return 5, b"", f'  Volume group "VG_XenStorage-{sr_uuid}" not found\n'.encode()

    def _lvm_sr(self, host: str, sr_uuid: str):
        sr, _ = self._vdi(sr_uuid)
        if sr is None or not self.pool.storage.srs.get(sr) or not self.pool.storage.srs[sr].is_lvm \
                or not self._attached_here(host, sr):
            return None
        return sr

    def _scan(self, host: str, sr_uuid: str) -> tuple[int, bytes, bytes]:
        sr = self._lvm_sr(host, sr_uuid)
        if sr is None:
            return self._no_vg(sr_uuid)
        st, storage = self.pool.store, self.pool.storage
        lines = []
        for ref in sorted(st.children("VDI", "SR", sr), key=lambda r: st.get("VDI", r)["uuid"]):
            v = storage.vhds.get(ref)
            if v is None or v.raw:
                continue
            rec = st.get("VDI", ref)
            parent = f"VHD-{st.get('VDI', v.parent)['uuid']}" if v.parent else "none"
            lines.append(f"vhd=VHD-{rec['uuid']} capacity={v.virtual} size={v.vhd_size} "
                         f"hidden={0 if rec['managed'] else 1} parent={parent}")
        return 0, ("\n".join(lines) + "\n").encode() if lines else b"", b""

    def _lvs(self, host: str, sr_uuid: str) -> tuple[int, bytes, bytes]:
        sr = self._lvm_sr(host, sr_uuid)
        if sr is None:
            return self._no_vg(sr_uuid)
        st, storage = self.pool.store, self.pool.storage
        active = self.active_on(host)
        rows = [f"  {MGT_LV[0]} {MGT_LV[1]}B -wi-a-----"]
        for ref in sorted(st.children("VDI", "SR", sr), key=lambda r: st.get("VDI", r)["uuid"]):
            v = storage.vhds.get(ref)
            if v is None:
                continue
            rec = st.get("VDI", ref)
            perm = "w" if rec["managed"] else "r"
            state = ("a" + ("o" if v.attached else "-")) if ref in active else "--"
            rows.append(f"  {'LV' if v.raw else 'VHD'}-{rec['uuid']} {storage.vdi_bytes(ref)}B -{perm}i-{state}----")
        return 0, ("\n".join(rows) + "\n").encode(), b""

    def _vhd(self, host: str, verb: str, path: str) -> tuple[int, bytes, bytes]:
        ref = self._visible(host, path)
        if ref is None:
            return 2, b"", f"error opening {path}: -2\n".encode()
        v = self.pool.storage.vhds[ref]
        if verb == "read":
            return 0, self.bitmap(ref), b""
        hidden = 0 if self.pool.store.get("VDI", ref)["managed"] else 1
        return 0, f"{v.virtual // MIB}\n{v.vhd_size}\nhidden: {hidden}\n{v.blocks}\n".encode(), b""

    def _visible(self, host: str, path: str) -> str | None:
        """The VDI ref behind a path if this host can open it, else None."""
        lv, file = _LV_PATH.match(path), _FILE_PATH.match(path)
        match = lv or file
        if not match:
            return None
        sr, vdi = self._vdi(match.group(1), match.group(2))
        storage = self.pool.storage
        if sr is None or vdi is None or vdi not in storage.vhds or storage.vhds[vdi].raw \
                or self.pool.store.get("VDI", vdi)["SR"] != sr or not self._attached_here(host, sr):
            return None
        if lv and (not storage.srs[sr].is_lvm or vdi not in self.active_on(host)):
            return None  # an inactive LV has no device node
        if file and storage.srs[sr].is_lvm:
            return None
        return vdi

    # -- block bitmaps ---------------------------------------------------------------------------
    def layout(self, ref: str) -> list[tuple[int, int]]:
        """The VHD's allocated blocks as (first block, count) ranges: the root's from block 0; a
        child's shared blocks are its parent's first ones, its own the first its parent lacks."""
        storage = self.pool.storage
        v = storage.vhds[ref]
        limit = -(-v.virtual // VHD_BLOCK)
        if not v.parent or v.parent == NULL_REF or v.parent not in storage.vhds:
            return [(0, min(v.blocks, limit))]
        above = self.layout(v.parent)
        above_count = sum(n for _, n in above)
        shared = min(v.overlap, v.blocks, above_count)
        return sorted(_take(above, shared) + _take(_gaps(above, limit), v.blocks - shared))

    def bitmap(self, ref: str) -> bytes:
        v = self.pool.storage.vhds[ref]
        blocks = -(-v.virtual // VHD_BLOCK)
        size = (blocks + 7) // 8
        return _ranges_to_int(self.layout(ref)).to_bytes(max(size, 1), "little")
