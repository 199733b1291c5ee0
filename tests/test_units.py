"""runbook_lib.units: the one place sizes become text."""

import math

import pandas as pd

from runbook_lib.units import GIB, MIB, gc_gib, gib, gib_number, gib_or_mib, gib_short, is_missing, mib_per_s


def test_missing_values_are_none_nan_and_pandas_na():
    assert all(is_missing(v) for v in (None, float("nan"), pd.NA, pd.NaT, "12"))
    assert not any(is_missing(v) for v in (0, 1.5, GIB))


def test_gib_has_a_thousands_separator_and_chosen_digits():
    assert gib(1234.5 * GIB) == "1,234.5 GiB"
    assert gib(2 * GIB, 3) == "2.000 GiB" and gib(None) == "" and gib(None, missing="-") == "-"


def test_gib_or_mib_switches_below_one_gib():
    assert gib_or_mib(512 * MIB) == "512 MiB" and gib_or_mib(3 * GIB) == "3.0 GiB"
    assert gib_or_mib(0) == "0.0 GiB" and gib_or_mib(None) == "unknown"


def test_short_number_and_gc_forms():
    assert gib_short(12.5 * GIB) == "12.5G" and gib_short(None) == "-" and gib_short(None, missing="?") == "?"
    assert gib_number(1.23456 * GIB) == 1.235 and math.isnan(gib_number(None))
    assert gc_gib(2020 * GIB) == "2020.000G" and gc_gib(float("nan")) == "?"


def test_rates_in_mib_per_second():
    assert mib_per_s(14128182.0) == "13.5 MiB/s" and mib_per_s(2048 * MIB) == "2,048.0 MiB/s"
    assert mib_per_s(None) == "" and mib_per_s(float("nan"), missing="-") == "-"
