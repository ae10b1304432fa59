"""The warm worker (xstilts.worker): a job forked from it computes what a fresh process computes, exits with
the same code, still saves its state on SIGTERM, and dies with its client; anything unexpected means the
verb runs in-process."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import build_mini_xtreme, wait_until
from xstilts import worker

XSTILTS = str(Path(sys.executable).parent / "xstilts")
# A client that says whether the worker ran the verb (`cli.main` calls exactly this, then falls back).
CLIENT = ("import sys; from xstilts.worker import delegate; code = delegate(sys.argv[1:]); "
          "print('via worker' if code is not None else 'no worker', file=sys.stderr); "
          "sys.exit(code if code is not None else 99)")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_mini_xtreme(tmp_path_factory.mktemp("worker"), "ci", ["mnli"],
                             {"vocab_size": 500, "hidden_size": 32, "intermediate_size": 64})


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A worker of this test process, listening."""
    path = str(tmp_path_factory.mktemp("sock") / "socket")
    process = subprocess.Popen([sys.executable, "-m", "xstilts.worker", path, str(os.getpid())])
    wait_until(lambda: os.path.exists(path) or process.poll() is not None, "the worker never listened")
    assert process.poll() is None, "the worker exited before listening"
    yield path
    process.terminate()
    assert process.wait(timeout=30) == 0
    assert not os.path.exists(path)


def finetune_args(data: Path, out: Path, **hparams) -> list[str]:
    hp = {"epochs": 1, "batch_size": 8, "max_length": 48, "max_train_examples": 64, "eval_every": 4,
          "eval_examples": 16, "save_every": 2, **hparams}
    return ["finetune", "--encoder", str(data / "model"), "--train-task", "mnli", "--data", str(data / "mnli"),
            "--hparams", json.dumps(hp), "--state-dir", str(out / "state"), "--out", str(out / "out")]


def client(args: list[str], socket_path: str | None, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != worker.ENV_VAR}
    if socket_path:
        env[worker.ENV_VAR] = socket_path
    return subprocess.Popen([sys.executable, "-c", CLIENT, *args], env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT)


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.safetensors"))}


def test_a_job_forked_from_the_worker_computes_what_a_fresh_process_computes(data, served, tmp_path):
    fresh = subprocess.run([XSTILTS, *finetune_args(data, tmp_path / "fresh")], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != worker.ENV_VAR})
    assert fresh.returncode == 0, fresh.stderr
    forked = client(finetune_args(data, tmp_path / "forked"), served, tmp_path / "forked.log")
    assert forked.wait(timeout=300) == 0, (tmp_path / "forked.log").read_text()
    log = (tmp_path / "forked.log").read_text()
    assert "via worker" in log and "finetune" in log  # the job's own output reached the client's stdout
    a, b = tmp_path / "fresh/out/model", tmp_path / "forked/out/model"
    assert digest(a) and digest(a) == digest(b)
    assert json.loads((tmp_path / "fresh/out/dev.json").read_text()) == \
        json.loads((tmp_path / "forked/out/dev.json").read_text())


def test_exit_codes_and_errors_come_back_from_the_worker(data, served, tmp_path):
    run = client(["evaluate", "--model", str(tmp_path / "nowhere"), "--target", "xnli", "--data",
                  str(data / "mnli"), "--out", str(tmp_path / "eval")], served, tmp_path / "log")
    assert run.wait(timeout=120) == 2
    log = (tmp_path / "log").read_text()
    assert "via worker" in log and "nowhere: no heads.json" in log


def wait_for_state(state: Path) -> Path:
    progress = state / "ckpt" / "progress.json"
    wait_until(progress.exists, "training never saved state")
    return progress


def test_sigterm_to_the_client_preempts_the_job_which_saves_and_exits_75(data, served, tmp_path):
    run = client(finetune_args(data, tmp_path, epochs=200), served, tmp_path / "log")
    wait_for_state(tmp_path / "state")
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 75, (tmp_path / "log").read_text()
    assert "preempted" in (tmp_path / "log").read_text()
    assert (tmp_path / "state" / "ckpt" / "progress.json").exists()


def test_a_killed_client_takes_its_job_along(data, served, tmp_path):
    run = client(finetune_args(data, tmp_path, epochs=200), served, tmp_path / "log")
    progress = wait_for_state(tmp_path / "state")
    run.kill()
    run.wait()
    time.sleep(1.0)  # the handler notices within 0.2 s
    saved = progress.stat().st_mtime_ns
    time.sleep(2.0)  # a live job saves every 2 steps, i.e. many times in 2 s
    assert progress.stat().st_mtime_ns == saved


def test_without_a_usable_worker_the_verb_runs_in_process(served, tmp_path, monkeypatch):
    monkeypatch.delenv(worker.ENV_VAR, raising=False)
    assert worker.delegate(["tasks"]) is None
    monkeypatch.setenv(worker.ENV_VAR, str(tmp_path / "no-such-socket"))
    assert worker.delegate(["tasks"]) is None
    # a worker started before the source changed (or from another interpreter) refuses, and says why
    monkeypatch.setenv(worker.ENV_VAR, served)
    monkeypatch.setattr(worker, "code_fingerprint", lambda: {"executable": "/another/python"})
    assert worker.delegate(["tasks"]) is None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(served)
        request = json.dumps({"argv": ["tasks"], "fingerprint": {}}).encode()
        socket.send_fds(conn, [worker._HEADER.pack(len(request)) + request], [0, 1, 2])
        assert "other code" in json.loads(conn.makefile().readline())["error"]


def test_the_worker_stops_when_its_parent_is_gone(tmp_path):
    path = tmp_path / "socket"
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen("
                               f"[sys.executable, '-m', 'xstilts.worker', {str(path)!r}, str(__import__('os').getpid())]"
                               "); time.sleep(600)"])
    wait_until(path.exists, "the worker never listened")
    parent.kill()
    parent.wait()
    # the worker removes its socket on the way out
    wait_until(lambda: not path.exists(), "the worker outlived its parent", timeout=30)
