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
    # sm 3.2 to 4.1 (XenServer 8, XCP-ng 8.3)
    ("Kicking GC", "gc_kick"),
    ("Stopping SMGC@4f4e4d4c-0a0b-4c0d-8e0f-101112131415...", "gc_stop"),
    ("Failed to stop gc service `SMGC@4f4e4d4c-0a0b-4c0d-8e0f-101112131415`: `timeout`", "gc_stop"),
    ("GC: recieved SIGTERM", "gc_stop"),
    ("Aborted", "gc_stop"),
    ("* * * * * SR 4f4e4d4c-0a0b-4c0d-8e0f-101112131415: ERROR", "gc_error"),
    ("gc: EXCEPTION <class 'XenAPI.Failure'>, ['SR_BACKEND_FAILURE_46', '', 'The VDI is not available']", "exception"),
    ("Coalesce summary", "coalesce_tracker"),
    ("Performed 7 iterations", "coalesce_tracker"),
    ("Starting size was         33822867456", "coalesce_tracker"),
    ("Final size was            34359738368", "coalesce_tracker"),
    ("Minimum size achieved was 31675383808", "coalesce_tracker"),
    ("Minimum size acheived was 31675383808", "coalesce_tracker"),
    ("Calculated moving average as 30064771072.0", "coalesce_tracker"),
    ("Iteration: 2 -- Initial size 31675383808 --> Final size 32212254720", "coalesce_tracker"),
    ("No progress, attempt: 2", "coalesce_tracker"),
    ("Max iterations (20) exceeded", "coalesce_tracker"),
    ("No progress made for 3 iterations", "coalesce_tracker"),
    ("Unexpected bump in size, compared to minimum achieved", "coalesce_tracker"),
    ("Aborted coalesce", "coalesce_aborted"),
    ("Could not coalesce due to a lack of space in SR 4f4e4d4c-0a0b-4c0d-8e0f-101112131415", "insufficient_space"),
    ("_finishInterruptedCoalesceLeaf, vdi 5f5e5d5c-1b1a-4918-8716-151413121110 not found, aborting",
     "interrupted_leaf_missing"),
    ("Coalesce failed on SR 4f4e4d4c-0a0b-4c0d-8e0f-101112131415: No space left on device (Run out of space while "
     "coalescing.)", "coalesce_failed"),
    ("Failed to lock /var/lock/sm/.nil/lvm on first attempt, blocked by PID 4711", "lock_contention"),
    ("  Running VHD coalesce on *e25e01be[VHD](80.000G/12.301G/12.375G/80.164G|n)", "coalesce_running"),
    # XCP-ng 8.3 with QCOW2
    ("SR f1f2 ('iSCSI QCOW2') (3 VDIs in 1 COW trees): showing only COW trees that changed:", "sr_tree"),
    ("  Running COW coalesce on d1d2d3d4(100.000G/2.000G/1.900G)[vhd]", "coalesce_running"),
    ("Remote coalesce for /var/run/sr-mount/e1e2e3e4-f5f6-4718-9a0b-c1c2c3c4c5c6/b1b2b3b4-0000-4111-8222-333344445555.qcow2",
     "coalesce_running"),
    ("Offline coalesce for /dev/VG_XenStorage-f1f2f3f4-0506-4708-890a-b1b2b3b4b5b6/QCOW2-8c9d0e1f-1111-4222-8333-444455556666",
     "coalesce_running"),
    ("Not coalesceable, chain activated more than once", "chain_multi_host"),
    ("EXCEPTION while coalescing: COW image 4e5f6a7b[qcow2](2500.000G/30.000G/29.500G/32.125G|ao) corrupted",
     "coalesce_failed"),
    ("Commit status 'running' (1024/40960)", "coalesce_progress"),
    ("Got status running for tapdisk 23817 (m: 3)", "coalesce_progress"),
    ("Tapdisk 31337 (m: 2) coalesce status undefined for /dev/VG_XenStorage-x/QCOW2-y", "coalesce_progress"),
    ("gc_running already exist for e1e2e3e4-f5f6-4718-9a0b-c1c2c3c4c5c6. Ignoring...", "ignored_exception"),
    # look-alikes that are no event
    ('raise util.SMException("VDI {uuid} could not be coalesced"', "other"),
    ("Aborted by the user, says nobody", "other"),
    ("Tapdisk 31337 (m: 2) is paused", "other"),
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
           "=== SR 7c1e5d2a-0b3f-4a6e-9d8c-1f2e3a4b5c6d: gc ===", "Found 1 VDIs for deletion:", "  11aa22bb(1G/1G/1G)",
           "  Running VHD coalesce on *33cc44dd[VHD](1G/1G/1G/1G|n)", "Coalesced size = 1.000G", "Aborted coalesce",
           "Iteration: 1 -- Initial size 5 --> Final size 6", "No progress made for 3 iterations",
           "leaf-coalesce: EXCEPTION <class 'sm.core.util.SMException'>, VDI 11aa22bb-0000-4000-8000-000000000000 could not be coalesced",
           "* * * * * SR 7c1e5d2a-0b3f-4a6e-9d8c-1f2e3a4b5c6d: ERROR", "  Relinking 11aa22bb(1G/1G) from *33cc44dd(1G/1G) to *55ee66ff(1G/1G)",
           "==> Coalesce apparently already done: skipping", "Not coalesceable, chain activated more than once",
           "SR 7c1e ('x') (2 VDIs in 1 COW trees): ", "        *33cc44dd[qcow2](1G/1G/1G/1G|n)", "GC: recieved SIGTERM",
           "_doCoalesceLeaf: EXCEPTION <class 'util.CommandException'>, Signalled 15", "Commit status 'running' (1/2)"]


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


def test_every_exception_class_spelling_is_read():
    for cls in ("util.SMException", "<class 'util.SMException'>", "sm.core.util.SMException",
                "<class 'sm.core.util.SMException'>"):
        exc_type, message, context = parse_exception_header(f"leaf-coalesce: EXCEPTION {cls}, VDI x could not be coalesced")
        assert exc_type in ("util.SMException", "sm.core.util.SMException") and context == "leaf-coalesce"


def test_tracker_gives_up_folds_into_no_progress_on_the_leaf(data_dir):
    recs, builder = build(read_fixture(data_dir, "tracker_abort.log"))
    leaf = "9c8b7a65"
    tracker = [r for r in recs if r["kind"] in ("coalesce_tracker", "coalesce_aborted")]
    # the snapshot-coalesce round ran on a temporary snapshot; the tracker's lines are about the leaf
    assert tracker and all(r["vdi"] == leaf for r in tracker)
    (gave_up,) = [r for r in recs if r["kind"] == "no_progress"]
    assert gave_up["exc_type"] == "sm.core.util.SMException" and gave_up["vdi"] == "9c8b7a65-3e2d-4c1b-a098-f7e6d5c4b3a2"
    assert "raise util.SMException" in gave_up["traceback"]  # the traceback's raise line is no event of its own
    assert "9c8b7a65-3e2d-4c1b-a098-f7e6d5c4b3a2" in builder.uuids  # so the short id links to it
    assert next(r for r in recs if r["kind"] == "coalesce_done")["coalesced_size"] == round(160.125 * 2**30)


def test_a_relink_failure_after_a_tree_printout_stays_with_its_coalesce(data_dir):
    recs, _ = build(read_fixture(data_dir, "relink_failure.log"))
    exc = next(r for r in recs if r["kind"] == "exception")
    assert exc["vdi"] == "3f0c9e21" and exc["exc_message"] == "No such file or directory"
    assert next(r for r in recs if r["kind"] == "coalesce_failed")["vdi"] == "3f0c9e21"
    relink = next(r for r in recs if r["kind"] == "relink")
    assert (relink["vdi"], relink["target_vdi"]) == ("e25e01be", "3f0c9e21")


def test_a_failure_of_the_whole_gc_after_a_finished_coalesce_names_no_vdi():
    lines = ["Nov 20 14:00:01 h SMGC: [7] Coalescing *11112222[VHD](1G/1G/1G/1G|n) -> *33334444[VHD](1G/1G/1G/1G|n)",
             "Nov 20 14:00:09 h SMGC: [7] Coalesced size = 1.500G",
             "Nov 20 14:00:10 h SMGC: [7] GC process exiting, no work left",
             "Nov 20 14:00:10 h SMGC: [7] gc: EXCEPTION <class 'XenAPI.Failure'>, ['HANDLE_INVALID']"]
    recs, _ = build(lines)
    assert next(r for r in recs if r["kind"] == "exception")["vdi"] is None
    unfinished = build(lines[:1] + lines[2:])[0]  # the same failure while the coalesce runs is about it
    assert next(r for r in unfinished if r["kind"] == "exception")["vdi"] == "11112222"


def test_release_markers_are_counted_per_host(data_dir):
    _, builder = build(read_fixture(data_dir, "qcow2_lvm.log") + read_fixture(data_dir, "tracker_abort_legacy.log"))
    found = {(host, name): hit[0] for (host, name), hit in builder.markers.items()}
    assert found[("xcp83r", "cow-trees")] == 1 and found[("xcp83r", "multi-host")] == 1
    assert found[("xcp83r", "printout-lvm-cow")] >= 2
    assert found[("xs72", "printout-lvm-3")] >= 1 and found[("xs72", "tracker-acheived")] == 2
    assert not any(host == "xs72" and name.startswith("cow") for host, name in found)
