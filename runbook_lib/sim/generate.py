"""Expand a compact `generate:` block into a full scenario (for large pools).

Deterministic: the same block and seed give the same uuids, so plans made on one run apply
to the next. Counts are exact: `vdis` includes hidden chain nodes.
"""

from __future__ import annotations

import random
import uuid as uuidlib

from runbook_lib.errors import InputError

SR_TYPES = ("lvm", "ext", "nfs")


def expand(scenario: dict) -> dict:
    gen = scenario["generate"] or {}
    try:
        n_hosts = int(gen.get("hosts", 2))
        n_srs = int(gen.get("srs", 20))
        n_vms = int(gen.get("vms", 500))
        n_vdis = int(gen.get("vdis", 3000))
        max_chain = int(gen.get("max_chain", 30))
        running_share = float(gen.get("running", 0.6))
    except (TypeError, ValueError):
        raise InputError("scenario: generate: counts must be numbers") from None
    if min(n_hosts, n_srs, n_vms) < 1 or n_vdis < n_vms or not 1 <= max_chain <= 30:
        raise InputError("scenario: generate: need hosts, srs, vms >= 1, vdis >= vms, "
                         "1 <= max_chain <= 30")
    rng = random.Random(int(gen.get("seed", 1)))

    def uid() -> str:
        return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))

    out = {k: v for k, v in scenario.items() if k != "generate"}
    out["pool"] = out.get("pool") or {"uuid": uid(), "name_label": out.get("name", "pool")}
    hosts = [{"uuid": uid(), "name_label": f"xs{i + 1:02d}", "address": f"192.0.2.{20 + i}",
              "master": i == 0, "dom0_uuid": uid()} for i in range(n_hosts)]
    out["hosts"] = hosts
    srs = []
    for i in range(n_srs):
        typ = SR_TYPES[i % len(SR_TYPES)]
        srs.append({"uuid": uid(), "name_label": f"{typ.upper()} SR {i + 1:02d}", "type": typ,
                    "host": hosts[i % n_hosts]["name_label"], "shared": typ == "nfs",
                    "free": f"{rng.choice([5, 50, 200, 800])}G",
                    "coalesce_speed": f"{rng.choice([20, 60, 120])}M",
                    "speed_log": [f"{rng.choice([40, 80])}M"]})
    out["srs"] = srs
    # chain lengths: mostly 1-3, a tail up to max_chain; exactly one chain of max_chain
    lengths = [max_chain]
    total = max_chain
    while total < n_vdis:
        remaining_disks = max(n_vms - len(lengths), 0)
        length = rng.choice([1, 1, 1, 2, 2, 3, 4, rng.randint(1, max_chain)])
        length = min(length, n_vdis - total - remaining_disks + 1) if remaining_disks else \
            min(length, n_vdis - total)
        length = max(length, 1)
        lengths.append(length)
        total += length
    if len(lengths) < n_vms:
        raise InputError("scenario: generate: not enough VDIs for one disk per VM")
    vdis = []
    running = [rng.random() < running_share for _ in range(n_vms)]
    vbds: list[list] = [[] for _ in range(n_vms)]
    for k, length in enumerate(lengths):
        vm_i, d = k % n_vms, k // n_vms
        sr = srs[rng.randrange(n_srs)]
        virtual = rng.choice([10, 20, 40, 80, 100, 200])
        parent = None
        for level in range(length):
            leaf = level == length - 1
            u = uid()
            vdis.append({"uuid": u, "sr": sr["uuid"], "virtual_size": f"{virtual}G",
                         "allocated": f"{rng.randint(1, virtual * 1024 // (length + 1))}M",
                         "hidden": not leaf, "parent": parent,
                         "name_label": f"vm{vm_i:03d} disk {d}" if leaf else ""})
            parent = u
        vbds[vm_i].append({"vdi": parent, "userdevice": str(d), "bootable": d == 0})
    vms = [{"uuid": uid(), "name_label": f"vm{i:03d}",
            "power_state": "Running" if running[i] else "Halted",
            "host": hosts[i % n_hosts]["name_label"], "vbds": vbds[i],
            "vifs": [{"device": "0"}]} for i in range(n_vms)]
    out["vdis"] = [{k: v for k, v in d.items() if v is not None} for d in vdis]
    out["vms"] = vms
    return out
