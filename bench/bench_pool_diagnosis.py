"""Benchmark: `runbook diagnose --url` on the simulator's large-pool (20 SRs, 3000 VDIs). Target < 2 s.

Starts the simulator in-process (not timed), times the read an admin waits for (the inventory
plus messages, tasks and storage drivers over XML-RPC; the server shares our CPU, so this part
is pessimistic), then, with the server stopped, the pool diagnosis (findings, Xen Orchestra's
count per SR) and the merge with the known defects applied.
"""

from __future__ import annotations

import time

TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    from runbook_lib.diagnosis import combine
    from runbook_lib.pool_diagnosis import diagnose_pool
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.health import fetch_health
    from runbook_lib.xapi.inventory import fetch_inventory

    url = "sim:large-pool"   # the simulator in-process, stopped when the session ends
    with connect(url) as session:
        t0 = time.perf_counter()
        inv = fetch_inventory(session, source_url=url)
        health = fetch_health(session, inv)
        t1 = time.perf_counter()
    t2 = time.perf_counter()
    found = diagnose_pool(inv.srs, inv.vdis, health.messages, health.tasks, captured=inv.captured_at)
    data = combine(None, found, None, pool_source=url)
    t3 = time.perf_counter()
    total = (t1 - t0) + (t3 - t2)
    waiting = sum(r["to_coalesce"] for r in found.sr_rows)
    print(f"   read (inventory + messages, tasks, SM): {t1 - t0:6.2f} s  ({len(inv.vdis):,} VDIs, {len(inv.srs)} SRs)")
    print(f"   pool diagnosis + merge:                 {t3 - t2:6.2f} s  ({len(data['vdis']):,} VDI rows, "
          f"{waiting:,} VDIs to coalesce by XO's count)")
    print(f"   total:                                  {total:6.2f} s  [{'PASS' if total < TARGET_S else 'MISS'} "
          f"< {TARGET_S:.0f} s]")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
