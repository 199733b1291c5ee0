"""The simulated pool: its records, storage, clock and the operations that change them.

`SimPool` is what the dispatcher calls. Every public `op_*` method takes wire arguments
(refs, strings) after the session, checks the real preconditions and raises ApiFailure with
the real error codes. Long operations return generators (see clock.py) that the dispatcher
runs as tasks.
"""

from __future__ import annotations

import random
import uuid as uuidlib

from runbook_lib.errors import InputError
from runbook_lib.sim import scenarios as sc
from runbook_lib.sim.clock import Clock, parse_date
from runbook_lib.sim.faults import Faults
from runbook_lib.sim.model import NEVER, NULL_REF, ApiFailure, Store, new_ref, vif_filter
from runbook_lib.sim.product import host_fields
from runbook_lib.sim.sm_release import SmRelease, sm_records
from runbook_lib.sim.sm_rules import (
    MIB,
    VHD_BLOCK,
    VHD_MAX_CHAIN,
    VHD_MAX_VIRTUAL,
    calc_overhead_empty,
    calc_size_lv,
    calc_size_vhd_lv,
    pool_migrate_snapshot_need,
)
from runbook_lib.sim.storage import NO_SPACE_LOG, SrState, Storage, Vhd, insufficient_space

DEFAULT_USER = "root"
DEFAULT_PASSWORD = "simulator"
PROGRESS_STEPS = 20
BASE_COPY = "base copy"   # the name the storage manager gives hidden VHDs it finds


PLUGINS = frozenset({"coalesce-leaf"})   # the host plugins the simulator models


def _plugins(host: dict) -> frozenset[str]:
    """The plugins a scenario host has: `plugins: []` for a host without coalesce-leaf."""
    names = host.get("plugins", sorted(PLUGINS))
    if not isinstance(names, list) or not set(map(str, names)) <= PLUGINS:
        raise InputError(f"scenario: host {host.get('name_label')!r}: plugins must be a list of "
                         + ", ".join(sorted(PLUGINS)) + f", not {names!r}")
    return frozenset(map(str, names))


def _mac(rng: random.Random) -> str:
    return "%02x:%02x:%02x:%02x:%02x:%02x" % (
        (rng.randrange(256) & 0xFC) | 0x02, *(rng.randrange(256) for _ in range(5)))


class SimPool:
    """All state of one simulated pool, guarded by store.lock."""

    def __init__(self, scenario: dict, speed: float | None = None, faults: Faults | None = None,
                 smlog=None):
        self.scenario = scenario
        creds = scenario.get("credentials") or {}
        self.user = str(creds.get("user", DEFAULT_USER))
        self.password = str(creds.get("password", DEFAULT_PASSWORD))
        clock_cfg = scenario.get("clock") or {}
        start = parse_date(clock_cfg.get("start", "2026-11-10T03:00:00Z"))
        self.clock = Clock(start, speed if speed is not None else float(clock_cfg.get("speed", 1)))
        self.store = Store(now=lambda: self.clock.date())
        self.lock = self.store.lock
        self.storage = Storage(self.store)
        self.faults = faults or Faults()
        self.rng = random.Random(int(scenario.get("seed", 1)))
        self.smlog = smlog
        self.gc = None          # set by the Simulator (gc.GcManager)
        self.clock.on_elapse = self._elapse
        self.store.decorators = {"VM": self._vm_allowed, "VDI": self._vdi_allowed}
        self.master = NULL_REF
        self.host_addresses = {}
        self.plugins: dict[str, frozenset[str]] = {}   # host ref -> its plugins (/etc/xapi.d/plugins)
        self._last_domid = 0     # dom0 is 0; each VM start makes the next domain
        self.suspended: dict[str, tuple] = {}  # VM ref -> (suspend SR, bytes held, host) while suspended
        try:
            self._build(scenario)
        except InputError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"scenario {scenario.get('name', '')!r} has a malformed entry "
                             f"({type(exc).__name__}: {exc})") from None

    # -- building ---------------------------------------------------------------------------------
    def _build(self, s: dict) -> None:
        if "generate" in s:
            from runbook_lib.sim.generate import expand
            s = expand(s)
            self.scenario = s
        st = self.store
        st.events_on = False
        pool = s.get("pool") or {}
        self.style = str((s.get("smlog") or {}).get("style", "modern"))
        self.sm_release = SmRelease.from_scenario(s, self.style)
        host_refs = self._build_hosts(s)
        for record in sm_records():
            st.add("SM", record)
        st.add("pool", dict(uuid=pool.get("uuid", ""), name_label=pool.get("name_label", ""),
                            master=self.master, other_config=dict(pool.get("other_config", {})),
                            ha_enabled=bool(pool.get("ha_enabled", False))))
        self._build_networks(s)
        sr_refs = self._build_srs(s, host_refs)
        self.sr_by_key = sr_refs
        vdi_refs = self._build_vdis(s, sr_refs)
        self._build_vms(s, host_refs, vdi_refs)
        self._link_default_srs(pool, sr_refs, vdi_refs)  # as an install sets them
        self._build_suspend_srs(s, host_refs, sr_refs)  # what the scenario names instead
        self._size_srs_from_free(s, sr_refs)
        for ref in self.storage.srs:
            self.storage.refresh(ref)
        st.events_on = True
        st.events.clear()

    def _domain(self, running: bool) -> dict:
        """domid and domarch: a new domain number for a VM that runs, -1 and "" when it does not."""
        if not running:
            return {"domid": -1, "domarch": ""}
        self._last_domid += 1
        return {"domid": self._last_domid, "domarch": "x64"}

    def _link_default_srs(self, pool: dict, sr_refs: dict, vdi_refs: dict) -> None:
        """The pool's default SR is also where suspend images and crash dumps go (as an install
        sets them); each host's own are its local SR. With HA on: its statefile VDIs and plan."""
        st = self.store
        ref = st.all_refs("pool")[0]
        if pool.get("default_SR") and pool["default_SR"] in sr_refs:
            sr = sr_refs[pool["default_SR"]]
            st.set("pool", ref, default_SR=sr, suspend_image_SR=sr, crash_dump_SR=sr)
        for pbd in st.all_refs("PBD"):
            rec = st.get("PBD", pbd)
            if not st.get("SR", rec["SR"])["shared"] and st.get("SR", rec["SR"])["content_type"] == "user":
                st.set("host", rec["host"], suspend_image_sr=rec["SR"], crash_dump_sr=rec["SR"])
        if st.get("pool", ref)["ha_enabled"]:
            failures = int(pool.get("ha_host_failures_to_tolerate", 1))
            statefiles = [v for v in vdi_refs.values() if st.get("VDI", v)["type"] == "ha_statefile"]
            st.set("pool", ref, ha_statefiles=statefiles, ha_host_failures_to_tolerate=failures,
                   ha_plan_exists_for=failures, allowed_operations=["ha_disable"])
        else:
            st.set("pool", ref, allowed_operations=["ha_enable", "cluster_create", "designate_new_master"])

    def _build_hosts(self, s: dict) -> dict:
        """Hosts (each with its control domain); sets the master. Returns name/uuid -> host ref."""
        st = self.store
        hosts = s.get("hosts") or [{"name_label": "xs01", "address": "192.0.2.10"}]
        host_refs = {}
        for i, h in enumerate(hosts):
            name = h.get("name_label", f"host{i}")
            product = host_fields(h.get("product") or s.get("product"), self.style,
                                  dict(h.get("software_version") or {}))
            ref = st.add("host", dict(uuid=h.get("uuid", ""), name_label=name,
                                      address=h.get("address", f"192.0.2.{10 + i}"), hostname=name,
                                      enabled=bool(h.get("enabled", True)), **product))
            uuid = st.get("host", ref)["uuid"]
            host_refs[name] = ref
            host_refs[uuid] = ref
            self.plugins[ref] = _plugins(h)
            if h.get("master") or (i == 0 and not any(x.get("master") for x in hosts)):
                self.master = ref
            # every host has a control domain; clients must skip it
            dom0 = st.add("VM", dict(name_label=f"Control domain on host: {name}", is_control_domain=True,
                                     power_state="Running", resident_on=ref, uuid=h.get("dom0_uuid", ""),
                                     domid=0, domain_type="pv", domarch="x64", HVM_boot_policy="",
                                     HVM_boot_params={}, platform={}))
            st.set("host", ref, control_domain=dom0, iscsi_iqn=f"iqn.2026-01.com.example:{uuid[:8]}")
        self.host_addresses = {r: st.get("host", r)["address"] for r in set(host_refs.values())}
        return host_refs

    def _build_networks(self, s: dict) -> None:
        st = self.store
        nets = s.get("networks") or [{"name_label": "Pool-wide network associated with eth0",
                                      "bridge": "xenbr0"}]
        self.networks = {}
        for n in nets:
            ref = st.add("network", dict(uuid=n.get("uuid", ""), name_label=n.get("name_label", ""),
                                         bridge=n.get("bridge", "xenbr0"), MTU=int(n.get("MTU", 1500))))
            self.networks[n.get("name_label")] = ref
            self.networks[st.get("network", ref)["uuid"]] = ref
        self.default_network = next(iter(self.networks.values()))

    def _build_srs(self, s: dict, host_refs: dict) -> dict:
        """SRs, their storage state and PBDs. Returns name/uuid -> SR ref."""
        sr_refs = {}
        for sr in s.get("srs") or []:
            self._build_sr(sr, host_refs, sr_refs)
        return sr_refs

    def _build_sr(self, sr: dict, host_refs: dict, sr_refs: dict) -> None:
        st = self.store
        typ = str(sr.get("type", "lvm"))
        shared = bool(sr.get("shared", typ in ("nfs", "lvmoiscsi", "lvmohba")))
        ref = st.add("SR", dict(uuid=sr.get("uuid", ""), name_label=sr.get("name_label", ""),
                                name_description=sr.get("name_description", ""), type=typ,
                                content_type=sr.get("content_type", "user"), shared=shared,
                                other_config=dict(sr.get("other_config", {})),
                                sm_config=dict(sr.get("sm_config", {}))))
        sr_refs[sr.get("name_label")] = ref
        sr_refs[st.get("SR", ref)["uuid"]] = ref
        state = SrState(ref=ref, type=typ, physical_size=sc.size(sr.get("physical_size", "1T")),
                        other_used=sc.size(sr.get("other_used", 0)))
        if "copy_speed" in sr:
            state.copy_speed = sc.rate(sr["copy_speed"])
        if "coalesce_speed" in sr:
            state.coalesce_speed = sc.rate(sr["coalesce_speed"])
        state.overhead_s_per_tib = float(sr.get("coalesce_overhead_s_per_tib", 0))
        state.speed_log = [sc.rate(x) for x in sr.get("speed_log", [])]
        state.provisioning = "thin" if (sr.get("sm_config") or {}).get("allocation") == "thin" else "thick"
        self.storage.srs[ref] = state
        on_hosts = list(dict.fromkeys(host_refs.values())) if shared else \
            [host_refs.get(sr.get("host"), self.master)]
        for h in on_hosts:
            st.add("PBD", dict(host=h, SR=ref, currently_attached=True,
                               device_config=dict(sr.get("device_config", {}))))

    def _build_vdis(self, s: dict, sr_refs: dict) -> dict:
        """VDIs, parents before children, then their snapshot_of links. Returns uuid -> VDI ref."""
        vdi_refs = {}
        pending = list(s.get("vdis") or [])
        while pending:
            progressed = False
            for v in list(pending):
                parent = v.get("parent")
                if parent and parent not in vdi_refs:
                    continue
                pending.remove(v)
                progressed = True
                vdi_refs[v["uuid"]] = self._build_vdi(v, sr_refs, vdi_refs)
            if not progressed:
                raise InputError("scenario: VDI parents form a loop or name unknown VDIs: "
                                 + ", ".join(str(v.get("uuid")) for v in pending[:5]))
        for v in s.get("vdis") or []:
            if v.get("snapshot_of"):
                self.store.set("VDI", vdi_refs[v["uuid"]],
                               snapshot_of=vdi_refs.get(v["snapshot_of"], NULL_REF))
        return vdi_refs

    def _build_vms(self, s: dict, host_refs: dict, vdi_refs: dict) -> None:
        """VMs, then their snapshot_of links."""
        vm_refs = {}
        for vm in s.get("vms") or []:
            vm_refs[vm.get("uuid") or vm.get("name_label")] = self._build_vm(vm, host_refs, vdi_refs)
        for vm in s.get("vms") or []:
            if vm.get("snapshot_of"):
                self.store.set("VM", vm_refs[vm.get("uuid") or vm.get("name_label")],
                               snapshot_of=vm_refs.get(vm["snapshot_of"], NULL_REF))

    def _build_suspend_srs(self, s: dict, host_refs: dict, sr_refs: dict) -> None:
        """Where VM.suspend writes memory: the pool's suspend_image_SR, each host's suspend_image_sr
        (the installer sets both to the local SR), a VM's own suspend_SR; SR names or uuids."""
        st = self.store
        pool_sr = (s.get("pool") or {}).get("suspend_image_SR")
        if pool_sr in sr_refs:
            st.set("pool", st.all_refs("pool")[0], suspend_image_SR=sr_refs[pool_sr])
        for i, h in enumerate(s.get("hosts") or []):
            ref = host_refs.get(h.get("name_label", f"host{i}"))
            if ref and h.get("suspend_image_sr") in sr_refs:
                st.set("host", ref, suspend_image_sr=sr_refs[h["suspend_image_sr"]])
        for vm in s.get("vms") or []:
            if vm.get("suspend_SR") in sr_refs:
                ref = next((r for r in st.find("VM", name_label=vm.get("name_label", ""))), None)
                if ref:
                    st.set("VM", ref, suspend_SR=sr_refs[vm["suspend_SR"]])

    def _size_srs_from_free(self, s: dict, sr_refs: dict) -> None:
        for sr in s.get("srs") or []:
            if "free" in sr:   # size the SR from the free space the scenario wants
                state = self.storage.srs[sr_refs[sr.get("uuid") or sr.get("name_label")]]
                state.physical_size = 0
                state.physical_size = sc.size(sr["free"]) - self.storage.free(state.ref)

    def _build_vdi(self, v: dict, sr_refs: dict, vdi_refs: dict) -> str:
        sr_key = v.get("sr")
        if sr_key not in sr_refs:
            raise InputError(f"scenario: VDI {v.get('uuid')} names unknown SR {sr_key!r}")
        sr = sr_refs[sr_key]
        virtual = sc.size(v.get("virtual_size", "10G"), "virtual_size")
        hidden = bool(v.get("hidden", False))
        if "blocks" in v:
            blocks = int(v["blocks"])
        else:
            blocks = -(-sc.size(v.get("allocated", 0), "allocated") // VHD_BLOCK)
        overlap = -(-sc.size(v.get("overlap", 0), "overlap") // VHD_BLOCK)
        snap_time = v.get("snapshot_time")
        ref = self.store.add("VDI", dict(
            uuid=v["uuid"], name_label=v.get("name_label") or (BASE_COPY if hidden else "disk"),
            name_description=v.get("name_description", ""), SR=sr,
            type=v.get("type", "user"), managed=not hidden, virtual_size=virtual,
            read_only=bool(v.get("read_only", False)),
            is_a_snapshot=bool(v.get("is_a_snapshot", False)),
            snapshot_time=self.clock.date(parse_date(snap_time)) if snap_time else
            NEVER,
            other_config=dict(v.get("other_config", {})),
            sm_config=dict(v.get("sm_config", {})),
            on_boot=str(v.get("on_boot", "persist")), allow_caching=bool(v.get("allow_caching", False)),
            cbt_enabled=bool(v.get("cbt_enabled", False)),
            location=v["uuid"]))
        self.storage.vhds[ref] = Vhd(sr=sr, virtual=virtual, blocks=blocks, overlap=overlap,
                                     parent=vdi_refs.get(v.get("parent")) if v.get("parent") else None,
                                     raw=bool(v.get("raw", False)),
                                     growth=sc.rate(v.get("growth", 0), "growth"))
        return ref

    def _build_vm(self, vm: dict, host_refs: dict, vdi_refs: dict) -> str:
        st = self.store
        running = vm.get("power_state", "Halted") == "Running"
        host = host_refs.get(vm.get("host"), self.master) if running else NULL_REF
        snap_time = vm.get("snapshot_time")
        memory = sc.size(vm.get("memory", "2G"))
        priority = str(vm.get("ha_restart_priority", ""))
        ref = st.add("VM", dict(
            uuid=vm.get("uuid", ""), name_label=vm.get("name_label", ""),
            name_description=vm.get("name_description", ""),
            power_state=vm.get("power_state", "Halted"),
            is_a_snapshot=bool(vm.get("is_a_snapshot", False)),
            is_a_template=bool(vm.get("is_a_template", vm.get("is_a_snapshot", False))),
            snapshot_time=self.clock.date(parse_date(snap_time)) if snap_time else NEVER,
            resident_on=host, other_config=dict(vm.get("other_config", {})),
            memory_static_max=memory, memory_dynamic_max=memory, memory_dynamic_min=memory,
            memory_static_min=min(memory, 1 << 30), memory_target=memory,
            VCPUs_max=int(vm.get("vcpus", 2)), VCPUs_at_startup=int(vm.get("vcpus", 2)),
            ha_restart_priority=priority, ha_always_run=priority == "restart",
            **self._domain(running)))
        for i, b in enumerate(vm.get("vbds") or []):
            vdi = vdi_refs.get(b.get("vdi"), NULL_REF) if b.get("vdi") else NULL_REF
            if b.get("vdi") and vdi == NULL_REF:
                raise InputError(f"scenario: VM {vm.get('name_label')} names unknown VDI {b.get('vdi')}")
            userdevice = str(b.get("userdevice", i))
            st.add("VBD", dict(VM=ref, VDI=vdi, userdevice=userdevice,
                               device=f"xvd{chr(ord('a') + int(userdevice))}" if running else "",
                               bootable=bool(b.get("bootable", userdevice == "0")),
                               mode=b.get("mode", "RW"), type=b.get("type", "Disk"),
                               empty=vdi == NULL_REF, currently_attached=running and vdi != NULL_REF))
            if running and vdi != NULL_REF:
                v = self.storage.vhds[vdi]
                v.attached += 1
                if self.storage.srs[v.sr].is_lvm and not v.raw:
                    v.inflated = True
        for i, f in enumerate(vm.get("vifs") or []):
            st.add("VIF", dict(VM=ref, device=str(f.get("device", i)),
                               network=self.networks.get(f.get("network"), self.default_network),
                               MAC=f.get("mac") or _mac(self.rng), currently_attached=running,
                               MAC_autogenerated=not f.get("mac"), **vif_filter(f)))
        return ref

    # -- allowed_operations, derived as xapi derives them -----------------------------------------
    _VM_OPS = {
        "Halted": ["changing_dynamic_range", "changing_static_range", "clone", "copy", "destroy",
                   "export", "make_into_template", "snapshot", "start", "start_on"],
        "Running": ["changing_dynamic_range", "clean_reboot", "clean_shutdown", "hard_reboot",
                    "hard_shutdown", "pause", "pool_migrate", "snapshot", "suspend"],
        "Paused": ["hard_reboot", "hard_shutdown", "unpause"],
        "Suspended": ["hard_shutdown", "resume", "resume_on", "copy", "clone"],
    }

    def _vm_allowed(self, ref: str, rec: dict) -> None:
        if rec["is_control_domain"] or rec["current_operations"]:
            rec["allowed_operations"] = []
        elif rec["is_a_snapshot"]:
            rec["allowed_operations"] = ["clone", "copy", "destroy", "export", "revert"]
        else:
            rec["allowed_operations"] = list(self._VM_OPS.get(rec["power_state"], []))

    def _vdi_allowed(self, ref: str, rec: dict) -> None:
        if not rec["managed"] or rec["current_operations"]:
            rec["allowed_operations"] = []
            return
        attached = any(self.store.get("VBD", b)["currently_attached"] for b in rec["VBDs"])
        rec["allowed_operations"] = ["clone", "copy", "generate_config", "mirror", "snapshot",
                                     "update"] if attached else \
            ["clone", "copy", "destroy", "forget", "generate_config", "resize", "snapshot",
             "update"]

    # -- time ------------------------------------------------------------------------------------
    def _elapse(self, seconds: float) -> None:
        for sr in self.storage.grow(seconds):
            self.storage.refresh(sr)

    def tick(self) -> None:
        with self.lock:
            self.clock.tick()

    # -- helpers ---------------------------------------------------------------------------------
    def vm(self, ref: str) -> dict:
        return self.store.get("VM", ref)

    def _bad_power(self, ref, expected, actual):
        return ApiFailure("VM_BAD_POWER_STATE", ref, expected.lower(), actual.lower())

    # the power states xapi allows each operation in (xapi_vm_lifecycle.allowed_power_states)
    _POWER = {"start": ("Halted",), "clean_shutdown": ("Running",), "destroy": ("Halted", "Suspended"),
              "hard_shutdown": ("Paused", "Suspended", "Running"), "copy": ("Halted",), "clone": ("Halted",)}

    def _assert_vm_op(self, vm: str, op: str) -> dict:
        """xapi's checks of a VM operation, in its order: the power state (a snapshot may also be
        copied or cloned when Suspended), then a template's and a snapshot's own refusals."""
        rec = self.vm(vm)
        allowed = self._POWER[op] + (("Suspended",) if op in ("copy", "clone") and rec["is_a_snapshot"] else ())
        if rec["power_state"] not in allowed:
            raise self._bad_power(vm, ", ".join(allowed), rec["power_state"])
        if rec["is_a_snapshot"]:
            if op not in ("clone", "copy", "destroy", "hard_shutdown"):
                raise ApiFailure("VM_IS_SNAPSHOT", vm, op)
        elif rec["is_a_template"] and op not in ("clone", "copy", "destroy"):
            raise ApiFailure("VM_IS_TEMPLATE", vm, op)
        return rec

    def disks(self, vm_ref: str) -> list[tuple[str, dict]]:
        """(VBD ref, VBD record) of the VM's disks with a VDI, in userdevice order."""
        out = []
        for vbd in self.store.children("VBD", "VM", vm_ref):
            rec = self.store.get("VBD", vbd)
            if rec["type"] == "Disk" and rec["VDI"] != NULL_REF:
                out.append((vbd, rec))
        return sorted(out, key=lambda x: self._userdevice_key(x[0]))

    def kick_gc(self, sr_ref: str) -> None:
        if self.gc is not None:
            self.gc.kick(sr_ref)

    def sm_log(self, message: str) -> None:
        if self.smlog is not None:
            self.smlog.sm(message, self.clock.now)

    # -- VDIs --------------------------------------------------------------------------------------
    def new_vdi(self, sr: str, virtual: int, blocks: int, like: dict | None = None,
                parent: str | None = None, hidden: bool = False, **fields) -> str:
        like = like or {}
        values = dict(name_label=like.get("name_label", ""),
                      name_description=like.get("name_description", ""), SR=sr,
                      type=like.get("type", "user"), virtual_size=virtual, managed=not hidden,
                      other_config={k: v for k, v in like.get("other_config", {}).items()
                                    if k != "leaf-coalesce"})
        values.update(fields)
        ref = self.store.add("VDI", values)
        self.store.set("VDI", ref, location=self.store.get("VDI", ref)["uuid"])
        self.storage.vhds[ref] = Vhd(sr=sr, virtual=virtual, blocks=blocks, parent=parent)
        return ref

    def remove_vdi(self, ref: str) -> None:
        sr = self.storage.vhds[ref].sr
        self.storage.gone_content[self.store.get("VDI", ref)["uuid"]] = self.storage.vhds[ref].content
        self.store.delete("VDI", ref)
        del self.storage.vhds[ref]
        self.storage.refresh(sr)

    def _snapshot_vhd(self, vdi: str, **snap_fields) -> str:
        """VHD snapshot: the data moves into a new hidden base; vdi and the snapshot become its
        empty children. Returns the snapshot VDI ref."""
        st, storage = self.store, self.storage
        v = storage.vhds[vdi]
        sr_state = storage.srs[v.sr]
        rec = st.get("VDI", vdi)
        if v.raw:
            raise ApiFailure("SR_OPERATION_NOT_SUPPORTED", rec["SR"])
        if len(storage.chain(vdi)) >= VHD_MAX_CHAIN:
            raise ApiFailure("SR_BACKEND_FAILURE_109", "", "The snapshot chain is too long", "")
        if sr_state.is_lvm:
            need = calc_size_lv(calc_overhead_empty(v.virtual)) + (calc_size_vhd_lv(v.virtual) if v.attached else 0)
            storage.require(v.sr, need)
        base = self.new_vdi(v.sr, v.virtual, v.blocks, parent=v.parent, hidden=True,
                            name_label=BASE_COPY)
        storage.vhds[base].overlap = v.overlap
        v.parent, v.blocks, v.overlap = base, 0, 0
        for child in storage.vhd_children(vdi):
            if child != base:
                storage.vhds[child].parent = base
        snap = self.new_vdi(v.sr, v.virtual, 0, like=rec, parent=base, is_a_snapshot=True,
                            snapshot_of=vdi, snapshot_time=self.clock.date(), **snap_fields)
        storage.vhds[snap].content = v.content
        storage.refresh(v.sr)
        return snap

    def op_VDI_create(self, record: dict) -> str:
        """An empty VHD: on LVM created fully inflated (calc_size_vhd_lv), on file SRs just its
        metadata; a size beyond the VHD limit or the free space fails as sm fails it."""
        sr = record.get("SR", NULL_REF)
        self.store.get("SR", sr)
        if sr not in self.storage.srs or self.store.get("SR", sr)["content_type"] == "iso":
            raise ApiFailure("SR_OPERATION_NOT_SUPPORTED", sr)
        try:
            virtual = int(record.get("virtual_size", 0))
        except (TypeError, ValueError):
            raise ApiFailure("FIELD_TYPE_ERROR", "virtual_size") from None
        if virtual < 0 or virtual > VHD_MAX_VIRTUAL:   # sm: VDISize (79); a size under 2 MiB is rounded up
            raise ApiFailure("SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=VDI size must be between "
                             f"1 MB and {VHD_MAX_VIRTUAL >> 20} MB]", "")
        virtual = -(-max(virtual, VHD_BLOCK) // VHD_BLOCK) * VHD_BLOCK
        lvm = self.storage.srs[sr].is_lvm
        self.storage.require(sr, calc_size_vhd_lv(virtual) if lvm else calc_overhead_empty(virtual))
        ref = self.new_vdi(sr, virtual, 0, like={
            "name_label": record.get("name_label", ""),
            "name_description": record.get("name_description", ""),
            "type": record.get("type", "user"),
            "other_config": dict(record.get("other_config", {}))},
            read_only=bool(record.get("read_only", False)),
            sharable=bool(record.get("sharable", False)))
        self.storage.vhds[ref].inflated = lvm
        self.storage.refresh(sr)
        return ref

    def op_VDI_snapshot(self, vdi: str, driver_params: dict | None = None) -> str:
        rec = self.store.get("VDI", vdi)
        if not rec["managed"]:
            raise ApiFailure("HANDLE_INVALID", "VDI", vdi)
        snap = self._snapshot_vhd(vdi)
        self.kick_gc(rec["SR"])
        return snap

    def op_VDI_destroy(self, vdi: str) -> str:
        st, storage = self.store, self.storage
        rec = st.get("VDI", vdi)
        if not rec["managed"]:
            raise ApiFailure("VDI_NOT_MANAGED", vdi)
        for vbd in st.children("VBD", "VDI", vdi):
            if st.get("VBD", vbd)["currently_attached"]:
                raise ApiFailure("VDI_IN_USE", vdi, "destroy")
        if rec["current_operations"]:
            task, op = next(iter(rec["current_operations"].items()))
            raise ApiFailure("OTHER_OPERATION_IN_PROGRESS", "VDI", vdi, op, task)
        sr = rec["SR"]
        for vbd in st.children("VBD", "VDI", vdi):
            st.delete("VBD", vbd)
        self.sm_log(f"vdi_delete {{'sr_uuid': '{st.get('SR', sr)['uuid']}', "
                    f"'vdi_uuid': '{rec['uuid']}'}}")
        if storage.vhd_children(vdi):
            # a VHD with children stays as a hidden chain node; xapi forgets the record and
            # the next scan reintroduces it unmanaged
            v = storage.vhds.pop(vdi)
            st.delete("VDI", vdi)
            ref = st.add("VDI", dict(uuid=rec["uuid"], SR=sr, managed=False, name_label=BASE_COPY,
                                     virtual_size=rec["virtual_size"], location=rec["uuid"]))
            storage.vhds[ref] = v
            for other in storage.vhds.values():
                if other.parent == vdi:
                    other.parent = ref
            storage.refresh(sr)
        else:
            self.remove_vdi(vdi)
        self.kick_gc(sr)
        return ""

    def flat_copy(self, src_vdi: str, dest_sr: str, task=None, share=(0.0, 1.0),
                  progress_cb=None, **fields):
        """Generator: copy a VDI's whole chain into a new flat VDI on dest_sr.

        The destination is created at the start (so it holds its space while it is written)
        and removed again if the copy fails or is cancelled."""
        st, storage = self.store, self.storage
        rec = st.get("VDI", src_vdi)
        v = storage.vhds[src_vdi]
        blocks = storage.union_blocks(src_vdi)
        lvm = storage.srs[dest_sr].is_lvm
        if lvm:  # the LV is created fully inflated: checked per disk as it is made
            storage.require(dest_sr, storage.copy_need(dest_sr, v.virtual, blocks))
        new = self.new_vdi(dest_sr, v.virtual, 0, like=rec, **fields)
        nv = storage.vhds[new]
        nv.content = v.content
        nv.inflated = lvm
        storage.refresh(dest_sr)
        nv.size_published = lvm  # from here a file SR publishes its size on SR.scan / SR.update only
        try:
            speed = min(storage.srs[v.sr].copy_speed, storage.srs[dest_sr].copy_speed)
            total = max(blocks * VHD_BLOCK / speed, 1.0)
            step = total / PROGRESS_STEPS
            for i in range(PROGRESS_STEPS):
                yield step
                frac = (i + 1) / PROGRESS_STEPS
                with self.lock:
                    self.faults.check_copy(self, dest_sr, frac, new)
                    nv.blocks = int(blocks * frac)
                    if not lvm and storage.free(dest_sr) < 0:  # a sparse file: no check until it is full
                        raise ApiFailure("VDI_COPY_FAILED", NO_SPACE_LOG)
                    storage.refresh(dest_sr, [new])
                    if progress_cb:
                        progress_cb(share[0] + (share[1] - share[0]) * frac)
            nv.blocks = blocks
            # sparse_dd wrote it through a dom0 attach: thick keeps it full at detach, unless a snapshot
            nv.inflated = lvm and not storage.deflates_at_detach(new)
            nv.content = v.content
            storage.refresh(dest_sr)
        except BaseException:
            with self.lock:
                if st.exists("VDI", new):
                    self.remove_vdi(new)
            raise
        return new

    def op_VDI_copy(self, vdi: str, sr: str, task=None):
        st = self.store
        rec = st.get("VDI", vdi)
        st.get("SR", sr)
        for vbd in st.children("VBD", "VDI", vdi):
            b = st.get("VBD", vbd)
            if b["currently_attached"] and b["mode"] == "RW":
                raise ApiFailure("VDI_IN_USE", vdi, "copy")
        if not rec["managed"]:
            raise ApiFailure("HANDLE_INVALID", "VDI", vdi)
        op = self.begin_op("VDI", vdi, "copy", task)
        try:
            return (yield from self.flat_copy(vdi, sr,
                                              progress_cb=task.set_progress if task else None))
        finally:
            with self.lock:
                self.end_op("VDI", vdi, op)

    def op_VDI_pool_migrate(self, vdi: str, sr: str, options: dict, task=None):
        """Storage motion as xapi does it (VM.migrate_send with live=true): a flat copy on sr
        replaces the VDI in its VM's VBDs, whether the VM runs or not, and the disks of the VM's
        snapshots taken of this VDI go to the same SR."""
        st = self.store
        rec = st.get("VDI", vdi)
        st.get("SR", sr)
        vbds = st.children("VBD", "VDI", vdi)
        if not vbds:
            raise ApiFailure("VDI_NEEDS_VM_FOR_MIGRATE", vdi)
        self._assert_can_migrate(vdi, rec, sr, st.get("VBD", vbds[0])["VM"])
        if rec["SR"] == sr:  # intra-pool, same SR: nothing to mirror
            return vdi
        attached = [b for b in vbds if st.get("VBD", b)["currently_attached"]]
        # storage motion of a running disk snapshots it on the source first: on LVM that needs room there
        v = self.storage.vhds[vdi]
        if attached and self.storage.srs[v.sr].is_lvm and not v.raw and \
                pool_migrate_snapshot_need(v.vhd_size) > self.storage.free(v.sr):
            self.sm_log("Raising exception [44, There is insufficient space]")
            raise insufficient_space()
        snaps = [r for r in st.all_refs("VDI") if st.get("VDI", r)["snapshot_of"] == vdi]
        op = self.begin_op("VDI", vdi, "mirror", task)
        made: dict[str, str] = {}
        try:
            new = yield from self.flat_copy(vdi, sr, progress_cb=task.set_progress if task else None,
                                            name_label=rec["name_label"], name_description=rec["name_description"])
            made[vdi] = new
            for snap in snaps:
                srec = st.get("VDI", snap)
                made[snap] = yield from self.flat_copy(snap, sr, name_label=srec["name_label"],
                                                       is_a_snapshot=True, snapshot_of=new,
                                                       snapshot_time=srec["snapshot_time"])
        except BaseException:
            with self.lock:
                for ref in made.values():
                    if st.exists("VDI", ref):
                        self.remove_vdi(ref)
            raise
        finally:
            with self.lock:
                self.end_op("VDI", vdi, op)
        with self.lock:
            self._switch_to_copies(made, attached)
        return new

    def _assert_can_migrate(self, vdi: str, rec: dict, sr: str, vm: str) -> None:
        """migrate_send's refusals: a reset-on-boot disk, changed block tracking, and an HA-protected
        VM whose disk would land on an SR that is not shared."""
        if rec["on_boot"] == "reset":
            raise ApiFailure("VDI_ON_BOOT_MODE_INCOMPATIBLE_WITH_OPERATION")   # xapi gives no parameter
        if rec["cbt_enabled"]:
            raise ApiFailure("VDI_CBT_ENABLED", vdi)
        self._assert_ha_agile(vm, sr)

    def _assert_ha_agile(self, vm: str, sr: str) -> None:
        pool = self.store.get("pool", self.store.all_refs("pool")[0])
        if pool["ha_enabled"] and self.vm(vm)["ha_restart_priority"] == "restart" \
                and not self.store.get("SR", sr)["shared"]:
            raise ApiFailure("HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED", sr)

    def _switch_to_copies(self, made: dict[str, str], attached: list[str]) -> None:
        """Each VBD on a moved VDI (the VM's, its snapshots') now points at the copy; the old go."""
        st = self.store
        old_sr = st.get("VDI", next(iter(made)))["SR"]
        for old, new in made.items():
            for b in st.children("VBD", "VDI", old):
                if b in attached:
                    self.storage.attach(new)
                    self.storage.detach(old)
                st.set("VBD", b, VDI=new)
        for old in reversed(list(made)):
            self.op_VDI_destroy(old)
        self.kick_gc(old_sr)

    # -- VMs ---------------------------------------------------------------------------------------
    def _copy_vm_record(self, vm: str, new_name: str, snapshot: bool) -> str:
        src = self.vm(vm)
        keep = {k: src[k] for k in ("name_description", "memory_static_max", "memory_dynamic_max",
                                     "VCPUs_max", "VCPUs_at_startup", "HVM_boot_policy",
                                     "PV_bootloader", "tags", "affinity")}  # never blocked_operations
        other = dict(src["other_config"])
        if not snapshot:
            other["mac_seed"] = str(uuidlib.uuid4())  # xapi replaces the seed on copy/clone
        return self.store.add("VM", dict(
            keep, name_label=new_name, power_state="Halted", other_config=other, metrics=NULL_REF,
            is_a_snapshot=snapshot, is_a_template=snapshot or src["is_a_template"],
            snapshot_of=vm if snapshot else NULL_REF,
            snapshot_time=self.clock.date() if snapshot else NEVER))

    def _copy_vifs(self, vm: str, new_vm: str, keep_mac: bool) -> None:
        for vif in self.store.children("VIF", "VM", vm):
            rec = self.store.get("VIF", vif)
            self.store.add("VIF", dict(VM=new_vm, device=rec["device"], network=rec["network"],
                                       MTU=rec["MTU"], other_config=dict(rec["other_config"]),
                                       MAC=rec["MAC"] if keep_mac else _mac(self.rng),
                                       MAC_autogenerated=not keep_mac, **vif_filter(rec)))

    def _copy_vbd(self, rec: dict, new_vm: str, new_vdi: str) -> None:
        self.store.add("VBD", dict(VM=new_vm, VDI=new_vdi, userdevice=rec["userdevice"],
                                   bootable=rec["bootable"], mode=rec["mode"], type=rec["type"],
                                   empty=new_vdi == NULL_REF, unpluggable=rec["unpluggable"],
                                   other_config={"owner": "", **rec["other_config"]}   # owner only if absent
                                   if rec["type"] == "Disk" else dict(rec["other_config"])))

    def op_VM_copy(self, vm: str, new_name: str, sr: str, task=None):
        """Full copy of a halted VM or a snapshot: flat disks, new VIF MACs (as xapi does)."""
        st = self.store
        self._assert_vm_op(vm, "copy")
        if not st.exists("SR", sr):   # xapi: an SR that does not exist means each disk's own SR
            sr = NULL_REF
        if sr != NULL_REF:
            if st.get("SR", sr)["content_type"] == "iso":
                raise ApiFailure("OPERATION_NOT_ALLOWED", "Cannot copy a VM's disks to an ISO SR")
            self._assert_ha_agile(vm, sr)  # an HA-protected VM's disks stay on shared SRs
        disks = self.disks(vm)
        # xapi copies disk by disk: an LVM destination refuses the disk that does not fit as it
        # is created (SR_BACKEND_FAILURE_44), a file SR only when the sparse copy fills it
        # (VDI_COPY_FAILED); what was made so far is removed
        made: dict[str, str] = {}     # source VBD -> new VDI
        new_vm = None
        op = self.begin_op("VM", vm, "copy", task)
        try:
            n = max(len(disks), 1)
            for i, (vbd, b) in enumerate(disks):
                dest = sr if sr != NULL_REF else self.storage.vhds[b["VDI"]].sr
                new = yield from self.flat_copy(
                    b["VDI"], dest, share=(i / n, (i + 1) / n),
                    progress_cb=task.set_progress if task else None)
                made[vbd] = new
            with self.lock:
                new_vm = self._copy_vm_record(vm, new_name, snapshot=False)
                for vbd in sorted(st.children("VBD", "VM", vm), key=self._userdevice_key):
                    rec = st.get("VBD", vbd)  # a CD keeps its ISO (the ISO SR's VDI is shared, not copied)
                    self._copy_vbd(rec, new_vm, made.get(vbd, rec["VDI"] if rec["type"] == "CD" else NULL_REF))
                self._copy_vifs(vm, new_vm, keep_mac=False)
        except BaseException:
            with self.lock:
                if new_vm and st.exists("VM", new_vm):
                    self._destroy_vm_record(new_vm)
                for ref in made.values():
                    if st.exists("VDI", ref):
                        self.remove_vdi(ref)
            raise
        finally:
            with self.lock:
                self.end_op("VM", vm, op)
        return new_vm

    def _userdevice_key(self, vbd: str):
        u = self.store.get("VBD", vbd)["userdevice"]
        return (0, int(u), "") if u.isdigit() else (1, 0, u)

    def begin_op(self, cls: str, ref: str, name: str, task=None) -> str:
        """Mark an operation in progress (current_operations), as xapi does; others wait."""
        rec = self.store.get(cls, ref)
        for other_task, other_op in rec["current_operations"].items():
            raise ApiFailure("OTHER_OPERATION_IN_PROGRESS", cls, ref, other_op, other_task)
        key = task.ref if task is not None else new_ref()
        self.store.set(cls, ref, current_operations={key: name})
        return key

    def end_op(self, cls: str, ref: str, key: str) -> None:
        if self.store.exists(cls, ref):
            ops = dict(self.store.get(cls, ref)["current_operations"])
            ops.pop(key, None)
            self.store.set(cls, ref, current_operations=ops)

    def op_VM_clone(self, vm: str, new_name: str):
        self._assert_vm_op(vm, "clone")
        return self._fast_copy(vm, new_name, snapshot=False)

    def op_VM_snapshot(self, vm: str, new_name: str, ignore_vdis: list | None = None):
        src = self.vm(vm)
        if src["is_a_snapshot"]:
            raise ApiFailure("VM_IS_SNAPSHOT", vm, "snapshot")
        if src["is_a_template"]:
            raise ApiFailure("VM_IS_TEMPLATE", vm, "snapshot")
        if src["is_control_domain"]:
            raise ApiFailure("OPERATION_NOT_ALLOWED", "VM is a control domain")
        return self._fast_copy(vm, new_name, snapshot=True)

    def _fast_copy(self, vm: str, new_name: str, snapshot: bool) -> str:
        st = self.store
        disks = self.disks(vm)
        # check space for every disk first: a snapshot that cannot finish leaves nothing behind
        need: dict[str, int] = {}
        for _, b in disks:
            v = self.storage.vhds[b["VDI"]]
            if len(self.storage.chain(b["VDI"])) >= VHD_MAX_CHAIN:
                raise ApiFailure("SR_BACKEND_FAILURE_109", "", "The snapshot chain is too long", "")
            if self.storage.srs[v.sr].is_lvm:
                need[v.sr] = need.get(v.sr, 0) + calc_size_lv(calc_overhead_empty(v.virtual)) + \
                    (calc_size_vhd_lv(v.virtual) if v.attached else 0)
        for sr, n in need.items():
            if n > self.storage.free(sr):
                self.sm_log("Raising exception [44, There is insufficient space]")
                raise insufficient_space()
        new_vm = self._copy_vm_record(vm, new_name, snapshot)
        for vbd in sorted(st.children("VBD", "VM", vm), key=self._userdevice_key):
            rec = st.get("VBD", vbd)
            new_vdi = NULL_REF
            if rec["type"] == "Disk" and rec["VDI"] != NULL_REF:
                self.sm_log(f"vdi_snapshot {{'vdi_uuid': '{st.get('VDI', rec['VDI'])['uuid']}'}}")
                new_vdi = self._snapshot_vhd(rec["VDI"])
                if not snapshot:
                    st.set("VDI", new_vdi, is_a_snapshot=False, snapshot_of=NULL_REF,
                           snapshot_time=NEVER)
            self._copy_vbd(rec, new_vm, new_vdi)
        self._copy_vifs(vm, new_vm, keep_mac=snapshot)
        for sr in {self.storage.vhds[b["VDI"]].sr for _, b in disks}:
            self.kick_gc(sr)
        return new_vm

    def _destroy_vm_record(self, vm: str) -> None:
        st = self.store
        for vbd in st.children("VBD", "VM", vm):
            st.delete("VBD", vbd)
        for vif in st.children("VIF", "VM", vm):
            st.delete("VIF", vif)
        st.delete("VM", vm)

    def op_VM_destroy(self, vm: str) -> str:
        rec = self.vm(vm)
        if rec["is_control_domain"]:
            raise ApiFailure("OPERATION_NOT_ALLOWED", "cannot destroy a control domain")
        self._assert_vm_op(vm, "destroy")   # halted or suspended (a checkpoint goes as it is)
        for other_task, other_op in rec["current_operations"].items():
            raise ApiFailure("OTHER_OPERATION_IN_PROGRESS", "VM", vm, other_op, other_task)
        self._destroy_vm_record(vm)
        return ""

    def _halt(self, vm: str) -> None:
        st = self.store
        for vbd in st.children("VBD", "VM", vm):
            b = st.get("VBD", vbd)
            if b["currently_attached"]:
                st.set("VBD", vbd, currently_attached=False, device="")
                self.storage.detach(b["VDI"])
        for vif in st.children("VIF", "VM", vm):
            st.set("VIF", vif, currently_attached=False)
        st.set("VM", vm, power_state="Halted", resident_on=NULL_REF, **self._domain(False))

    def op_VM_clean_shutdown(self, vm: str, task=None):
        rec = self._assert_vm_op(vm, "clean_shutdown")
        op = self.begin_op("VM", vm, "clean_shutdown", task)     # keyed by its task, as in xapi
        try:
            if self.faults.vm_wont_stop(rec):
                yield 1200.0
                raise ApiFailure("VM_SHUTDOWN_TIMEOUT", vm, "1200.")
            yield 30.0
        finally:
            with self.lock:
                self.end_op("VM", vm, op)
        with self.lock:
            self._halt(vm)
        return ""

    def op_VM_hard_shutdown(self, vm: str):
        self._assert_vm_op(vm, "hard_shutdown")   # xapi lets a checkpoint (a Suspended snapshot) be shut down
        yield 3.0
        with self.lock:
            self._halt(vm)
        return ""

    def op_VM_start(self, vm: str, start_paused: bool, force: bool):
        st = self.store
        rec = self._assert_vm_op(vm, "start")
        if "start" in rec["blocked_operations"]:
            raise ApiFailure("OPERATION_BLOCKED", vm, rec["blocked_operations"]["start"])
        for task, op in rec["current_operations"].items():  # e.g. a copy of this VM under way
            raise ApiFailure("OTHER_OPERATION_IN_PROGRESS", "VM", vm, op, task)
        attached = []
        try:
            for vbd, b in self.disks(vm):
                self.storage.attach(b["VDI"])
                attached.append((vbd, b["VDI"]))
        except ApiFailure:
            for _, vdi in attached:
                self.storage.detach(vdi)
            raise
        for vbd, _ in attached:
            st.set("VBD", vbd, currently_attached=True,
                   device="xvd" + chr(ord("a") + int(st.get("VBD", vbd)["userdevice"] or 0)))
        for vif in st.children("VIF", "VM", vm):
            st.set("VIF", vif, currently_attached=True)
        st.set("VM", vm, power_state="Paused" if start_paused else "Running",
               resident_on=self.master, **self._domain(True))
        if st.exists("VM_metrics", rec["metrics"]):
            st.set("VM_metrics", rec["metrics"], start_time=self.clock.date())
        yield 20.0
        return ""

    # -- VBD / VIF -----------------------------------------------------------------------------------
    def op_VBD_create(self, record: dict) -> str:
        st = self.store
        vm = record.get("VM", NULL_REF)
        self.vm(vm)
        vdi = record.get("VDI", NULL_REF)
        if vdi != NULL_REF:
            st.get("VDI", vdi)
        used = {st.get("VBD", b)["userdevice"] for b in st.children("VBD", "VM", vm)}
        userdevice = str(record.get("userdevice", "autodetect"))
        if userdevice == "autodetect":
            userdevice = next(str(i) for i in range(64) if str(i) not in used)
        elif userdevice in used:
            raise ApiFailure("DEVICE_ALREADY_EXISTS", userdevice)
        return st.add("VBD", dict(
            VM=vm, VDI=vdi, userdevice=userdevice, bootable=bool(record.get("bootable", False)),
            mode=record.get("mode", "RW"), type=record.get("type", "Disk"),
            empty=bool(record.get("empty", vdi == NULL_REF)),
            unpluggable=bool(record.get("unpluggable", True)),
            other_config=dict(record.get("other_config", {}))))

    def op_VBD_destroy(self, vbd: str) -> str:
        rec = self.store.get("VBD", vbd)
        if rec["currently_attached"]:
            raise ApiFailure("OPERATION_NOT_ALLOWED", f"VBD '{rec['uuid']}' still attached to "
                             f"'{self.vm(rec['VM'])['uuid']}'")
        self.store.delete("VBD", vbd)
        return ""

    def op_VIF_create(self, record: dict) -> str:
        st = self.store
        vm = record.get("VM", NULL_REF)
        self.vm(vm)
        net = record.get("network", NULL_REF)
        st.get("network", net)
        device = str(record.get("device", "0"))
        if any(st.get("VIF", v)["device"] == device for v in st.children("VIF", "VM", vm)):
            raise ApiFailure("DEVICE_ALREADY_EXISTS", device)
        mac = str(record.get("MAC", ""))
        return st.add("VIF", dict(VM=vm, network=net, device=device,
                                  MAC=mac or _mac(self.rng), MAC_autogenerated=not mac,
                                  MTU=int(record.get("MTU", 1500)),
                                  other_config=dict(record.get("other_config", {})),
                                  qos_algorithm_type=str(record.get("qos_algorithm_type", "")),
                                  qos_algorithm_params=dict(record.get("qos_algorithm_params") or {}),
                                  **vif_filter(record)))

    def op_VIF_destroy(self, vif: str) -> str:
        rec = self.store.get("VIF", vif)
        if rec["currently_attached"] and self.vm(rec["VM"])["power_state"] == "Running":
            raise ApiFailure("OPERATION_NOT_ALLOWED", "VIF currently attached to a running VM")
        self.store.delete("VIF", vif)
        return ""

    # -- SR -----------------------------------------------------------------------------------------
    def op_SR_scan(self, sr: str) -> str:
        rec = self.store.get("SR", sr)
        self.sm_log(f"sr_scan {{'sr_uuid': '{rec['uuid']}'}}")
        self.storage.publish_sizes(sr)
        self.storage.refresh(sr)
        self.kick_gc(sr)
        return ""

    def op_SR_update(self, sr: str) -> str:
        self.store.get("SR", sr)
        self.storage.publish_sizes(sr)
        self.storage.refresh(sr)
        return ""

    # -- host plugin ----------------------------------------------------------------------------------
    def op_host_call_plugin(self, host: str, plugin: str, fn: str, args: dict):
        self.store.get("host", host)
        if plugin not in self.plugins.get(host, ()):  # xapi finds no such file in the host's plugin directory
            raise ApiFailure("XENAPI_MISSING_PLUGIN", plugin)
        if fn != "leaf-coalesce":  # the plugin's dispatch table has no such function (XenAPIPlugin.dispatch)
            raise ApiFailure("UNKNOWN_XENAPI_PLUGIN_FUNCTION", fn)
        vm_uuid = (args or {}).get("vm_uuid", "")
        vm = self.store.by_uuid["VM"].get(vm_uuid)
        if vm is None:  # RET_ERROR_NO_SUCH_VM: the plugin raises with its message
            raise ApiFailure("XENAPI_PLUGIN_FAILURE", fn, "Exception", "VM not found")
        if self.gc is None:
            return "Success"
        result = yield from self.gc.offline_leaf_coalesce(host, vm)
        return result

    # -- suspend and resume (what the coalesce-leaf plugin does to a running VM) ------------------
    def suspend_sr(self, vm: str) -> str | None:
        """xapi's choice (helpers.ml choose_suspend_sr): VM.suspend_SR, the pool's suspend_image_SR,
        the host's suspend_image_sr, the first one the VM's host has a PBD for."""
        st = self.store
        rec = self.vm(vm)
        host = rec["resident_on"]
        pool = st.get("pool", st.all_refs("pool")[0])
        host_sr = st.get("host", host).get("suspend_image_sr", NULL_REF) if st.exists("host", host) else NULL_REF
        for sr in (rec.get("suspend_SR", NULL_REF), pool.get("suspend_image_SR", NULL_REF), host_sr):
            if sr != NULL_REF and st.exists("SR", sr) and any(
                    st.get("PBD", p)["host"] == host for p in st.children("PBD", "SR", sr)):
                return sr
        return None

    def suspend_vm(self, vm: str) -> bool:
        """VM.suspend: the memory image (memory_static_max x 1.2 x 1.05 + 100 MiB) is written to the
        suspend SR, fully inflated on LVM; the disks are detached. False when it does not fit."""
        rec = self.vm(vm)
        sr = self.suspend_sr(vm)
        if sr is None or sr not in self.storage.srs:
            return False
        virtual = -(-(int(rec["memory_static_max"] * 1.2 * 1.05) + 100 * MIB) // VHD_BLOCK) * VHD_BLOCK
        need = self.storage.copy_need(sr, virtual, -(-virtual // VHD_BLOCK))
        if need > self.storage.free(sr):
            return False
        self.storage.srs[sr].reserved += need
        self.suspended[vm] = (sr, need, rec["resident_on"])
        for vbd, b in self.disks(vm):
            if b["currently_attached"]:
                self.store.set("VBD", vbd, currently_attached=False)
                self.storage.detach(b["VDI"])
        self.store.set("VM", vm, power_state="Suspended", resident_on=NULL_REF)
        self.storage.refresh(sr)
        return True

    def resume_vm(self, vm: str) -> None:
        sr, need, host = self.suspended.pop(vm, (None, 0, self.master))
        if not self.store.exists("VM", vm):
            return
        for vbd, b in self.disks(vm):
            self.storage.attach(b["VDI"])
            self.store.set("VBD", vbd, currently_attached=True)
        self.store.set("VM", vm, power_state="Running", resident_on=host)
        if sr is not None:
            self.storage.srs[sr].reserved -= need
            self.storage.refresh(sr)
