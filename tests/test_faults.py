"""Fault injection: kill -9 anywhere, a failing cell, divergence, corrupt caches and checkpoints, a full disk,
two workflow invocations at once, plus the security and provenance checks. docs/reliability.md lists every
fault, what the pipeline does, and the test here that proves it.

Workflow runs use a copy of the repository's Snakefile, workflow/, config/ and profiles/ in a temporary
directory; one uninterrupted run of a CI-size grid (`FAULTS_CONFIG`) is made once per session and copied by
the tests that need finished outputs.
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from tests.conftest import WORKFLOW_ENV, copy_workflow, wait_until
from tests.test_train import _trainer, _weights
from xstilts import cli, io
from xstilts.errors import Preempted
from xstilts.features import cached_features

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
XSTILTS = str(BIN / "xstilts")
EXPERIMENT = "faults"
RESULTS = f"results/{EXPERIMENT}"
ROW = f"{RESULTS}/tiny/full/seed0"
PREPARED = f"resources/data/prepared/{EXPERIMENT}-local-v1"
ENV = WORKFLOW_ENV


def faults_config() -> dict:
    """config/ci.yaml cut to two rows (none, mnli) and two targets (XNLI, Tatoeba) so that a run costs about a
    minute, with training state saved every 2 steps (pretraining: 60 steps, saved every 20) so that a killed
    training job has state to resume."""
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    cfg.update(experiment=EXPERIMENT, targets=["xnli", "tatoeba"], intermediate=["none", "mnli"])
    cfg["hparams"]["pretrain"] = {**cfg["hparams"]["pretrain"], "max_steps": 60, "save_every": 20}
    for phase in ("intermediate", "finetune"):
        cfg["hparams"][phase] = {"default": {**cfg["hparams"][phase]["default"], "save_every": 2}}
    cfg["hparams"]["evaluate"] = {"default": cfg["hparams"]["evaluate"]["default"]}
    return cfg


def workflow_copy(work: Path) -> Path:
    return copy_workflow(work, {"faults.yaml": faults_config()})


def smk_cmd(*args: str) -> list[str]:
    return [str(BIN / "snakemake"), *args, "--profile", "profiles/local", "--configfile", "faults.yaml"]


def snakemake(work: Path, *args: str, env: dict | None = None, timeout: int = 400) -> subprocess.CompletedProcess:
    """Targets go before the options (`--configfile` takes every word after it)."""
    return subprocess.run(smk_cmd(*args), cwd=work, env=env or ENV, capture_output=True, text=True,
                          timeout=timeout)


def job_stats(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """One uninterrupted run of the whole grid and its summary (the reference of every fault test)."""
    work = workflow_copy(tmp_path_factory.mktemp("reference") / "work")
    run = snakemake(work)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (work / "snakemake.stderr").write_text(run.stderr, encoding="utf-8")
    summary = snakemake(work, "summary")
    assert summary.returncode == 0, summary.stderr[-3000:]
    return work


@pytest.fixture()
def run_copy(finished_run, tmp_path) -> Path:
    """A private copy of the finished run (mtimes kept, so Snakemake sees it as up to date)."""
    work = tmp_path / "work"
    shutil.copytree(finished_run, work, symlinks=True)
    return work


def test_local_jobs_fork_from_the_warm_worker(finished_run):
    """The reference run (and so every fault test below) ran its jobs through xstilts.worker: Snakemake's
    benchmark of an evaluation job measures only the client, which never imports torch (a fresh `xstilts
    evaluate` spends over a second of CPU on imports alone)."""
    assert "xstilts warm worker: pid" in (finished_run / "snakemake.stderr").read_text(encoding="utf-8")
    benchmarks = list(finished_run.glob(f"{RESULTS}/benchmarks/evaluate/**/*.tsv"))
    assert benchmarks
    for tsv in benchmarks:
        assert pd.read_csv(tsv, sep="\t")["cpu_time"].iloc[0] < 0.5, tsv


# ------------------------------------------------------------------------------------------ kill -9
def start(cmd: list[str], cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """A process in its own group, so that kill -9 reaches every job it started."""
    out = open(log, "w") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def processes_in(cwd: Path) -> list[int]:
    """Pids of the processes working in `cwd`: the jobs of a run started there."""
    pids, cwd = [], cwd.resolve()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == cwd:
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours
            pass
    return pids


def kill_when(proc: subprocess.Popen, cwd: Path, ready, delay: float, timeout: float = 300) -> bool:
    """SIGKILL the process group `delay` s after `ready()` turns true; False if it finished first. Returns
    once no job is left in `cwd`: jobs forked by the warm worker sit in their own group and die by
    PR_SET_PDEATHSIG a moment after their handler, and one still saving state would race the caller."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_until(lambda: not processes_in(cwd), "jobs outlived kill -9 of their run", timeout=30)
    return True


def glob_running(work: Path, pattern: str) -> set[Path]:
    """`work.glob(pattern)` while jobs write there: a save's temp directory can vanish between listing its
    parent and scanning it (the job renamed or removed it), which pathlib reports as FileNotFoundError;
    scan again."""
    while True:
        try:
            return set(work.glob(pattern))
        except FileNotFoundError:
            continue


def new_file(work: Path, pattern: str):
    """A `ready` test: some file matching `pattern` that did not exist when the test was made appears."""
    before = glob_running(work, pattern)
    return lambda: bool(glob_running(work, pattern) - before)


MODEL_STATE = "resources/models/.state"  # pretraining's state, by backbone (workflow/rules/pretrain.smk)


def saved_steps(work: Path) -> dict[Path, int]:
    """The step of every resumable state now on disk, by state dir."""
    out = {}
    for progress in [*work.glob(f"{RESULTS}/.state/**/ckpt/progress.json"),
                     *work.glob(f"{MODEL_STATE}/*/ckpt/progress.json")]:
        if not progress.parent.parent.name.startswith("."):  # not a save cut short by the kill
            out[progress.parent.parent] = json.loads(progress.read_text())["step"]
    return out


def state_log(work: Path, state: Path) -> Path:
    """The job log of a training job, from its state dir (.state/<row>/intermediate|finetune/<task>, or
    resources/models/.state/<backbone> for pretraining)."""
    if state.parent == work / MODEL_STATE:
        return work / "resources" / "logs" / "pretrain" / f"{state.name}.log"
    rel = state.relative_to(work / RESULTS / ".state").parts
    if rel[-1] == "intermediate":
        return work / RESULTS / "logs" / "intermediate" / Path(*rel[:-1]).with_suffix(".log")
    return work / RESULTS / "logs" / "finetune" / Path(*rel[:-2]) / f"{rel[-1]}.log"


@pytest.mark.slow  # the whole grid from an empty resources/ (data, pretraining), cut by 5 kills (~3 min on 2 cores)
def test_kill_9_in_every_workflow_phase_then_rerun_gives_identical_scores(finished_run, tmp_path):
    """From nothing but the workflow: a second run of the same commit, config and seed, killed in every phase,
    ends with the uninterrupted (first) run's scores.parquet, byte for byte."""
    work = workflow_copy(tmp_path / "work")
    rng = random.Random(20240611)
    state_glob = f"{RESULTS}/.state/**/{{}}/**/ckpt/progress.json"
    plan = [  # (phase hit, target, when to kill, extra delay drawn from the seeded generator)
        ("pretrain", "pretrain_all", f"{MODEL_STATE}/*/ckpt/progress.json", 0.1),
        ("intermediate", "intermediate_all", f"{RESULTS}/.state/**/intermediate/ckpt/progress.json", 0.1),
        ("finetune", "finetune_all", state_glob.format("finetune"), 0.1),
        ("evaluate", "all", f"{RESULTS}/logs/evaluate/**/*.log", 1.0),  # retrieval jobs may run beside it
        ("aggregate", "summary", f"{RESULTS}/logs/aggregate.log", 1.0),
    ]
    killed, pending, checked = [], {}, 0
    for i, (phase, target, pattern, max_delay) in enumerate(plan):
        since = time.time()
        proc = start(smk_cmd(target), work, tmp_path / f"run{i}.log")
        if kill_when(proc, work, new_file(work, pattern), rng.uniform(0, max_delay)):
            killed.append(phase)
        checked += check_resumed(work, pending, since)
        pending = saved_steps(work)
        # kill -9 leaves Snakemake's lock behind: the next run is refused until --unlock
        if i == 0:
            refused = snakemake(work, target)
            assert refused.returncode != 0 and "cannot be locked" in refused.stdout + refused.stderr
        assert snakemake(work, "--unlock").returncode == 0
    assert killed == ["pretrain", "intermediate", "finetune", "evaluate", "aggregate"]

    since = time.time()
    assert snakemake(work).returncode == 0
    checked += check_resumed(work, pending, since)
    assert checked, "no kill landed in training after a state save"
    assert snakemake(work, "summary").returncode == 0
    assert (work / RESULTS / "summary/scores.parquet").read_bytes() == \
        (finished_run / RESULTS / "summary/scores.parquet").read_bytes()
    assert not list(work.glob(f"{RESULTS}/.state/**/ckpt")) and not list(work.glob(f"{MODEL_STATE}/*"))


def check_resumed(work: Path, pending: dict[Path, int], since: float) -> int:
    """Every training job that had saved state (`pending`) and trained again in the run started at `since`
    continued from exactly that state: its log says so. Returns how many were checked."""
    checked = 0
    for state, step in pending.items():
        log = state_log(work, state)
        text = log.read_text() if log.exists() and log.stat().st_mtime >= since else ""
        if re.search(r"resumed from|step \d+/\d+|after training", text):  # it got as far as training
            assert f"resumed from step {step} of " in text, (state, step, text)
            if state.parent == work / MODEL_STATE:  # on the tokenizer it was trained with, not a new one
                assert f"of the saved state loaded from {state.relative_to(work) / 'tokenizer'}" in text, text
            checked += 1
    return checked


@pytest.mark.slow  # 8 runs of one fine-tuning job (~60 s)
def test_kill_9_at_random_training_steps_resumes_and_ends_bit_identical(finished_run, tmp_path):
    hp = {"epochs": 12, "grad_accum": 1, "batch_size": 16, "max_length": 64, "max_train_examples": 100,
          "eval_every": 10, "eval_examples": 32, "save_every": 3, "lr": 2e-4}

    def cmd(name: str) -> list[str]:
        return [XSTILTS, "finetune", "--encoder", str(finished_run / "resources/models/tiny"), "--train-task", "mnli",
                "--data", str(finished_run / PREPARED / "mnli"), "--seed", "0", "--hparams", json.dumps(hp),
                "--state-dir", str(tmp_path / f"{name}.state"), "--out", str(tmp_path / name)]

    ref = subprocess.run(cmd("ref"), env=ENV, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    total = json.loads((tmp_path / "ref/train_log.json").read_text())["total_steps"]
    progress = tmp_path / "run.state/ckpt/progress.json"

    def step() -> int:
        try:
            return json.loads(progress.read_text())["step"]
        except (OSError, ValueError):
            return 0

    rng = random.Random(7)
    thresholds = sorted(rng.sample(range(3, total - 6), 6))  # kill soon after the first save past each
    resumed_from = None
    for attempt, threshold in enumerate([*thresholds, None]):
        log = tmp_path / f"attempt{attempt}.log"
        proc = start(cmd("run"), tmp_path, log)
        if threshold is None:  # the last run is left to finish
            assert proc.wait(timeout=300) == 0, log.read_text()
        else:
            saved_past = lambda saved=step(), at=threshold: at <= step() > saved
            assert kill_when(proc, tmp_path, saved_past, rng.uniform(0, 0.05))
        if resumed_from:  # each rerun starts at the state the previous kill left, not earlier
            assert f"resumed from step {resumed_from} of {total}" in log.read_text()
        resumed_from = step()
    for name in ("model/heads.safetensors", "model/encoder/model.safetensors", "dev.json"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert not (tmp_path / "run.state").exists()


# ------------------------------------------------------------------------------------------ a failing cell
def test_failed_cell_is_named_in_missing_csv_and_only_it_reruns_once_fixed(run_copy):
    work = run_copy
    heads = work / ROW / "mnli/en/finetune/mnli/model/heads.safetensors"
    good = heads.read_bytes()
    heads.write_bytes(good[: len(good) // 2])  # the mnli row's XNLI model is truncated on disk
    for cell in ("mnli/en/eval/xnli", "none/en/eval/xnli", "mnli/en/retrieval/tatoeba"):
        shutil.rmtree(work / ROW / cell)
    run = snakemake(work, "--keep-going")
    assert run.returncode != 0
    assert (work / ROW / "none/en/eval/xnli/metrics.json").exists()
    assert (work / ROW / "mnli/en/retrieval/tatoeba/metrics.json").exists()
    assert not (work / ROW / "mnli/en/eval/xnli").exists()
    assert snakemake(work, "summary").returncode == 0
    missing = pd.read_csv(work / RESULTS / "summary/missing.csv")
    assert missing[["intermediate", "target"]].values.tolist() == [["mnli", "xnli"]]
    assert "evaluate failed" in missing.reason[0] and "heads.safetensors" in missing.reason[0]
    heads.write_bytes(good)  # fix the cause: only that cell is left to run
    dry = snakemake(work, "-n")
    assert dry.returncode == 0 and job_stats(dry.stdout) == {"evaluate": 1, "all": 1}
    assert "mnli/en/eval/xnli" in dry.stdout


# ------------------------------------------------------------------------------------------ divergence
def test_diverging_training_exits_3_naming_label_step_and_last_finite_loss(finished_run, tmp_path):
    out, state = tmp_path / "out", tmp_path / "state"
    hp = {"lr": 1e30, "grad_accum": 1, "max_length": 64, "eval_examples": 16, "batch_size": 16}
    run = subprocess.run([XSTILTS, "finetune", "--encoder", str(finished_run / "resources/models/tiny"),
                          "--train-task", "mnli", "--data", str(finished_run / PREPARED / "mnli"),
                          "--hparams", json.dumps(hp), "--state-dir", str(state), "--label", "row mnli/en xnli",
                          "--out", str(out)], env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stderr
    lines = run.stderr.strip().splitlines()
    assert re.fullmatch(r"xstilts finetune: diverged: row mnli/en xnli: non-finite loss \((nan|inf)\) on stream "
                        r"mnli at step \d+; last finite loss \d+\.\d+", lines[-1]), lines[-1]
    assert "Traceback" not in run.stderr
    assert not out.exists() and not list(tmp_path.glob(".out*"))


# ------------------------------------------------------------------------------------------ corrupt files
def test_corrupt_prepared_parquet_is_refused_by_the_verbs(finished_run, tmp_path, capsys):
    data = tmp_path / "xnli"
    shutil.copytree(finished_run / PREPARED / "xnli", data)
    test = data / "test.parquet"
    raw = bytearray(test.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    test.write_bytes(raw)
    code = cli.main(["evaluate", "--model", str(finished_run / ROW / "none/en/finetune/mnli/model"),
                     "--target", "xnli", "--data", str(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(test) in err and "sha256 does not match" in err and "delete it" in err
    assert not (tmp_path / "out").exists()


def _job(model_dir, state, log=lambda m: None):
    """test_train's job, 8 steps, state saved every 3, scored on "dev" every 2 steps (best kept)."""
    trainer = _trainer(model_dir, state, {"max_steps": 8, "eval_every": 2})
    trainer.dev_eval, trainer.log = (lambda: float(trainer.step)), log
    return trainer


def _preempted_state(model_dir, state) -> None:
    """Run the job until SIGUSR1 stops it at step 4 (state saved there, best checkpoint of step 4)."""
    trainer = _job(model_dir, state)
    original = trainer._micro_step

    def signal_at_step_3(i):
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        return original(i)

    trainer._micro_step = signal_at_step_3
    with pytest.raises(Preempted, match="at step 4/8"):
        trainer.fit()


@pytest.fixture(scope="module")
def fresh_weights(tiny_model_dir, tmp_path_factory) -> dict:
    """The job's final weights when it runs uninterrupted from the start."""
    fresh = _job(tiny_model_dir, tmp_path_factory.mktemp("fresh") / "state")
    fresh.fit()
    return _weights(fresh.model)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) * 2 // 3] ^= 0x01
    path.write_bytes(raw)


@pytest.mark.parametrize("damage", [
    pytest.param(lambda s: _truncate(s / "ckpt/model.safetensors"), id="truncated-model"),
    pytest.param(lambda s: _flip(s / "ckpt/optim.pt"), id="bit-flipped-optimizer"),
    pytest.param(lambda s: (s / "ckpt/optim.pt").unlink(), id="missing-optimizer"),
    pytest.param(lambda s: (s / "ckpt/progress.json").write_text('{"job_key": "job", "st'), id="truncated-progress"),
    pytest.param(lambda s: _truncate(s / "best.safetensors"), id="truncated-best"),
])
def test_corrupt_training_state_means_a_fresh_start_never_a_crash(damage, tiny_model_dir, fresh_weights, tmp_path):
    state = tmp_path / "state"
    _preempted_state(tiny_model_dir, state)
    damage(state)
    messages = []
    rerun = _job(tiny_model_dir, state, messages.append)
    log = rerun.fit()
    assert log["resumed_from_step"] is None and log["steps"] == 8
    assert "not used" in messages[0] and "starting fresh" in messages[0]
    got = _weights(rerun.model)
    assert all(torch.equal(fresh_weights[k], got[k]) for k in fresh_weights)


def test_intact_training_state_is_resumed(tiny_model_dir, tmp_path):
    state = tmp_path / "state"
    _preempted_state(tiny_model_dir, state)
    messages = []
    assert _job(tiny_model_dir, state, messages.append).fit()["resumed_from_step"] == 4
    assert messages[0] == f"test: resumed from step 4 of 8 ({state / 'ckpt'})"


@pytest.mark.parametrize("damage", [_truncate, _flip, lambda p: p.with_suffix(".sha256").unlink()],
                         ids=["truncated", "bit-flipped", "no-checksum"])
def test_corrupt_feature_cache_entry_is_rebuilt_never_used(damage, tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE_DIR", str(tmp_path))
    feats = {"input_ids": [list(range(i, i + 40)) for i in range(200)], "label": list(range(200))}
    builds = []

    def build():
        builds.append(1)
        return feats

    assert cached_features({"k": 1}, build) == feats
    assert cached_features({"k": 1}, build) == feats and len(builds) == 1  # served from the cache
    (entry,) = tmp_path.glob("*.parquet")
    damage(entry)
    assert cached_features({"k": 1}, build) == feats and len(builds) == 2  # rebuilt
    assert cached_features({"k": 1}, build) == feats and len(builds) == 2  # and the rebuilt entry is valid


# ------------------------------------------------------------------------------------------ disk full
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_at_rename_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"score": 1})
    monkeypatch.setattr(io.os, "replace", _enospc)
    with pytest.raises(OSError, match="No space left"):
        io.write_json(target, {"score": 2})
    with pytest.raises(OSError):
        io.write_json(tmp_path / "new.json", {"score": 2})
    assert json.loads(target.read_text()) == {"score": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_full_disk_in_the_middle_of_a_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def half_written(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        _enospc()

    monkeypatch.setattr(pq, "write_table", half_written)
    with pytest.raises(OSError, match="No space left"):
        io.write_parquet(tmp_path / "train.parquet", pa.table({"x": [1]}))
    assert list(tmp_path.iterdir()) == []


def test_full_disk_during_evaluation_leaves_no_output_dir(finished_run, tmp_path, monkeypatch):
    real_replace, calls = os.replace, []

    def replace_then_fail(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:  # a few prediction files in: the disk fills up
            _enospc()
        return real_replace(*args, **kwargs)

    monkeypatch.setattr(io.os, "replace", replace_then_fail)
    out = tmp_path / "eval" / "xnli"
    with pytest.raises(OSError, match="No space left"):
        cli.main(["evaluate", "--model", str(finished_run / ROW / "none/en/finetune/mnli/model"), "--target", "xnli",
                  "--data", str(finished_run / PREPARED / "xnli"), "--languages", "en,de,ru", "--out", str(out)])
    assert len(calls) == 3
    assert list((tmp_path / "eval").iterdir()) == []


# ------------------------------------------------------------------------------------------ concurrency
def test_second_invocation_on_the_same_directory_is_refused(run_copy, tmp_path):
    """The first run's aggregate job waits on a file (an `xstilts` shim first on PATH), so it surely holds
    the lock while the second starts."""
    shim, release = tmp_path / "bin" / "xstilts", tmp_path / "release"
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nwhile [ ! -e '{release}' ]; do sleep 0.1; done\nexec '{XSTILTS}' \"$@\"\n")
    shim.chmod(0o755)
    env = {**ENV, "PATH": f"{shim.parent}{os.pathsep}{ENV['PATH']}"}
    first = subprocess.Popen(smk_cmd("summary", "--forcerun", "aggregate"), cwd=run_copy, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((run_copy / ".snakemake/locks").glob("*")):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        second = snakemake(run_copy, "summary")
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stdout + second.stderr
    finally:
        release.touch()
        first.wait(timeout=300)
    assert first.returncode == 0, first.stdout.read()[-2000:]


# ------------------------------------------------------------------------------------------ security, provenance
def _sources(*dirs: str) -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for d in dirs for p in sorted((ROOT / d).rglob("*.py"))}


def test_no_remote_code_unless_the_user_passes_the_flag():
    """No code turns `trust_remote_code` on; tests may pass it only to check that it is refused; the CLI
    flags that forward it default to off."""
    turned_on = re.compile(r"trust_remote_code[\"']?\s*[=:]\s*True")
    for path, text in _sources("xstilts", "workflow", "tests").items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if turned_on.search(line):
                assert path.parent.name == "tests" and "pytest.raises" in lines[i - 1], f"{path}:{i + 1}"
    parser = cli.build_parser()
    assert parser.parse_args(["prepare", "--task", "xnli", "--source", "hub", "--out", "x"]).trust_remote_code is False
    # fetch-model has no such flag at all: backbones load without remote code (issue 11)
    assert "trust_remote_code" not in vars(parser.parse_args(["fetch-model", "--model", "m", "--revision", "r",
                                                              "--out", "x"]))


def _call_args(text: str, open_paren: int) -> str:
    """The argument text of the call whose "(" is at `open_paren`."""
    depth = 0
    for i in range(open_paren, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_paren + 1: i]
    raise AssertionError("unbalanced parentheses")


def test_checkpoints_load_without_pickle():
    loads = 0
    for path, text in _sources("xstilts").items():
        for call in re.finditer(r"torch\.load\(", text):
            assert "weights_only=True" in _call_args(text, call.end() - 1), f"{path}: torch.load without weights_only"
            loads += 1
        assert not re.search(r"^\s*(import|from) (pickle|dill|joblib|cloudpickle)\b", text, re.M), path
        assert not re.search(r"allow_pickle\s*=\s*True|read_pickle|pickle\.loads?\(", text), path
    assert loads >= 1  # the optimizer state; weights are safetensors


def test_provenance_records_versions_commit_and_host():
    from xstilts.provenance import provenance

    record = provenance()
    assert record["packages"]["torch"] == torch.__version__
    assert set(record["packages"]) >= {"torch", "transformers", "datasets", "peft"}
    assert re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"])
    assert record["python"] == ".".join(map(str, sys.version_info[:3])) and record["hostname"]
    json.dumps(record)
