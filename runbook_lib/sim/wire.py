"""The simulator's wire encoding, as xapi's: XML-RPC out (ints as decimal strings, xapi's int64;
strings as bare <value>s; dates as dateTime.iso8601), XML-RPC values in as plain Python, and
JSON-RPC's fallback for sets.

Used by the HTTP front end (server.py) and by VM export/import (transport.py); it imports
neither, so neither imports the other for it.
"""

from __future__ import annotations

import xmlrpc.client
from xml.sax.saxutils import escape

from runbook_lib.sim.clock import Int32, XDate


def _xml(value, out: list) -> None:
    if isinstance(value, bool):
        out.append("<value><boolean>1</boolean></value>" if value else
                   "<value><boolean>0</boolean></value>")
    elif isinstance(value, XDate):
        out.append(f"<value><dateTime.iso8601>{value}</dateTime.iso8601></value>")
    elif isinstance(value, str):
        out.append(f"<value>{escape(value)}</value>" if value else "<value/>")
    elif isinstance(value, Int32):
        out.append(f"<value><int>{int(value)}</int></value>")
    elif isinstance(value, int):
        out.append(f"<value>{value}</value>")      # int64 travels as a string
    elif isinstance(value, float):
        out.append(f"<value><double>{value!r}</double></value>")
    elif isinstance(value, dict):
        out.append("<value><struct>")
        for k, v in value.items():
            out.append(f"<member><name>{escape(str(k))}</name>")
            _xml(v, out)
            out.append("</member>")
        out.append("</struct></value>")
    elif isinstance(value, (list, tuple, set)):
        out.append("<value><array><data>")
        for v in value:
            _xml(v, out)
        out.append("</data></array></value>")
    elif value is None:
        out.append("<value/>")
    else:
        out.append(f"<value>{escape(str(value))}</value>")


def xmlrpc_response(envelope: dict) -> bytes:
    """A methodResponse holding `envelope` (xapi's {Status, Value|ErrorDescription}), encoded as xapi does."""
    out = ["<?xml version='1.0'?>\n<methodResponse><params><param>"]
    _xml(envelope, out)
    out.append("</param></params></methodResponse>\n")
    return "".join(out).encode("utf-8")


def plain(value):
    """Values decoded by xmlrpc.client (DateTime, Binary) as plain Python."""
    if isinstance(value, xmlrpc.client.DateTime):
        return XDate(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def json_default(value):
    """json.dumps(default=...) for the JSON-RPC replies: sets as sorted lists, the rest as text."""
    if isinstance(value, set):
        return sorted(value)
    return str(value)
