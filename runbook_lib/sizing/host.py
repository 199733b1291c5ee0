"""Exact sizes from dom0: what to ask which host, and what the answers say about each VDI.

The right host for each question: a local SR's LVs on the host whose PBD attaches it; a shared
SR from any attached host, the pool master first; the active leaf of a running VM (and its
chain, which its tapdisk holds open) on the host that runs the VM. Round trips: one `vhd-util
scan` and one `lvs` per LVM SR, plus per pending coalesce a `vhd-util query` of an attached
leaf and a `vhd-util read -B` of each side whose bitmap is not already exact (the GC caches the
bitmaps of read-only hidden VHDs in sm_config); never one per VDI of the pool. Two waves: the
bitmaps of an LVM SR are read only where `lvs` shows the LV active (an inactive LV has no
device to read, and activating one would be a change).

A host that cannot be reached, a refused key, a command that fails or prints something
unparsable: the VDIs concerned keep their XenAPI bounds and `warnings` says why, one line
each; the sizing never fails because dom0 could not be asked.

`HostSizes.by_vdi`: uuid -> {vhd_size, virtual, hidden, allocated (bytes of allocated blocks
or None), bitmap (int or None), lv_size, active, host (uuid asked)}.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from typing import Any

from runbook_lib.dom0 import commands, parse
from runbook_lib.dom0.ssh import Endpoint, SshOptions, ask, endpoint
from runbook_lib.sizing.formulas import VHD_BLOCK_SIZE, sr_family

MAX_WARNINGS = 20


@dataclass
class HostSizes:
    by_vdi: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    commands: int = 0        # commands sent (each one SSH channel: a round trip)
    hosts: int = 0           # hosts asked (one connection each)

    def to_json(self) -> dict[str, Any]:
        def one(rec):
            out = {k: v for k, v in rec.items() if k != "bitmap"}
            if rec.get("bitmap") is not None:
                raw = rec["bitmap"].to_bytes(max(1, (rec["bitmap"].bit_length() + 7) // 8), "little")
                out["bitmap"] = base64.b64encode(zlib.compress(raw)).decode()
            return out
        return {"by_vdi": {u: one(r) for u, r in self.by_vdi.items()}, "warnings": list(self.warnings),
                "commands": self.commands, "hosts": self.hosts}

    @classmethod
    def from_json(cls, data: Any) -> "HostSizes | None":
        """Back from an inventory file; anything malformed is dropped (sizing falls back to XenAPI)."""
        if not isinstance(data, dict) or not isinstance(data.get("by_vdi"), dict):
            return None
        by_vdi = {}
        for uuid, rec in data["by_vdi"].items():
            if not isinstance(rec, dict):
                continue
            rec = dict(rec)
            text = rec.pop("bitmap", None)
            try:
                rec["bitmap"] = parse.bitmap(zlib.decompress(base64.b64decode(text))) if text else None
            except (ValueError, zlib.error, parse.ParseError):
                rec["bitmap"] = None
            by_vdi[str(uuid)] = rec
        warnings = [str(w) for w in data.get("warnings") or [] if isinstance(w, str)]
        return cls(by_vdi=by_vdi, warnings=warnings, commands=int(data.get("commands") or 0),
                   hosts=int(data.get("hosts") or 0))


class _Plan:
    """Which host gets which question, and what each answer is about."""

    def __init__(self, inventory, options: SshOptions, pairs: list[tuple[str, str]], exact_maps: set[str]):
        self.inv = inventory
        self.options = options
        self.vdis = {r["uuid"]: r for r in inventory.vdis.to_dict("records")}
        self.srs = {r["uuid"]: r for r in inventory.srs.to_dict("records")}
        self.hosts = {r["uuid"]: r for r in inventory.hosts.to_dict("records")}
        self.vms = {r["uuid"]: r for r in inventory.vms.to_dict("records")}
        self.master = inventory.pool.get("master")
        self.pairs = pairs
        self.exact_maps = exact_maps
        self.questions: dict[str, list[list[str]]] = {}
        self.about: dict[tuple, tuple[str, str, str]] = {}  # (host, argv) -> (kind, sr, vdi or "")

    def sr_host(self, sr: str) -> str | None:
        hosts = list((self.srs.get(sr) or {}).get("hosts") or ())
        if self.master in hosts:
            return self.master
        return hosts[0] if hosts else None

    def vm_host(self, vdi: str) -> str | None:
        """The host that runs a VM attached to this VDI (its tapdisk holds the chain open), if that
        host has the SR attached."""
        attached = (self.srs.get(self.vdis[vdi]["sr"]) or {}).get("hosts") or ()
        for vm in self.vdis[vdi]["vms"]:
            rec = self.vms.get(vm) or {}
            if rec.get("power_state") == "Running" and rec.get("resident_on") in attached:
                return rec["resident_on"]
        return None

    def add(self, host: str | None, argv: list[str], kind: str, sr: str, vdi: str = "") -> None:
        if host is None or host not in self.hosts:
            return
        key = (host, tuple(argv))
        if key in self.about:
            return
        self.about[key] = (kind, sr, vdi)
        self.questions.setdefault(host, []).append(argv)

    def first_wave(self) -> None:
        lvm_srs = sorted({self.vdis[c]["sr"] for c, _ in self.pairs if sr_family(self.vdis[c]["sr_type"]) == "lvm"})
        for sr in lvm_srs:
            self.add(self.sr_host(sr), commands.scan(sr), "scan", sr)
            self.add(self.sr_host(sr), commands.lvs(sr), "lvs", sr)
        for child, parent in self.pairs:
            info = self.vdis[child]
            sr, family = info["sr"], sr_family(info["sr_type"])
            running = self.vm_host(child) if info["attached"] else None
            if family == "lvm" and running:
                self.add(running, commands.query(commands.lv_path(sr, child)), "query", sr, child)
                for vdi in (child, parent):
                    if vdi not in self.exact_maps:
                        self.add(running, commands.read_bitmap(commands.lv_path(sr, vdi)), "bitmap", sr, vdi)
            elif family == "file":  # XenAPI has the file sizes; dom0 adds the bitmaps and a running leaf's size
                host = running or self.sr_host(sr)
                if running:
                    self.add(host, commands.query(commands.file_path(sr, child)), "query", sr, child)
                for vdi in (child, parent):
                    if vdi not in self.exact_maps:
                        self.add(host, commands.read_bitmap(commands.file_path(sr, vdi)), "bitmap", sr, vdi)

    def second_wave(self, sizes: dict[str, dict]) -> None:
        """Bitmaps of LVM pairs not held open by a running VM, where lvs shows the LV active."""
        self.questions = {}
        for child, parent in self.pairs:
            info = self.vdis[child]
            if sr_family(info["sr_type"]) != "lvm" or (info["attached"] and self.vm_host(child)):
                continue
            for vdi in (child, parent):
                if vdi not in self.exact_maps and (sizes.get(vdi) or {}).get("active"):
                    self.add(self.sr_host(info["sr"]), commands.read_bitmap(commands.lv_path(info["sr"], vdi)),
                             "bitmap", info["sr"], vdi)

    def endpoints(self, overrides: dict[str, Endpoint] | None) -> dict[str, tuple[Endpoint, list[list[str]]]]:
        out = {}
        for host, argvs in self.questions.items():
            ep = (overrides or {}).get(host) or endpoint(self.hosts[host], self.options)
            out[host] = (ep, argvs)
        return out


def _apply(sizes: dict[str, dict], kind: str, sr: str, vdi: str, host: str, stdout: bytes, known: set[str]) -> None:
    if kind == "scan":
        for uuid, rec in parse.scan(stdout.decode("utf-8", "replace")).items():
            if uuid in known:
                sizes.setdefault(uuid, {}).update(
                    {"vhd_size": rec["vhd_size"], "virtual": rec["virtual"], "hidden": rec["hidden"], "host": host})
    elif kind == "lvs":
        for name, rec in parse.lvs(stdout.decode("utf-8", "replace")).items():
            uuid = name[len(commands.LV_PREFIX):] if name.startswith(commands.LV_PREFIX) else None
            if uuid in known:
                sizes.setdefault(uuid, {}).update({"lv_size": rec["lv_size"], "active": rec["active"]})
    elif kind == "query":
        rec = parse.query(stdout.decode("utf-8", "replace"))
        sizes.setdefault(vdi, {}).update({**rec, "host": host})
    elif kind == "bitmap":
        bits = parse.bitmap(stdout)
        entry = sizes.setdefault(vdi, {})
        entry["bitmap"] = bits
        entry.setdefault("allocated", bits.bit_count() * VHD_BLOCK_SIZE)


def _collect(plan: _Plan, answers: dict, sizes: dict, warnings: list[str]) -> int:
    sent = 0
    known = set(plan.vdis)
    for host, (by_argv, why) in answers.items():
        if why:
            warnings.append(f"dom0 not asked: {why}; its VDIs keep their XenAPI bounds")
            continue
        for argv, answer in by_argv.items():
            sent += 1
            kind, sr, vdi = plan.about[(host, argv)]
            what = f"VDI {vdi[:8]}" if vdi else f"SR {sr[:8]}"
            name = plan.hosts[host]["name"] or host[:8]
            if not answer.ok:
                warnings.append(f"{what}: {argv[0]} {argv[1]} failed on {name} ({answer.error}); XenAPI bounds kept")
                continue
            try:
                _apply(sizes, kind, sr, vdi, host, answer.stdout, known)
            except parse.ParseError as err:
                warnings.append(f"{what}: {argv[0]} {argv[1]} on {name} printed what the suite cannot read "
                                f"({err}); XenAPI bounds kept")
    return sent


def read_host_sizes(inventory, options: SshOptions, *, endpoints: dict[str, Endpoint] | None = None,
                    known_hosts: str | None = None, password: str | None = None) -> HostSizes:
    """Ask dom0 what the GC sees about every pending coalesce of the inventory (module doc)."""
    from runbook_lib.sizing.engine import pending_pairs
    from runbook_lib.sizing.vhd import vhd_sizes

    pairs = pending_pairs(inventory)
    _, _, exact = vhd_sizes(inventory.vdis, {})
    plan = _Plan(inventory, options, pairs, exact)
    sizes: dict[str, dict] = {}
    warnings: list[str] = []
    plan.first_wave()
    answers = ask(plan.endpoints(endpoints), options, known_hosts=known_hosts, password=password)
    sent = _collect(plan, answers, sizes, warnings)
    asked = set(answers)
    plan.second_wave(sizes)
    if plan.questions:
        more = ask(plan.endpoints(endpoints), options, known_hosts=known_hosts, password=password)
        sent += _collect(plan, more, sizes, warnings)
        asked |= set(more)
    _drop_partial(plan, sizes, warnings)
    if len(warnings) > MAX_WARNINGS:
        warnings = warnings[:MAX_WARNINGS - 1] + [f"... and {len(warnings) - MAX_WARNINGS + 1} more"]
    return HostSizes(by_vdi=sizes, warnings=warnings, commands=sent, hosts=len(asked))


def _drop_partial(plan: _Plan, sizes: dict, warnings: list[str]) -> None:
    """An attached LVM leaf whose fresh size did not come back keeps no stale scan size (the
    scan read it from another host while the VM writes)."""
    for child, _ in plan.pairs:
        info = plan.vdis[child]
        rec = sizes.get(child)
        if rec and sr_family(info["sr_type"]) == "lvm" and info["attached"] and "allocated" not in rec:
            if plan.vm_host(child) and plan.vm_host(child) != rec.get("host"):
                sizes.pop(child, None)
