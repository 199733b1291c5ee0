"""A XenServer pool simulator that XenAPI clients talk to unchanged (docs/simulator.md).

    with Simulator("seed-stuck-leaf-coalesce", smlog="SMlog") as sim:
        session = XenAPI.Session(sim.url)
        session.xenapi.login_with_password(sim.user, sim.password, "1.0", "demo")
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from runbook_lib.errors import InputError
from runbook_lib.input_files import check_output_file
from runbook_lib.sim.dispatch import Dispatcher
from runbook_lib.sim.faults import Faults
from runbook_lib.sim.gc import GcManager
from runbook_lib.sim.model import ApiFailure
from runbook_lib.sim.pool import SimPool
from runbook_lib.sim.scenarios import list_scenarios, load_scenario
from runbook_lib.sim.server import SimHTTPServer, check_loopback
from runbook_lib.sim.smlog_writer import SmlogWriter

DEFAULT_SCENARIO = "seed-stuck-leaf-coalesce"
DEFAULT_SPEED = 3600.0   # one simulated hour per wall second
TICK_SECONDS = 0.01

log = logging.getLogger(__name__)

__all__ = ["Simulator", "ApiFailure", "list_scenarios", "load_scenario", "DEFAULT_SCENARIO"]


class Simulator:
    """One simulated pool served on 127.0.0.1; start()/stop() or use as a context manager."""

    def __init__(self, scenario=DEFAULT_SCENARIO, port: int = 0, smlog=None, calls=None,
                 speed: float | None = None, faults=(), password: str | None = None,
                 host: str = "127.0.0.1", ssh: bool = False, ssh_log=None, authorized_keys=()):
        self.host = check_loopback(host)
        self.port = int(port)
        data = load_scenario(scenario)
        self.scenario_name = data.get("name", str(scenario))
        fault_set = Faults(list(data.get("faults") or []) + list(faults))
        log_cfg = data.get("smlog") or {}
        for path, what in ((smlog, "the SMlog"), (calls, "the call log")):
            if path:  # appended to: /dev/null or a FIFO will do, a directory will not
                check_output_file(path, what, replace=False)
        self.smlog_path = Path(smlog) if smlog else None
        try:
            writer = SmlogWriter(smlog, host=str(log_cfg.get("host", "xs01")),
                                 sm_pid=int(log_cfg.get("sm_pid", 4512))) if smlog else None
        except OSError as exc:
            raise InputError(f"cannot write the SMlog to {smlog}: {exc.strerror or exc}") from None
        if speed is None:
            speed = float((data.get("clock") or {}).get("speed", DEFAULT_SPEED))
        self.pool = SimPool(data, speed=speed, faults=fault_set, smlog=writer)
        if password is not None:
            self.pool.password = password
        self.gc = GcManager(self.pool)
        self.pool.gc = self.gc
        try:
            self.dispatcher = Dispatcher(self.pool, calls)
        except OSError as exc:
            if writer is not None:
                writer.close()
            raise InputError(f"cannot write the call log to {calls}: {exc.strerror or exc}") from None
        self.dispatcher.clock_driven = lambda: bool(self._threads) and not self._stop.is_set()
        # SSH to each host's dom0 (sim/ssh_server.py); its command log sits beside the call log
        self.ssh_wanted = bool(ssh)
        self.ssh_log = ssh_log or (f"{calls}.ssh" if calls and ssh else None)
        self.authorized_keys = list(authorized_keys)
        self.ssh = None
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- identity --------------------------------------------------------------------------------------
    @property
    def user(self) -> str:
        return self.pool.user

    @property
    def password(self) -> str:
        return self.pool.password

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def state(self):
        """The object store, for tests: state.tables[cls][ref] -> record."""
        return self.pool.store

    @property
    def storage(self):
        return self.pool.storage

    # -- running ---------------------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self._server is not None:
            return self
        self._server = SimHTTPServer(self, self.host, self.port)
        self.port = self._server.server_address[1]
        self._stop.clear()
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                 name="sim-http", daemon=True)
        ticker = threading.Thread(target=self._tick_loop, name="sim-clock", daemon=True)
        self._threads = [serve, ticker]
        for t in self._threads:
            t.start()
        if self.ssh_wanted and self.ssh is None:
            from runbook_lib.sim.ssh_server import SshServers

            self.ssh = SshServers(self.pool, host=self.host, log_path=self.ssh_log,
                                  authorized_keys=self.authorized_keys).start()
        log.info("simulator listening on %s (scenario %s)", self.url, self.scenario_name)
        return self

    def _restart(self, seconds: float) -> None:
        """The restart fault: stop listening (connections refused), then listen again."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._stop.wait(seconds):
            return
        for _ in range(50):
            try:
                self._server = SimHTTPServer(self, self.host, self.port)
                break
            except OSError:
                time.sleep(0.1)
        else:
            return
        thread = threading.Thread(target=self._server.serve_forever,
                                  kwargs={"poll_interval": 0.1}, name="sim-http", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _tick_loop(self) -> None:
        seen: set[tuple[str, str]] = set()
        while not self._stop.wait(TICK_SECONDS):
            if self.dispatcher.restart_requested:
                seconds, self.dispatcher.restart_requested = self.dispatcher.restart_requested, 0.0
                threading.Thread(target=self._restart, args=(seconds,), daemon=True).start()
            try:
                self.pool.tick()
            except Exception as exc:  # noqa: BLE001 - the clock must keep running
                # each distinct error once with its traceback; its repeats (every tick) at DEBUG
                key = (type(exc).__name__, str(exc))
                level = logging.DEBUG if key in seen else logging.ERROR
                log.log(level, "simulator: error in a timed step: %s: %s", *key, exc_info=key not in seen)
                seen.add(key)

    def stop(self) -> None:
        self._stop.set()
        if self.ssh is not None:
            self.ssh.stop()
            self.ssh = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        self.dispatcher.close()
        if self.pool.smlog is not None:
            self.pool.smlog.close()

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    # -- simulated time for tests ----------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move simulated time forward; everything due meanwhile happens, in order."""
        with self.pool.lock:
            self.pool.clock.advance(seconds)

    @property
    def now(self) -> float:
        return self.pool.clock.now

    def sr_ref(self, sr: str) -> str:
        """Ref of an SR given its ref, uuid or name."""
        st = self.pool.store
        if st.exists("SR", sr):
            return sr
        for ref, rec in st.tables["SR"].items():
            if sr in (rec["uuid"], rec["name_label"]):
                return ref
        raise KeyError(sr)

    def kick_gc(self, sr: str) -> None:
        with self.pool.lock:
            self.gc.kick(self.sr_ref(sr))

    def run_gc(self, sr: str, max_seconds: float = 7 * 86400, step: float = 60.0) -> int:
        """Kick the SR's GC and advance simulated time until it has finished; returns how
        many GC runs happened meanwhile. Raises TimeoutError for a GC that never ends."""
        ref = self.sr_ref(sr)
        g = self.gc.srs[ref]
        before = g.runs
        self.kick_gc(ref)
        waited = 0.0
        while True:
            with self.pool.lock:
                if not g.running and not g.again:
                    return g.runs - before
                self.pool.clock.advance(step)
            waited += step
            if waited > max_seconds:
                raise TimeoutError(f"GC on SR {sr} still running after {max_seconds:.0f} s")

    def wait_until(self, predicate, timeout: float = 10.0) -> bool:
        """Wait (wall clock) until predicate(sim) is true; for tests of the threaded server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.pool.lock:
                if predicate(self):
                    return True
            time.sleep(0.01)
        return False
