"""The Slurm profile end to end on a real one-node cluster (tests/cluster/slurm.sh), with the smoke workflow
tests/cluster/smoke: every job goes through Slurm, a GPU request yields CUDA_VISIBLE_DEVICES, a retry gets
its larger attempt-scaled memory, a failing job fails the run, and a signalled job resumes from its state.

Needs root and XSTILTS_CLUSTER_TESTS=1 (CI sets both); about 2-3 minutes.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.cluster.harness import (REPO, finish, kill, requires_cluster, run_snakemake_on_slurm, sacct_states,
                                   slurm_cluster, slurm_job, start_snakemake_on_slurm,  # noqa: F401 (fixture)
                                   submitted_jobs)

pytestmark = [pytest.mark.cluster, requires_cluster, pytest.mark.usefixtures("slurm_cluster")]

SMOKE = ["--snakefile", str(REPO / "tests" / "cluster" / "smoke" / "Snakefile")]
TIMEOUT = 150


def slurm_log(workdir, rule, jobid) -> str:
    """A job's stdout+stderr as Slurm wrote it (the test profile keeps logs of successful jobs too)."""
    return (workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}" / f"{jobid}.log").read_text()


def test_gpu_retry_and_aggregate_run_as_slurm_jobs(tmp_path):
    result = run_snakemake_on_slurm(tmp_path, SMOKE, TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:]
    jobs = submitted_jobs(result.stdout)
    assert {rule: len(ids) for rule, ids in jobs.items()} == {"gpu": 1, "memory": 2, "aggregate": 1}
    for ids in jobs.values():
        for jobid in ids:
            assert slurm_job(jobid)["JobState"] in {"COMPLETED", "FAILED"}

    # The GPU request reached Slurm, which allocated a (fake) GPU and set CUDA_VISIBLE_DEVICES.
    gpu = slurm_job(jobs["gpu"][0])
    assert gpu["TresPerJob"] == "gres:gpu:1"
    assert (tmp_path / "gpu.txt").read_text().split() == ["CUDA_VISIBLE_DEVICES=0",
                                                          f"SLURM_JOB_ID={jobs['gpu'][0]}"]

    # Attempt 1 got 600 MB and failed; the retry asked Slurm for 2 x 600 MB and passed.
    first, retry = jobs["memory"]
    assert slurm_job(first)["JobState"] == "FAILED"
    assert slurm_job(first)["MinMemoryNode"] == "600M"
    assert "needs 1000 MB" in slurm_log(tmp_path, "memory", first)
    assert slurm_job(retry)["JobState"] == "COMPLETED"
    assert slurm_job(retry)["MinMemoryNode"] == "1200M"
    assert (tmp_path / "memory.txt").read_text().split() == ["granted=1200M", f"SLURM_JOB_ID={retry}"]

    assert (tmp_path / "aggregate.txt").read_text() == (
        (tmp_path / "gpu.txt").read_text() + (tmp_path / "memory.txt").read_text())

    # Accounting recorded every job: the plugin polled these states with sacct (profiles/slurm's default).
    assert sacct_states([i for ids in jobs.values() for i in ids]) == {
        jobs["gpu"][0]: "COMPLETED", first: "FAILED", retry: "COMPLETED", jobs["aggregate"][0]: "COMPLETED"}


def test_failing_job_fails_the_run(tmp_path):
    result = run_snakemake_on_slurm(tmp_path, [*SMOKE, "fail.txt"], TIMEOUT)
    assert result.returncode not in (0, 137), result.stdout[-4000:]
    (jobid,) = submitted_jobs(result.stdout)["always_fail"]
    assert slurm_job(jobid)["JobState"] == "FAILED"
    assert "failing on purpose" in slurm_log(tmp_path, "always_fail", jobid)
    assert not (tmp_path / "fail.txt").exists()


def _running_job(comment: str, deadline: float) -> str:
    """Id of the running Slurm job whose comment (the plugin writes rule_<name>) contains COMMENT."""
    while time.monotonic() < deadline:
        lines = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i %k"], check=True, capture_output=True,
                               text=True, timeout=30).stdout.splitlines()
        found = [line.split()[0] for line in lines if comment in line]
        if found:
            return found[0]
        time.sleep(0.5)
    pytest.fail(f"no running Slurm job with comment {comment!r}")


def test_signalled_job_saves_state_and_resumes_on_retry(tmp_path):
    proc = start_snakemake_on_slurm(tmp_path, [*SMOKE, "preempt.txt"], TIMEOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        jobid = _running_job("rule_preemptible", deadline)
        progress = tmp_path / "state" / "preemptible.progress"
        while not progress.exists() or int(progress.read_text() or 0) < 3:
            assert time.monotonic() < deadline and proc.poll() is None, "the job never got past step 2"
            time.sleep(0.2)
        # What Slurm does before a time limit (--signal=USR1@180) or, with SIGTERM, on preemption.
        subprocess.run(["scancel", "--signal=USR1", jobid], check=True, timeout=30)
        result = finish(proc, tmp_path, TIMEOUT)
    finally:
        kill(proc)
    assert result.returncode == 0, result.stdout[-4000:]
    first, retry = submitted_jobs(result.stdout)["preemptible"]
    assert first == jobid
    assert slurm_job(first)["JobState"] == "FAILED"
    saved = int(slurm_log(tmp_path, "preemptible", first).split("preempted at step ")[1].split(":")[0])
    assert saved >= 3
    assert f"resuming from step {saved} (job {retry})" in slurm_log(tmp_path, "preemptible", retry)
    assert (tmp_path / "preempt.txt").read_text().strip() == f"finished 20 steps; resumed from step: {saved}"
