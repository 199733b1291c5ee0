"""`make demo` end to end: the whole remedy on the simulator, through the real runner."""

import json

from runbook_lib.demo import SR_UUID, run_demo, summary


def test_demo_frees_space_shortens_the_chain_and_leaves_a_verifiable_trail(tmp_path, capsys):
    lines = []
    result = run_demo("demo-test", echo=lines.append)

    assert result.before.free < result.after.free, "the coalesce gave no space back"
    assert result.after.depth < result.before.depth, "the VHD chain did not get shorter"
    names = [r.notebook.stem for r in result.runs]
    assert names == ["01_diagnose_smlog", "02_size_space", "03_transfer_and_rescan",
                     "03_transfer_and_rescan", "04_postmortem"]
    assert all(r.exit_code == 0 for r in result.runs), [(r.notebook.stem, r.error) for r in result.runs]

    diagnosis = result.runs[0].records
    assert diagnosis["verdict"]["verdict"] == "stuck-timeout"
    # the simulated SMlog (no year in it) reads as the hours before the admin's first run
    import pandas as pd

    last_failure = max(pd.Timestamp(v["last_failure"]) for v in diagnosis["vdis"] if v["last_failure"])
    assert last_failure < pd.Timestamp(result.runs[0].start), (last_failure, result.runs[0].start)
    plan = json.loads((result.folder / "plan.json").read_text())
    assert plan["sr"]["uuid"] == SR_UUID and plan["vms"], plan

    from click.testing import CliRunner

    from runbook_lib.cli import main

    check = CliRunner().invoke(main, ["verify"])
    assert check.exit_code == 0, check.output

    text = summary(result)
    assert SR_UUID in text and "chain depth" in text
    postmortem = next(line for line in text.splitlines() if line.startswith("postmortem: "))
    from pathlib import Path

    assert Path(postmortem.split(": ", 1)[1]).is_file(), postmortem
