"""Release families told from line shapes: markers per record, the newest family wins."""

import pytest

from runbook_lib.smlog import read_smlog
from runbook_lib.smlog.families import FAMILIES, FAMILY_ORDER, MARKERS, UNKNOWN, family_of, label, release_markers


def rec(kind, message, **extra):
    return {"kind": kind, "message": message, **extra}


@pytest.mark.parametrize("record,markers", [
    (rec("gc_kick", "Kicking SMGC@4f4e4d4c-0a0b-4c0d-8e0f-101112131415..."), ["kick-smgc"]),
    (rec("gc_kick", "Kicking GC"), []),  # every release still logs it somewhere
    (rec("coalesce_tracker", "Performed 4 iterations"), ["tracker-summary"]),
    (rec("coalesce_tracker", "Minimum size acheived was 1"), ["tracker-acheived"]),
    (rec("coalesce_tracker", "Calculated moving average as 12.0"), ["moving-average"]),
    (rec("insufficient_space", "Could not coalesce due to a lack of space in SR x"), ["no-space-sr"]),
    (rec("insufficient_space", "No space to coalesce x (free space: 1)"), []),
    (rec("gc_stop", "Stopping SMGC@x..."), ["stop-smgc"]),
    (rec("gc_stop", "GC: recieved SIGTERM"), ["sigterm-handler"]),
    (rec("gc_stop", "Aborted"), []),
    (rec("sr_tree", "SR f1f2 ('x') (3 VDIs in 1 COW trees): "), ["cow-trees"]),
    (rec("coalesce_running", "Running COW coalesce on x"), ["cow-coalesce"]),
    (rec("coalesce_running", "Remote coalesce for /x"), ["remote-coalesce"]),
    (rec("exception", "coalesce: EXCEPTION util.SMException, COW image x corrupted", exc_type="util.SMException"),
     ["cow-corrupted"]),
    (rec("no_progress", "x", exc_type="sm.core.util.SMException"), ["sm-core-exception"]),
    (rec("exception", "x", exc_type="util.CommandException"), []),
    (rec("coalesce_start", "Coalescing a -> b", printout_style="lvm-3"), ["printout-lvm-3"]),
    (rec("coalesce_start", "Coalescing a -> b", printout_style="file-cow"), ["printout-file-cow"]),
    (rec("coalesce_start", "Coalescing a -> b", printout_style="file"), []),
])
def test_markers_of_one_record(record, markers):
    assert release_markers(record) == markers


def test_every_marker_belongs_to_a_known_family_or_to_none():
    assert {m.family for m in MARKERS.values()} <= set(FAMILIES) | {None}
    assert list(FAMILIES) == list(FAMILY_ORDER)


@pytest.mark.parametrize("markers,family", [
    ([], UNKNOWN),
    (["tracker-acheived"], UNKNOWN),  # tells a range inside the families, not a family
    (["printout-lvm-3"], "legacy"),
    (["printout-lvm-3", "kick-smgc"], "sm3-4"),  # a log that spans an update: the host runs the newer one
    (["kick-smgc", "printout-lvm-cow", "moving-average"], "qcow2"),
    (["not-a-marker"], UNKNOWN),
])
def test_newest_family_wins(markers, family):
    assert family_of(markers) == family


def test_labels():
    assert label("legacy").startswith("sm ≤ 3.0.10") and label("qcow2") == "XCP-ng 8.3 with QCOW2"
    assert label(UNKNOWN) == UNKNOWN


@pytest.mark.parametrize("name,family", [
    ("seed_excerpt.log", "legacy"), ("tracker_abort_legacy.log", "legacy"), ("tracker_abort.log", "sm3-4"),
    ("sigterm.log", "sm3-4"), ("journal_orphan.log", "sm3-4"), ("qcow2_file.log", "qcow2"),
    ("qcow2_lvm.log", "qcow2"), ("relink_excerpt.log", UNKNOWN), ("lvm_lock.log", UNKNOWN),
])
def test_fixture_logs_tell_their_family(data_dir, name, family):
    read = read_smlog([data_dir / "smlog" / name], year=2026)
    assert family_of(m["marker"] for m in read.markers) == family
