"""The storage manager's version, from a parameter, a package list or XenAPI (sm_version.py)."""

import pandas as pd
import pytest

from runbook_lib.errors import UsageError
from runbook_lib.sm_version import (
    choose,
    from_package_list,
    from_products,
    from_sm_records,
    parse_sm_version,
    release_numbers,
    split_package,
    version,
)

FAMILIES = [{"product_before": version("8.3"), "sm_before": version("3.0.0")}]


@pytest.mark.parametrize("text, expected", [
    ("sm-3.2.12-3.1.xcpng8.3.x86_64", ("sm", "3.2.12", "3.1.xcpng8.3")),
    ("3.2.12-17.xs8", (None, "3.2.12", "17.xs8")),
    ("v3.2.11", (None, "3.2.11", None)),
    ("sm-fairlock-3.2.12-3.xs8.noarch", ("sm-fairlock", "3.2.12", "3.xs8")),
])
def test_split_package(text, expected):
    assert split_package(text) == expected


def test_parse_keeps_version_and_release_numbers():
    sm = parse_sm_version("sm-3.2.3-1.7.xcpng8.3.x86_64")
    assert (str(sm.version), sm.release, sm.text, sm.source) == ("3.2.3", (1, 7), "3.2.3-1.7.xcpng8.3", "parameter")
    assert parse_sm_version("3.2.12").release is None
    assert version("3.2.12") > version("3.2.3")        # compared as versions, not as text
    assert release_numbers("17.9.xcpng8.3") == (17, 9) and release_numbers("xs8") is None


@pytest.mark.parametrize("bad", ["latest", "", "3.2.x", "sm-fairlock-3.2.12-1", "1.0 beta"])
def test_bad_versions_are_one_line_usage_errors(bad):
    with pytest.raises(UsageError) as err:
        parse_sm_version(bad)
    assert "\n" not in str(err.value) and "rpm -q sm" in str(err.value)


def test_package_list_and_sm_records():
    assert str(from_package_list({"sm": "3.2.12-3.1.xcpng8.3", "xapi": "1"}, "report").version) == "3.2.12"
    assert from_package_list({"xapi": "1"}, "report") is None
    # every real driver says "1.0": that is not sm's version
    drivers = pd.DataFrame({"type": ["nfs", "lvm"], "version": ["1.0", "1.0"]})
    assert from_sm_records(drivers) is None
    assert str(from_sm_records(pd.DataFrame({"type": ["nfs"], "version": ["3.2.11"]})).version) == "3.2.11"


def test_products_bound_the_version_only_before_8_3():
    old = pd.DataFrame({"product_brand": ["XenServer", "XCP-ng"], "product_version": ["8.2.1", "8.2.1"]})
    bound = from_products(old, FAMILIES)
    assert str(bound.below) == "3.0.0" and bound.version is None and "XenServer 8.2.1" in bound.product
    mixed = pd.DataFrame({"product_brand": ["XCP-ng", "XCP-ng"], "product_version": ["8.2.1", "8.3.0"]})
    assert from_products(mixed, FAMILIES).below is None   # a rolling upgrade: one host may run sm 3
    assert from_products(pd.DataFrame({"product_brand": ["X"], "product_version": [None]}), FAMILIES) is None


def test_choose_prefers_a_known_version_then_a_bound():
    bound = from_products(pd.DataFrame({"product_brand": ["XCP-ng"], "product_version": ["8.2.1"]}), FAMILIES)
    given = parse_sm_version("3.2.5")
    assert choose(None, bound, given) is given
    assert choose(None, bound) is bound
    assert choose(None, None) is None
    assert "older than 3.0.0" in bound.describe() and "sm 3.2.5 (parameter)" == given.describe()
