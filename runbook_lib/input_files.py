"""Reading the JSON files an admin hands us (inventories, SMlog findings, plans) with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runbook_lib.errors import InputError


def read_json(path: str | Path, what: str) -> Any:
    """The parsed file; a missing, unreadable or broken one is an InputError naming `what`."""
    path = Path(path).expanduser()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"{what} file {path} is a directory") from None
    except json.JSONDecodeError as err:
        raise InputError(f"cannot read {what} file {path}: not JSON (line {err.lineno}: {err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {what} file {path}: {err}") from None
