"""environment.yml must not drift from pyproject.toml, the single source of dependencies."""

import re
import tomllib

import yaml

from tests.conftest import ROOT


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    return {_name(s): s.replace(" ", "").lower() for s in specs}


def _conda_specs() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs: dict[str, str] = {}
    for item in env["dependencies"]:
        entries = item["pip"] if isinstance(item, dict) else [item]
        for spec in entries:
            if spec.startswith("-e") or _name(spec) in ("python", "pip"):
                continue
            specs[_name(spec)] = spec.replace(" ", "").lower()
    return specs


def test_every_pyproject_dependency_is_in_environment_yml_with_the_same_bound():
    assert _conda_specs() == _pyproject_specs()


def test_environment_yml_installs_the_project_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert "-e ." in pip_block
    assert any(str(d).startswith("python>=3.11") for d in env["dependencies"])
