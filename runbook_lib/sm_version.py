"""The storage manager's (sm) version: parsed from what the admin has, with where it came from.

Where it can be read, best first:
- a parameter: `--sm-version` (CLI), `sm_version` (notebook 01), as `rpm -q sm` prints it on
  the host (`sm-3.2.12-3.1.xcpng8.3.x86_64`), or just its version (`3.2.12`, `3.2.3-1.8`);
- a host status report: its package list (`rpm -qa`, read by `runbook_lib.status_report`);
- XenAPI, which does not publish the package version. Every storage driver's `SM.version` is
  the driver's own `driver_version`, "1.0" in every sm release read (xapi-project/sm and
  xcp-ng/sm DRIVER_INFO); it is used only when it has the shape of a package version
  (three numbers or more). `host.software_version` names the product release
  (`product_brand`, `product_version`): before product 8.3 every release ships sm 2.x
  (the `product_families` rows of runbook_lib/data/known_defects.yaml), which rules out the
  defects of sm 3 and later; from 8.3 on the product does not say which sm it runs.

An RPM version is `VERSION-RELEASE`: the version is sm's own (compared as a version), the
release the vendor's build (`3.1.xcpng8.3`, `17.xs8`): its leading numbers decide whether a
vendor build of an affected version carries a backported fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from runbook_lib.errors import UsageError

ARCHES = ("x86_64", "noarch", "i686", "aarch64")
_VERSION = re.compile(r"^\d+(?:\.\d+)*$")
_PACKAGE_SHAPE = re.compile(r"^\d+\.\d+\.\d+")  # a package version, not a driver's "1.0"
HINT = "e.g. 3.2.12 or 3.2.12-3.1.xcpng8.3, as `rpm -q sm` prints it on the host"


@dataclass(frozen=True)
class SmVersion:
    """What is known of sm's version. `version` is None when only a bound is known (`below`)."""

    text: str | None                  # as read: "3.2.3-1.7.xcpng8.3", or None
    version: Version | None           # sm's own version (3.2.3)
    release: tuple[int, ...] | None   # the release's leading numbers ((1, 7)); None: not given
    source: str                       # where it was read ("parameter", "status report X", "XenAPI ...")
    below: Version | None = None      # only known to be older than this (from the product)
    product: str | None = None        # "XCP-ng 8.3.0", when read from a pool

    @property
    def known(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        """One line for a report: "sm 3.2.3-1.7.xcpng8.3 (parameter)"."""
        if self.version is not None:
            return f"sm {self.text} ({self.source})"
        if self.below is not None:
            return f"sm older than {self.below} ({self.product or 'product'}; {self.source})"
        return f"sm version unknown ({self.product + '; ' if self.product else ''}{self.source})"

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "version": str(self.version) if self.version else None,
                "release": ".".join(map(str, self.release)) if self.release else None,
                "source": self.source, "below": str(self.below) if self.below else None,
                "product": self.product, "summary": self.describe()}


def version(text: str) -> Version:
    """A dotted version (`3.2.12`) as a comparable Version; ValueError for anything else."""
    text = str(text).strip()
    if not _VERSION.match(text):
        raise ValueError(f"not a dotted version: {text!r}")
    try:
        return Version(text)
    except InvalidVersion:  # cannot happen for digits and dots; kept for the library's contract
        raise ValueError(f"not a dotted version: {text!r}") from None


def release_numbers(text: str | None) -> tuple[int, ...] | None:
    """The leading numbers of an RPM release: "3.1.xcpng8.3" -> (3, 1), "17.xs8" -> (17,)."""
    if not text:
        return None
    numbers = []
    for part in str(text).split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers) or None


def split_package(text: str) -> tuple[str | None, str, str | None]:
    """(name, version, release) of `sm-3.2.12-3.1.xcpng8.3.x86_64`, `3.2.12-3.1`, `v3.2.12`."""
    text = str(text).strip()
    for arch in ARCHES:
        if text.endswith("." + arch):
            text = text[: -len(arch) - 1]
            break
    name = None
    match = re.match(r"^([A-Za-z][\w+.-]*?)-(\d[\w.]*)(?:-([\w.]+))?$", text)
    if match:
        name, ver, rel = match.groups()
    else:
        ver, _, rel = text.lstrip("vV").partition("-")
        rel = rel or None
    return name, ver, rel


def parse_sm_version(text: str, source: str = "parameter") -> SmVersion:
    """An sm version as the admin gives it; UsageError (one line) when it is not one."""
    raw = str(text or "").strip()
    name, ver, rel = split_package(raw)
    if name not in (None, "sm"):
        raise UsageError(f"{raw!r} is the package {name!r}, not sm ({HINT})")
    try:
        parsed = version(ver)
    except ValueError:
        raise UsageError(f"not an sm version: {raw!r} ({HINT})") from None
    shown = f"{ver}-{rel}" if rel else ver
    return SmVersion(text=shown, version=parsed, release=release_numbers(rel), source=source)


def from_package_list(packages: dict[str, str], source: str) -> SmVersion | None:
    """sm's version from a package list {name: "version-release"} (None when sm is not in it)."""
    full = packages.get("sm")
    if not full:
        return None
    return parse_sm_version(full, source)


def from_sm_records(sm: Any) -> SmVersion | None:
    """From XenAPI `SM` records (DataFrame with `type`, `version`): only a version shaped like
    a package version counts; the drivers' constant "1.0" says nothing about sm."""
    if sm is None or len(sm) == 0 or "version" not in sm:
        return None
    for text in sm["version"].dropna().astype(str):
        if _PACKAGE_SHAPE.match(text.strip()):
            try:
                return parse_sm_version(text, "XenAPI SM records")
            except UsageError:
                continue
    return None


def from_products(hosts: Any, families: list[dict]) -> SmVersion | None:
    """What the hosts' product versions say (DataFrame with `product_brand`, `product_version`):
    a bound when every host's product predates a family's limit, else only the product."""
    if hosts is None or len(hosts) == 0 or "product_version" not in hosts:
        return None
    products, bounds = [], []
    for brand, text in zip(hosts["product_brand"], hosts["product_version"]):
        if not isinstance(text, str) or not text:
            return None
        products.append(f"{brand or 'product'} {text}")
        try:
            product = version(text)
        except ValueError:
            bounds.append(None)
            continue
        bounds.append(next((f["sm_before"] for f in families if product < f["product_before"]), None))
    shown = ", ".join(sorted(set(products)))
    if bounds and all(b is not None for b in bounds):
        return SmVersion(text=None, version=None, release=None, source="XenAPI host.software_version",
                         below=max(bounds), product=shown)
    return SmVersion(text=None, version=None, release=None, source="XenAPI host.software_version",
                     product=shown)


def choose(*candidates: SmVersion | None) -> SmVersion | None:
    """The first candidate that knows the version, else the first that knows a bound, else any."""
    given = [c for c in candidates if c is not None]
    for pick in (lambda c: c.known, lambda c: c.below is not None, lambda c: True):
        found = next((c for c in given if pick(c)), None)
        if found is not None:
            return found
    return None
