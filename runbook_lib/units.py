"""Byte sizes for people: every way the suite prints a size, in one place.

Sizes are int bytes everywhere else (docs/sizing.md); they become GiB only when shown, through
these functions. Import-light on purpose (no pandas): the simulator and the CLI use it too.
"""

from __future__ import annotations

import math
import numbers

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40


def is_missing(n) -> bool:
    """None, NaN, pandas' NA/NaT, or anything else that is not a number."""
    return not isinstance(n, numbers.Real) or math.isnan(n)


def gib(n, digits: int = 1, missing: str = "") -> str:
    """`1,234.5 GiB`: the suite's own way (tables, reports, messages)."""
    return missing if is_missing(n) else f"{n / GIB:,.{digits}f} GiB"


def gib_or_mib(n, missing: str = "unknown") -> str:
    """`1,234.5 GiB`, or `512 MiB` below 1 GiB (zero reads `0.0 GiB`): for sizes of any scale in prose."""
    if is_missing(n):
        return missing
    return gib(n) if abs(n) >= GIB or n == 0 else f"{n / MIB:,.0f} MiB"


def mib_per_s(bytes_per_s, missing: str = "") -> str:
    """`13.5 MiB/s`: a copy or coalesce rate."""
    return missing if is_missing(bytes_per_s) else f"{bytes_per_s / MIB:,.1f} MiB/s"


def gib_short(n, missing: str = "-") -> str:
    """`12.5G`: a narrow column of the SMlog tables (one decimal, no separator)."""
    return missing if is_missing(n) else f"{n / GIB:.1f}G"


def gib_number(n, digits: int = 3) -> float:
    """GiB as a rounded float for DataFrame columns; NaN when unknown."""
    return float("nan") if is_missing(n) else round(float(n) / GIB, digits)


def gc_gib(n) -> str:
    """The GC's way of printing a size, `2023.953G`: GiB with three decimals, `?` when unknown.

    Deliberately not `gib()`: it is what SMlog shows, so an operator can match the two.
    """
    return "?" if is_missing(n) else f"{n / GIB:.3f}G"
