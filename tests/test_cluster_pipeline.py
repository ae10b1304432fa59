"""The real pipeline on the one-node Slurm cluster (tests/cluster/slurm.sh) through profiles/slurm-test: a
CI-sized grid whose every non-local job is an `sbatch` job and whose scores equal a local run's; one of its
fine-tuning jobs is signalled the way Slurm signals a job at its time limit, saves its state, is resubmitted
and resumes to the same result; its fine-tuning jobs ask Slurm for a (fake) GPU and get one.

One Slurm run and one local reference run of the same config and seeds (run side by side: the Slurm run
mostly waits between status polls) serve every test. Needs root and XSTILTS_CLUSTER_TESTS=1; about 5-7
minutes on 2 busy cores.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from tests.cluster.harness import (LOCAL_PROFILE, PROFILE, REPO, copy_workflow, finish, kill, requires_cluster,
                                   slurm_cluster, slurm_job, slurm_logs,  # noqa: F401 (fixture)
                                   start_snakemake, submitted_jobs)
from xstilts.io import read_json

pytestmark = [pytest.mark.cluster, requires_cluster]

EXPERIMENT = "cluster"
RESULTS = f"results/{EXPERIMENT}"
CONFIG = "cluster.yaml"
RUN = ["--snakefile", "Snakefile", "--configfile", CONFIG]
# The grid takes 3-6 minutes here when other tests share the 2 cores; a hang must still end.
TIMEOUT = 900
FINETUNE_STEPS = 78  # 100 examples / batch 8 = 13 steps per epoch, 6 epochs (grid_config)
# The jobs of the grid by rule, each run as an sbatch job: every rule but the local ones (cells, aggregate).
GRID_JOBS = {"synth": 1, "prepare_corpus": 1, "prepare": 3, "pretrain": 1, "intermediate": 1, "finetune": 2,
             "retrieve": 2, "evaluate": 2}
SCORE_KEYS = ["backbone", "adaptation", "intermediate", "variant", "seed", "target", "language", "metric"]


def grid_config() -> dict:
    """config/ci.yaml cut to two rows (none, mnli) and two targets (XNLI, Tatoeba) to fit in minutes, with
    fine-tuning long enough to interrupt (78 steps, state saved every 2) on one (fake) GPU and one retry."""
    cfg = yaml.safe_load((REPO / "config" / "ci.yaml").read_text(encoding="utf-8"))
    cfg.update(experiment=EXPERIMENT, targets=["xnli", "tatoeba"], intermediate=["none", "mnli"])
    finetune = cfg["hparams"]["finetune"]["default"]
    finetune.update(epochs=6, batch_size=8, save_every=2)
    cfg["resources"]["finetune"] = {"gpu": 1, "retries": 1}
    return cfg


def finetune_files(intermediate: str) -> tuple[str, str, str]:
    """The output dir, rule log and state dir of a row's fine-tuning on MNLI."""
    row = f"tiny/full/seed0/{intermediate}/en"
    return (f"{RESULTS}/{row}/finetune/mnli", f"{RESULTS}/logs/finetune/{row}/mnli.log",
            f"{RESULTS}/.state/{row}/finetune/mnli")


@dataclass
class Signalled:
    """The fine-tuning job that got SIGUSR1 while it trained."""

    jobid: str
    intermediate: str  # its row's intermediate setting
    saved_step: int  # the step of the state on disk when the signal was sent
    env: dict[str, str]  # the environment of its `xstilts finetune` process
    log: str  # that process's rule log (the retry overwrites it)


@dataclass
class Runs:
    local: Path
    slurm: Path
    output: str  # the Slurm run's Snakemake log
    summary_output: str  # the Slurm summary run's Snakemake log
    signalled: Signalled | None  # None when no fine-tuning job could be caught running


def training_process(jobid: str) -> psutil.Process | None:
    """The `xstilts finetune` process of Slurm job JOBID (Slurm puts SLURM_JOB_ID in its environment);
    `.info["environ"]` holds that environment."""
    for proc in psutil.process_iter(["cmdline", "environ"]):
        cmd, env = proc.info["cmdline"] or [], proc.info["environ"] or {}
        if env.get("SLURM_JOB_ID") == jobid and len(cmd) > 2 and Path(cmd[1]).name == "xstilts" \
                and cmd[2] == "finetune":
            return proc
    return None


def training_with_saved_state(work: Path) -> tuple[str, str, psutil.Process, int] | None:
    """(intermediate setting, Slurm job id, training process, saved step) of a fine-tuning job of the Slurm
    run in WORKDIR that is training and has saved its state, if there is one now."""
    states = work / RESULTS / ".state"
    for progress in sorted(states.glob("tiny/full/seed0/*/en/finetune/mnli/ckpt/progress.json")):
        intermediate = progress.relative_to(states).parts[3]
        logs = slurm_logs((work / "snakemake.out").read_text(encoding="utf-8"))
        jobid = next((j for j, log in logs.items() if log.parent.parent.name == "rule_finetune"
                      and log.parent.name == f"tiny_full_0_{intermediate}_en_mnli"), None)
        process = jobid and training_process(jobid)
        try:
            if process:
                return intermediate, jobid, process, read_json(progress)["step"]
        except FileNotFoundError:  # it has just finished and dropped its state
            pass
    return None


def signal_a_training_job(work: Path, run: subprocess.Popen, deadline: float) -> Signalled | None:
    """Once a fine-tuning job of the Slurm run has saved state, send it SIGUSR1 as Slurm does before a time
    limit (`--signal=USR1@180`) and wait for its training process to save and exit."""
    while not (found := training_with_saved_state(work)):
        if run.poll() is not None or time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    intermediate, jobid, process, saved_step = found
    subprocess.run(["scancel", "--signal=USR1", jobid], check=True, timeout=30)
    process.wait(timeout=120)
    # Read it now: the retry, seconds later, writes the same rule log afresh.
    log = (work / finetune_files(intermediate)[1]).read_text(encoding="utf-8")
    return Signalled(jobid, intermediate, saved_step, process.info["environ"], log)


@pytest.fixture(scope="module")
def runs(slurm_cluster, tmp_path_factory) -> Runs:  # noqa: F811 (the fixture imported above)
    """The grid on Slurm (one fine-tuning job signalled half-way) and locally, then both summaries."""
    base = tmp_path_factory.mktemp("cluster-pipeline")
    local = copy_workflow(base / "local", grid_config(), CONFIG)
    slurm = copy_workflow(base / "slurm", grid_config(), CONFIG)
    local_proc = start_snakemake(local, RUN, TIMEOUT, LOCAL_PROFILE)
    slurm_proc = start_snakemake(slurm, RUN, TIMEOUT, PROFILE)
    try:
        signalled = signal_a_training_job(slurm, slurm_proc, time.monotonic() + TIMEOUT)
        slurm_run = finish(slurm_proc, slurm, TIMEOUT)
        local_run = finish(local_proc, local, TIMEOUT)
    finally:
        kill(slurm_proc)
        kill(local_proc)
    assert slurm_run.returncode == 0, slurm_run.stdout[-4000:]
    assert local_run.returncode == 0, local_run.stdout[-4000:]
    # The summary is a second command (docs/workflow.md); its `aggregate` is a local rule. Targets go
    # before --configfile, which takes every word after it.
    for work, profile in ((local, LOCAL_PROFILE), (slurm, PROFILE)):
        summary = finish(start_snakemake(work, ["summary", *RUN], TIMEOUT, profile), work, TIMEOUT)
        assert summary.returncode == 0, summary.stdout[-4000:]
    return Runs(local, slurm, slurm_run.stdout, summary.stdout, signalled)


def scores(work: Path) -> pd.DataFrame:
    table = pd.read_parquet(work / RESULTS / "summary" / "scores.parquet")
    return table.sort_values(SCORE_KEYS).reset_index(drop=True)


def test_grid_runs_as_slurm_jobs_and_scores_equal_a_local_run(runs):
    jobs, logs = submitted_jobs(runs.output), slurm_logs(runs.output)
    # Each job has its own Slurm log directory (rule and wildcards); a resubmitted job has two Slurm jobs.
    assert {rule: len({logs[jobid].parent for jobid in ids}) for rule, ids in jobs.items()} == GRID_JOBS
    for rule, ids in jobs.items():
        for jobid in ids:
            job = slurm_job(jobid)
            assert re.fullmatch(rf"rule_{rule}(_wildcards_\S+)?", job["Comment"]), job["Comment"]
            assert job["StdOut"] == str(logs[jobid]) and logs[jobid].is_file()
            if runs.signalled is None or jobid != runs.signalled.jobid:  # that one: the next test
                assert job["JobState"] == "COMPLETED", (rule, job)
    assert "submitted with SLURM jobid" not in runs.summary_output
    assert "localrule aggregate:" in runs.summary_output

    summary = runs.slurm / RESULTS / "summary"
    assert pd.read_csv(summary / "missing.csv").empty
    local_scores = scores(runs.local)
    assert set(local_scores["target"]) == {"xnli", "tatoeba"}
    assert set(local_scores["intermediate"]) == {"none", "mnli"}
    pd.testing.assert_frame_equal(scores(runs.slurm), local_scores, check_exact=True)


def test_signalled_training_job_saves_state_is_resubmitted_and_resumes_to_the_same_result(runs):
    signalled = runs.signalled
    assert signalled, "no fine-tuning job was caught running with saved state:\n" + runs.output[-4000:]
    # The signalled Slurm job failed; Snakemake resubmitted the job as a new Slurm job with the
    # attempt-scaled memory (2 x 2000 MB). A restart inside the first allocation would show as one job.
    submitted = [jobid for jobid, log in slurm_logs(runs.output).items()
                 if log.parent.name == f"tiny_full_0_{signalled.intermediate}_en_mnli"]
    assert len(submitted) == 2 and submitted[0] == signalled.jobid, \
        f"expected Slurm job {signalled.jobid} to fail and be resubmitted, got Slurm jobs {submitted}"
    first, retry = submitted
    assert (slurm_job(first)["JobState"], slurm_job(retry)["JobState"]) == ("FAILED", "COMPLETED")
    assert (slurm_job(first)["MinMemoryNode"], slurm_job(retry)["MinMemoryNode"]) == ("2000M", "4000M")

    # xstilts saved its state when the signal came and exited (EXIT_PREEMPTED) instead of training on; the
    # retry resumed from that state.
    preempted = re.search(rf"preempted: .*signal SIGUSR1 at step (\d+)/{FINETUNE_STEPS}; state saved",
                          signalled.log)
    assert preempted, signalled.log
    step = int(preempted[1])
    assert signalled.saved_step <= step < FINETUNE_STEPS
    finetuned, log, state = finetune_files(signalled.intermediate)
    assert f"resumed from step {step} of {FINETUNE_STEPS}" in (runs.slurm / log).read_text(encoding="utf-8")
    assert not (runs.slurm / state).exists()  # dropped once the outputs were written

    # Everything the interrupted job produced equals the uninterrupted local job's, bit for bit.
    slurm_log, local_log = (read_json(work / finetuned / "train_log.json") for work in (runs.slurm, runs.local))
    assert (slurm_log.pop("resumed_from_step"), local_log.pop("resumed_from_step")) == (step, None)
    # progress lines carry wall-clock numbers (elapsed, ETA, tokens/s) and a loss averaged since the last
    # line; what training computed at a logged step (lr, gradient norm) is the same in both
    progress = [{r["step"]: (r["epoch"], r["lr"], r["grad_norm"]) for r in log.pop("progress")}
                for log in (slurm_log, local_log)]
    assert progress[0][FINETUNE_STEPS] == progress[1][FINETUNE_STEPS]
    assert {k: v for k, v in progress[0].items() if k in progress[1]} == \
        {k: v for k, v in progress[1].items() if k in progress[0]}
    assert slurm_log == local_log
    for name in ("dev.json", "model/heads.safetensors", "model/encoder/model.safetensors"):
        assert (runs.slurm / finetuned / name).read_bytes() == (runs.local / finetuned / name).read_bytes(), name
    metrics = f"{RESULTS}/tiny/full/seed0/{signalled.intermediate}/en/eval/xnli/metrics.json"
    assert read_json(runs.slurm / metrics) == read_json(runs.local / metrics)


def test_finetune_jobs_get_a_gpu_from_slurm(runs):
    jobs = submitted_jobs(runs.output)
    for jobid in jobs["finetune"]:
        assert slurm_job(jobid)["TresPerJob"] == "gres:gpu:1"
    # resources.finetune.gpu is the only GPU request; the other rules default to gpu 0.
    for rule in ("pretrain", "intermediate", "evaluate", "retrieve"):
        for jobid in jobs[rule]:
            assert "gpu" not in slurm_job(jobid).get("TresPerJob", ""), rule
    # Slurm gave the training process one of the node's two fake GPUs; torch found no CUDA and used the CPU.
    assert runs.signalled, "no fine-tuning job was caught running:\n" + runs.output[-4000:]
    assert runs.signalled.env["CUDA_VISIBLE_DEVICES"] in {"0", "1"}
    for intermediate in ("none", "mnli"):
        assert read_json(runs.slurm / finetune_files(intermediate)[0] / "cost.json")["device_kind"] == "cpu"
