"""Benchmark: `runbook check-pool` on the simulator's large-pool (2 hosts, 20 SRs, 500 VMs, 3000 VDIs).
Target < 3 s.

Starts the simulator in-process (not timed), times the read an admin waits for (the inventory,
the task, message, SM and VM_metrics records, the plugin probe on each SR master, over XML-RPC;
the server shares our CPU, so this part is pessimistic), then the checks over what was read.
"""

from __future__ import annotations

TARGET_S = 3.0


def main(argv: list[str] | None = None) -> int:
    from timed_read import read_then_assess

    from runbook_lib.pool_check import run_checks
    from runbook_lib.xapi.preflight_reads import fetch_preflight

    reads, result, read_s, check_s = read_then_assess(
        lambda session, url: fetch_preflight(session, source_url=url), run_checks)
    total = read_s + check_s
    counts = result.counts
    verdict = "PASS" if total < TARGET_S else "MISS"
    rows = [(f"read (records, fields, {len(reads.plugins)} plugin probes)", read_s,
             f"{len(reads.inventory.vdis):,} VDIs, {len(reads.inventory.srs)} SRs"),
            ("checks", check_s, f"{len(result.items)} items: {counts['ok']} ok, {counts['warning']} warning, "
                                f"{counts['problem']} problem"),
            ("total", total, f"[{verdict} < {TARGET_S:.0f} s]")]
    for label, seconds, note in rows:
        print(f"   {label + ':':<45} {seconds:6.2f} s  {note}")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
