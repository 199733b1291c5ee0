"""The audit trail: `runbook run`, the hash-chained run index, history, verify, secret scan."""
