"""Event kinds, folding of exception blocks (per pid) and tree printouts."""

import pytest

from runbook_lib.smlog.events import KINDS, EventBuilder, classify, parse_exception_header
from runbook_lib.smlog.parse import parse_line


def build(lines):
    out = []
    b = EventBuilder(out.append)
    for n, text in enumerate(lines, start=1):
        p = parse_line(text)
        if p is not None:
            b.feed(p, p.time, "f", n)
    b.close()
    return out, b


def read_fixture(data_dir, name):
    return (data_dir / "smlog" / name).read_text().splitlines()


@pytest.mark.parametrize("message,kind", [
    ("=== SR db4c3909-4b61-e5f6-8548-16dc56780f61: gc ===", "gc_start"),
    ("=== SR db4c3909-4b61-e5f6-8548-16dc56780f61: gc_force ===", "gc_start"),
    ("=== SR db4c3909-4b61-e5f6-8548-16dc56780f61: abort ===", "gc_abort"),
    ("Kicking SMGC@db4c3909-4b61-e5f6-8548-16dc56780f61...", "gc_kick"),
    ("Another GC instance already active, exiting", "gc_already_running"),
    ("GC active, about to go quiet", "gc_quiet_period"),
    ("GC process exiting, no work left", "gc_exit"),
    ("SR db4c ('Local SATA Storage') (5 VDIs in 4 VHD trees): no changes", "sr_tree"),
    ("Found 2 VDIs for deletion:", "garbage_found"),
    ("Deleting unlinked VDI *85ff84a8[VHD](65.000G///33.836G|n)", "vdi_delete"),
    ("Coalescing *a(1G/1G/1G) -> *b(1G/1G/1G)", "coalesce_start"),
    ("Coalesced size = 13.051G", "coalesce_done"),
    ("==> Coalesce apparently already done: skipping", "coalesce_done"),
    ("Coalesce failed, skipping", "coalesce_failed"),
    ("Leaf-coalescing 67558d6a[VHD](1G//1G|ao) -> *85ff84a8[VHD](1G//1G|n)", "leaf_coalesce_start"),
    ("*** FINISH LEAF-COALESCE", "leaf_coalesce_done"),
    ("Leaf-coalesce failed, skipping", "leaf_coalesce_failed"),
    ("Removed leaf-coalesce from 67558d6a[VHD](2020.000G//2023.953G|ao)", "leaf_coalesce_config"),
    ("VDI 67558d6a-1f2e-4c3b-9a8d-2b7c6e5f4a31 could not be coalesced", "no_progress"),
    ("No space to leaf-coalesce 12ab34cd[VHD](65.000G///12.129G|ao) (free space: 4194304)", "insufficient_space"),
    ("Raising exception [44, There is insufficient space]", "insufficient_space"),
    ("  Relinking a from b to c", "relink"),
    ("Ignoring exception for LV check: /dev/VG_XenStorage-x/y.cbtlog !", "ignored_exception"),
    ("lock: tried lock /var/lock/sm/x/sr, acquired: False (exists: True)", "lock_contention"),
    ("sr_scan {'sr_uuid': 'x'}", "sr_scan"),
    ("lock: acquired /var/lock/sm/x/sr", "other"),
])
def test_classify(message, kind):
    assert kind in KINDS
    assert classify(message) == kind


def test_exception_header_variants():
    assert parse_exception_header("leaf-coalesce: EXCEPTION util.SMException, Timed out") == (
        "util.SMException", "Timed out", "leaf-coalesce")
    assert parse_exception_header("coalesce: EXCEPTION <class 'util.CommandException'>, Invalid argument")[0] == "util.CommandException"


def test_seed_block_folds_into_one_timeout_record(data_dir):
    recs, builder = build(read_fixture(data_dir, "seed_excerpt.log"))
    kinds = [r["kind"] for r in recs]
    assert kinds.count("timeout") == 1 and "exception" not in kinds
    exc = next(r for r in recs if r["kind"] == "timeout")
    assert (exc["exc_type"], exc["exc_message"], exc["exc_context"]) == ("util.SMException", "Timed out", "leaf-coalesce")
    assert exc["vdi"] == "67558d6a" and exc["line"] == 7
    assert exc["traceback"].count('File "/opt/xensource/sm/cleanup.py"') == 7
    assert exc["traceback"].endswith('raise util.SMException("Timed out")')
    failed = next(r for r in recs if r["kind"] == "leaf_coalesce_failed")
    assert failed["vdi"] == "67558d6a" and failed["sr"] == "db4c"
    assert "db4c3909-4b61-e5f6-8548-16dc56780f61" in builder.uuids


def test_interleaved_pids_stay_apart(data_dir):
    recs, _ = build(read_fixture(data_dir, "interleaved.log"))
    excs = {r["pid"]: r for r in recs if r.get("exc_type")}
    assert excs[501]["kind"] == "timeout" and excs[501]["vdi"] == "aaaa0001"
    assert excs[902]["exc_type"] == "util.CommandException" and excs[902]["vdi"] == "bbbb0002"
    assert "cleanup.py" in excs[501]["traceback"] and "vhdutil.py" not in excs[501]["traceback"]
    assert excs[902]["sr"].startswith("9999bbbb")


def test_exception_without_banner_takes_indented_traceback(data_dir):
    recs, _ = build(read_fixture(data_dir, "error.log"))
    exc = next(r for r in recs if r["kind"] == "exception")
    assert exc["traceback"] == 'File "/opt/xensource/sm/cleanup.py", line 1546, in _coalesce\nvdi._doCoalesce()'
    assert [r["kind"] for r in recs][-1] == "coalesce_failed"


def test_tree_lines_fold_into_the_sr_tree_record(data_dir):
    recs, _ = build(read_fixture(data_dir, "nospace.log"))
    tree = next(r for r in recs if r["kind"] == "sr_tree")
    assert (tree["sr_name"], tree["n_vdis"], tree["n_trees"]) == ("Local storage", 3, 1)
    assert len(tree["tree"].splitlines()) == 3
    space = next(r for r in recs if r["kind"] == "insufficient_space" and r["vdi"])
    assert space["free_space"] == 4194304 and space["vdi"] == "12ab34cd"


def test_a_truncated_block_is_still_emitted_at_close():
    lines = ["Dec 6 02:27:17 xen SMGC: [1] *~*~*~*~*~*~*", "Dec 6 02:27:17 xen SMGC: [1] gc: EXCEPTION util.SMException, boom",
             'Dec 6 02:27:17 xen SMGC: [1] File "x.py", line 1, in f']
    recs, _ = build(lines)
    assert len(recs) == 1 and recs[0]["exc_message"] == "boom" and recs[0]["traceback"] == 'File "x.py", line 1, in f'


def test_benign_noise_kinds(data_dir):
    recs, _ = build(read_fixture(data_dir, "benign.log"))
    kinds = {r["kind"] for r in recs}
    assert {"lock_contention", "ignored_exception", "gc_already_running", "gc_quiet_period", "gc_kick"} <= kinds
    assert not any(r.get("exc_type") for r in recs)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PIECES = ["*~*~*~*~*~*~*", "***********************", "* E X C E P T I O N *", "gc: EXCEPTION util.SMException, x",
           'File "a.py", line 1, in f', "Leaf-coalescing 11aa22bb[VHD](1G//1G|ao) -> *33cc44dd[VHD](1G//1G|n)",
           "SR 7c1e ('x') (2 VDIs in 1 VHD trees): ", "        *33cc44dd[VHD](1G//1G|n)", "", "Coalesce failed, skipping",
           "=== SR 7c1e5d2a-0b3f-4a6e-9d8c-1f2e3a4b5c6d: gc ===", "Found 1 VDIs for deletion:", "  11aa22bb(1G/1G/1G)"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.one_of(st.sampled_from(_PIECES), st.text(max_size=40))),
                max_size=40))
def test_any_sequence_of_gc_lines_folds_without_raising(lines):
    """Folding never raises, and gives at most one record per line, each of a known kind and
    pointing at a line of the input."""
    recs, _ = build([f"Dec 6 02:27:17 xen SMGC: [{pid}] {msg}" for pid, msg in lines])
    assert len(recs) <= len(lines)
    assert all(r["kind"] in KINDS and 1 <= r["line"] <= len(lines) for r in recs)
    assert all(isinstance(r.get("traceback", ""), str) and isinstance(r.get("tree", ""), str) for r in recs)
