"""Reading and diagnosing SMlog: why is my GC not coalescing, and what do I do next.

    read = read_smlog(["/var/log/SMlog", "/var/log/SMlog.1"])   # records + counts
    found = diagnose(read, sr=None)                              # verdicts + next steps
    found.to_json()                                              # runbook.smlog.diagnosis/1

Modules: `read` (opening and streaming), `scan` (the byte-level pass, run in worker
processes for big files), `parse` (one line), `events` (kinds, folding), `printout` (VDI
sizes), `tree` (chains), `families` (the sm release the lines show), `diagnose` (verdicts,
docs/smlog-verdicts.md), `show` and `plots` (what notebook 01 shows).
"""

from __future__ import annotations

from pathlib import Path

from runbook_lib.locations import DATA_DIR
from runbook_lib.smlog.diagnose import SCHEMA, VERDICTS, Diagnosis, diagnose
from runbook_lib.smlog.events import KINDS
from runbook_lib.smlog.read import SMlogRead, as_path_list, read_smlog

SAMPLES_DIR = DATA_DIR / "samples"


def sample_path() -> Path:
    """The bundled sample SMlog (the field report's excerpt inside a day of GC runs)."""
    return SAMPLES_DIR / "SMlog"


__all__ = ["KINDS", "SCHEMA", "VERDICTS", "Diagnosis", "SMlogRead", "as_path_list", "diagnose", "read_smlog",
           "sample_path"]
