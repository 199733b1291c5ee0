"""Known storage-manager defects: the table in runbook_lib/data/known_defects.yaml, checked on
load, and the test of one sm version against one defect.

A defect row says which sm versions have it (`affects.from` up to, not including,
`affects.before`), which vendor builds of an affected version carry a backported fix, which SR
types it hits, what it looks like (a diagnosis verdict, or a pool finding kind) and what to
do instead of the usual advice. Applying the rows to findings is `runbook_lib.diagnosis`'s job.

`KnownDefect.applies(sm)` answers:
- "yes"   the version is affected (and no backport of that build fixes it);
- "no"    the version is outside the range, a backport fixes the build, or the host's product
          rules the range out (sm 2.x before product 8.3);
- "maybe" the version is not known, or it is an affected version with a backport and the
          release (the vendor's build number) was not given.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from runbook_lib.data_tables import TableCheck
from runbook_lib.errors import InputError
from runbook_lib.locations import DATA_DIR
from runbook_lib.pool_diagnosis import FINDING_KINDS, GC_SR_TYPES, VERDICTS
from runbook_lib.schemas import KNOWN_DEFECTS_SCHEMA
from runbook_lib.sm_version import SmVersion, release_numbers, version

TABLE = DATA_DIR / "known_defects.yaml"
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ROW_KEYS = {"id", "title", "affects", "backports", "sr_types", "symptom", "next_step", "sources"}
_REQUIRED = _ROW_KEYS - {"backports"}


@dataclass(frozen=True)
class Backport:
    version: Version
    release_from: tuple[int, ...]
    vendor: str
    source: str


@dataclass(frozen=True)
class KnownDefect:
    id: str
    title: str
    affects_from: Version
    fixed_in: Version
    backports: tuple[Backport, ...]
    sr_types: frozenset[str]
    symptom_kind: str          # "verdict" | "finding"
    symptom: str
    next_step: str
    sources: tuple[str, ...]

    def applies(self, sm: SmVersion | None) -> str:
        if sm is None or sm.version is None:
            if sm is not None and sm.below is not None and sm.below <= self.affects_from:
                return "no"
            return "maybe"
        if not self.affects_from <= sm.version < self.fixed_in:
            return "no"
        backport = next((b for b in self.backports if b.version == sm.version), None)
        if backport is None:
            return "yes"
        if sm.release is None:
            return "maybe"
        return "no" if sm.release >= backport.release_from else "yes"

    def hits(self, sr_type: str | None) -> bool | None:
        """Whether an SR of this type can show it: True, False, or None (type unknown)."""
        if sr_type is None:
            return None
        return sr_type in self.sr_types

    def fixed_in_text(self) -> str:
        extra = [f"{b.vendor}: {b.version}-{'.'.join(map(str, b.release_from))}" for b in self.backports]
        return ", ".join([f"sm {self.fixed_in}", *extra])

    def step(self, sr: str | None, vdi: str | None) -> str:
        return self.next_step.format(sr=sr or "<sr-uuid>", vdi=vdi or "the VDI")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "affects": f"sm {self.affects_from} to before {self.fixed_in}",
                "fixed_in": self.fixed_in_text(), "sr_types": sorted(self.sr_types),
                "symptom": {self.symptom_kind: self.symptom}, "sources": list(self.sources)}


@dataclass(frozen=True)
class DefectTable:
    defects: tuple[KnownDefect, ...]
    product_families: tuple[dict, ...]   # {product_before: Version, sm_before: Version, source}


_CHECK = TableCheck("known-defects table")
_fail, _text = _CHECK.fail, _CHECK.text


def _version(value: Any, where: str, key: str) -> Version:
    try:
        return version(str(value))
    except ValueError:
        raise _fail(where, f"'{key}' is not a version like 3.2.12: {value!r}") from None


def _backports(row: dict, where: str) -> tuple[Backport, ...]:
    items = row.get("backports") or []
    if not isinstance(items, list):
        raise _fail(where, "'backports' must be a list")
    out = []
    for i, item in enumerate(items):
        at = f"{where} backport {i + 1}"
        if not isinstance(item, dict):
            raise _fail(at, "must be a mapping")
        release = release_numbers(str(item.get("release_from") or ""))
        if release is None:
            raise _fail(at, f"'release_from' must start with a number: {item.get('release_from')!r}")
        out.append(Backport(_version(item.get("version"), at, "version"), release,
                            _text(item, "vendor", at), _text(item, "source", at)))
    return tuple(out)


def _sr_types(row: dict, where: str) -> frozenset[str]:
    value = row.get("sr_types")
    if value == "all":
        return frozenset(GC_SR_TYPES)
    if not isinstance(value, list) or not value or not all(isinstance(t, str) and t for t in value):
        raise _fail(where, "'sr_types' must be 'all' or a list of SR types")
    return frozenset(value)


def _symptom(row: dict, where: str) -> tuple[str, str]:
    value = row.get("symptom")
    if not isinstance(value, dict) or len(value) != 1:
        raise _fail(where, "'symptom' must be {verdict: ...} or {finding: ...}")
    (kind, what), = value.items()
    known = {"verdict": VERDICTS, "finding": FINDING_KINDS}.get(kind)
    if known is None:
        raise _fail(where, f"symptom kind {kind!r} is not 'verdict' or 'finding'")
    if what not in known:
        raise _fail(where, f"symptom {kind} {what!r} is not one of: {', '.join(known)}")
    return kind, what


def _defect(row: Any, where: str) -> KnownDefect:
    if not isinstance(row, dict):
        raise _fail(where, "must be a mapping")
    missing = sorted(_REQUIRED - set(row))
    unknown = sorted(set(row) - _ROW_KEYS)
    if missing or unknown:
        raise _fail(where, f"missing {missing}" if missing else f"unknown keys {unknown}")
    ident = _text(row, "id", where)
    if not _ID.match(ident):
        raise _fail(where, f"'id' must be kebab-case: {ident!r}")
    where = f"row {ident!r}"
    affects = row.get("affects")
    if not isinstance(affects, dict) or set(affects) != {"from", "before"}:
        raise _fail(where, "'affects' must be {from: VERSION, before: VERSION}")
    start, end = _version(affects["from"], where, "from"), _version(affects["before"], where, "before")
    if not start < end:
        raise _fail(where, f"'affects' is empty: {start} is not before {end}")
    backports = _backports(row, where)
    if any(not start <= b.version < end for b in backports):
        raise _fail(where, "a backport names a version outside 'affects'")
    sources = _CHECK.sources(row, where)
    kind, symptom = _symptom(row, where)
    step = _text(row, "next_step", where)
    try:
        step.format(sr="sr", vdi="vdi")
    except (KeyError, IndexError, ValueError) as err:
        raise _fail(where, f"'next_step' may only use {{sr}} and {{vdi}} ({err})") from None
    return KnownDefect(ident, _text(row, "title", where), start, end, backports, _sr_types(row, where),
                       kind, symptom, step, sources)


def _families(items: Any) -> tuple[dict, ...]:
    if not isinstance(items, list):
        raise _fail("product_families", "must be a list")
    out = []
    for i, item in enumerate(items):
        where = f"product_families row {i + 1}"
        if not isinstance(item, dict):
            raise _fail(where, "must be a mapping")
        out.append({"product_before": _version(item.get("product_before"), where, "product_before"),
                    "sm_before": _version(item.get("sm_before"), where, "sm_before"),
                    "source": _text(item, "source", where)})
    return tuple(out)


def parse_table(data: Any, origin: str = "known_defects.yaml") -> DefectTable:
    """The table from its parsed YAML; InputError (one line) naming the bad row and field."""
    if not isinstance(data, dict) or data.get("schema") != KNOWN_DEFECTS_SCHEMA:
        raise InputError(f"{origin} is not a {KNOWN_DEFECTS_SCHEMA} table")
    rows = data.get("defects")
    if not isinstance(rows, list):
        raise _fail("'defects'", "must be a list")
    defects = tuple(_defect(row, f"row {i + 1}") for i, row in enumerate(rows))
    ids = [d.id for d in defects]
    if len(set(ids)) != len(ids):
        raise _fail("'defects'", f"ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
    return DefectTable(defects, _families(data.get("product_families") or []))


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> DefectTable:
    from runbook_lib.input_files import read_yaml

    return parse_table(read_yaml(Path(path), "known-defects table"), str(path))


def load_table(path: str | Path | None = None) -> DefectTable:
    """The shipped table (or one at `path`), checked; read once per process."""
    return _load_cached(str(path or TABLE))
