"""The product releases this suite has been checked against: the table in
runbook_lib/data/checked_versions.yaml, checked on load, and the verdict for one host.

`judge(table, brand, product_version, api)` answers with a status and one line:
- "ok"       a row with this brand and product version (or any version, for a row without
             one) reports this API version: the release was checked;
- "warning"  no row fits (not checked: the suite may still work, nobody has looked), or a row
             fits by brand and product version but names another API version (the release and
             the API version do not belong together: an unusual build, or the table is wrong).
An unknown version is never a problem: it is a reason to look, not a breach.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook_lib.data_tables import TableCheck
from runbook_lib.errors import InputError
from runbook_lib.locations import DATA_DIR
from runbook_lib.schemas import CHECKED_VERSIONS_SCHEMA

TABLE = DATA_DIR / "checked_versions.yaml"
_API = re.compile(r"^[0-9]+\.[0-9]+$")
_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")
_ROW_KEYS = {"name", "brands", "product_version", "api", "checked", "sources"}


@dataclass(frozen=True)
class Release:
    name: str
    brands: frozenset[str]        # lower case
    product_version: str | None   # leading dotted parts, None: any
    api: str                      # "2.21"
    checked: str
    sources: tuple[str, ...]

    def fits_product(self, brand: str | None, product_version: str | None) -> bool:
        if (brand or "").strip().lower() not in self.brands:
            return False
        if self.product_version is None:
            return True
        parts = (product_version or "").strip().split(".")
        wanted = self.product_version.split(".")
        return parts[:len(wanted)] == wanted


_CHECK = TableCheck("checked-versions table")
_fail, _text = _CHECK.fail, _CHECK.text


def _release(row: Any, where: str) -> Release:
    if not isinstance(row, dict):
        raise _fail(where, "must be a mapping")
    if set(row) != _ROW_KEYS:
        raise _fail(where, f"keys must be {sorted(_ROW_KEYS)}, found {sorted(row)}")
    name = _text(row, "name", where)
    where = f"row {name!r}"
    brands = row["brands"]
    if not isinstance(brands, list) or not brands or not all(isinstance(b, str) and b.strip() for b in brands):
        raise _fail(where, "'brands' must list product_brand values")
    version = row["product_version"]
    if version is not None and not _VERSION.match(str(version)):
        raise _fail(where, f"'product_version' must be dotted numbers or null: {version!r}")
    api = str(row["api"])
    if not _API.match(api):
        raise _fail(where, f"'api' must be MAJOR.MINOR: {api!r}")
    return Release(name, frozenset(b.strip().lower() for b in brands), None if version is None else str(version),
                   api, _text(row, "checked", where), _CHECK.sources(row, where))


def parse_table(data: Any, origin: str = "checked_versions.yaml") -> tuple[Release, ...]:
    """The rows from the parsed YAML; InputError (one line) naming the bad row and field."""
    if not isinstance(data, dict) or data.get("schema") != CHECKED_VERSIONS_SCHEMA:
        raise InputError(f"{origin} is not a {CHECKED_VERSIONS_SCHEMA} table")
    rows = data.get("releases")
    if not isinstance(rows, list) or not rows:
        raise _fail("'releases'", "must be a non-empty list")
    return tuple(_release(row, f"row {i + 1}") for i, row in enumerate(rows))


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> tuple[Release, ...]:
    from runbook_lib.input_files import read_yaml

    return parse_table(read_yaml(Path(path), "checked-versions table"), path)


def load_table(path: str | Path | None = None) -> tuple[Release, ...]:
    """The shipped table (or one at `path`), checked; read once per process."""
    return _load_cached(str(path or TABLE))


def api_text(major: int | None, minor: int | None) -> str | None:
    return None if major is None or minor is None else f"{major}.{minor}"


def judge(table: tuple[Release, ...], brand: str | None, product_version: str | None,
          api: str | None) -> tuple[str, str]:
    """(status, one line) for a host reporting this product and API version."""
    product = f"{brand or 'unknown product'} {product_version or '(no version)'}"
    fitting = [r for r in table if r.fits_product(brand, product_version)]
    # a row naming a product version speaks for that release, whatever API it reports
    specific = [r for r in fitting if r.product_version is not None]
    for release in specific or fitting:
        if release.api == api:
            return "ok", f"{product}, API {api}: checked as {release.name}, with {release.checked}"
    if specific:
        expected = ", ".join(sorted({r.api for r in specific}))
        return "warning", (f"{product} reports API {api or 'unknown'}, which does not belong with "
                           f"{specific[0].name} (API {expected}): an unusual build; the suite was "
                           "checked against that release's API only")
    return "warning", (f"{product}, API {api or 'unknown'}: not a release this suite was checked against "
                       "(runbook_lib/data/checked_versions.yaml); it may work, nobody has looked")
