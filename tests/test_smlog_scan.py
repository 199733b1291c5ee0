"""The byte-level scan: which lines get parsed, line numbers, ranges for worker processes."""

import pytest

from runbook_lib.smlog import read as read_mod
from runbook_lib.smlog import read_smlog
from runbook_lib.smlog.scan import plan_ranges, scan_chunk, scan_range

BULK = b"Nov  1 00:00:00 xs01 SM: [11] lock: acquired /var/lock/sm/aaaaaaaa-1111-4222-8333-444455556666/sr\n"
VDI_CALL = (b"Nov  1 00:00:01 xs01 SM: [12] vdi_attach {'sr_uuid': 'aaaaaaaa-1111-4222-8333-444455556666', "
            b"'vdi_uuid': '67558d6a-1f2e-4c3b-9a8d-2b7c6e5f4a31'}\n")
GC = b"Nov  1 00:00:02 xs01 SMGC: [13] GC process exiting, no work left\n"
KICK = b"Nov  1 00:00:03 xs01 SM: [14] Kicking SMGC@aaaaaaaa-1111-4222-8333-444455556666...\n"


def flagged_indexes(scan):
    return [i for i, _, flagged in scan.picks if flagged]


def test_picks_gc_and_event_lines_only():
    buf = BULK * 5 + GC + BULK * 3 + KICK + VDI_CALL + BULK
    scan = scan_chunk(buf)
    assert scan.lines == 12
    assert flagged_indexes(scan) == [5, 9]
    assert {i for i, _, _ in scan.picks} == {0, 5, 9, 11}  # first and last line come along for the times
    assert scan.nonconforming == 0
    assert scan.uuids == {b"aaaaaaaa-1111-4222-8333-444455556666", b"67558d6a-1f2e-4c3b-9a8d-2b7c6e5f4a31"}


def test_lines_without_prefix_are_picked_and_counted():
    buf = BULK + b"[15112] Coalesce failed, skipping\n" + b"garbage\n" + BULK + b"no newline at the end"
    scan = scan_chunk(buf)
    assert scan.lines == 5 and scan.nonconforming == 3
    parsed = {i: p for i, p, flagged in scan.picks if flagged}
    assert parsed[1].message == "Coalesce failed, skipping" and parsed[2] is None and parsed[4] is None


def test_mixed_idents_fall_back_to_the_exact_search():
    other = b"Nov  1 00:00:00 xs01 xapi: [ info] something\n"
    scan = scan_chunk(other + BULK + b"oops\n" + other)
    assert scan.lines == 4 and flagged_indexes(scan) == [2]


@pytest.mark.parametrize("step", [7, 64, 100, 1000])
def test_ranges_cover_every_line_once(tmp_path, step):
    data = (BULK * 3 + GC + b"x" * 300 + b"\n" + KICK + b"[1] bare\n") * 4
    path = tmp_path / "SMlog"
    path.write_bytes(data)
    whole = scan_chunk(data)
    parts = [scan_range(str(path), a, b, 1 << 20) for a, b in plan_ranges(len(data), step)]
    assert sum(p.lines for p in parts) == whole.lines
    assert sum(len(flagged_indexes(p)) for p in parts) == len(flagged_indexes(whole))


def test_range_with_an_overlong_line_counts_it_once(tmp_path):
    data = BULK + b"y" * 5000 + b"\n" + GC
    path = tmp_path / "SMlog"
    path.write_bytes(data)
    parts = [scan_range(str(path), a, b, 1000) for a, b in plan_ranges(len(data), 512)]
    assert sum(p.lines for p in parts) == 3
    assert sum(p.long_lines for p in parts) == 1
    assert sum(len(flagged_indexes(p)) for p in parts) == 1


def test_parallel_read_equals_serial(tmp_path, data_dir, monkeypatch):
    seed = (data_dir / "smlog" / "seed_excerpt.log").read_bytes()
    inter = (data_dir / "smlog" / "interleaved.log").read_bytes()
    path = tmp_path / "SMlog"
    path.write_bytes((BULK * 40 + seed + VDI_CALL + inter + b"[9] bare line\n") * 30)
    monkeypatch.setattr(read_mod, "WORKERS", 1)
    serial = read_smlog([path], year=2026)
    monkeypatch.setattr(read_mod, "WORKERS", 2)
    monkeypatch.setattr(read_mod, "PARALLEL_MIN", 1)
    monkeypatch.setattr(read_mod, "CHUNK", 3000)
    parallel = read_smlog([path], year=2026)
    assert (parallel.lines, parallel.parsed, parallel.unparsed) == (serial.lines, serial.parsed, serial.unparsed)
    assert parallel.events == serial.events and parallel.links == serial.links
    assert parallel.records.equals(serial.records)
    assert (serial.records["kind"] == "timeout").sum() == 60


_PARENT = []


def _dying_scan_range(path, start, stop, max_line):
    import os

    if _PARENT and os.getpid() != _PARENT[0] and start > 0:
        os._exit(1)  # a worker killed mid-way (out of memory, say)
    return scan_range(path, start, stop, max_line)


def test_dead_workers_fall_back_to_scanning_here(tmp_path, data_dir, monkeypatch):
    import os

    seed = (data_dir / "smlog" / "seed_excerpt.log").read_bytes()
    path = tmp_path / "SMlog"
    path.write_bytes((BULK * 40 + seed) * 20)
    monkeypatch.setattr(read_mod, "WORKERS", 1)
    serial = read_smlog([path], year=2026)
    _PARENT[:] = [os.getpid()]
    try:
        monkeypatch.setattr(read_mod, "WORKERS", 2)
        monkeypatch.setattr(read_mod, "PARALLEL_MIN", 1)
        monkeypatch.setattr(read_mod, "CHUNK", 5000)
        monkeypatch.setattr(read_mod, "scan_range", _dying_scan_range)
        survived = read_smlog([path], year=2026)
    finally:
        _PARENT.clear()
    assert (survived.lines, survived.unparsed) == (serial.lines, serial.unparsed)
    assert survived.records.equals(serial.records)


@pytest.mark.parametrize("message", [
    "Kicking GC", "Kicking SMGC@aaaaaaaa-1111-4222-8333-444455556666...",
    "Stopping SMGC@aaaaaaaa-1111-4222-8333-444455556666...",
    "Failed to stop gc service `SMGC@aaaaaaaa-1111-4222-8333-444455556666`: `x`",
    "GC: recieved SIGTERM", "Calculated moving average as 30064771072.0",
    "Could not coalesce due to a lack of space in SR aaaaaaaa-1111-4222-8333-444455556666",
    "Coalesce failed on SR aaaaaaaa-1111-4222-8333-444455556666: No space left on device (Run out of space.)",
    "Coalesce failed on 67558d6a-1f2e-4c3b-9a8d-2b7c6e5f4a31, attempting repair on parent x",
    "Failed to lock /var/lock/sm/.nil/lvm on first attempt, blocked by PID 4711",
    "Remote coalesce for /var/run/sr-mount/x/y.qcow2", "Offline coalesce for /dev/VG_XenStorage-x/QCOW2-y",
    "Not coalesceable, chain activated more than once", "EXCEPTION while coalescing: COW image x corrupted",
    "gc_running already exist for x. Ignoring...", "Got status running for tapdisk 23817 (m: 3)",
    "Tapdisk 31337 (m: 2) coalesce status undefined for /x", "Commit status 'running' (1024/40960)",
    "***** generic exception: vdi_clone: EXCEPTION <class 'xs_errors.SROSError'>, x",
])
def test_the_gc_lines_written_with_ident_sm_pass_the_prefilter(message):
    line = f"Nov  1 00:00:05 xs01 SM: [15] {message}\n".encode()
    scan = scan_chunk(BULK * 3 + line + BULK)
    assert flagged_indexes(scan) == [3]
    assert scan.picks[1][1].message == message


@pytest.mark.parametrize("message", [
    "lock: released /var/lock/sm/x/sr", "  pread SUCCESS", "['/sbin/lvs', '--noheadings']",
    "vdi_attach {'sr_uuid': 'x'}", "Refcount for lvm-x:y (0, 0) + (1, 0) => (1, 0)", "LVMCache: refreshing",
    "Xicking the tyres",  # the shared branch does not check the first character: the scan does
    "Coalesce failed", "Got it", "Tap-ctl list",
])
def test_bulk_sm_lines_stay_unparsed(message):
    line = f"Nov  1 00:00:05 xs01 SM: [15] {message}\n".encode()
    assert flagged_indexes(scan_chunk(BULK * 3 + line + BULK)) == []
