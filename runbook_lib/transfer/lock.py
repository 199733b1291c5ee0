"""One executing run per incident.

Two runs acting on the same incident would both change the pool and interleave their journal
lines. An executing run holds an exclusive `flock` on `outputs/<incident>/transfer.lock` for
its whole length; the kernel drops it when the process ends however it ends, so a lock left
by a killed run is never in the way (its holder line is only read to say who had it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import socket
from pathlib import Path
from typing import Iterator

from runbook_lib.errors import InputError, RunbookError

LOCK_NAME = "transfer.lock"


class IncidentLocked(RunbookError):
    """Another run of the same incident is executing."""

    exit_code = 2


@contextlib.contextmanager
def incident_lock(journal_file: Path, incident: str) -> Iterator[str]:
    """Hold the incident's lock; yields what the lock file said of an earlier holder ("" if none)."""
    path = journal_file.parent / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not the incident's lock file: move it away and re-run") from None
    except OSError as err:
        raise InputError(f"cannot open the incident's lock file {path}: {err.strerror}") from None
    try:
        previous = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IncidentLocked(f"incident {incident} is being executed by another run ({previous or 'unknown'}); "
                                 "nothing was changed",
                                 hint="wait for that run to end (or stop it), then re-run with the same incident"
                                 ) from None
        since = dt.datetime.now(dt.timezone.utc)
        holder = f"pid {os.getpid()} on {socket.gethostname()} since {since:%Y-%m-%d %H:%M:%SZ}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode() + b"\n", 0)
        try:
            yield previous
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
