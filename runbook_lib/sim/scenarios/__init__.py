"""Scenarios shipped with the simulator, and reading scenario files (docs/simulator.md)."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from runbook_lib.errors import InputError, UsageError
from runbook_lib.input_files import check_file, read_yaml

HERE = Path(__file__).resolve().parent
_FILE_SUFFIXES = (".yaml", ".yml", ".json")

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
          "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?(?:I?B)?)\s*$", re.I)
_RATE = re.compile(r"^(.*?)\s*/\s*(s|m|min|h|d)\s*$", re.I)
_PER = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_NOW_MINUS = re.compile(r"^now(?:\s*-\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|min|h|d))?$", re.I)
DEFAULT_CLOCK_START = "now-24h"  # SMlog lines carry no year: a clock before now dates them right


def list_scenarios() -> list[str]:
    """Names of the scenarios shipped in the package."""
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file's path: a path as given (it must be a regular file), else a shipped name."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix.lower() in _FILE_SUFFIXES or "/" in text or os.path.lexists(candidate):
        return check_file(candidate, "scenario")
    shipped = HERE / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise InputError(f"unknown scenario {name_or_path!r}",
                         hint="shipped: " + ", ".join(list_scenarios()))
    return shipped


def load_scenario(name_or_path: str | Path | dict) -> dict:
    """The scenario as a dict (a dict passes through, for tests that build one inline).

    A file is checked for the scenario's shape first (check_scenario), so a plan, an
    inventory or an empty mapping is refused instead of serving an empty pool.
    """
    if isinstance(name_or_path, dict):
        return name_or_path
    path = scenario_path(name_or_path)
    data = read_yaml(path, "scenario")
    check_scenario(data, str(path))
    data.setdefault("name", path.stem)
    return data


_LISTS = ("hosts", "networks", "srs", "vdis", "vms")   # lists of mappings
_MAPPINGS = ("pool", "credentials", "clock", "smlog", "gc", "sm")
_REQUIRED = {"srs": ("uuid",), "vdis": ("uuid", "sr")}
_NOT_A_SCENARIO = "a scenario lists srs:, vdis: and vms:; see docs/simulator.md"


def _kind(value) -> str:
    return {"int": "a number", "float": "a number", "str": "a string", "bool": "true/false", "list": "a list",
            "dict": "a mapping"}.get(type(value).__name__, f"a {type(value).__name__}")


def check_scenario(data, origin: str) -> None:
    """InputError (one line) unless `data` has a scenario's shape: a mapping with a non-empty
    `srs` list (or a `generate:` block), each documented list a list of mappings, each
    documented section a mapping; SRs and VDIs carry their required keys."""
    def refuse(why: str, hint: str = _NOT_A_SCENARIO) -> None:
        raise InputError(f"{origin} is not a simulator scenario: {why} ({hint})")

    if not isinstance(data, dict):
        refuse("it is empty" if data is None else f"it holds {_kind(data)}, not a mapping")
    _check_not_other_file(data, origin, refuse)
    if "generate" in data:
        if data["generate"] is not None and not isinstance(data["generate"], dict):
            refuse("'generate' is not a mapping of counts", "e.g. generate: {hosts: 2, srs: 20, vms: 500}")
        return
    _check_mappings(data, refuse)
    _check_lists(data, refuse)
    if not data.get("srs"):
        refuse("no 'srs' list" if "srs" not in data else "its 'srs' list is empty")
    if data.get("faults") is not None and not isinstance(data["faults"], list):
        refuse(f"'faults' is {_kind(data['faults'])}, not a list",
               "e.g. faults: [vm-wont-stop, {copy-fails-at: 0.6}]")


def _check_not_other_file(data: dict, origin: str, refuse) -> None:
    """Refuse another runbook file (its `schema:` starts with "runbook.")."""
    schema = data.get("schema")
    if isinstance(schema, str) and schema.startswith("runbook."):
        if schema.startswith("runbook.inventory/"):
            refuse(f"it is a {schema} file",
                   f"turn it into one with: runbook sim snapshot --inventory {origin} --out SCENARIO.yaml")
        refuse(f"it is a {schema} file, not a pool")


def _check_mappings(data: dict, refuse) -> None:
    """Each documented section present is a mapping."""
    for key in _MAPPINGS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            refuse(f"'{key}' is {_kind(data[key])}, not a mapping")


def _check_lists(data: dict, refuse) -> None:
    """Each documented list present is a list of mappings carrying its required keys."""
    for key in _LISTS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            refuse(f"'{key}' is {_kind(value)}, not a list")
        for i, item in enumerate(value):
            _check_item(key, i, item, refuse)


def _check_item(key: str, i: int, item, refuse) -> None:
    if not isinstance(item, dict):
        refuse(f"{key}[{i}] is {_kind(item)}, not a mapping")
    missing = [k for k in _REQUIRED.get(key, ()) if item.get(k) in (None, "")]
    if missing:
        refuse(f"{key}[{i}] has no {' and no '.join(repr(k) for k in missing)}",
               "each SR needs a uuid, each VDI a uuid and an sr; see docs/simulator.md")


def size(value, field: str = "size") -> int:
    """Bytes from 123, '2020G', '1.5 TiB', '512M'."""
    if isinstance(value, bool):
        raise InputError(f"{field}: not a size: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise InputError(f"{field}: not a size: {value!r}")
    unit = m.group(2).upper().replace("B", "") if m.group(2).upper() not in ("B",) else ""
    unit = {"": "", "K": "K", "M": "M", "G": "G", "T": "T", "KI": "K", "MI": "M", "GI": "G",
            "TI": "T"}.get(unit, None)
    if unit is None:
        raise InputError(f"{field}: unknown unit in {value!r}")
    return int(float(m.group(1)) * _UNITS[unit])


def rate(value, field: str = "rate") -> float:
    """Bytes per second from 5242880, '5M' (per second) or '20M/h'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _RATE.match(str(value))
    if m:
        return size(m.group(1), field) / _PER[m.group(2).lower()]
    return float(size(value, field))


def clock_start(value: str | dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """A UTC start time from an ISO date, `now`, or `now-24h` / `now-90m` / `now-2d`."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    text = str(value).strip()
    m = _NOW_MINUS.match(text)
    if m:
        now = now or dt.datetime.now(dt.timezone.utc)
        back = float(m.group(1)) * _PER[m.group(2).lower()] if m.group(1) else 0.0
        return now - dt.timedelta(seconds=back)
    try:
        start = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"clock start {text!r} is not an ISO date (2026-11-25T08:00:00Z) or now-<N>h") from None
    return start if start.tzinfo else start.replace(tzinfo=dt.timezone.utc)


def with_clock_start(data: dict, start: str | dt.datetime) -> dict:
    """A copy of a loaded scenario whose simulated clock starts at `start` (see clock_start).

    `make demo` and `runbook sim serve` start a day back, so the SMlog (no year in its lines)
    and the run times tell one story; the scenario's own start stays for tests.
    """
    when = clock_start(start).astimezone(dt.timezone.utc)
    return {**data, "clock": {**(data.get("clock") or {}), "start": when.strftime("%Y-%m-%dT%H:%M:%SZ")}}
