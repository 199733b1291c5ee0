"""The SSH client that asks dom0 the allowlisted questions (docs/sizing.md).

Library: asyncssh. It is maintained, pure Python on top of `cryptography`, speaks both client
and server (the simulator serves the same protocol with it), checks host keys against an
OpenSSH known_hosts file itself, and is asynchronous: one connection per host carries many
commands at once, so asking every host of a large pool costs a few round trips, not one per VDI.

Rules: host keys are checked against a known_hosts file, always. An unknown key is refused in
one line unless `accept_new` (trust on first use) is given, which writes the key to the
known_hosts file the user named; a key that differs from the file's is refused even then.
Authentication by key file, the SSH agent, or a password read from a file or an environment
variable (never a parameter). Every command passes `commands.check` just before it is sent and
runs with a timeout; nothing but the allowlist is ever sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from pathlib import Path

from runbook_lib.dom0 import commands
from runbook_lib.errors import UsageError


@dataclass(frozen=True)
class SshOptions:
    user: str = "root"
    key_file: str | None = None         # a private key file; default: the agent and ~/.ssh keys
    known_hosts: str | None = None      # default: ~/.ssh/known_hosts
    accept_new: bool = False            # trust on first use: write unknown keys to known_hosts
    password_env: str | None = None     # NAME of a variable holding a password (else key / agent)
    password_file: str | None = None
    timeout_s: float = 30.0             # per command
    connect_timeout_s: float = 10.0
    hosts: dict = field(default_factory=dict)  # host name or uuid -> "address[:port]" or {address, port, jump}
    parallel: int = 8                   # commands in flight per connection

    def known_hosts_path(self) -> Path:
        return Path(self.known_hosts or "~/.ssh/known_hosts").expanduser()

    def check(self) -> None:
        if self.accept_new and not self.known_hosts:
            raise UsageError("--ssh-accept-new writes host keys to a known_hosts file: name it with --known-hosts")
        if self.key_file and not Path(self.key_file).expanduser().is_file():
            raise UsageError(f"SSH key file not found: {self.key_file}")


@dataclass(frozen=True)
class Endpoint:
    host: str      # host uuid
    name: str
    address: str
    port: int = 22
    jump: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.address}:{self.port})"


@dataclass
class Answer:
    ok: bool
    stdout: bytes = b""
    error: str = ""


def endpoint(host: dict, options: SshOptions) -> Endpoint:
    """Where to reach a host's dom0: host.address, unless the parameters file overrides it."""
    override = options.hosts.get(host["uuid"]) or options.hosts.get(host["name"])
    address, port, jump = host["address"], 22, None
    if isinstance(override, str) and override:
        address, _, text = override.rpartition(":") if override.count(":") == 1 else (override, "", "")
        port = int(text) if text.isdigit() else 22
        address = address or override
    elif isinstance(override, dict):
        address = str(override.get("address") or address)
        port = int(override.get("port") or 22)
        jump = override.get("jump") or None
    if not address:
        raise UsageError(f"host {host['name']} has no address: give one under ssh_hosts")
    return Endpoint(host=host["uuid"], name=host["name"] or host["uuid"][:8], address=address, port=port, jump=jump)


def _password(options: SshOptions) -> str | None:
    if not options.password_env and not options.password_file:
        return None
    from runbook_lib.xapi.connect import read_password

    return read_password(options.password_env, options.password_file)


def _known(path: Path, ep: Endpoint) -> bool:
    """Has the known_hosts file any key for this host (and port)?"""
    import asyncssh

    if not path.is_file():
        return False
    trusted = asyncssh.read_known_hosts(str(path)).match(ep.address, ep.address, ep.port)
    return any(trusted[:2])


async def _trust_on_first_use(path: Path, ep: Endpoint, options: SshOptions) -> None:
    import asyncssh

    key = await asyncio.wait_for(asyncssh.get_server_host_key(ep.address, ep.port, tunnel=ep.jump or ()),
                                 options.connect_timeout_s)
    if key is None:
        raise asyncssh.Error(0, "the host sent no host key")
    name = ep.address if ep.port == 22 else f"[{ep.address}]:{ep.port}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{name} {key.export_public_key().decode().strip()}\n")


def _why(exc: BaseException, ep: Endpoint, options: SshOptions, known: bool) -> str:
    import asyncssh

    path = options.known_hosts_path()
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if known:
            return f"host key of {ep.label} does not match {path}: refused, nothing was run"
        return (f"host key of {ep.label} is not in {path}: refused, nothing was run (add it, or opt in "
                "to trust on first use with --ssh-accept-new and --known-hosts FILE)")
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"login as {options.user} refused by {ep.label}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"{ep.label} did not answer within {options.connect_timeout_s:g} s"
    if isinstance(exc, OSError):
        return f"{ep.label} unreachable: {exc.strerror or exc}"
    return f"{ep.label}: {type(exc).__name__}: {str(exc)[:120]}"


async def _run(conn, argv: list[str], options: SshOptions, gate: asyncio.Semaphore) -> Answer:
    line = commands.command_line(argv)  # refused here, before anything is sent, if off the allowlist
    async with gate:
        try:
            result = await asyncio.wait_for(conn.run(line, check=False, encoding=None), options.timeout_s)
        except (asyncio.TimeoutError, TimeoutError):
            return Answer(False, error=f"no answer within {options.timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 - a lost channel is one failed answer
            return Answer(False, error=f"{type(exc).__name__}: {str(exc)[:120]}")
    if result.exit_status != 0:
        err = (result.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        return Answer(False, error=f"exit {result.exit_status}: {(err[-1] if err else '')[:120]}")
    return Answer(True, stdout=result.stdout or b"")


async def _ask_host(ep: Endpoint, argvs: list[list[str]], options: SshOptions, password: str | None,
                    known_hosts: str | None) -> tuple[dict[tuple, Answer], str]:
    import asyncssh

    path = Path(known_hosts) if known_hosts else options.known_hosts_path()
    known = _known(path, ep)
    try:
        if not known and options.accept_new and not known_hosts:
            await _trust_on_first_use(path, ep, options)
            known = True
        kwargs = {"port": ep.port, "username": options.user, "known_hosts": str(path) if path.is_file() else (),
                  "connect_timeout": options.connect_timeout_s, "password": password}
        if options.key_file:
            kwargs["client_keys"] = [str(Path(options.key_file).expanduser())]
        if ep.jump:
            kwargs["tunnel"] = ep.jump
        conn = await asyncssh.connect(ep.address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every way a connection fails is one line
        return {}, _why(exc, ep, options, known)
    gate = asyncio.Semaphore(max(1, options.parallel))
    try:
        answers = await asyncio.gather(*(_run(conn, argv, options, gate) for argv in argvs))
    finally:
        conn.close()
        await conn.wait_closed()
    return {tuple(argv): answer for argv, answer in zip(argvs, answers)}, ""


async def _ask_all(questions, options, password, known_hosts):
    hosts = list(questions)
    results = await asyncio.gather(*(_ask_host(ep, argvs, options, password, known_hosts)
                                     for ep, argvs in (questions[h] for h in hosts)))
    return dict(zip(hosts, results))


def ask(questions: dict[str, tuple[Endpoint, list[list[str]]]], options: SshOptions, *,
        known_hosts: str | None = None, password: str | None = None) -> dict[str, tuple[dict[tuple, Answer], str]]:
    """Ask each host its questions; host uuid -> ({argv: Answer}, "" or why the host gave none).

    Every argv is checked against the allowlist first (CommandRefused: nothing is sent).
    `known_hosts` / `password` are for the in-process simulator only (its own keys and login).
    """
    for _, argvs in questions.values():
        for argv in argvs:
            commands.check(argv)
    options.check()
    secret = password if password is not None else _password(options)
    # a thread of its own: a notebook's kernel already runs an event loop
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _ask_all(questions, options, secret, known_hosts)).result()


