"""The seed's 2 TB-class remedy on the simulator at its default speed: wall time per mode.

A 2020 GiB data disk (1.65 TiB written) plus a 50 GiB system disk go to the NFS staging SR and
back (copy: VM.copy out and back with the VM shut down; migrate: VDI.pool_migrate while it
runs), with the SR scan and the wait for the GC in between. Prints wall seconds, simulated
seconds and the space the source SR got back. The seed's 36 MiB free cannot hold the source
snapshot storage motion takes first (the planner copies), so the migrate run leaves 30 GiB
free on the source and sets the plan's mode by hand.
"""

from __future__ import annotations

import os
import tempfile
import time

SCENARIO = "seed-stuck-leaf-coalesce"
SOURCE = "db4c3909-4b61-e5f6-8548-16dc56780f61"


def one(mode: str, speed: float | None = None) -> dict:
    from runbook_lib.plan import assess
    from runbook_lib.sim import Simulator, load_scenario
    from runbook_lib.transfer import run_transfer
    from runbook_lib.transfer.progress import Reporter
    from runbook_lib.xapi import connect, fetch_inventory
    from runbook_lib.xapi import operations as ops

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RUNBOOK_OUTPUTS"] = tmp
        scenario = load_scenario(SCENARIO)
        if mode == "migrate":  # room on the source for storage motion's snapshots
            scenario["srs"][0]["free"] = "30G"
        with Simulator(scenario=scenario, speed=speed) as sim:
            os.environ["BENCH_SIM_PASSWORD"] = sim.password
            with connect(sim.url, sim.user, password_env="BENCH_SIM_PASSWORD") as session:
                plan = assess(fetch_inventory(session), allow_migrate=False).plan()
                vm = plan["vms"][0]
                vm["mode"] = mode
                free_before = ops.sr_free(session, [SOURCE])[SOURCE]
                sim_start, wall_start = sim.now, time.perf_counter()
                outcome = run_transfer(plan, session, incident=f"bench-{mode}", dry_run=False,
                                       confirm_vm_uuid=vm["uuid"], wait_timeout_s=600, reporter=Reporter())
                wall = time.perf_counter() - wall_start
                return {"mode": vm["mode"], "status": outcome.status, "wall_s": wall,
                        "sim_s": sim.now - sim_start, "speed": sim.pool.clock.speed, "bytes": vm["bytes"],
                        "freed": ops.sr_free(session, [SOURCE])[SOURCE] - free_before}


def main() -> None:
    from runbook_lib.units import gib

    for mode in ("copy", "migrate"):
        r = one(mode)
        print(f"   {r['mode']:8s} {r['status']:5s} {r['bytes'] / 2**40:.2f} TiB each way: {r['wall_s']:6.1f} s wall, "
              f"{r['sim_s'] / 3600:5.1f} h simulated (speed {r['speed']:.0f}), "
              f"source SR +{gib(r['freed'], 0)} free")


if __name__ == "__main__":
    main()
