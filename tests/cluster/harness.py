"""Runs Snakemake through profiles/slurm-test on the one-node cluster of tests/cluster/slurm.sh.

Any test module can use it: `from tests.cluster.harness import run_snakemake_on_slurm, slurm_cluster`
(importing the fixture makes it available there). Every run is wrapped in `timeout -s KILL`, because a
Snakemake that lost track of its Slurm jobs polls forever and ignores SIGTERM: a hang becomes a failure.
`copy_workflow` gives a test its own copy of the real pipeline, and `start_snakemake` runs it with any
profile (profiles/local for a reference run to compare the cluster's results with).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SLURM_SH = REPO / "tests" / "cluster" / "slurm.sh"
PROFILE = REPO / "profiles" / "slurm-test"
LOCAL_PROFILE = REPO / "profiles" / "local"
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"
# Exit status of `timeout -s KILL` when it had to kill.
KILLED = 137
# Command-line additions to profiles/slurm-test: the tests read the Slurm logs of successful jobs too
# (kept out of the profile, which differs from profiles/slurm only in partition and polling).
SLURM_TEST_ARGS = ["--slurm-keep-successful-logs"]


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to install and start a one-node Slurm cluster"
    if os.environ.get("XSTILTS_CLUSTER_TESTS") != "1":
        return "set XSTILTS_CLUSTER_TESTS=1 to start a one-node Slurm cluster for these tests"
    return None


SKIP_REASON = _skip_reason()
requires_cluster = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


@pytest.fixture(scope="session")
def slurm_cluster():
    """Starts the cluster once per session (idempotent) and stops it at the end."""
    subprocess.run([str(SLURM_SH), "start"], check=True, timeout=300)
    yield
    subprocess.run([str(SLURM_SH), "stop"], check=True, timeout=120)


def _env() -> dict[str, str]:
    """The Slurm jobs inherit this environment (`sbatch --export=ALL`): put this venv first on PATH.

    Without the test session's shared feature cache (XSTILTS_CACHE_DIR), so that two runs compared with
    each other compute everything themselves."""
    env = {k: v for k, v in os.environ.items() if k != "XSTILTS_CACHE_DIR"}
    return {**env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def copy_workflow(workdir: Path, config: dict, configfile: str = "test.yaml") -> Path:
    """A private copy of the pipeline (Snakefile, workflow/, config/, profiles/) in WORKDIR, with CONFIG
    written to WORKDIR/CONFIGFILE: its results/ and resources/ never touch the repository's."""
    workdir.mkdir(parents=True)
    shutil.copy2(REPO / "Snakefile", workdir)
    for folder in ("workflow", "config", "profiles"):
        shutil.copytree(REPO / folder, workdir / folder)
    (workdir / configfile).write_text(yaml.safe_dump(config), encoding="utf-8")
    return workdir


def start_snakemake(workdir: Path, args: list[str], timeout: int, profile: Path) -> subprocess.Popen:
    """Starts `snakemake --profile PROFILE ARGS` in WORKDIR, killed after TIMEOUT seconds.

    Output (stdout and stderr) goes to WORKDIR/snakemake.out; `finish` collects it. The run gets its own
    process group, so `kill` can end it when a test fails half-way.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    extra = SLURM_TEST_ARGS if Path(profile) == PROFILE else []
    cmd = ["timeout", "-s", "KILL", str(timeout), str(SNAKEMAKE), "--profile", str(profile),
           "--directory", str(workdir), *extra, *args]
    with open(workdir / "snakemake.out", "w", encoding="utf-8") as out:
        return subprocess.Popen(cmd, cwd=workdir, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def start_snakemake_on_slurm(workdir: Path, args: list[str], timeout: int) -> subprocess.Popen:
    """`start_snakemake` with profiles/slurm-test: every non-local job is an `sbatch` job."""
    return start_snakemake(workdir, args, timeout, PROFILE)


def kill(proc: subprocess.Popen) -> None:
    """Ends a run from `start_snakemake_on_slurm` that is still going (SIGKILL: it ignores SIGTERM)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def finish(proc: subprocess.Popen, workdir: Path, timeout: int) -> subprocess.CompletedProcess:
    """Waits for a run from `start_snakemake_on_slurm`; fails the test when `timeout` had to kill it."""
    proc.wait(timeout=timeout + 30)
    output = (workdir / "snakemake.out").read_text(encoding="utf-8")
    if proc.returncode == KILLED:
        pytest.fail(f"snakemake in {workdir} hung and was killed after {timeout}s:\n{output[-4000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout=output)


def run_snakemake_on_slurm(workdir: Path, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    """Runs Snakemake (ARGS: snakefile, config, targets, ...) on the test cluster; `stdout` holds its log."""
    return finish(start_snakemake_on_slurm(workdir, args, timeout), workdir, timeout)


def submitted_jobs(output: str) -> dict[str, list[str]]:
    """Slurm job ids by rule, in submission order, read from Snakemake's log."""
    jobs: dict[str, list[str]] = {}
    for jobid, rule in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_([^/]+)/", output):
        jobs.setdefault(rule, []).append(jobid)
    return jobs


def slurm_logs(output: str) -> dict[str, Path]:
    """Each submitted job's Slurm log (its stdout+stderr) by job id, read from Snakemake's log. The path is
    `.../slurm_logs/rule_<rule>/<wildcard values joined by _>/<jobid>.log`."""
    return {jobid: Path(log) for jobid, log in re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+)\)\.",
                                                           output)}


def sacct_states(jobids) -> dict[str, str]:
    """Each job's state as accounting (slurmdbd) recorded it: what the executor plugin polls by default."""
    text = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobIDRaw,State", "-j", ",".join(jobids)], check=True,
                          capture_output=True, text=True, timeout=30).stdout
    return dict(line.split("|", 1) for line in text.splitlines() if line)


def slurm_job(jobid: str) -> dict[str, str]:
    """What slurmctld knows of a job (`scontrol show job`), as key -> value; jobs stay for MinJobAge."""
    text = subprocess.run(["scontrol", "show", "job", "--details", "--oneliner", jobid], check=True,
                          capture_output=True, text=True, timeout=30).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", text))
