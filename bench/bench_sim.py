"""Simulator speed: VDI.get_all_records on large-pool (target < 0.5 s) and the latency from
a change to its event.from delivery (target < 100 ms), both through the official client."""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request

import XenAPI

from runbook_lib.sim import Simulator

TARGET_RECORDS_S = 0.5
TARGET_EVENT_S = 0.1


def _records(x, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        records = x.VDI.get_all_records()
        times.append(time.perf_counter() - t)
        assert len(records) == 3000
    return statistics.median(times)


def _records_jsonrpc(url, session_ref, repeats=5) -> float:
    """The same call as the Xen Orchestra client makes it (JSON-RPC)."""
    body = json.dumps({"jsonrpc": "2.0", "method": "VDI.get_all_records",
                       "params": [session_ref], "id": 1}).encode()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        req = urllib.request.Request(url + "jsonrpc", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            records = json.loads(resp.read())["result"]
        times.append(time.perf_counter() - t)
        assert len(records) == 3000
    return statistics.median(times)


def _event_latency(x, repeats=20) -> float:
    vm = next(r for r, rec in x.VM.get_all_records().items() if not rec["is_control_domain"])
    token = getattr(x.event, "from")(["vm"], "", 0.1)["token"]
    latencies = []
    for i in range(repeats):
        changed = {}

        def change(i=i, changed=changed):  # bound now, for the thread started below
            time.sleep(0.05)
            other = XenAPI.Session(x_url)
            other.xenapi.login_with_password(user, password, "1.0", "bench")
            changed["t"] = time.perf_counter()
            other.xenapi.VM.set_name_label(vm, f"bench {i}")
            other.xenapi.session.logout()

        th = threading.Thread(target=change)
        th.start()
        while True:
            out = getattr(x.event, "from")(["vm"], token, 5.0)
            token = out["token"]
            if any(ev["ref"] == vm and ev.get("snapshot", {}).get("name_label") == f"bench {i}"
                   for ev in out["events"]):
                latencies.append(time.perf_counter() - changed["t"])
                break
        th.join()
    return statistics.median(latencies)


def main() -> dict:
    global x_url, user, password
    with Simulator("large-pool", speed=1) as sim:
        x_url, user, password = sim.url, sim.user, sim.password
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "bench")
        x = session.xenapi
        records_s = _records(x)
        json_s = _records_jsonrpc(sim.url, session._session)
        event_s = _event_latency(x)
        session.xenapi.session.logout()
    result = {"VDI.get_all_records large-pool (s, median of 5)": round(records_s, 3),
              "VDI.get_all_records large-pool over JSON-RPC (s, median of 5)": round(json_s, 3),
              "event.from delivery latency (s, median of 20)": round(event_s, 4)}
    for name, value in result.items():
        target = TARGET_RECORDS_S if "records" in name else TARGET_EVENT_S
        print(f"{name}: {value} (target < {target}) {'ok' if value < target else 'SLOW'}")
    return result


if __name__ == "__main__":
    main()
