"""Benchmark: `runbook diagnose --url` on the simulator's large-pool (20 SRs, 3000 VDIs). Target < 2 s.

Starts the simulator in-process (not timed), times the read an admin waits for (the inventory
plus messages, tasks and storage drivers over XML-RPC; the server shares our CPU, so this part
is pessimistic), then, with the server stopped, the pool diagnosis (findings, Xen Orchestra's
count per SR) and the merge with the known defects applied.
"""

from __future__ import annotations

TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    from timed_read import read_then_assess

    from runbook_lib.diagnosis import combine
    from runbook_lib.pool_diagnosis import diagnose_pool
    from runbook_lib.xapi.health import fetch_health
    from runbook_lib.xapi.inventory import fetch_inventory

    def read(session, url):
        inv = fetch_inventory(session, source_url=url)
        return inv, fetch_health(session, inv)

    def assess(read_data):
        inv, health = read_data
        found = diagnose_pool(inv.srs, inv.vdis, health.messages, health.tasks, captured=inv.captured_at)
        return found, combine(None, found, None, pool_source="sim:large-pool")

    (inv, _), (found, data), read_s, assess_s = read_then_assess(read, assess)
    total = read_s + assess_s
    waiting = sum(r["to_coalesce"] for r in found.sr_rows)
    print(f"   read (inventory + messages, tasks, SM): {read_s:6.2f} s  ({len(inv.vdis):,} VDIs, {len(inv.srs)} SRs)")
    print(f"   pool diagnosis + merge:                 {assess_s:6.2f} s  ({len(data['vdis']):,} VDI rows, "
          f"{waiting:,} VDIs to coalesce by XO's count)")
    print(f"   total:                                  {total:6.2f} s  [{'PASS' if total < TARGET_S else 'MISS'} "
          f"< {TARGET_S:.0f} s]")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
