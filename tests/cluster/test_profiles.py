"""The Slurm profiles without a cluster: Snakemake accepts every key of both, and the test profile differs
from the users' profile only in the keys docs/cluster.md lists (so the cluster tests test what users run)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.cluster.harness import REPO, SNAKEMAKE

PROFILES = REPO / "profiles"
SMOKE = REPO / "tests" / "cluster" / "smoke" / "Snakefile"
# What the one-node test cluster changes (each explained in profiles/slurm-test/config.yaml): polling, and
# the partition. Job states come from sacct in both (the test cluster has slurmdbd).
TEST_ONLY: set[str] = set()
TEST_CHANGED = {"seconds-between-status-checks", "slurm-init-seconds-before-status-checks"}
TEST_ONLY_RESOURCES = {"slurm_partition"}


def load(name: str) -> dict:
    return yaml.safe_load((PROFILES / name / "config.yaml").read_text(encoding="utf-8"))


def test_test_profile_differs_only_in_documented_keys():
    users, test = load("slurm"), load("slurm-test")
    assert set(test) - set(users) == TEST_ONLY
    assert set(users) - set(test) == set()
    changed = {key for key in users if key != "default-resources" and users[key] != test[key]}
    assert changed == TEST_CHANGED
    resources, test_resources = users["default-resources"], test["default-resources"]
    assert {k: v for k, v in test_resources.items() if k not in TEST_ONLY_RESOURCES} == resources
    assert set(test_resources) - set(resources) == TEST_ONLY_RESOURCES


def test_users_profile_leaves_account_partition_and_gpu_model_unset():
    """A bogus account/partition fails every submission; a default gpu_model makes CPU jobs ask for GPUs."""
    resources = load("slurm")["default-resources"]
    assert not {"slurm_account", "slurm_partition", "gpu_model", "gpu"} & set(resources)


def test_docs_explain_every_test_profile_difference():
    docs = (REPO / "docs" / "cluster.md").read_text(encoding="utf-8")
    for key in TEST_ONLY | TEST_CHANGED | TEST_ONLY_RESOURCES:
        assert f"`{key}`" in docs, key


@pytest.mark.parametrize("profile", ["slurm", "slurm-test"])
def test_snakemake_accepts_every_profile_key(profile, tmp_path):
    """A dry run parses the whole profile; an unknown or misspelt key is an argument error."""
    result = subprocess.run([str(SNAKEMAKE), "--profile", str(PROFILES / profile), "--snakefile", str(SMOKE),
                             "--directory", str(tmp_path), "--dry-run"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gpu" in result.stdout and "aggregate" in result.stdout
