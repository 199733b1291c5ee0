"""Line shapes: syslog, ISO, ident-only, bare, forum-quoted; year inference with rollover."""

import datetime as dt

from runbook_lib.smlog.parse import SyslogTime, YearTracker, anchor_year, parse_line, to_datetime


def test_syslog_line_single_space_day_as_in_the_seed():
    p = parse_line("Dec 6 02:27:17 xen SMGC: [10357] Leaf-coalesce failed, skipping")
    assert p.shape == "syslog" and p.host == "xen" and p.process == "SMGC" and p.pid == 10357
    assert (p.time.month, p.time.day, p.time.hour, p.time.minute, p.time.second) == (12, 6, 2, 27, 17)
    assert p.message == "Leaf-coalesce failed, skipping"


def test_space_padded_day_and_long_pid_and_indent_kept():
    p = parse_line("Jan  2 00:00:01 xs01 SMGC: [4194304]             67558d6a[VHD](1G//2G|ao)\r\n")
    assert p.time.day == 2 and p.pid == 4194304
    assert p.message == "            67558d6a[VHD](1G//2G|ao)"  # 12 spaces of indentation = depth 1


def test_blank_smgc_line_has_empty_message():
    assert parse_line("Dec 6 02:27:17 xen SMGC: [10357] ").message == ""
    assert parse_line("Dec 6 02:27:17 xen SMGC: [10357]").message == ""


def test_iso_line_converted_to_utc():
    p = parse_line("2026-11-10T03:14:15.123456+01:00 xs01 SM: [12345] lock: acquired /x")
    assert p.shape == "iso" and p.time == dt.datetime(2026, 11, 10, 2, 14, 15, 123456, tzinfo=dt.timezone.utc)


def test_bare_and_ident_only_and_quoted_lines():
    assert parse_line("[15112] Coalesce failed, skipping")[3:] == (15112, "Coalesce failed, skipping", "bare")
    p = parse_line("SMGC: [15112] No work, exiting")
    assert (p.process, p.pid, p.shape) == ("SMGC", 15112, "ident")
    q = parse_line("> Dec 6 02:27:17 xen SMGC: [10357] No work, exiting")
    assert q.shape == "syslog" and q.message == "No work, exiting"


def test_other_daemons_parse_without_pid():
    p = parse_line("Dec 6 02:27:17 xen kernel: [12345.678] sd 0:0:0:0: hello")
    assert p.process == "kernel" and p.pid is None and p.message.startswith("[12345.678]")


def test_garbage_is_not_parsed():
    for text in ("", "   ", "hello world", "Dec 99 02:27:17 x SM: [1] m", "\x00\x00"):
        assert parse_line(text) is None


def test_year_tracker_counts_new_year_and_ignores_small_steps_back():
    t = YearTracker()
    assert [t.see(m) for m in (11, 12, 12, 11, 12, 1, 1, 12, 2)] == [0, 0, 0, 0, 0, 1, 1, 0, 1]


def test_anchor_year_from_mtime_and_parameter():
    jan = dt.datetime(2027, 1, 2, 5, tzinfo=dt.timezone.utc).timestamp()
    last = SyslogTime(1, 1, 2, 3, 4, 5, 0)
    assert anchor_year(last, jan, None) == 2026  # the first line was in December 2026
    assert anchor_year(last, jan, 2020) == 2020
    # a last line later in the year than the file's mtime is from the year before
    assert anchor_year(SyslogTime(0, 12, 6, 2, 27, 17, 0), dt.datetime(2026, 11, 26, tzinfo=dt.timezone.utc).timestamp(), None) == 2025


def test_to_datetime_clamps_impossible_days():
    assert to_datetime(SyslogTime(0, 2, 29, 1, 2, 3, 0), 2025).day == 28
    assert to_datetime(SyslogTime(1, 1, 1, 0, 0, 0, 0), 2025).year == 2026


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_line_never_raises(text):
    """Any text parses or is refused without raising; behind a syslog prefix it is the message."""
    parsed = parse_line(text)
    assert parsed is None or isinstance(parsed.message, str)
    prefixed = parse_line("Dec 6 02:27:17 xen SMGC: [1] " + text)
    if "\n" not in text and "\r" not in text:
        assert prefixed is not None
        assert (prefixed.host, prefixed.process, prefixed.pid, prefixed.message) == ("xen", "SMGC", 1, text)
