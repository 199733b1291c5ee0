"""Shared fixtures. Tests never read ../shared: what they need is copied under tests/data."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI runs on a loaded 2-core machine: a property test judges answers, never speed.
settings.register_profile("runbook", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("runbook")

DATA = Path(__file__).parent / "data"
# Fixture notebooks under tests/data are inputs to tests, not notebooks for nbval to run; the
# browser tests under tests/ui need Chromium and run only when named (`make test-ui`).
collect_ignore = ["data", "ui"]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture(autouse=True)
def _outputs_in_tmp(tmp_path, monkeypatch):
    """No test writes into the real outputs/ folder."""
    monkeypatch.setenv("RUNBOOK_OUTPUTS", str(tmp_path / "outputs"))
