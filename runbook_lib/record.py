"""Results a notebook records for later runs and the postmortem.

scrapbook no longer imports in a fresh environment, so this is our own small recorder: a
display payload under a project MIME type inside the executed notebook, and a reader that
gets the payloads back out. The executed notebook stays the single source of truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing nbformat costs most of a second, paid by every notebook kernel
    import nbformat

MIME_TYPE = "application/vnd.xen-coalesce-runbooks.record+json"


def to_jsonable(value: Any) -> Any:
    """Plain JSON values for what is recorded or written as JSON: DataFrames, numpy scalars,
    paths, dates, dataclasses; NaN, infinities and missing values become None.

    The package's one converter (sizing, plans, hygiene and the recorder use it); it imports
    numpy and pandas only when called, and never nbformat.
    """
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [to_jsonable(row) for row in value.to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    return _scalar(value)


def _scalar(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    if value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (dt.timedelta, pd.Timedelta)):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


class _CellRecords:
    """The records of the running cell, shown as one output: the payloads under MIME_TYPE and a
    one-line summary (`recorded for the audit trail: verdict, vdis`) instead of a line per value."""

    def __init__(self) -> None:
        self.payloads: list[dict] = []
        self.handle = None

    def add(self, payload: dict) -> None:
        from IPython.display import display

        self.payloads.append(payload)
        names = ", ".join(dict.fromkeys(p["name"] for p in self.payloads))
        bundle = {MIME_TYPE: {"records": list(self.payloads)},
                  "text/plain": f"recorded for the audit trail: {names}"}
        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)


_current = _CellRecords()
_hooked: list[object] = []  # the IPython shell whose cells reset the group (at most one)


def _cell_records() -> _CellRecords:
    """The group of the running cell: a new one at the start of each cell (IPython's pre_execute)."""
    global _current
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook dependencies
        shell = None
    else:
        shell = get_ipython()
    if shell is None:  # plain Python: each record is its own output
        _current = _CellRecords()
    elif shell not in _hooked:
        _hooked[:] = [shell]
        shell.events.register("pre_execute", _new_cell)
        _current = _CellRecords()
    return _current


def _new_cell() -> None:
    global _current
    _current = _CellRecords()


def record(name: str, value: Any) -> None:
    """Store `value` under `name` in the running notebook's output.

    All records of one cell share one output, shown as one short line naming them."""
    payload = {"name": name, "value": to_jsonable(value)}
    json.dumps(payload)  # fail here, in the cell that records, if something is not JSON
    _cell_records().add(payload)


def _payloads(data: dict) -> list[dict]:
    """The records in one output's MIME payload: a group (`records`) or, as earlier runs wrote
    them, a single `{name, value}`."""
    payload = data.get(MIME_TYPE)
    if not isinstance(payload, dict):
        return []
    if isinstance(payload.get("records"), list):
        return [p for p in payload["records"] if isinstance(p, dict) and "name" in p]
    return [payload] if "name" in payload else []


def read_records(notebook: "str | Path | nbformat.NotebookNode") -> dict[str, Any]:
    """Every record in an executed notebook, by name; a later record wins over an earlier one."""
    import nbformat

    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(str(notebook), as_version=4)
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for payload in _payloads(output.get("data") or {}):
                found[payload["name"]] = payload.get("value")
    return found
