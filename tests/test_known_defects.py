"""The known-defects table: loaded and checked, and one sm version tested against a row."""

import copy

import pytest
import yaml

from runbook_lib.errors import InputError
from runbook_lib.known_defects import TABLE, load_table, parse_table
from runbook_lib.sm_version import SmVersion, parse_sm_version, version

RAW = yaml.safe_load(TABLE.read_text())


def _defect(ident):
    return next(d for d in load_table().defects if d.id == ident)


def test_the_shipped_table_loads_with_a_source_for_every_row():
    table = load_table()
    assert {d.id for d in table.defects} >= {"filesr-live-coalesce-units", "gc-no-space-key-left"}
    assert all(d.sources and d.title and d.next_step for d in table.defects)
    assert table.product_families[0]["sm_before"] == version("3.0.0")


@pytest.mark.parametrize("text, applies", [
    ("3.0.10", "no"), ("3.0.11", "yes"), ("3.2.5-1.xs8", "yes"), ("3.2.11-1.xs8", "yes"), ("3.2.12-1.xs8", "no"),
    ("4.1.10", "no"), ("2.30.8", "no"),
    ("3.2.3-1.7.xcpng8.3", "yes"), ("3.2.3-1.8.xcpng8.3", "no"), ("3.2.3-3.xcpng8.3", "no"),
    ("3.2.3", "maybe"),                 # XCP-ng fixed some 3.2.3 builds: the release decides
    ("sm-3.2.3-1.xs8.x86_64", "yes"),   # XenServer's 3.2.3-1 is before XCP-ng's 1.8
])
def test_filesr_defect_by_version(text, applies):
    assert _defect("filesr-live-coalesce-units").applies(parse_sm_version(text)) == applies


def test_unknown_versions_are_maybe_unless_the_product_rules_them_out():
    row = _defect("filesr-live-coalesce-units")
    assert row.applies(None) == "maybe"
    sm2 = SmVersion(text=None, version=None, release=None, source="XenAPI", below=version("3.0.0"))
    assert row.applies(sm2) == "no"
    unknown = SmVersion(text=None, version=None, release=None, source="XenAPI", product="XCP-ng 8.3.0")
    assert row.applies(unknown) == "maybe"


def test_sr_types_of_the_filesr_row_are_the_file_srs_only():
    row = _defect("filesr-live-coalesce-units")
    assert row.hits("nfs") and row.hits("ext") and row.hits("largeblock")
    assert row.hits("lvm") is False and row.hits("lvmoiscsi") is False and row.hits(None) is None
    assert _defect("gc-no-space-key-left").hits("lvm")      # "all": every SR type the GC works on


def test_the_gc_no_space_row_and_its_backport():
    row = _defect("gc-no-space-key-left")
    assert [row.applies(parse_sm_version(v)) for v in ("3.2.10", "3.2.11", "3.2.12-16.1", "3.2.12-17.xs8",
                                                       "4.1.7", "4.1.8")] == ["no", "yes", "yes", "no", "yes", "no"]


def _bad(edit):
    data = copy.deepcopy(RAW)
    edit(data)
    with pytest.raises(InputError) as err:
        parse_table(data)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_bad_row_is_refused_in_one_line_naming_row_and_field():
    assert "'next_step'" in _bad(lambda d: d["defects"][0].pop("next_step"))
    assert "'from'" in _bad(lambda d: d["defects"][0]["affects"].update({"from": "three"}))
    assert "empty" in _bad(lambda d: d["defects"][0]["affects"].update({"from": "3.2.12"}))
    assert "symptom" in _bad(lambda d: d["defects"][0].update(symptom={"verdict": "broken"}))
    assert "{sr}" in _bad(lambda d: d["defects"][0].update(next_step="do {it}"))
    assert "outside" in _bad(lambda d: d["defects"][0]["backports"][0].update(version="3.2.12"))
    assert "sources" in _bad(lambda d: d["defects"][0].update(sources=[]))
    assert "repeat" in _bad(lambda d: d["defects"].append(copy.deepcopy(d["defects"][0])))
    assert "unknown keys" in _bad(lambda d: d["defects"][0].update(severity="high"))
    assert "kebab" in _bad(lambda d: d["defects"][0].update(id="Not_An_Id"))
    with pytest.raises(InputError):
        parse_table({"schema": "something/1", "defects": []})


def test_one_more_row_is_one_more_defect():
    data = copy.deepcopy(RAW)
    data["defects"].append({
        "id": "made-up-lvm-defect", "title": "a defect made up for this test",
        "affects": {"from": "4.0.0", "before": "4.1.0"}, "sr_types": ["lvm"],
        "symptom": {"verdict": "stuck-no-space"}, "next_step": "update sm on {sr}", "sources": ["this test"]})
    table = parse_table(data)
    new = table.defects[-1]
    assert new.applies(parse_sm_version("4.0.3")) == "yes" and new.step("SR1", None) == "update sm on SR1"
