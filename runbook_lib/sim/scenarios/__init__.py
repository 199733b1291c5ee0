"""Scenarios shipped with the simulator, and reading scenario files (docs/simulator.md)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from runbook_lib.errors import InputError

HERE = Path(__file__).resolve().parent

_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40,
          "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?(?:I?B)?)\s*$", re.I)
_RATE = re.compile(r"^(.*?)\s*/\s*(s|m|min|h|d)\s*$", re.I)
_PER = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


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
