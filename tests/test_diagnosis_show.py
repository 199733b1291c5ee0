"""What notebook 01 shows of a diagnosis: the verdict first, then tables."""

from runbook_lib import diagnosis_show as show
from runbook_lib.diagnosis import DiagnosisResult, combine
from runbook_lib.pool_diagnosis import diagnose_pool
from runbook_lib.sm_version import parse_sm_version
from tests.test_pool_diagnosis import _pool


def _result(with_pool=True, sm="3.2.5"):
    p, _ = _pool()
    inv = p.inventory()
    pool = diagnose_pool(inv.srs, inv.vdis, None, None, captured=inv.captured_at) if with_pool else None
    version = parse_sm_version(sm) if sm else None
    return DiagnosisResult(data=combine(None, pool, version, pool_source="https://xs01"), pool=pool, sm=version)


def test_verdict_markdown_says_what_was_read_and_the_version():
    text = show.verdict_markdown(_result())
    assert text.startswith("### Verdict: coalescing") and "**Next step:**" in text
    assert "Pool https://xs01 (the inventory only)" in text and "sm 3.2.5 (parameter)" in text
    assert "Known defect** `filesr-live-coalesce-units` (yes" in text     # applies to 3.2.5, not seen here
    assert "version unknown" in show.verdict_markdown(_result(sm=None))


def test_tables_and_findings():
    result = _result()
    srs = show.sr_table(result)
    assert list(srs["sources"]) == ["pool", "pool"] and "next_step" not in srs
    vdis = show.vdi_table(result)
    assert vdis.iloc[0]["pending"] == "leaf" and vdis.iloc[0]["sources"] == "pool"
    findings = show.pool_findings(result)
    assert list(findings["kind"]) == ["chains-waiting"] and list(findings["verdict"]) == ["coalescing"]
    assert "No pool was read" in show.pool_findings(_result(with_pool=False))
