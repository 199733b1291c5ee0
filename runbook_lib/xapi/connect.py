"""Log in to a pool (or the embedded simulator) with the official XenAPI client.

`connect(url, ...)` is a context manager that yields a `PoolSession` and always logs out.
It follows HOST_IS_SLAVE to the master; the XenAPI client itself logs in again when the
server answers SESSION_INVALID (expired session during long work), and we re-check that.
Every expected failure becomes a one-line `RunbookError`: wrong password, unreachable host,
TLS verification, a missing password variable or file.

The password is read from the environment variable *named* by `password_env` or from
`password_file`, held only in the XenAPI session object (for re-login), and never put in
a message, a log, a parameter or an output.

url "" or "sim:<scenario>" starts the bundled simulator in-process (stopped on exit).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import re
import socket
import ssl
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from runbook_lib.errors import CredentialError, PoolError, UsageError

DEFAULT_SCENARIO = "seed-stuck-leaf-coalesce"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
ORIGINATOR = "xen-coalesce-runbooks"
MAX_REDIRECTS = 3


class PasswordMissing(CredentialError):
    """No password where we were told to look."""


class LoginFailed(CredentialError):
    """The pool refused the user name or password."""


class PoolUnreachable(PoolError):
    """Nothing answers at the URL (refused, unknown name, timeout)."""


class TLSVerificationFailed(PoolError):
    """The pool's certificate could not be verified."""


class PoolCallFailed(PoolError):
    """A XenAPI call failed with an error code (kept in `.code` and `.details`)."""

    def __init__(self, message: str, *, code: str = "", details: list | None = None):
        super().__init__(message)
        self.code = code
        self.details = list(details or [])


def read_password(password_env: str | None = "XEN_PASSWORD", password_file: str | Path | None = None) -> str:
    """The password from the named file, else from the named environment variable."""
    if password_file:
        path = Path(password_file).expanduser()
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise PasswordMissing(f"password file not found: {path}") from None
        except OSError as err:
            raise PasswordMissing(f"cannot read password file {path}: {err.strerror}") from None
        password = text.rstrip("\r\n")
        if not password:
            raise PasswordMissing(f"password file {path} is empty")
        return password
    if not password_env:
        raise PasswordMissing("no password source: give password_env (a variable name) or password_file")
    password = os.environ.get(password_env)
    if not password:
        if not ENV_NAME.match(password_env):
            # not shaped like a variable name: it may be the password itself, never echo it
            raise PasswordMissing("password_env must be the NAME of an environment variable "
                                  "(like XEN_PASSWORD), not a password")
        raise PasswordMissing(
            f"environment variable {password_env} is not set",
            hint=f"export {password_env}=... before running, or pass a password file",
        )
    return password


_METHOD_NAME = re.compile(rb"<methodName>\s*([^<\s]+)\s*</methodName>")


def _method_of(request_body) -> str:
    body = request_body if isinstance(request_body, bytes) else str(request_body).encode("utf-8", "replace")
    match = _METHOD_NAME.search(body[:4096])
    return match.group(1).decode("ascii", "replace") if match else ""


class _SendChangesOnce:
    """xmlrpc.client sends a request a second time when the connection drops before the answer;
    for a call that changes the pool that may do it twice (two copies, two shutdowns). Reads keep
    the resend; a change is sent once and its lost answer surfaces as a lost connection, which the
    caller resolves by looking at the pool."""

    _timeout: float

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn

    def request(self, host, handler, request_body, verbose=False):
        if _is_read(_method_of(request_body)):
            return super().request(host, handler, request_body, verbose)
        return self.single_request(host, handler, request_body, verbose)


class _TimeoutTransport(_SendChangesOnce, xmlrpc.client.Transport):
    """Plain HTTP with a socket timeout (xmlrpc's default waits forever on a dead host)."""

    def __init__(self, timeout: float, **kwargs):
        super().__init__(**kwargs)
        self._timeout = timeout


class _TimeoutSafeTransport(_SendChangesOnce, xmlrpc.client.SafeTransport):
    def __init__(self, timeout: float, context: ssl.SSLContext, **kwargs):
        super().__init__(context=context, **kwargs)
        self._timeout = timeout


def _transport(url: str, *, verify_tls: bool, ca_bundle: str | None, timeout: float):
    if urlsplit(url).scheme == "https":
        if verify_tls:
            try:
                ctx = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
            except (FileNotFoundError, ssl.SSLError, OSError) as err:
                raise UsageError(f"cannot use CA bundle {ca_bundle}: {getattr(err, 'strerror', None) or err}") from None
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return _TimeoutSafeTransport(timeout, ctx)
    return _TimeoutTransport(timeout)


def _explain(err: BaseException, url: str) -> Exception | None:
    """Turn a transport error into our one-line error, or None if it is not one."""
    host = urlsplit(url).netloc or url
    if isinstance(err, ssl.SSLCertVerificationError):
        return TLSVerificationFailed(
            f"TLS certificate of {host} could not be verified ({err.verify_message or err.reason})",
            hint="pass the pool's CA with --ca-bundle FILE (ca_bundle=...), "
                 "or opt out explicitly with --no-verify-tls (verify_tls=False)")
    if isinstance(err, ssl.SSLError):
        return TLSVerificationFailed(f"TLS handshake with {host} failed ({err.reason or err})")
    if isinstance(err, socket.gaierror):
        return PoolUnreachable(f"cannot reach {url}: unknown host name")
    if isinstance(err, ConnectionRefusedError):
        return PoolUnreachable(f"cannot reach {url}: connection refused")
    if isinstance(err, (socket.timeout, TimeoutError)):
        return PoolUnreachable(f"cannot reach {url}: timed out")
    if isinstance(err, (ConnectionError, http.client.HTTPException)):
        return PoolUnreachable(f"lost the connection to {url}: {type(err).__name__}")
    if isinstance(err, OSError) and err.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return PoolUnreachable(f"cannot reach {url}: {err.strerror}")
    if isinstance(err, xmlrpc.client.ProtocolError):
        return PoolUnreachable(f"{url} is not a XenAPI server (HTTP {err.errcode} {err.errmsg})")
    if isinstance(err, xmlrpc.client.Fault):
        return PoolCallFailed(f"XenAPI fault from {host}: {err.faultString}", code="FAULT")
    return None


def _failure(err, method: str) -> PoolCallFailed:
    details = [str(d) for d in (getattr(err, "details", None) or [])]
    code = details[0] if details else "UNKNOWN"
    rest = ", ".join(details[1:4])
    return PoolCallFailed(f"{method} failed: {code}" + (f" ({rest})" if rest else ""),
                          code=code, details=details)


def _is_read(method: str) -> bool:
    """Calls that change nothing, so repeating them after a lost connection is harmless."""
    last = method.rsplit(".", 1)[-1]
    return last.startswith("get_") or method in READ_CALLS


READ_CALLS = ("event.from", "system.listMethods", "session.login_with_password", "session.logout")


class _Api:
    """`session.xenapi` with our errors; the client re-logs in itself on SESSION_INVALID."""

    def __init__(self, owner: "PoolSession", path: str = ""):
        self._owner = owner
        self._path = path

    def __getattr__(self, name: str) -> "_Api":
        if name.startswith("__"):
            raise AttributeError(name)
        return _Api(self._owner, f"{self._path}.{name}" if self._path else name)

    def __call__(self, *args):
        return self._owner.call(self._path, *args)


class PoolSession:
    """A logged-in session: `.xenapi.<Class>.<method>(...)` like the XenAPI client."""

    def __init__(self, url: str, user: str, password: str, *, verify_tls: bool, ca_bundle,
                 timeout: float, retry_refused_s: float = 0.0, simulator=None):
        import XenAPI

        self._XenAPI = XenAPI
        self.user = user
        self.verify_tls = verify_tls
        self.ca_bundle = ca_bundle
        self.timeout = timeout
        self.retry_refused_s = retry_refused_s
        self.simulator = simulator
        self.requested_url = url
        self.url = url
        self.logins = 0
        self._session = None
        self._login(url, password)
        self.xenapi = _Api(self)

    def _new_client(self, url: str):
        return self._XenAPI.Session(url, transport=_transport(
            url, verify_tls=self.verify_tls, ca_bundle=self.ca_bundle, timeout=self.timeout))

    def _login(self, url: str, password: str) -> None:
        for _ in range(MAX_REDIRECTS + 1):
            client = self._new_client(url)
            try:
                client.xenapi.login_with_password(self.user, password, "2.0", ORIGINATOR)
            except self._XenAPI.Failure as err:
                details = [str(d) for d in (err.details or [])]
                code = details[0] if details else ""
                if code == "HOST_IS_SLAVE" and len(details) > 1:
                    url = master_url(url, details[1])
                    continue
                if code == "SESSION_AUTHENTICATION_FAILED":
                    raise LoginFailed(f"login to {self._host(url)} as {self.user} was refused: "
                                      "wrong user name or password") from None
                raise _failure(err, "session.login_with_password") from None
            except Exception as err:  # noqa: BLE001 - transport errors become one line
                mapped = _explain(err, url)
                if mapped is None:
                    raise
                raise mapped from None
            self._session = client
            self.url = url
            self.logins += 1
            return
        raise PoolError(f"gave up after {MAX_REDIRECTS} HOST_IS_SLAVE redirects (last: {url})")

    @staticmethod
    def _host(url: str) -> str:
        return urlsplit(url).netloc or url

    def call(self, method: str, *args) -> Any:
        """One XenAPI call. Within `retry_refused_s` seconds, a refused connection is retried
        (the call never arrived), and so is any lost connection during a read (get_*,
        event.from); a change whose answer was lost is reported, never repeated blindly."""
        deadline = time.monotonic() + self.retry_refused_s
        while True:
            client = self._session
            if client is None:
                raise PoolError("the session is logged out")
            target = client.xenapi
            for part in method.split("."):
                target = getattr(target, part)
            try:
                before = client._session
                result = target(*args)
                if client._session != before:
                    self.logins += 1  # the client logged in again after SESSION_INVALID
                return result
            except self._XenAPI.Failure as err:
                raise _failure(err, method) from None
            except (ConnectionError, http.client.HTTPException) as err:
                # refused = never delivered, so retrying cannot run a call twice; a read may be
                # repeated whatever happened to the first try
                if (isinstance(err, ConnectionRefusedError) or _is_read(method)) \
                        and time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                raise _explain(err, self.url) from None
            except Exception as err:  # noqa: BLE001
                mapped = _explain(err, self.url)
                if mapped is None:
                    raise
                raise mapped from None

    @property
    def handle(self) -> str | None:
        """The session reference (not a secret on its own, but do not print it needlessly)."""
        return getattr(self._session, "_session", None)

    def logout(self) -> None:
        client, self._session = self._session, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.xenapi.session.logout()

    def __repr__(self) -> str:
        return f"<PoolSession {self.user}@{self._host(self.url)}>"


def master_url(url: str, master_address: str) -> str:
    """The URL of the master named by HOST_IS_SLAVE: same scheme and port, the master's host."""
    parts = urlsplit(url)
    address = master_address.strip()
    if "://" in address:
        return address
    if address.count(":") == 1:  # host:port
        netloc = address
    else:
        host = f"[{address}]" if ":" in address else address
        netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme or "https", netloc, parts.path or "/", "", ""))


def is_simulator_url(url: str | None) -> bool:
    return url is None or url == "" or str(url).startswith("sim:")


def _check_url(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"not a pool URL: {url!r} (expected https://host or http://host:port)")
    if parts.username or parts.password:
        raise CredentialError("the URL holds a user or password; pass --user, and the password "
                              "in an environment variable or a file")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


@contextlib.contextmanager
def connect(url: str, user: str = "root", password_env: str | None = "XEN_PASSWORD",
            password_file: str | Path | None = None, verify_tls: bool = True,
            ca_bundle: str | Path | None = None, *, timeout: float = 60.0,
            retry_refused_s: float = 0.0, sim_options: dict | None = None) -> Iterator[PoolSession]:
    """Log in (following HOST_IS_SLAVE), yield the session, always log out.

    url "" or "sim:<scenario>" starts the bundled simulator (default scenario
    seed-stuck-leaf-coalesce) for the duration; its documented credentials are used.
    """
    simulator = None
    try:
        if is_simulator_url(url):
            from runbook_lib.sim import Simulator

            scenario = (url or "")[4:] or DEFAULT_SCENARIO
            simulator = Simulator(scenario=scenario, **(sim_options or {}))
            simulator.start()
            target, user, password = simulator.url, simulator.user, simulator.password
        else:
            target = _check_url(url)
            password = read_password(password_env, password_file)
        session = PoolSession(target, user, password, verify_tls=verify_tls, ca_bundle=ca_bundle,
                              timeout=timeout, retry_refused_s=retry_refused_s, simulator=simulator)
        del password
        try:
            yield session
        finally:
            session.logout()
    finally:
        if simulator is not None:
            simulator.stop()
