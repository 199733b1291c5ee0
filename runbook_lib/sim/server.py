"""HTTP front end: XML-RPC on / and /xmlrpc, JSON-RPC on /jsonrpc, export/import handlers.

Loopback only. Responses use xapi's envelope and encoding: XML-RPC ints as decimal strings
(xapi's int64), strings as bare <value>s, dates as dateTime.iso8601; JSON-RPC 2.0 with
numbers as numbers and errors as {code: 1, message: CODE, data: [params]}.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
import time
import xmlrpc.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from runbook_lib.errors import UsageError
from runbook_lib.sim.model import ApiFailure
from runbook_lib.sim.wire import json_default, plain, xmlrpc_response

log = logging.getLogger(__name__)


def check_loopback(host: str) -> str:
    """Only loopback addresses: the simulator accepts a fixed password."""
    try:
        addr = ipaddress.ip_address(socket.gethostbyname(host) if host == "localhost" else host)
    except (ValueError, OSError):
        raise UsageError(f"refusing to bind {host!r}: the simulator listens on 127.0.0.1 only") from None
    if not addr.is_loopback or addr.version != 4:
        raise UsageError(f"refusing to bind {host}: the simulator listens on 127.0.0.1 only")
    return str(addr)


class Handler(BaseHTTPRequestHandler):
    server_version = "xapi/simulator"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the calls log is the record
        pass

    def setup(self):
        super().setup()
        # headers and body go out in separate writes; without this, Nagle + delayed ACK
        # add ~40 ms to every call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def sim(self):
        return self.server.sim

    def _hang_up(self) -> bool:
        """Close the connection without an answer (the client sees it drop)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def _outage(self) -> bool:
        return time.monotonic() < self.sim.dispatcher.outage_until and self._hang_up()

    def _reply_lost(self, method: str) -> bool:
        """The lose-reply fault: the call was carried out; its answer never leaves."""
        return self.sim.pool.faults.lose_reply(method) and self._hang_up()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self._outage():
            return
        path = urlsplit(self.path).path
        body = self._body()
        if self._outage():
            return
        if path in ("/", "/xmlrpc", "/RPC2"):
            self._xmlrpc(body)
        elif path == "/jsonrpc":
            self._jsonrpc(body)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _xmlrpc(self, body: bytes) -> None:
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=False)
        except Exception:  # noqa: BLE001 - any malformed body is a client error
            fault = xmlrpc.client.dumps(xmlrpc.client.Fault(-32700, "parse error"),
                                        methodresponse=True)
            self._send(200, fault.encode(), "text/xml")
            return
        try:
            value = self.sim.dispatcher.call(method, [plain(p) for p in params])
            envelope = {"Status": "Success", "Value": value}
        except ApiFailure as exc:
            envelope = {"Status": "Failure", "ErrorDescription": exc.description}
        if self._reply_lost(method):
            return
        self._send(200, xmlrpc_response(envelope), "text/xml")

    def _jsonrpc(self, body: bytes) -> None:
        """JSON-RPC as xapi answers it: a 2.0 request ("jsonrpc": "2.0") gets `result` or `error:
        {code: 1, message: CODE, data: [params]}`; a 1.0 request (no "jsonrpc") gets `result`,
        `error` (null, or the ErrorDescription array) and `id`, as ocaml-rpc's V1 writes them."""
        try:
            req = json.loads(body)
            version = req.get("jsonrpc")
            method, rid = req["method"], req.get("id")
            params = req.get("params", [] if version == "2.0" else None)
            if version not in (None, "2.0") or not isinstance(params, list) or not isinstance(method, str):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            out = {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
            self._send(200, json.dumps(out).encode(), "application/json")
            return
        try:
            value = self.sim.dispatcher.call(method, params)
            out = {"result": value, "error": None, "id": rid} if version is None else \
                {"jsonrpc": "2.0", "result": value, "id": rid}
        except ApiFailure as exc:
            out = {"result": None, "error": exc.description, "id": rid} if version is None else \
                {"jsonrpc": "2.0", "error": {"code": 1, "message": exc.code, "data": exc.params}, "id": rid}
        if self._reply_lost(method):
            return
        self._send(200, json.dumps(out, default=json_default).encode(), "application/json")

    # -- HTTP handlers: VM export / import ---------------------------------------------------------
    def do_GET(self):
        if self._outage():
            return
        url = urlsplit(self.path)
        if url.path != "/export":
            self._send(404, b"not found\n", "text/plain")
            return
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            from runbook_lib.sim.transport import export_vm
            body = export_vm(self.sim, q.get("session_id", ""), q.get("uuid", ""),
                             q.get("ref", ""))
        except ApiFailure as exc:
            self._send(500 if exc.code != "SESSION_INVALID" else 403,
                       json.dumps(exc.description).encode(), "application/json")
            return
        self._send(200, body, "application/octet-stream")

    def do_PUT(self):
        if self._outage():
            return
        url = urlsplit(self.path)
        body = self._body()
        if url.path != "/import":
            self._send(404, b"not found\n", "text/plain")
            return
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        task = q.get("task_id")  # xapi reports the imported VM in the task the client made
        try:
            from runbook_lib.sim.transport import import_vm
            ref = import_vm(self.sim, q.get("session_id", ""), q.get("sr_id", ""), body)
        except ApiFailure as exc:
            if task:
                with self.sim.pool.lock:
                    self.sim.dispatcher.finish_task_ref(task, error=exc)
            self._send(500 if exc.code != "SESSION_INVALID" else 403,
                       json.dumps(exc.description).encode(), "application/json")
            return
        if task:
            with self.sim.pool.lock:
                self.sim.dispatcher.finish_task_ref(task, result=ref)
            self._send(200, b"", "text/plain")
            return
        self._send(200, ref.encode(), "text/plain")  # without a task: the ref in the body (a simulator shortcut)


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sim, host: str, port: int):
        self.sim = sim
        super().__init__((check_loopback(host), port), Handler)

    def handle_error(self, request, client_address):
        """An exception in a handler thread: logged with its traceback (a client hanging up is
        routine, e.g. under the outage fault, and only shows at DEBUG)."""
        exc = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, ConnectionError) else logging.ERROR
        log.log(level, "simulator: error handling a request from %s:%s", *client_address[:2], exc_info=True)
