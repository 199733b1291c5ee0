"""Opening and streaming: rotations, archives, damaged input; counts and records."""

import gzip
import io
import os
import tarfile
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook_lib.errors import InputError
from runbook_lib.smlog import read as read_mod
from runbook_lib.smlog import read_smlog, sample_path
from runbook_lib.smlog.read import rotation_key

GIB = 1 << 30


@pytest.fixture
def seed_bytes(data_dir):
    return (data_dir / "smlog" / "seed_excerpt.log").read_bytes()


def _gc_line(day, pid, msg, mon="Nov"):
    return f"{mon} {day:2d} 03:00:00 xs01 SMGC: [{pid}] {msg}\n".encode()


def test_seed_records_and_counts(data_dir):
    r = read_smlog([data_dir / "smlog" / "seed_excerpt.log"], year=2018)
    assert (r.lines, r.parsed, r.unparsed) == (25, 25, 0)
    assert r.first.isoformat() == "2018-12-06T02:27:17+00:00"
    rec = r.records
    assert set(rec["sr"].dropna()) == {"db4c3909-4b61-e5f6-8548-16dc56780f61"}
    cfg = rec[rec["kind"] == "leaf_coalesce_config"].iloc[0]
    assert cfg["virtual_size"] == 2020 * GIB and cfg["lv_size"] == round(2023.953 * GIB) and cfg["flags"] == "ao"
    assert list(rec.columns[:11]) == ["time", "host", "process", "pid", "message", "kind", "sr", "vdi", "target_vdi", "file", "line"]
    assert r.files == [{"path": str(data_dir / "smlog" / "seed_excerpt.log"), "lines": 25, "bytes": len(
        (data_dir / "smlog" / "seed_excerpt.log").read_bytes()), "truncated": False, "note": None}]


def test_rotation_key_orders_oldest_first():
    names = ["SMlog", "SMlog.1", "SMlog.10.gz", "SMlog.2.gz"]
    assert sorted(names, key=rotation_key) == ["SMlog.10.gz", "SMlog.2.gz", "SMlog.1", "SMlog"]


def test_gz_rotations_read_in_chronological_order(tmp_path):
    (tmp_path / "SMlog").write_bytes(_gc_line(3, 3, "Coalesce failed, skipping"))
    (tmp_path / "SMlog.1").write_bytes(_gc_line(2, 2, "Coalesce failed, skipping"))
    (tmp_path / "SMlog.2.gz").write_bytes(gzip.compress(_gc_line(1, 1, "Coalesce failed, skipping")))
    r = read_smlog([tmp_path / "SMlog", tmp_path / "SMlog.2.gz", tmp_path / "SMlog.1"], year=2026)
    assert [f["path"].rsplit("/", 1)[-1] for f in r.files] == ["SMlog.2.gz", "SMlog.1", "SMlog"]
    assert list(r.records["pid"]) == [1, 2, 3]
    r2 = read_smlog([tmp_path], year=2026)  # a directory gives the same order
    assert list(r2.records["pid"]) == [1, 2, 3]


def test_truncated_gzip_reads_what_it_can(tmp_path, seed_bytes):
    body = seed_bytes * 200
    packed = gzip.compress(body)
    (tmp_path / "SMlog.1.gz").write_bytes(packed[: len(packed) // 2])
    r = read_smlog([tmp_path / "SMlog.1.gz"], year=2026)
    f = r.files[0]
    assert f["truncated"] is True and 0 < f["bytes"] < len(body)
    assert r.lines > 0 and (r.records["kind"] == "timeout").sum() >= 1


def test_concatenated_gzip_members(tmp_path, seed_bytes):
    (tmp_path / "SMlog.3.gz").write_bytes(gzip.compress(seed_bytes) + gzip.compress(seed_bytes))
    r = read_smlog([tmp_path / "SMlog.3.gz"], year=2026)
    assert r.lines == 50 and not r.files[0]["truncated"]


@pytest.mark.parametrize("suffix,mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"), (".zip", None)])
def test_status_report_archives(tmp_path, seed_bytes, suffix, mode):
    archive = tmp_path / f"bugtool{suffix}"
    members = {"bug/var/log/SMlog": _gc_line(9, 2, "No work, exiting", "Dec"),
               "bug/var/log/SMlog.1.gz": gzip.compress(seed_bytes),
               "bug/var/log/messages": b"not an SMlog\n"}
    if mode:
        with tarfile.open(archive, mode) as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), 1_800_000_000
                tf.addfile(info, io.BytesIO(data))
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    r = read_smlog([archive], year=2026)
    assert [f["path"].split("!")[1] for f in r.files] == ["bug/var/log/SMlog.1.gz", "bug/var/log/SMlog"]
    assert (r.records["kind"] == "timeout").sum() == 1 and r.lines == 26


def test_damaged_bytes_crlf_nul_and_invalid_utf8_never_raise(tmp_path, seed_bytes):
    dirty = seed_bytes.replace(b"\n", b"\r\n").replace(b"no changes", b"no \xff\xfe changes\x00")
    dirty += b"\x00\x00\x00\n\xc3\x28 garbage \xa0\xa1\n\n"
    (tmp_path / "SMlog").write_bytes(dirty)
    r = read_smlog([tmp_path / "SMlog"], year=2026)
    assert r.lines == 28 and r.unparsed == 3 and r.parsed == 25
    assert (r.records["kind"] == "timeout").sum() == 1
    assert not r.records["message"].str.contains("\r").any()


def test_a_10_mb_line_and_line_numbers_across_chunks(tmp_path, seed_bytes, monkeypatch):
    monkeypatch.setattr(read_mod, "CHUNK", 4096)
    big = b"Nov  1 00:00:00 xs01 SM: [1] " + b"x" * (10 << 20) + b"\n"
    (tmp_path / "SMlog").write_bytes(big + seed_bytes * 3)
    r = read_smlog([tmp_path / "SMlog"], year=2026)
    assert r.lines == 76 and r.unparsed == 0
    timeouts = r.records[r.records["kind"] == "timeout"]
    assert list(timeouts["line"]) == [8, 33, 58]


def test_overlong_line_is_counted_not_held(tmp_path, seed_bytes, monkeypatch):
    monkeypatch.setattr(read_mod, "CHUNK", 1024)
    monkeypatch.setattr(read_mod, "MAX_LINE", 8192)
    (tmp_path / "SMlog").write_bytes(b"y" * 50_000 + b"\n" + seed_bytes)
    r = read_smlog([tmp_path / "SMlog"], year=2026)
    assert r.unparsed >= 1 and (r.records["kind"] == "timeout").sum() == 1


def test_empty_file(tmp_path):
    (tmp_path / "SMlog").write_bytes(b"")
    r = read_smlog([tmp_path / "SMlog"])
    assert (r.lines, r.parsed, r.unparsed) == (0, 0, 0) and r.records.empty and r.first is None


def test_year_rollover_across_new_year(data_dir):
    r = read_smlog([data_dir / "smlog" / "rollover.log"], year=2026)
    years = [t.year for t in r.records["time"]]
    assert years[:2] == [2026, 2026] and years[2:] == [2027, 2027, 2027]
    assert r.last.isoformat() == "2027-01-02T03:04:05+00:00"


def test_default_year_dates_the_last_line_by_mtime(data_dir, tmp_path):
    path = tmp_path / "SMlog"
    path.write_bytes((data_dir / "smlog" / "rollover.log").read_bytes())
    jan = 1_799_000_000  # 2027-01-03 UTC
    os.utime(path, (jan, jan))
    r = read_smlog([path])
    assert r.first.year == 2026 and r.last.year == 2027


def test_missing_and_unreadable_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_smlog([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no SMlog"):
        read_smlog([tmp_path / "empty"])
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(InputError, match="archive"):
        read_smlog([tmp_path / "bad.tar.gz"])


def test_progress_is_reported(data_dir):
    seen = []
    read_smlog([data_dir / "smlog" / "seed_excerpt.log"], progress=lambda p, done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1]


def test_bundled_sample_is_packaged():
    assert sample_path().is_file() and sample_path().stat().st_size > 10_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000), st.sampled_from([b"", b"\n", b"Dec 6 02:27:17 xen SMGC: [1] "]))
def test_arbitrary_bytes_never_raise(tmp_path, blob, prefix):
    path = tmp_path / "SMlog"
    path.write_bytes(prefix + blob)
    r = read_smlog([path], year=2026)
    assert r.parsed + r.unparsed == r.lines and r.lines >= (prefix + blob).count(b"\n")
    path.write_bytes(gzip.compress(prefix + blob)[:-3])  # truncated gzip of the same
    assert read_smlog([path], year=2026).files[0]["truncated"]


def test_bz2_and_xz_rotations_and_truncation(tmp_path, seed_bytes):
    import bz2
    import lzma

    (tmp_path / "SMlog.2.bz2").write_bytes(bz2.compress(seed_bytes))
    (tmp_path / "SMlog.1.xz").write_bytes(lzma.compress(seed_bytes)[:-20])
    r = read_smlog([tmp_path / "SMlog.1.xz", tmp_path / "SMlog.2.bz2"], year=2026)
    assert [f["path"].rsplit("/", 1)[-1] for f in r.files] == ["SMlog.2.bz2", "SMlog.1.xz"]
    assert [f["truncated"] for f in r.files] == [False, True]
    assert (r.records["kind"] == "timeout").sum() == 2


def test_pool_report_members_stay_grouped_by_host(tmp_path):
    archive = tmp_path / "pool.tar"
    with tarfile.open(archive, "w") as tf:
        for name, pid in [("h2/var/log/SMlog", 4), ("h1/var/log/SMlog", 2), ("h2/var/log/SMlog.1", 3),
                          ("h1/var/log/SMlog.1", 1)]:
            data = _gc_line(pid, pid, "Coalesce failed, skipping")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    r = read_smlog([archive], year=2026)
    assert list(r.records["pid"]) == [1, 2, 3, 4]


def test_routine_events_are_counted_but_collapsed(tmp_path):
    sr = "7c1e5d2a-0b3f-4a6e-9d8c-1f2e3a4b5c6d"
    lines = []
    for i in range(100):
        lines.append(f"Nov  1 {i // 60:02d}:{i % 60:02d}:00 xs01 SM: [{i}] Kicking SMGC@{sr}...")
        lines.append(f"Nov  1 {i // 60:02d}:{i % 60:02d}:01 xs01 SMGC: [{i + 1000}] === SR {sr}: gc ===")
        lines.append(f"Nov  1 {i // 60:02d}:{i % 60:02d}:01 xs01 SMGC: [{i + 1000}] SR 7c1e ('x') (2 VDIs in 1 VHD trees): no changes")
        lines.append(f"Nov  1 {i // 60:02d}:{i % 60:02d}:02 xs01 SMGC: [{i + 1000}] GC process exiting, no work left")
    (tmp_path / "SMlog").write_text("\n".join(lines) + "\n")
    r = read_smlog([tmp_path / "SMlog"], year=2026)
    assert r.events == {"gc_exit": 100, "gc_kick": 100, "gc_start": 100, "sr_tree": 100}
    kinds = r.records["kind"].value_counts().to_dict()
    assert kinds == {"gc_start": 100, "gc_kick": 2, "sr_tree": 2, "gc_exit": 2}
    assert list(r.records.loc[r.records["kind"] == "gc_exit", "line"]) == [4, 400]
    assert r.records["line"].is_monotonic_increasing


def test_implausible_years_never_crash(tmp_path):
    from runbook_lib.errors import UsageError

    (tmp_path / "SMlog").write_text(
        "9999-12-31T23:59:59 xs01 SMGC: [1] Coalesce failed, skipping\n"
        + "".join(f"{m} 1 00:00:00 xs01 SMGC: [2] Coalesce failed, skipping\n"
                  for _ in range(300) for m in ("Jan", "Jul", "Dec")))
    r = read_smlog([tmp_path / "SMlog"], year=2026)
    assert r.unparsed == 1 and r.records["time"].isna().any() and r.records["time"].notna().any()
    with pytest.raises(UsageError, match="plausible"):
        read_smlog([tmp_path / "SMlog"], year=20)


@pytest.mark.parametrize("value,expected", [
    ([], []), (None, []), ("", []), ("/var/log/SMlog", ["/var/log/SMlog"]), ("a, b", ["a", "b"]),
    ("['a', \"b\"]", ["a", "b"]), (["x", "y"], ["x", "y"]),
])
def test_as_path_list(value, expected):
    from runbook_lib.smlog import as_path_list

    assert as_path_list(value) == expected


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs a /proc file (size 0, content)")
def test_a_file_of_size_zero_is_read_no_further_than_the_cap(monkeypatch):
    """/proc-style files report size 0 and may stream forever: reading stops at the cap."""
    monkeypatch.setattr(read_mod, "ZERO_SIZE_CAP", 64)
    r = read_smlog(["/proc/self/status"], year=2026)
    (f,) = r.files
    assert f["truncated"] is True and f["bytes"] <= 64 and f["note"].startswith("size 0 on disk but still going")
    monkeypatch.setattr(read_mod, "ZERO_SIZE_CAP", 1 << 20)
    assert read_smlog(["/proc/self/status"], year=2026).files[0]["truncated"] is False


def test_markers_and_new_columns(data_dir):
    r = read_smlog([data_dir / "smlog" / "qcow2_file.log"], year=2026)
    rows = {m["marker"]: m for m in r.markers}
    assert rows["cow-trees"] == {"host": "xcp83q", "marker": "cow-trees", "family": "qcow2", "since": "XCP-ng QCOW2",
                                 "count": 1, "first": f"{data_dir / 'smlog' / 'qcow2_file.log'}:3"}
    assert rows["kick-smgc"]["family"] == "sm3-4" and r.markers[0]["family"] == "sm3-4"  # oldest family first
    rec = r.records
    assert {"format", "coalesced_size"} <= set(rec.columns)
    assert set(rec["format"].dropna()) == {"vhd", "qcow2"}
    assert rec.loc[rec["kind"] == "coalesce_done", "coalesced_size"].tolist() == [round(13.5 * GIB)]
