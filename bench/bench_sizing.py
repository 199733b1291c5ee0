"""Benchmark: inventory + sizing + plan on the simulator's large-pool (3000 VDIs). Target < 2 s.

Starts the simulator in-process (not timed), then times what an admin waits for: logging in
and reading the inventory over XML-RPC with the official client (the server shares our
process and CPU here, so this part is pessimistic), then, with the server stopped as a remote
pool would be, sizing every pending coalesce, ranking the remedies and writing plan.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0


def main(argv: list[str] | None = None) -> int:
    from runbook_lib.plan import assess, write_plan
    from runbook_lib.sim import Simulator
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator("large-pool").start()
        try:
            pw = Path(tmp) / "pw"
            pw.write_text(sim.password)
            t0 = time.perf_counter()
            with connect(sim.url, user=sim.user, password_env=None, password_file=pw) as session:
                inv = fetch_inventory(session, source_url=sim.url)
            t1 = time.perf_counter()
        finally:
            # a real pool does not share our CPU: stop the in-process server before sizing
            sim.stop()
        t1b = time.perf_counter()
        result = assess(inv)
        t2 = time.perf_counter()
        plan = result.plan(url=sim.url)
        if plan is not None:
            write_plan(plan, Path(tmp) / "plan.json")
        t3 = time.perf_counter()
    total = (t1 - t0) + (t3 - t1b)
    print(f"sizing bench (large-pool: {len(inv.vdis)} VDIs, {len(inv.vms)} VMs, {len(inv.srs)} SRs, "
          f"{len(result.sizing.coalesces)} pending coalesces, {len(result.remedies)} remedies)")
    print(f"  inventory {t1 - t0:.3f} s  sizing+remedies {t2 - t1b:.3f} s  plan {t3 - t2:.3f} s")
    print(f"  end to end {total:.3f} s (target < {TARGET_S:.1f} s): {'OK' if total < TARGET_S else 'SLOW'}")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
