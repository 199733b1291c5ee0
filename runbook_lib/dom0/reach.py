"""Can each host's dom0 be reached, with a known host key, for the read-only questions sizing
asks? One allowlisted question per host (`lvs` on an LVM SR it has attached), for
`runbook check-pool --ssh`: a host without an LVM SR needs no dom0 answer for the sizing."""

from __future__ import annotations

from dataclasses import dataclass

from runbook_lib.dom0 import commands
from runbook_lib.dom0.ssh import Endpoint, SshOptions, ask, endpoint
from runbook_lib.sizing.formulas import LVM_TYPES


@dataclass(frozen=True)
class Reach:
    host: str     # host name
    status: str   # "ok" | "problem" | "skipped"
    detail: str


def lvm_sr_of(inventory, host_uuid: str) -> str | None:
    """An LVM SR this host has attached (the question costs one lvs), or None."""
    for sr in inventory.srs.to_dict("records"):
        if sr["type"] in LVM_TYPES and host_uuid in tuple(sr["hosts"] or ()):
            return sr["uuid"]
    return None


def probe_dom0(inventory, options: SshOptions, *, endpoints: dict[str, Endpoint] | None = None,
               known_hosts: str | None = None, password: str | None = None) -> list[Reach]:
    """One line per host: reached and answered, why not, or nothing to ask it."""
    questions, skipped = {}, []
    for host in inventory.hosts.to_dict("records"):
        sr = lvm_sr_of(inventory, host["uuid"])
        if sr is None:
            skipped.append(Reach(host["name"], "skipped", "no LVM SR attached: the sizing asks this dom0 nothing"))
            continue
        ep = (endpoints or {}).get(host["uuid"]) or endpoint(host, options)
        questions[host["uuid"]] = (ep, [commands.lvs(sr)])
    answers = ask(questions, options, known_hosts=known_hosts, password=password) if questions else {}
    out = []
    for uuid, (ep, argvs) in questions.items():
        got, why = answers.get(uuid, ({}, "no answer"))
        answer = got.get(tuple(argvs[0]))
        if why or answer is None or not answer.ok:
            out.append(Reach(ep.name, "problem", why or (answer.error if answer else "no answer")))
        else:
            out.append(Reach(ep.name, "ok", f"{options.user}@{ep.address}:{ep.port} answered "
                                            f"`{commands.command_line(argvs[0])}`; host key known"))
    return out + skipped
