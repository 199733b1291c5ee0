"""How a leaf-coalesce that does not fit live can still be done with the VM offline, as the
storage manager really behaves (offline-coalesce-and-host-sizes.md):

- The GC keeps its 10 s limit whether or not the VM runs, unless the leaf carries
  `other-config:leaf-coalesce=force`; a forced leaf needs only the live need (the leaf is
  deflated first). Forcing is safe only while no VM writes to the leaf: a halted VM's.
- `force`: halt the VM (if it runs), set leaf-coalesce=force, SR.scan, wait. On a thick LVM SR
  (the default) the shutdown frees nothing; on a thin one the VM's inflated LVs there deflate.
- `plugin`: the host's coalesce-leaf plugin (LVM SRs only; a leaf whose parent has no other
  child; called on the SR's master: the PBD's host for a local SR, the pool master for a shared
  one). It suspends a running VM, so the VM's memory image must fit on the suspend SR (VM's
  suspend_SR, else the pool's suspend_image_SR, else its host's, each as seen from that host).
  It sets `force` only on a leaf without a leaf-coalesce key of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook_lib.sizing.formulas import lv_size, sr_family, suspend_image_need


@dataclass
class Route:
    """The offline verdict for one pending leaf-coalesce."""

    force_ok: bool = False
    plugin_ok: bool = False
    plugin_host: str | None = None  # host uuid the plugin must be called on
    plugin_note: str = ""           # why the plugin does not apply, or what it needs
    needed: int = 0                 # what the offline coalesce needs free on the SR
    suspend_sr: str | None = None
    suspend_need: int = 0

    @property
    def via(self) -> str | None:
        return "plugin" if self.plugin_ok else ("force" if self.force_ok else None)


class OfflineRules:
    """Lookups over one inventory, built once per sizing."""

    def __init__(self, inventory, size: dict[str, dict]):
        inv = inventory
        self.size = size
        self.srs = {r["uuid"]: r for r in inv.srs.to_dict("records")}
        self.vms = {r["uuid"]: r for r in inv.vms.to_dict("records")}
        self.hosts = {r["uuid"]: r for r in inv.hosts.to_dict("records")}
        self.master = inv.pool.get("master")
        self.pool_suspend_sr = inv.pool.get("suspend_sr")
        self.attached_on: dict[str, set[str]] = {}
        for host, sr, up in inv.pbds[["host", "sr", "currently_attached"]].itertuples(index=False, name=None):
            if up and host and sr:
                self.attached_on.setdefault(sr, set()).add(host)
        self.deflation = self._deflation_by_vm(inv)

    def _deflation_by_vm(self, inv) -> dict[tuple[str, str], int]:
        """(VM, SR) -> bytes its inflated LVs there give back at shutdown: thin LVM SRs only."""
        out: dict[tuple[str, str], int] = {}
        for uuid, sr, phys, vms in inv.vdis[["uuid", "sr", "physical_utilisation", "vms"]].itertuples(
                index=False, name=None):
            s = self.size.get(uuid)
            if not s or not s["inflated"] or not vms or (self.srs.get(sr) or {}).get("provisioning") != "thin":
                continue
            back = max(0, int(phys) - lv_size(s["vhd_size"]))
            for vm in vms:
                out[(vm, sr)] = out.get((vm, sr), 0) + back
        return out

    # -- the SR's master and the suspend SR -------------------------------------------------------
    def plugin_host(self, sr: str) -> str | None:
        rec = self.srs.get(sr) or {}
        hosts = self.attached_on.get(sr, set())
        if rec.get("shared"):
            return self.master if self.master in hosts else None
        return next(iter(sorted(hosts)), None)

    def suspend_sr(self, vm: dict) -> str | None:
        """xapi's choice (helpers.ml choose_suspend_sr): the first SR of these its host can see."""
        host = vm.get("resident_on")
        for sr in (vm.get("suspend_sr"), self.pool_suspend_sr, (self.hosts.get(host) or {}).get("suspend_sr")):
            if sr and host in self.attached_on.get(sr, set()):
                return sr
        return None

    # -- the verdict --------------------------------------------------------------------------------
    def route(self, leaf: dict, *, live: int, room: int) -> Route:
        """`leaf`: the VDI's inventory row; `live`: its live need now; `room`: free + garbage."""
        vms = [self.vms[v] for v in leaf["vms"] if v in self.vms]
        running = [v for v in vms if v["power_state"] != "Halted"]
        freed = sum(self.deflation.get((v["uuid"], leaf["sr"]), 0) for v in running)
        gone = 0  # on a thin SR the leaf deflates at shutdown: the GC then gets nothing back from it
        if freed and leaf["attached"]:
            s = self.size[leaf["uuid"]]
            gone = max(0, int(leaf["physical_utilisation"]) - lv_size(s["vhd_size"]))
        needed = live + gone
        out = Route(force_ok=needed <= room + freed, needed=needed)
        out.plugin_ok, out.plugin_note = self._plugin(leaf, running, live, room, out)
        if out.plugin_ok:
            out.needed = live
        return out

    def _plugin(self, leaf: dict, running: list[dict], live: int, room: int, out: Route) -> tuple[bool, str]:
        if not leaf["vms"]:
            return False, "the plugin works per VM and no VM uses this disk"
        if not str(leaf["sr_type"] or "").startswith("lv"):
            return False, "the coalesce-leaf plugin works on LVM SRs only"
        if leaf["leaf_coalesce"] not in (None, "force"):
            return False, (f"the leaf carries leaf-coalesce={leaf['leaf_coalesce']}, which the plugin keeps "
                           "instead of forcing it")
        out.plugin_host = self.plugin_host(leaf["sr"])
        if out.plugin_host is None:
            return False, "the SR is not attached on the host that would run the plugin"
        if live > room:
            return False, "even a forced leaf-coalesce does not fit"
        for vm in running:
            why = self._suspend_room(vm, leaf["sr"], live, room, out)
            if why:
                return False, why
        return True, ""

    def _suspend_room(self, vm: dict, sr: str, live: int, room: int, out: Route) -> str:
        target = self.suspend_sr(vm)
        name = vm["name"] or vm["uuid"][:8]
        if target is None:
            return f"{name} has no suspend SR its host can see (VM_NO_SUSPEND_SR)"
        rec = self.srs.get(target) or {}
        need = suspend_image_need(sr_family(rec.get("type")), int(vm.get("memory") or 0))
        free = int(rec.get("free") or 0) - (live if target == sr else 0)
        out.suspend_sr, out.suspend_need = target, need
        if need > free:
            return (f"suspending {name} writes its memory to SR {rec.get('name') or target[:8]}, which has no room "
                    "for the image (the plugin fails with 'Failed to suspend the VM')")
        return ""
