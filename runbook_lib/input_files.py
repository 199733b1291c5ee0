"""Reading the files an admin hands us (inventories, SMlog findings, plans, parameters,
scenarios) with one-line errors.

Nothing is opened before its type is known: a FIFO would block the open itself, and a
character device such as /dev/zero never ends, so both are refused from a stat.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from runbook_lib.errors import InputError

_SPECIAL_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                  (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def special_kind(path: str | Path) -> str | None:
    """'a character device', 'a FIFO (named pipe)', ... for a path that is neither a regular
    file nor a directory (symlinks followed); None for those, and for a path that is not there."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), "not a regular file")


def check_file(path: str | Path, what: str) -> Path:
    """The path (~ expanded) if it names a regular file; else a one-line InputError naming `what`.

    Missing, a directory, a device, a FIFO or a socket are refused without opening anything.
    """
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} file not found: {path}") from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {what} file {path}: {getattr(err, 'strerror', None) or err}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} file {path} is a directory")
    kind = special_kind(path)
    if kind:
        raise InputError(f"{what} file {path} is {kind}, not a file")
    return path


def check_output_file(path: str | Path, what: str, *, replace: bool = True) -> Path:
    """The path (~ expanded) to write `what` ("the plan") to, refused in one line when it is a
    directory or lies under a file. With `replace` (the file is written aside and renamed over
    the path) a device, FIFO or socket is refused too: the rename would put a file in its place."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"cannot write {what} to {path}: it is a directory; give a file name")
    kind = special_kind(path) if replace else None
    if kind:
        raise InputError(f"cannot write {what} to {path}: it is {kind}, not a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot write {what} to {path}: {parent} is not a directory")
            break
    return path


def read_text(path: str | Path, what: str, kind: str = "text") -> str:
    """The file's text (UTF-8, a leading BOM dropped); `kind` names the text expected
    ("JSON", "YAML/JSON") in the one-line error a binary file gets."""
    path = check_file(path, what)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {what} file {path}: {err.strerror or err}") from None
    if b"\x00" in data:
        raise InputError(f"{what} file {path} is not {kind} text: it holds NUL bytes (a binary file?)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{what} file {path} is not {kind} text: byte 0x{data[err.start]:02x} at offset "
                         f"{err.start} is not UTF-8 (a binary file?)") from None


def read_json(path: str | Path, what: str) -> Any:
    """The parsed file; a missing, unreadable or broken one is an InputError naming `what`."""
    text = read_text(path, what, "JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"cannot read {what} file {Path(path).expanduser()}: not JSON "
                         f"(line {err.lineno}: {err.msg})") from None


def read_yaml(path: str | Path, what: str, loader: Any = None) -> Any:
    """The parsed YAML (or JSON) file, None when it is empty; `loader` defaults to yaml.SafeLoader."""
    import yaml

    text = read_text(path, what, "YAML/JSON")
    try:
        return yaml.load(text, Loader=loader or yaml.SafeLoader) if text.strip() else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        why = f"line {mark.line + 1}: {err.problem}" if mark is not None and getattr(err, "problem", None) \
            else str(err).splitlines()[0]
        raise InputError(f"{what} file {Path(path).expanduser()} is not valid YAML ({why})") from None
