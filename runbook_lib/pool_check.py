"""`runbook check-pool`: does this suite fit the pool? A read-only preflight, pure over one read.

Each check is a small function from a `PreflightReads` (runbook_lib/xapi/preflight_reads.py) to
a list of `Item`s: one line each, with a status:
- ok       as the suite expects;
- warning  worth knowing before an incident (a remedy that will not work here, a release
           nobody checked); the suite copes;
- problem  the suite would go wrong on this pool (a field it reads is missing).
`CHECKS` lists them in the order they are shown; another check is one more function there.

`check_pool()` reads (through runbook_lib.xapi) and assesses; `run_checks()` only assesses.
The exit code is 0 when nothing is a problem, 3 otherwise (as `runbook run` exits 3 when a
notebook records a breach).

Items (`PoolCheck.table`): status, check, subject (a host, an SR, a class, or "pool"), detail.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from runbook_lib.audit.runner import EXIT_BREACH, EXIT_OK
from runbook_lib.pool_diagnosis import GC_SR_TYPES
from runbook_lib.schemas import POOL_CHECK_SCHEMA
from runbook_lib.sizing import sr_family
from runbook_lib.units import gib_or_mib

if TYPE_CHECKING:
    from runbook_lib.xapi.preflight_reads import PreflightReads

STATUSES = ("ok", "warning", "problem")
ITEM_COLUMNS = ["status", "check", "subject", "detail"]
MAX_NAMES = 5   # VMs named in one line; the rest are counted


@dataclass(frozen=True)
class Item:
    check: str
    subject: str
    status: str   # one of STATUSES
    detail: str   # one line


def _worst(statuses) -> str:
    return max(statuses, key=STATUSES.index, default="ok")


def _by_name(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the order people look for them: by name, then uuid."""
    return frame.assign(_key=frame["name"].fillna("").str.lower()).sort_values(["_key", "uuid"]).drop(columns="_key")


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


class _Look:
    """Lookups over one read that several checks share."""

    def __init__(self, reads: "PreflightReads"):
        inv = reads.inventory
        self.reads = reads
        self.inv = inv
        self.host_name = {r.uuid: r.name or r.uuid[:8] for r in inv.hosts.itertuples()}
        self.srs = inv.srs.set_index("uuid", drop=False)
        self.sr_records = {rec.get("uuid"): rec for rec in inv.records["SR"].values()}
        self.host_suspend_sr = dict(zip(reads.hosts["uuid"], reads.hosts["suspend_image_sr"]))
        self.pbd_pairs = set(zip(inv.pbds["sr"], inv.pbds["host"]))   # (SR, host) with a PBD

    def sr_name(self, uuid: str | None) -> str:
        if uuid in self.srs.index:
            return str(self.srs.loc[uuid, "name"] or uuid[:8])
        return str(uuid)

    def sr_space(self, uuid: str) -> str:
        sr = self.srs.loc[uuid]
        free, size = gib_or_mib(int(sr["free"])), gib_or_mib(int(sr["size"]))
        return f"'{self.sr_name(uuid)}' ({sr['type']}), {free} free of {size}"

    def real_vms(self) -> pd.DataFrame:
        vms = self.inv.vms
        return vms[~vms["is_a_template"] & ~vms["is_a_snapshot"] & ~vms["is_control_domain"]]


# ---- the checks ---------------------------------------------------------------------------------

def check_versions(reads: "PreflightReads") -> list[Item]:
    """Each host's product and API version, against the releases this suite was checked with."""
    from runbook_lib.checked_versions import api_text, judge, load_table

    table = load_table()
    items = []
    for host in reads.hosts.itertuples():
        status, detail = judge(table, host.product_brand, host.product_version,
                               api_text(host.api_major, host.api_minor))
        if host.platform_version:
            detail += f"; platform {host.platform_version}"
        items.append(Item("version", host.name or host.uuid[:8], status, detail))
    return items


def _attachment(look: _Look, sr) -> tuple[str, str]:
    names = [look.host_name.get(h, h[:8]) for h in sr.hosts]
    if not names:
        return "warning", "attached to no host: the GC does not run on it"
    if not sr.shared:
        return "ok", f"local to {names[0]}"
    total = len(look.host_name)
    if len(names) < total:
        return "warning", f"shared, attached on {len(names)} of {total} hosts ({', '.join(names)})"
    return "ok", f"shared, attached on every host: {_names(sorted(names))}"


def _lvm_provisioning(look: _Look, sr) -> tuple[str, str]:
    """LVHD is thick unless sm_config (else the PBD's device_config) says allocation=thin."""
    sm_config = look.sr_records.get(sr.uuid, {}).get("sm_config") or {}
    allocation, where = sm_config.get("allocation"), "sm_config"
    if allocation not in ("thick", "thin"):
        allocation, where = look.reads.pbd_allocation.get(sr.uuid, allocation), "device_config"
    if allocation == "thin":
        return "ok", f"thin ({where} allocation): a halted VM's disks deflate, so a shutdown gives space back"
    said = f"allocation {allocation!r} in {where}" if allocation == "thick" else "no allocation: LVHD's default"
    if allocation not in (None, "thick"):
        said = f"allocation {allocation!r} is neither thick nor thin: LVHD provisions thick"
    return "warning", (f"thick ({said}): disks stay fully inflated when their VM stops, so a shutdown frees "
                       "nothing here; a remedy's space must come from moving or copying a VM, deleting "
                       "snapshots or growing the SR")


def _provisioning(look: _Look, sr) -> tuple[str, str]:
    family = sr_family(sr.type)
    if family == "lvm":
        return _lvm_provisioning(look, sr)
    if family == "file":
        return "ok", "VHD files (sparse: thin by nature)"
    return "warning", f"the GC works on {sr.type} SRs but the suite does not size them: sizing and plans skip it"


def check_storage(reads: "PreflightReads") -> list[Item]:
    """Each SR's type, provisioning (and what it means for the remedies), sharing and hosts."""
    look = _Look(reads)
    items = []
    for sr in _by_name(reads.inventory.srs).itertuples():
        if sr.type not in GC_SR_TYPES:
            items.append(Item("sr", look.sr_name(sr.uuid), "ok",
                              f"{sr.type} SR ({sr.content_type}): no VHD chains, the suite leaves it alone"))
            continue
        parts = [_attachment(look, sr), _provisioning(look, sr)]
        detail = f"{sr.type}, " + "; ".join(text for _, text in parts)
        items.append(Item("sr", look.sr_name(sr.uuid), _worst(s for s, _ in parts), detail))
    return items


def _shared_vhd_srs(look: _Look) -> pd.DataFrame:
    srs = look.inv.srs
    return srs[srs["shared"] & srs["type"].isin(GC_SR_TYPES)]


def check_ha(reads: "PreflightReads") -> list[Item]:
    """HA state, and the VMs it keeps on shared SRs (restart priority "restart")."""
    look = _Look(reads)
    if not reads.inventory.pool["ha_enabled"]:
        return [Item("ha", "pool", "ok", "HA off: a VM can be staged on any SR")]
    vms = look.real_vms()
    protected = vms[vms["ha_protected"]]
    if protected.empty:
        return [Item("ha", "pool", "ok", "HA on; no VM has restart priority 'restart': none is constrained")]
    names = _names([str(n or u[:8]) for n, u in zip(protected["name"], protected["uuid"])])
    shared = _shared_vhd_srs(look)
    rule = (f"HA on: {len(protected)} protected VM(s) ({names}) can be staged on shared SRs only "
            "(xapi refuses others: HA_CONSTRAINT_VIOLATION_SR_NOT_SHARED)")
    if shared.empty:
        return [Item("ha", "pool", "warning", rule + "; this pool has no shared VHD SR to stage them on")]
    return [Item("ha", "pool", "ok", rule + "; shared: " + ", ".join(look.sr_space(u) for u in shared["uuid"]))]


def check_default_sr(reads: "PreflightReads") -> list[Item]:
    """The pool's default SR and its free space (the suite itself always names its SRs)."""
    look = _Look(reads)
    sr = reads.pool.get("default_sr")
    if sr is None:
        return [Item("default-sr", "pool", "ok", "none set (the suite names every SR it uses)")]
    if sr not in look.srs.index:
        return [Item("default-sr", "pool", "warning", f"points at no SR ({sr})")]
    return [Item("default-sr", "pool", "ok", look.sr_space(sr))]


def _visible(look: _Look, sr: str | None, host: str) -> bool:
    """xapi uses a suspend SR only where the VM's host has a PBD for it (check_sr_exists_for_host)."""
    return isinstance(sr, str) and (sr, host) in look.pbd_pairs


def _suspend_sr(look: _Look, host: str, vm_suspend_sr: str | None) -> tuple[str | None, str]:
    """The SR VM.suspend writes to, as xapi chooses it: the VM's suspend_SR, else the pool's
    suspend_image_SR, else the host's suspend_image_sr (each only if the host sees it)."""
    host_sr = look.host_suspend_sr.get(host)
    for sr, where in ((vm_suspend_sr, "the VM's suspend_SR"), (look.reads.pool.get("suspend_image_sr"),
                                                                "the pool's suspend_image_SR"),
                      (host_sr, "the host's suspend_image_sr")):
        if _visible(look, sr, host):
            return sr, where
    return None, "none"


def _plugin_candidates(look: _Look) -> pd.DataFrame:
    """Running VMs with a disk on an LVM SR: the ones the coalesce-leaf plugin would suspend."""
    vms = look.real_vms()
    lvm = set(look.inv.srs.loc[look.inv.srs["type"].map(sr_family) == "lvm", "uuid"])
    running = vms[(vms["power_state"] == "Running") & vms["srs"].map(lambda s: bool(set(s) & lvm))]
    memory = dict(zip(look.reads.vms["uuid"], look.reads.vms["memory_static_max"]))
    suspend = dict(zip(look.reads.vms["uuid"], look.reads.vms["suspend_sr"]))
    return running.assign(memory=running["uuid"].map(memory).fillna(0).astype("int64"),
                          suspend_sr=running["uuid"].map(suspend))


def _suspend_item(look: _Look, host: str, vms: pd.DataFrame) -> Item:
    name = look.host_name.get(host, host[:8])
    if vms.empty:
        sr, where = _suspend_sr(look, host, None)
        shown = f"{look.sr_space(sr)} ({where})" if sr in look.srs.index else "none set"
        return Item("suspend-sr", name, "ok", f"suspend images: {shown}; no running VM here has a disk on "
                                              "an LVM SR, so the coalesce-leaf plugin would suspend none")
    homeless, short, used = [], [], {}
    for vm in vms.itertuples():
        sr, where = _suspend_sr(look, host, vm.suspend_sr)
        label = str(vm.name or vm.uuid[:8])
        if sr not in look.srs.index:
            homeless.append(label)
            continue
        used[sr] = where
        if int(look.srs.loc[sr, "free"]) < vm.memory:
            short.append(f"{label} (up to {gib_or_mib(vm.memory)})")
    where = "; ".join(f"{look.sr_space(sr)} ({w})" for sr, w in used.items()) or "none"
    if homeless:
        return Item("suspend-sr", name, "warning",
                    f"no suspend SR for {_names(homeless)} (VM suspend_SR, pool suspend_image_SR and host "
                    "suspend_image_sr unset or not seen by this host): the coalesce-leaf plugin's VM.suspend "
                    "fails (VM_NO_SUSPEND_SR); set one: xe pool-param-set uuid=<pool> suspend-image-SR=<sr>")
    if short:
        return Item("suspend-sr", name, "warning", f"suspend images: {where}; too little room for the memory "
                                                   f"of {_names(short)}, which the coalesce-leaf plugin suspends")
    largest = vms.sort_values("memory", ascending=False).iloc[0]
    need = gib_or_mib(int(largest["memory"]))
    return Item("suspend-sr", name, "ok", f"suspend images: {where}; room for the largest VM the plugin would "
                                          f"suspend here ({largest['name']}, up to {need})")


def check_suspend_srs(reads: "PreflightReads") -> list[Item]:
    """Per host, where VM.suspend writes the memory image (the coalesce-leaf plugin suspends a
    running VM) and whether there is room for the VMs the plugin would suspend there."""
    look = _Look(reads)
    candidates = _plugin_candidates(look)
    return [_suspend_item(look, host, candidates[candidates["resident_on"] == host])
            for host in reads.hosts["uuid"]]


def _plugin_item(look: _Look, sr, probes: dict[str, tuple[Any, str]]) -> Item:
    subject = look.sr_name(sr.uuid)
    master = look.inv.sr_masters.get(sr.uuid)
    if master is None:
        return Item("plugin", subject, "warning", "no host has a PBD for it: no master to probe")
    where = f"its master {look.host_name.get(master, master[:8])}"
    present, answer = probes.get(master, (None, "not probed"))
    if sr_family(sr.type) != "lvm":
        state = {True: "present", False: "missing"}.get(present, "unknown")
        return Item("plugin", subject, "ok", f"not needed: the coalesce-leaf plugin works on LVM SRs only "
                                             f"({state} on {where})")
    if present is True:
        return Item("plugin", subject, "ok", f"coalesce-leaf present on {where}: the offline remedy can "
                                             "force the leaf-coalesce without a shutdown")
    if present is False:
        return Item("plugin", subject, "warning", f"coalesce-leaf missing on {where} ({answer}): plan the "
                                                  "offline remedy without it (shut down, SR.scan, wait)")
    return Item("plugin", subject, "warning", f"could not tell whether coalesce-leaf is on {where}: {answer}")


def check_plugin(reads: "PreflightReads") -> list[Item]:
    """Whether the coalesce-leaf plugin is on each SR's master (probed with a function no plugin
    has: UNKNOWN_XENAPI_PLUGIN_FUNCTION = there, XENAPI_MISSING_PLUGIN = not)."""
    look = _Look(reads)
    probes = {row.host: (row.present, row.answer) for row in reads.plugins.itertuples()}
    srs = _by_name(reads.inventory.srs)
    return [_plugin_item(look, sr, probes) for sr in srs[srs["type"].isin(GC_SR_TYPES)].itertuples()]


def check_fields(reads: "PreflightReads") -> list[Item]:
    """Every field the suite reads is in every record of its class (missing: a problem)."""
    fields = reads.fields
    items = [Item("fields", cls, "warning", f"could not read the {cls} records: {why}")
             for cls, why in sorted(reads.errors.items())]
    lacking = fields[fields["missing"] > 0]
    for cls, rows in lacking.groupby("cls", sort=True):
        total = int(rows["records"].iloc[0])
        names = ", ".join(f"{r.field}" + ("" if r.missing == total else f" ({r.missing} of {total})")
                          for r in rows.itertuples())
        items.append(Item("fields", cls, "problem", f"{cls} records lack {names}, which the suite reads: "
                                                    "it would misread this pool"))
    per_class = fields.groupby("cls", sort=True)["records"].first()
    good = [c for c in per_class.index if c not in set(lacking["cls"])]
    empty = [c for c in good if per_class[c] == 0]
    if good:
        detail = (f"{', '.join(good)}: every record carries the {int(fields['cls'].isin(good).sum())} fields the "
                  "suite reads" + (f"; no {', '.join(empty)} records now to look at" if empty else ""))
        items.append(Item("fields", f"{len(good)} classes", "ok", detail))
    return items


Check = Callable[["PreflightReads"], list[Item]]
def check_dom0(reads: "PreflightReads") -> list[Item]:
    """With --ssh: each host's dom0 reached with a known host key, answering a read-only question."""
    if reads.dom0 is None:
        return []
    status = {"ok": "ok", "problem": "problem", "skipped": "ok"}
    return [Item("dom0", r.host, status[r.status], r.detail) for r in reads.dom0]


CHECKS: tuple[Check, ...] = (check_versions, check_storage, check_ha, check_default_sr, check_suspend_srs,
                             check_plugin, check_fields, check_dom0)


# ---- the result -----------------------------------------------------------------------------------

@dataclass
class PoolCheck:
    pool: dict[str, Any]
    source: dict[str, Any]
    checked_at: str
    items: list[Item]

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(i.status == s for i in self.items) for s in STATUSES}

    @property
    def status(self) -> str:
        return _worst(i.status for i in self.items)

    @property
    def exit_code(self) -> int:
        return EXIT_BREACH if self.status == "problem" else EXIT_OK

    @property
    def problems(self) -> list[str]:
        """One line per problem; empty when the suite fits the pool."""
        return [f"check-pool {i.check} {i.subject}: {i.detail}" for i in self.items if i.status == "problem"]

    @property
    def table(self) -> pd.DataFrame:
        return pd.DataFrame([(i.status, i.check, i.subject, i.detail) for i in self.items], columns=ITEM_COLUMNS)

    def summary(self) -> str:
        c = self.counts
        return (f"pool {self.pool.get('name') or self.pool.get('uuid')}, read {self.checked_at}: "
                f"{c['problem']} problem(s), {c['warning']} warning(s), {c['ok']} ok")

    def to_json(self) -> dict[str, Any]:
        return {"schema": POOL_CHECK_SCHEMA, "pool": self.pool, "source": self.source,
                "checked_at": self.checked_at, "status": self.status, "exit_code": self.exit_code,
                "counts": self.counts, "items": [asdict(i) for i in self.items]}


def run_checks(reads: "PreflightReads", checks: tuple[Check, ...] = CHECKS) -> PoolCheck:
    """Every check over one read, in order."""
    items = [item for check in checks for item in check(reads)]
    bad = [i for i in items if i.status not in STATUSES]
    if bad:
        raise ValueError(f"a check gave an unknown status: {bad[0]}")
    inv = reads.inventory
    return PoolCheck(pool=dict(inv.pool), source=dict(inv.source), checked_at=inv.captured, items=items)


def check_pool(url: str, *, user: str = "root", password_env: str | None = "XEN_PASSWORD",
               password_file=None, verify_tls: bool = True, ca_bundle=None,
               sim_options: dict | None = None, ssh=None) -> PoolCheck:
    """Read the pool (url "" or "sim:<scenario>": the bundled simulator) and check it; changes nothing."""
    from runbook_lib.xapi.preflight_reads import open_preflight

    return run_checks(open_preflight(url, user=user, password_env=password_env, password_file=password_file or None,
                                     verify_tls=verify_tls, ca_bundle=ca_bundle or None, sim_options=sim_options,
                                     ssh=ssh))
