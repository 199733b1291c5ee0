"""The table of releases the suite was checked against (data/checked_versions.yaml) and the verdict per host."""

import pytest
import yaml

from runbook_lib.checked_versions import TABLE, api_text, judge, load_table, parse_table
from runbook_lib.errors import InputError


@pytest.fixture(scope="module")
def table():
    return load_table()


@pytest.mark.parametrize("brand, version, api, status, says", [
    ("XCP-ng", "8.3.0", "2.21", "ok", "checked as XCP-ng 8.3"),
    ("xcp-ng", "8.3.1", "2.21", "ok", "checked as XCP-ng 8.3"),          # brand without case, any 8.3.x
    ("XenServer", "8.4.0", "2.21", "ok", "checked as XenServer 8"),       # XenServer 8: by API version
    ("Citrix Hypervisor", "8.2.1", "2.15", "ok", "checked as Citrix Hypervisor 8.2"),
    ("XenServer", "8.2.1", "2.15", "ok", "checked as Citrix Hypervisor 8.2"),
    ("XenServer", "8.2.1", "2.21", "warning", "does not belong with Citrix Hypervisor 8.2 (API 2.15)"),
    ("XCP-ng", "8.3.0", "2.15", "warning", "does not belong with XCP-ng 8.3 (API 2.21)"),
    ("XenServer", "9.0.0", "2.23", "warning", "not a release this suite was checked against"),
    ("XCP-ng", "8.2.1", "2.15", "warning", "not a release this suite was checked against"),
    (None, None, None, "warning", "unknown product (no version), API unknown: not a release"),
])
def test_judge(table, brand, version, api, status, says):
    got, line = judge(table, brand, version, api)
    assert got == status and says in line, line
    assert "\n" not in line


def test_api_text():
    assert api_text(2, 21) == "2.21" and api_text(None, 21) is None and api_text(2, None) is None


def test_the_shipped_table_names_its_sources(table):
    assert {r.name for r in table} >= {"XCP-ng 8.3", "XenServer 8"}
    assert all(r.sources and r.checked for r in table)


def _rows(**change):
    data = yaml.safe_load(TABLE.read_text())
    data["releases"][0].update(change)
    return data


@pytest.mark.parametrize("data, says", [
    ({"schema": "runbook.other/1"}, "is not a runbook.checked-versions/1 table"),
    ({"schema": "runbook.checked-versions/1", "releases": []}, "'releases': must be a non-empty list"),
    (_rows(api="2"), "row 'XCP-ng 8.3': 'api' must be MAJOR.MINOR"),
    (_rows(product_version="8.x"), "'product_version' must be dotted numbers or null"),
    (_rows(brands=[]), "'brands' must list product_brand values"),
    (_rows(sources=[]), "'sources' must list where each fact comes from"),
    (_rows(extra=1), "keys must be"),
])
def test_a_malformed_table_is_refused_in_one_line(data, says):
    with pytest.raises(InputError) as err:
        parse_table(data)
    assert says in str(err.value) and "\n" not in str(err.value)
