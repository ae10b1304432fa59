"""The workflow's conda environment lists exactly the packages pyproject.toml depends on, so a rule run
with `--sdm conda` has the same software as `pip install -e .[cpu]`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONDA_ONLY = {"python", "pip"}  # the interpreter and installer, not dependencies of the package


def _pyproject() -> dict:
    """Normalised name -> requirement of the package's dependencies with the default (`cpu`) extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = map(Requirement, project["dependencies"] + project["optional-dependencies"]["cpu"])
    return {canonicalize_name(r.name): r for r in reqs}


def _env() -> tuple[dict, list[str]]:
    """Normalised name -> requirement of the env's conda and pip dependencies; the editable installs."""
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "xstilts.yaml").read_text(encoding="utf-8"))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d["pip"]]
    editable = [p.split(None, 1)[1] for p in pip if p.startswith("-e ")]
    reqs = map(Requirement, conda + [p for p in pip if not p.startswith("-e ")])
    return {canonicalize_name(r.name): r for r in reqs if r.name not in CONDA_ONLY}, editable


def test_env_lists_the_same_packages_as_pyproject():
    env, _ = _env()
    assert sorted(env) == sorted(_pyproject())


def test_env_pins_the_same_versions_as_pyproject():
    env, _ = _env()
    for name, req in _pyproject().items():
        assert env[name].specifier == req.specifier, name


def test_env_installs_the_package_itself_from_the_repository_root():
    _, editable = _env()
    assert editable == ["../.."]
    package_root = (ROOT / "workflow" / "envs" / editable[0]).resolve()
    assert package_root == ROOT and (package_root / "pyproject.toml").is_file()
