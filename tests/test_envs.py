"""The workflow's conda environment lists exactly the packages pyproject.toml depends on, at constraints.txt's
versions, so a rule run with `--sdm conda` has the same software as `make env` (`pip install -c
constraints.txt -e .[cpu]`)."""

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


def _env() -> tuple[dict, dict[str, list[str]]]:
    """Normalised name -> requirement of the env's conda and pip dependencies; pip's options (-e, -c) by flag."""
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "xstilts.yaml").read_text(encoding="utf-8"))
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = [p for d in env["dependencies"] if isinstance(d, dict) for p in d["pip"]]
    options: dict[str, list[str]] = {}
    for p in pip:
        if p.startswith("-"):
            flag, value = p.split(None, 1)
            options.setdefault(flag, []).append(value)
    reqs = map(Requirement, conda + [p for p in pip if not p.startswith("-")])
    return {canonicalize_name(r.name): r for r in reqs if r.name not in CONDA_ONLY}, options


def _constraints() -> dict[str, str]:
    """Normalised name -> the exact version constraints.txt pins."""
    pins = [Requirement(line) for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in pins}


def test_env_lists_the_same_packages_as_pyproject():
    env, _ = _env()
    assert sorted(env) == sorted(_pyproject())


def test_env_pins_constraints_versions_which_satisfy_pyproject():
    env, options = _env()
    pins = _constraints()
    for name, req in _pyproject().items():
        assert str(env[name].specifier) == f"=={pins[name]}", name
        assert req.specifier.contains(pins[name], prereleases=True), name
    # the indirect dependencies too: pip installs under constraints.txt, as `make env` does
    assert options["-c"] == ["../../constraints.txt"]
    assert (ROOT / "workflow" / "envs" / options["-c"][0]).resolve() == ROOT / "constraints.txt"


def test_env_installs_the_package_itself_from_the_repository_root():
    _, options = _env()
    assert options["-e"] == ["../.."]
    package_root = (ROOT / "workflow" / "envs" / options["-e"][0]).resolve()
    assert package_root == ROOT and (package_root / "pyproject.toml").is_file()
