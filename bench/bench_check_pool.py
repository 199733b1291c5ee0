"""Benchmark: `runbook check-pool` on the simulator's large-pool (2 hosts, 20 SRs, 500 VMs, 3000 VDIs).
Target < 3 s.

Starts the simulator in-process (not timed), times the read an admin waits for (the inventory,
the task, message, SM and VM_metrics records, the plugin probe on each SR master, over XML-RPC;
the server shares our CPU, so this part is pessimistic), then the checks over what was read.
"""

from __future__ import annotations

import time

TARGET_S = 3.0


def main(argv: list[str] | None = None) -> int:
    from runbook_lib.pool_check import run_checks
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.preflight_reads import fetch_preflight

    url = "sim:large-pool"   # the simulator in-process, stopped when the session ends
    with connect(url) as session:
        t0 = time.perf_counter()
        reads = fetch_preflight(session, source_url=url)
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    result = run_checks(reads)
    t3 = time.perf_counter()
    total = (t1 - t0) + (t3 - t2)
    counts = result.counts
    verdict = "PASS" if total < TARGET_S else "MISS"
    rows = [(f"read (records, fields, {len(reads.plugins)} plugin probes)", t1 - t0,
             f"{len(reads.inventory.vdis):,} VDIs, {len(reads.inventory.srs)} SRs"),
            ("checks", t3 - t2, f"{len(result.items)} items: {counts['ok']} ok, {counts['warning']} warning, "
                                f"{counts['problem']} problem"),
            ("total", total, f"[{verdict} < {TARGET_S:.0f} s]")]
    for label, seconds, note in rows:
        print(f"   {label + ':':<45} {seconds:6.2f} s  {note}")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
