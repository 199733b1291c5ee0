"""Writes SMlog lines the way syslog stores the storage manager's messages.

`<Mon> <dd> <HH:MM:SS> <host> <ident>: [<pid>] <message>`, day padded with a space, one line
per line of a multi-line message (trees, tracebacks), no year.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def syslog_stamp(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, timezone.utc)
    return f"{MONTHS[dt.month - 1]} {dt.day:2d} {dt:%H:%M:%S}"


class SmlogWriter:
    def __init__(self, path, host: str = "xs01", sm_pid: int = 4512):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.sm_pid = sm_pid
        self.lock = threading.Lock()
        self.lines_written = 0
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, ident: str, pid: int, message: str, ts: float) -> None:
        prefix = f"{syslog_stamp(ts)} {self.host} {ident}: [{pid}] "
        text = "".join(prefix + line + "\n" for line in str(message).split("\n"))
        with self.lock:
            if self._file.closed:
                return
            self._file.write(text)
            self._file.flush()
            self.lines_written += text.count("\n")

    def gc(self, message: str, ts: float, pid: int) -> None:
        self.write("SMGC", pid, message, ts)

    def sm(self, message: str, ts: float, pid: int | None = None) -> None:
        self.write("SM", pid or self.sm_pid, message, ts)

    def close(self) -> None:
        with self.lock:
            self._file.close()
