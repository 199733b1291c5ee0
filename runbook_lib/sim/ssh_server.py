"""SSH on loopback for each simulated host's dom0 (asyncssh, the library the suite's client uses).

Each host gets its own port and its own host key (made fresh at start). Logins: the scenario's
user with its password, or a public key from `authorized_keys`. Only `exec` requests are
answered (no shell, no terminal), by `dom0.Dom0` from the model; every command received is
logged, a JSON line each (host, user, command, exit status), in `commands` and, when given,
in a file beside the call log.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from runbook_lib.sim.dom0 import Dom0


class SshServers:
    """One SSH server per host of a simulated pool, served from a thread of their own."""

    def __init__(self, pool, *, host: str = "127.0.0.1", log_path=None, authorized_keys=()):
        self.pool = pool
        self.dom0 = Dom0(pool)
        self.bind = host
        self.authorized = [k.strip() for k in authorized_keys if k and k.strip()]
        self.commands: list[dict] = []
        self.ports: dict[str, int] = {}          # host uuid -> port
        self.keys: dict[str, str] = {}           # host uuid -> public host key (OpenSSH line)
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers = []
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "SshServers":
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve():
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._open())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="sim-ssh", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    async def _open(self) -> None:
        import asyncssh

        st = self.pool.store
        for ref in sorted(st.all_refs("host"), key=lambda r: st.get("host", r)["uuid"]):
            uuid = st.get("host", ref)["uuid"]
            key = asyncssh.generate_private_key("ssh-ed25519")
            server = await asyncssh.create_server(
                lambda: _Login(self), self.bind, 0, server_host_keys=[key], encoding=None,
                process_factory=lambda process, ref=ref: self._answer(ref, process), allow_scp=False,
                agent_forwarding=False, x11_forwarding=False)
            self._servers.append(server)
            self.ports[uuid] = server.sockets[0].getsockname()[1]
            self.keys[uuid] = key.export_public_key().decode().strip()

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close():
            for server in self._servers:
                server.close()
                await server.wait_closed()
        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- what clients need ------------------------------------------------------------------------
    def endpoints(self) -> dict[str, tuple[str, int]]:
        """host uuid -> (address, port) to reach its dom0."""
        return {uuid: (self.bind, port) for uuid, port in self.ports.items()}

    def known_hosts_lines(self) -> list[str]:
        return [f"[{self.bind}]:{self.ports[uuid]} {self.keys[uuid]}" for uuid in self.ports]

    # -- a command ---------------------------------------------------------------------------------
    async def _answer(self, host_ref: str, process) -> None:
        command = process.command
        user = process.get_extra_info("username")
        if command is None:
            status, out, err = 1, b"", b"this simulated dom0 runs commands only, no shell\n"
        else:
            status, out, err = self.dom0.run(host_ref, command)
        self._record(host_ref, user, command, status)
        if out:
            process.stdout.write(out)
        if err:
            process.stderr.write(err)
        process.exit(status)

    def _record(self, host_ref: str, user, command, status: int) -> None:
        with self.pool.lock:
            host = self.pool.store.get("host", host_ref)
        entry = {"time": round(time.time(), 3), "host": host["name_label"], "host_uuid": host["uuid"],
                 "user": user, "command": command, "exit": status}
        with self._lock:
            self.commands.append(entry)
            if self._log is not None:
                self._log.write(json.dumps(entry) + "\n")
                self._log.flush()


class _Login:
    """asyncssh server callbacks: the scenario's password, or an authorized key."""

    def __new__(cls, servers: SshServers):
        import asyncssh

        class Login(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == servers.pool.user and password == servers.pool.password

            def public_key_auth_supported(self) -> bool:
                return bool(servers.authorized)

            def validate_public_key(self, username: str, key) -> bool:
                line = key.export_public_key().decode().split()
                return username == servers.pool.user and any(
                    a.split()[:2] == line[:2] for a in servers.authorized)

        return Login()
