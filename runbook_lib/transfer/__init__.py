"""Carrying out a plan.json: steps, journal, verification, the wait for the GC, execution.

Public entry points: `run_transfer` (dry run or execute a plan on a connected session),
`plan_steps` (the steps a plan means), `Journal` (the incident's transfer journal).
"""

from runbook_lib.transfer.execute import (
    ConfirmationError,
    TransferInterrupted,
    TransferNotFinished,
    TransferOutcome,
    check_confirmation,
    interrupted_message,
    load_plan,
    run_transfer,
)
from runbook_lib.transfer.journal import Journal, journal_path
from runbook_lib.transfer.plan_steps import Step, plan_steps, steps_table

__all__ = ["ConfirmationError", "Journal", "Step", "TransferInterrupted", "TransferNotFinished", "TransferOutcome",
           "check_confirmation", "interrupted_message", "journal_path", "load_plan", "plan_steps", "run_transfer",
           "steps_table"]
