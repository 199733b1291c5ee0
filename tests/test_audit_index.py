"""runbook_lib.audit.index: the hash chain, and appends from several processes at once."""

import json
import multiprocessing

from runbook_lib.audit import index
from runbook_lib.audit.verify import verify


def _rec(n, incident="inc"):
    return {"run_id": f"{n:032x}", "incident": incident, "notebook": "notebooks/x.ipynb", "parameters": {"n": n},
            "start": f"2026-11-26T10:00:{n % 60:02d}+00:00", "end": f"2026-11-26T10:01:{n % 60:02d}+00:00",
            "status": "succeeded", "exit_code": 0, "error": None, "outputs": [], "records": {"n": n}}


def test_each_record_chains_onto_the_one_before(tmp_path):
    written = [index.append(_rec(n), tmp_path) for n in range(3)]
    assert [r["seq"] for r in written] == [1, 2, 3]
    assert written[0]["prev"] == index.GENESIS
    assert written[1]["prev"] == written[0]["hash"] and written[2]["prev"] == written[1]["hash"]
    assert all(index.record_hash(r) == r["hash"] for r in written)
    assert index.read_index(tmp_path) == written
    head = json.loads(index.head_path(tmp_path).read_text())
    assert head == {"seq": 3, "hash": written[2]["hash"]}


def test_the_hash_covers_every_field(tmp_path):
    rec = index.append(_rec(1), tmp_path)
    for key in ("parameters", "status", "prev", "records", "seq"):
        changed = dict(rec, **{key: "tampered"})
        assert index.record_hash(changed) != rec["hash"], key


def test_history_is_a_table_filtered_by_incident(tmp_path):
    for n, inc in enumerate(["a", "b", "a"]):
        index.append(_rec(n, inc), tmp_path)
    frame = index.history("a", tmp_path)
    assert list(frame.columns) == index.HISTORY_COLUMNS
    assert list(frame["seq"]) == [1, 3] and set(frame["incident"]) == {"a"}
    assert list(frame["duration_s"]) == [60.0, 60.0]
    assert index.history(None, tmp_path / "nothing").empty


def _append_many(args):
    folder, worker, count = args
    for n in range(count):
        index.append(_rec(worker * 1000 + n, f"w{worker}"), folder)
    return worker


def test_concurrent_appends_from_several_processes_keep_a_valid_chain(tmp_path):
    workers, each = 4, 25
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(_append_many, [(tmp_path, w, each) for w in range(workers)])
    records = index.read_index(tmp_path)
    assert len(records) == workers * each
    assert [r["seq"] for r in records] == list(range(1, workers * each + 1))
    assert len({r["run_id"] for r in records}) == workers * each
    report = verify(tmp_path, scan=False)
    assert report.ok, [str(p) for p in report.problems]
    assert report.runs == workers * each


def test_a_damaged_last_line_still_gets_chained_onto(tmp_path):
    index.append(_rec(1), tmp_path)
    with open(index.index_path(tmp_path), "a") as handle:
        handle.write('{"truncated": \n')
    rec = index.append(_rec(2), tmp_path)
    assert rec["seq"] == 1 and rec["prev"] != index.GENESIS
