"""Scenarios shipped with the simulator, and reading scenario files (docs/simulator.md)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import yaml

from runbook_lib.errors import InputError, UsageError

HERE = Path(__file__).resolve().parent

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
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise InputError(f"scenario file not found: {candidate}")
        return candidate
    shipped = HERE / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise InputError(f"unknown scenario {name_or_path!r}",
                         hint="shipped: " + ", ".join(list_scenarios()))
    return shipped


def load_scenario(name_or_path: str | Path | dict) -> dict:
    """The scenario as a dict (a dict passes through, for tests that build one inline)."""
    if isinstance(name_or_path, dict):
        return name_or_path
    path = scenario_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read scenario {path}: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise InputError(f"scenario {path} is not a mapping")
    data.setdefault("name", path.stem)
    return data


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
