"""SMlog reading speed and memory: `runbook smlog diagnose --json` on a 1 GB log vs `grep -c SMGC`.

Targets (issue 4): >= 200 MB/s end to end on the 2-core machine, peak RSS < 1 GiB, and the
same answer on the big file as the generator planted. The log is generated deterministically
under bench/data/ (git-ignored) and reused when present. It runs over New Year (Dec 28 ->
Jan 4) so the year rollover is exercised at scale.

Content: mostly `SM:` driver traffic (lock, lvs/vhd-util calls, vdi_* calls), GC runs on five
SRs every few minutes (tree printouts, "no changes", benign "Another GC instance" and cbtlog
noise, lock contention), and planted problems: a leaf that keeps timing out, a leaf with no
space, a corrupt chain (CommandException), and fifty healthy coalesces.

Set SMLOG_BENCH_MB to generate a smaller file (e.g. 100) for a quick look.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SIZE_MB = int(os.environ.get("SMLOG_BENCH_MB", "1000"))
TARGET_MBS = 200.0
TARGET_RSS = 1 << 30
SEED = 20261126
YEAR = 2025
GENERATOR_VERSION = 1

SR_STUCK = "db4c3909-4b61-e5f6-8548-16dc56780f61"  # leaf-coalesce times out
SR_NOSPACE = "5e5e5e5e-1234-4abc-8def-0123456789ab"  # no space to leaf-coalesce
SR_ERROR = "3c3c3c3c-aaaa-4bbb-8ccc-dddddddddddd"  # corrupt chain
SR_NFS = "9f3b2c1e-7d4a-4e8b-b1c2-5a6d7e8f9012"  # healthy coalesces
SR_QUIET = "2b2b2b2b-1111-4222-8333-444455556666"  # nothing to do
SRS = [SR_STUCK, SR_NOSPACE, SR_ERROR, SR_NFS, SR_QUIET]
NAMES = {SR_STUCK: "Local SATA Storage", SR_NOSPACE: "Local storage", SR_ERROR: "Shared iSCSI",
         SR_NFS: "NFS VM store", SR_QUIET: "Quiet LVM"}
TIMEOUT_FRAMES = [
    ("coalesceLeaf", 1435, "self._coalesceLeaf(vdi)"), ("_coalesceLeaf", 1637, "return self._liveLeafCoalesce(vdi)"),
    ("_liveLeafCoalesce", 1685, "self._doCoalesceLeaf(vdi)"), ("_doCoalesceLeaf", 1719, "vdi._coalesceVHD(timeout)"),
    ("_coalesceVHD", 690, "self.sr.uuid, abortTest, VDI.POLL_INTERVAL, timeOut)"),
    ("runAbortable", 149, 'raise util.SMException("Timed out")'),
]


class _Writer:
    """Buffers lines and tracks what was planted."""

    def __init__(self, fh):
        self.fh, self.buf, self.size, self.lines = fh, [], 0, 0
        self.t = dt.datetime(YEAR, 12, 28, 0, 0, 0)
        self.stamp = ""
        self.tick(0)

    def tick(self, seconds: float) -> None:
        self.t += dt.timedelta(seconds=seconds)
        t = self.stamped = self.t
        self.stamp = f"{t:%b} {t.day:2d} {t:%H:%M:%S} xs01 "

    def line(self, ident: str, pid: int, msg: str) -> None:
        text = f"{self.stamp}{ident}: [{pid}] {msg}\n"
        self.buf.append(text)
        self.last = self.stamped
        self.size += len(text)
        self.lines += 1
        if len(self.buf) >= 50_000:
            self.flush()

    def flush(self) -> None:
        self.fh.write("".join(self.buf).encode())
        self.buf = []


def _exception(w: _Writer, pid: int, tag: str, exc: str, msg: str, frames) -> None:
    for text in ("*~" * 20 + "*", "*" * 23, "* E X C E P T I O N *", "*" * 23, f"{tag}: EXCEPTION {exc}, {msg}"):
        w.line("SMGC", pid, text)
    for func, lineno, code in frames:
        w.line("SMGC", pid, f'File "/opt/xensource/sm/cleanup.py", line {lineno}, in {func}')
        w.line("SMGC", pid, code)
    w.line("SMGC", pid, "")
    w.line("SMGC", pid, "*~" * 20 + "*")


def generate(path: Path, size_mb: int) -> dict:
    """Write the log; return what a correct diagnosis must say."""
    rnd = random.Random(SEED)
    truth = {"timeout_attempts": 0, "nospace_failures": 0, "error_failures": 0, "healthy": [], "gc_start": 0}
    target = size_mb * 1_000_000
    vdi_uuids = [f"{rnd.getrandbits(32):08x}-{rnd.getrandbits(16):04x}-4{rnd.getrandbits(12):03x}-"
                 f"8{rnd.getrandbits(12):03x}-{rnd.getrandbits(48):012x}" for _ in range(400)]
    healthy_queue = [f"{i:04x}beef" for i in range(50)]
    pid = 1000
    next_gc = 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        w = _Writer(fh)
        elapsed = 0.0
        run = 0
        while w.size < target:
            # driver traffic: one SM operation
            pid = pid + rnd.randint(1, 9) if pid < 4_000_000 else 1000
            sr = SRS[rnd.randrange(5)]
            w.line("SM", pid, f"lock: opening lock file /var/lock/sm/{sr}/sr")
            w.line("SM", pid, f"lock: acquired /var/lock/sm/{sr}/sr")
            r = rnd.random()
            if r < 0.5:
                w.line("SM", pid, "['/sbin/lvs', '--noheadings', '--units', 'b', '-o', '+lv_tags', "
                                  f"'/dev/VG_XenStorage-{sr}']")
                w.line("SM", pid, "  pread SUCCESS")
            elif r < 0.8:
                vdi = vdi_uuids[rnd.randrange(400)]
                w.line("SM", pid, "['/usr/bin/vhd-util', 'query', '--debug', '-s', '-n', "
                                  f"'/dev/VG_XenStorage-{sr}/VHD-{vdi}']")
                w.line("SM", pid, "  pread SUCCESS")
                w.line("SM", pid, f"['/sbin/lvchange', '-ay', '/dev/VG_XenStorage-{sr}/VHD-{vdi}']")
                w.line("SM", pid, "  pread SUCCESS")
            else:
                vdi = vdi_uuids[rnd.randrange(400)]
                op = ("vdi_attach", "vdi_activate", "vdi_deactivate", "vdi_detach", "vdi_snapshot")[rnd.randrange(5)]
                w.line("SM", pid, f"{op} {{'sr_uuid': '{sr}', 'subtask_of': 'DummyRef:|{vdi[:8]}|VDI.{op[4:]}', "
                                  f"'vdi_ref': 'OpaqueRef:{vdi}', 'vdi_uuid': '{vdi}', 'command': '{op}'}}")
            w.line("SM", pid, f"lock: released /var/lock/sm/{sr}/sr")
            step = rnd.uniform(0.2, 1.2)
            w.tick(step)
            elapsed += step
            if elapsed < next_gc:
                continue
            next_gc = elapsed + 90
            run += 1
            sr = SRS[run % 5]
            gpid = pid + 3
            w.line("SM", pid, f"Kicking SMGC@{sr}...")
            w.line("SMGC", gpid, f"=== SR {sr}: gc ===")
            truth["gc_start"] += 1
            if run % 7 == 0:  # benign: a second GC instance, contention, cbtlog
                w.line("SMGC", gpid + 1, f"=== SR {sr}: gc ===")
                truth["gc_start"] += 1
                w.line("SMGC", gpid + 1, "Another GC instance already active, exiting")
                w.line("SM", gpid + 2, f"lock: tried lock /var/lock/sm/{sr}/sr, acquired: False (exists: True)")
                w.line("SM", gpid + 2, "Ignoring exception for LV check: "
                                       f"/dev/VG_XenStorage-{sr}/{vdi_uuids[run % 400]}.cbtlog !")
            short = sr[:4]
            if run % 50 < 5:
                w.line("SMGC", gpid, f"SR {short} ('{NAMES[sr]}') (4 VDIs in 2 VHD trees): ")
                w.line("SMGC", gpid, "        *aa00aa00[VHD](100.000G//100.203G|n)")
                w.line("SMGC", gpid, "            11223344[VHD](100.000G//20.047G|ao)")
                w.line("SMGC", gpid, "            55667788[VHD](100.000G//0.008G|n)")
                w.line("SMGC", gpid, "        99aabbcc[VHD](50.000G//50.102G|ao)")
                w.line("SMGC", gpid, "")
            else:
                w.line("SMGC", gpid, f"SR {short} ('{NAMES[sr]}') (4 VDIs in 2 VHD trees): no changes")
            if sr == SR_STUCK:
                leaf = "67558d6a[VHD](2020.000G//2023.953G|ao)"
                w.line("SMGC", gpid, f"Leaf-coalesce candidate: {leaf}")
                w.line("SMGC", gpid, f"Leaf-coalescing {leaf} -> *85ff84a8[VHD](2020.000G//2023.953G|n)")
                truth["timeout_attempts"] += 1
                w.tick(11)
                _exception(w, gpid, "leaf-coalesce", "util.SMException", "Timed out", TIMEOUT_FRAMES)
                w.line("SMGC", gpid, f"Leaf-coalesce failed on {leaf}, skipping")
            elif sr == SR_NOSPACE:
                leaf = "12ab34cd[VHD](65.000G///12.129G|ao)"
                w.line("SMGC", gpid, f"Leaf-coalesce candidate: {leaf}")
                w.line("SMGC", gpid, f"No space to leaf-coalesce {leaf} (free space: {4194304 + run})")
                truth["nospace_failures"] += 1
            elif sr == SR_ERROR:
                w.line("SMGC", gpid, "Coalescing *deadbeef[VHD](80.000G/10.000G/10.500G/80.156G|n) -> "
                                     "*feedface[VHD](80.000G/60.000G/60.500G/80.156G|n)")
                w.line("SMGC", gpid, "coalesce: EXCEPTION <class 'util.CommandException'>, Invalid argument")
                w.line("SMGC", gpid, '  File "/opt/xensource/sm/cleanup.py", line 1546, in _coalesce')
                w.line("SMGC", gpid, "    vdi._doCoalesce()")
                w.line("SMGC", gpid, "Coalesce failed, skipping")
                truth["error_failures"] += 1
            elif sr == SR_NFS and healthy_queue and run % 3 == 0:
                child = healthy_queue.pop(0)
                w.line("SMGC", gpid, f"*{child}(50.000G/1.211G/1.250G) is coalescable")
                w.line("SMGC", gpid,
                       f"Coalescing *{child}(50.000G/1.211G/1.250G) -> *a1b2c3d4(50.000G/12.402G/12.500G)")
                w.line("SMGC", gpid, f"  Running VHD coalesce on *{child}(50.000G/1.211G/1.250G)")
                w.tick(30)
                w.line("SMGC", gpid, "Num combined blocks = 620")
                w.line("SMGC", gpid, "Coalesced size = 13.051G")
                w.line("SMGC", gpid, f"Deleting unlinked VDI *{child}(50.000G/1.211G/1.250G)")
                truth["healthy"].append(child)
            w.line("SMGC", gpid, "GC process exiting, no work left")
        w.flush()
        truth["lines"] = w.lines
        truth["bytes"] = w.size
        truth["last"] = w.last.isoformat()
    truth["version"] = GENERATOR_VERSION
    truth["size_mb"] = size_mb
    os.replace(tmp, path)
    return truth


def _ensure(size_mb: int) -> tuple[Path, dict]:
    path = DATA / f"SMlog-{size_mb}mb"
    truth_path = path.with_suffix(".truth.json")
    if path.is_file() and truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        if truth.get("version") == GENERATOR_VERSION and path.stat().st_size == truth["bytes"]:
            return path, truth
    t = time.perf_counter()
    truth = generate(path, size_mb)
    truth_path.write_text(json.dumps(truth))
    print(f"   generated {path} ({truth['bytes'] / 1e6:,.0f} MB, {truth['lines']:,} lines) "
          f"in {time.perf_counter() - t:.0f} s")
    return path, truth


def check(found: dict, truth: dict) -> list[str]:
    """Differences between the diagnosis and what was planted (empty = right)."""
    problems = []
    vdis = {v["vdi"]: v for v in found["vdis"]}

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: got {got!r}, planted {want!r}")

    expect("lines", found["lines"], truth["lines"])
    expect("unparsed", found["unparsed"], 0)
    expect("last", found["last"][:19] if found["last"] else None, truth["last"][:19])
    expect("gc_start events", found["events"].get("gc_start"), truth["gc_start"])
    expect("verdict", found["verdict"], "stuck-error")
    stuck = vdis.get("67558d6a", {})
    expect("67558d6a verdict", stuck.get("verdict"), "stuck-timeout")
    expect("67558d6a attempts", stuck.get("attempts"), truth["timeout_attempts"])
    expect("67558d6a failures", stuck.get("failures"), truth["timeout_attempts"])
    expect("67558d6a virtual size", stuck.get("virtual_size"), 2020 << 30)
    nospace = vdis.get("12ab34cd", {})
    expect("12ab34cd verdict", nospace.get("verdict"), "stuck-no-space")
    expect("12ab34cd failures", nospace.get("failures"), truth["nospace_failures"])
    err = vdis.get("deadbeef", {})
    expect("deadbeef verdict", err.get("verdict"), "stuck-error")
    expect("deadbeef failures", err.get("failures"), truth["error_failures"])
    healthy = sorted(v for v, row in vdis.items() if row["verdict"] == "healthy")
    expect("healthy VDIs", healthy, sorted(truth["healthy"]))
    excs = {(e["type"], e["message"]): e["count"] for e in found["exceptions"]}
    expect("exceptions", excs, {("util.SMException", "Timed out"): truth["timeout_attempts"],
                                ("util.CommandException", "Invalid argument"): truth["error_failures"]})
    srs = {s["sr"]: s for s in found["srs"]}
    expect("SR names", {s: srs.get(s, {}).get("name") for s in SRS}, NAMES)
    expect("quiet SR", srs.get(SR_QUIET, {}).get("verdict"), "healthy")
    return problems


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants now (Linux /proc), 0 when gone."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess, int]:
    """Wall time, the finished process, and the peak RSS of its process tree (sampled every 50 ms)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    elapsed = time.perf_counter() - t
    done.set()
    sampler.join()
    return elapsed, subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak[0]


def main() -> None:
    path, truth = _ensure(SIZE_MB)
    size = path.stat().st_size
    with open(path, "rb") as fh:  # warm the page cache so both tools read from memory
        while fh.read(64 << 20):
            pass
    load_before = os.getloadavg()[0]
    grep_s, grep, _ = _timed(["grep", "-c", "SMGC", str(path)])
    runbook = [sys.executable, "-m", "runbook_lib", "smlog", "diagnose", "--json", "--year", str(YEAR), str(path)]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = usage0.ru_maxrss
    ours_s, ours, tree_peak = _timed(runbook)
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage1.ru_maxrss * 1024  # KiB on Linux
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    if ours.returncode != 0:
        raise RuntimeError(f"runbook smlog diagnose exited {ours.returncode}: {ours.stderr.decode()[-500:]}")
    found = json.loads(ours.stdout)
    smgc = int(grep.stdout.split()[0])
    mbs = size / 1e6 / ours_s
    print(f"   file: {path.name}, {size / 1e6:,.0f} MB, {truth['lines']:,} lines, {smgc:,} SMGC lines "
          f"({smgc / truth['lines']:.1%})")
    print(f"   grep -c SMGC:             {grep_s:6.2f} s  {size / 1e6 / grep_s:8,.0f} MB/s")
    print(f"   runbook smlog diagnose:   {ours_s:6.2f} s  {mbs:8,.0f} MB/s  "
          f"({ours_s / grep_s:.1f} x grep)  [{'PASS' if mbs >= TARGET_MBS else 'MISS'} >= {TARGET_MBS:.0f} MB/s]")
    print(f"   CPU time, all processes:  {cpu:6.2f} s  ({size / 1e6 / cpu:,.0f} MB per CPU-second, "
          f"a figure that other load on the machine changes less than the wall time)")
    note = "" if before < peak else " (an earlier child was larger)"
    print(f"   peak RSS, one process:    {peak / 2**20:6.0f} MiB  (getrusage RUSAGE_CHILDREN){note}")
    print(f"   peak RSS, with workers:   {tree_peak / 2**20:6.0f} MiB  "
          f"[{'PASS' if max(peak, tree_peak) < TARGET_RSS else 'MISS'} < 1024 MiB]  (sampled every 50 ms)")
    load = os.getloadavg()[0]
    print(f"   load average before/after: {load_before:.1f} / {load:.1f} on {os.cpu_count()} CPUs "
          f"(other work on the machine slows both tools)")
    problems = check(found, truth)
    if problems:
        raise AssertionError("wrong answer on the big file: " + "; ".join(problems))
    print(f"   answer: verdict {found['verdict']}, {len(found['vdis'])} VDIs, "
          f"{found['events'].get('gc_start', 0):,} GC runs: matches what was planted")


if __name__ == "__main__":
    main()
