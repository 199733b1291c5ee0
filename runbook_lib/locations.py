"""Where the suite reads and writes on disk.

The audit trail lives in one `outputs/` folder. A notebook may run in the admin's working
directory (`runbook run`) or in its own folder (JupyterLab, nbval), so the folder is found from
the project root, not from the cwd.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def project_root(start: Path | None = None) -> Path:
    """The checkout holding notebooks/ and runbook_lib/, or the cwd when run elsewhere."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "notebooks").is_dir() and (candidate / "runbook_lib").is_dir():
            return candidate
    if (PACKAGE_DIR.parent / "notebooks").is_dir():
        return PACKAGE_DIR.parent
    return here


def outputs_dir() -> Path:
    """`$RUNBOOK_OUTPUTS` if set, else `<project root>/outputs`."""
    env = os.environ.get("RUNBOOK_OUTPUTS")
    return Path(env).expanduser().resolve() if env else project_root() / "outputs"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"
