"""The schema strings of the JSON objects the suite writes and reads: one home for each.

A file names its schema in its `"schema"` field; readers compare against these constants.
The number after the slash changes when a field changes meaning or goes away (docs/*.md).
"""

INVENTORY_SCHEMA = "runbook.inventory/1"  # xapi.inventory: a pool's records, saved for offline sizing
SIZING_SCHEMA = "runbook.sizing/1"  # sizing.Sizing.to_json: space per SR and the coalesces in hand
PLAN_SCHEMA = "runbook.plan/1"  # plan.make_plan: the plan.json notebook 03 executes (docs/plan.md)
DIAGNOSIS_SCHEMA = "runbook.smlog.diagnosis/1"  # smlog.diagnose: the verdicts of notebook 01
HYGIENE_SCHEMA = "runbook.hygiene/1"  # audit.hygiene: old snapshots and deep chains (notebook 05)
RUN_SCHEMA = "runbook.run/1"  # audit.index: one line of the run index (docs/audit-trail.md)
POOL_DIAGNOSIS_SCHEMA = "runbook.pool.diagnosis/1"  # pool_diagnosis: what the pool shows of its GC, over XenAPI
COMBINED_DIAGNOSIS_SCHEMA = "runbook.diagnosis/1"  # diagnosis: SMlog and pool merged (runbook diagnose, notebook 01)
KNOWN_DEFECTS_SCHEMA = "runbook.known-defects/1"  # known_defects: the table in data/known_defects.yaml
CHECKED_VERSIONS_SCHEMA = "runbook.checked-versions/1"  # checked_versions: the table in data/checked_versions.yaml
POOL_CHECK_SCHEMA = "runbook.pool.check/1"  # pool_check: runbook check-pool's items (docs/check-pool.md)
