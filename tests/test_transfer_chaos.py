"""A fixed sample of the chaos trials (the full run is `make chaos`): kills before and after
the calls that matter most and lost answers, in each mode; each must end with the remedy done,
the VM whole with its latest data, and nothing of the runbook's left on the pool."""

import pytest

from tests.chaos_trials import run_trial

SAMPLE = [
    ("copy", "kill-before 4"),            # Async.VM.copy never sent
    ("copy", "kill-after 4"),             # the copy runs, its task never journaled
    ("copy", "kill-after 13"),            # the original's VM.destroy done, its disks not
    ("copy", "kill-after 29"),            # the staging copy's VM.destroy done, its disks not
    ("copy", "lose-reply VIF.create@1"),
    ("copy", "lose-reply Async.VM.copy@2"),
    ("migrate", "kill-after 1"),
    ("migrate", "lose-reply Async.VDI.pool_migrate@3"),
    ("export", "kill-after 7"),
    ("export", "lose-reply VM.destroy@1"),
    ("offline", "kill-after 3"),          # the leaf forced, the run dies before it is journaled done
    ("offline", "kill-before 6"),         # the chain coalesced, the VM not started yet: never with force left
    ("offline", "lose-reply VDI.add_to_other_config@1"),
]


@pytest.mark.parametrize("mode, fault", SAMPLE)
def test_chaos_sample(mode, fault):
    trial = run_trial(mode, fault)
    assert trial.ok, trial.problems
