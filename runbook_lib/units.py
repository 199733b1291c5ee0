"""Sizes as people read them: one formatter for the whole package."""

from __future__ import annotations

GIB = 2**30


def gib(n: int | float, digits: int = 1) -> str:
    """Bytes as "1,234.5 GiB"."""
    return f"{float(n) / GIB:,.{digits}f} GiB"
