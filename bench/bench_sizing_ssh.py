"""Benchmark: sizing large-pool with exact sizes from dom0 over SSH, every host asked. Target < 5 s.

The simulator serves SSH for its 2 hosts on loopback (it shares our CPU here, so this is
pessimistic). Timed: reading the inventory over XML-RPC, asking dom0 (sizing.host: one `vhd-util
scan` and one `lvs` per LVM SR, plus per pending coalesce the bitmaps that are not exact yet and
a query of each attached leaf; one connection per host, commands in parallel on it), sizing and
ranking the remedies. Printed: how many commands (SSH channels, each a round trip) that took,
against the pool's VDIs and pending coalesces, to show they grow with SRs and pending
coalesces, not with the VDIs of the pool.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 5.0


def main(argv: list[str] | None = None) -> int:
    from runbook_lib.dom0.ssh import Endpoint, SshOptions
    from runbook_lib.plan import assess
    from runbook_lib.sim import Simulator
    from runbook_lib.sizing.host import read_host_sizes
    from runbook_lib.xapi.connect import connect
    from runbook_lib.xapi.inventory import fetch_inventory

    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulator("large-pool", ssh=True).start()
        try:
            pw = Path(tmp) / "pw"
            pw.write_text(sim.password)
            known = Path(tmp) / "known_hosts"
            known.write_text("\n".join(sim.ssh.known_hosts_lines()) + "\n")
            t0 = time.perf_counter()
            with connect(sim.url, user=sim.user, password_env=None, password_file=pw) as session:
                inv = fetch_inventory(session, source_url=sim.url)
            t1 = time.perf_counter()
            names = dict(zip(inv.hosts["uuid"], inv.hosts["name"]))
            endpoints = {u: Endpoint(host=u, name=names[u], address=a, port=p)
                         for u, (a, p) in sim.ssh.endpoints().items()}
            sizes = read_host_sizes(inv, SshOptions(known_hosts=str(known), password_file=str(pw)),
                                    endpoints=endpoints)
            t2 = time.perf_counter()
        finally:
            sim.stop()
        result = assess(inv, host_sizes=sizes)
        t3 = time.perf_counter()
    total = t3 - t0
    lvm = int((result.sizing.srs["family"] == "lvm").sum())
    exact = int(result.sizing.coalesces["size_known"].sum())
    print(f"sizing with SSH bench (large-pool: {len(inv.vdis)} VDIs, {len(inv.hosts)} hosts, {len(inv.srs)} SRs "
          f"({lvm} LVM), {len(result.sizing.coalesces)} pending coalesces, {exact} of them exact)")
    print(f"  dom0: {sizes.commands} commands over {sizes.hosts} connections, {len(sizes.warnings)} warnings")
    for line in sizes.warnings[:3]:
        print(f"    warning: {line}")
    print(f"  inventory {t1 - t0:.3f} s  dom0 {t2 - t1:.3f} s  sizing+remedies {t3 - t2:.3f} s")
    print(f"  end to end {total:.3f} s (target < {TARGET_S:.1f} s): {'OK' if total < TARGET_S else 'SLOW'}")
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
