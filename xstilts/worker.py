"""A warm worker for local runs: one process imports torch, transformers and the xstilts engine once, then
forks a child per `xstilts` invocation, so each of a local run's hundreds of short jobs skips the ~4.5 s of
imports it would otherwise pay (measured on the demo: about half of every evaluation job's wall time).

Why a fork server of our own: Snakemake spawns every shell job as a fresh interpreter, and the stdlib's
`multiprocessing` forkserver lives and dies with one parent process. A fork of a process that has only
imported modules (never run a tensor op, never touched CUDA) is a clean start: the child seeds its own RNGs,
sets its own thread count and initialises CUDA itself, so it computes the same numbers as a fresh process
(tests/test_worker.py checks this bit for bit).

Protocol (one Unix-socket connection per invocation): the client sends a length-prefixed JSON request
(argv, cwd, environment, code fingerprint) with its stdin/stdout/stderr attached as file descriptors; the
server forks a handler, the handler forks the job, replies `{"pid": N}`, then `{"exit": code}` when the job
ends. The client forwards SIGTERM/SIGINT/SIGUSR1/SIGHUP to the job (so preemption still saves state and
exits 75) and exits with the job's code. A job whose client disappears is terminated. Anything unexpected
(no server, a different interpreter or changed source) makes the client run the verb in-process instead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import sys
from pathlib import Path

ENV_VAR = "XSTILTS_WORKER"
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP)
# What the verbs import lazily; importing (never running) them is what the worker exists to do once.
PRELOAD = (
    "numpy", "torch", "transformers", "datasets", "peft", "safetensors.torch", "pyarrow.parquet",
    "seqeval.metrics", "sacrebleu", "tokenizers",
    "transformers.models.xlm_roberta.modeling_xlm_roberta", "transformers.models.auto.modeling_auto",
    "xstilts.phases", "xstilts.models", "xstilts.train", "xstilts.evaluate", "xstilts.metrics",
    "xstilts.features", "xstilts.accounting", "xstilts.pretrain", "xstilts.retrieval", "xstilts.synth",
    "xstilts.data.prepare",
)
_HEADER = struct.Struct("!I")
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def code_fingerprint() -> dict:
    """What the client and the worker must agree on: the same interpreter and the same xstilts source."""
    package = Path(__file__).resolve().parent
    sources = sorted(package.rglob("*.py"))
    return {
        "executable": os.path.realpath(sys.executable),
        "package": str(package),
        "source_mtime_ns": max(p.stat().st_mtime_ns for p in sources),
        "source_files": len(sources),
    }


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    while len(data) < _HEADER.size or len(data) < _HEADER.size + _HEADER.unpack_from(data)[0]:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise ConnectionError("client closed the connection mid-request")
        data += chunk
    (length,) = _HEADER.unpack_from(data)
    return json.loads(data[_HEADER.size:_HEADER.size + length]), fds


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _run_job(request: dict, fds: list[int]) -> int:
    """In the forked job process: become the client's process (fds, cwd, environment), run the verb."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.pop(ENV_VAR, None)  # this process runs the verb itself
    # The OpenMP runtime read OMP_NUM_THREADS when the worker imported torch; apply the job's own value.
    import torch

    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    sys.argv = ["xstilts", *request["argv"]]
    from xstilts import cli

    try:
        code = cli.main(request["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _die_with_parent(parent: int) -> None:
    """Signals reach the job only through its client (which forwards them once): the job leaves the run's
    process group, and is killed if its handler is (e.g. `kill -9` of the whole run)."""
    os.setpgid(0, 0)
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(128 + signal.SIGKILL)


def _handle(conn: socket.socket, fingerprint: dict) -> int:
    """In the forked handler: check the request, fork the job, report its pid and exit code. The handler
    ignores the signals the client forwards, so that a signal sent to the whole run reaches the job once."""
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    request, fds = _recv_request(conn)
    if request.get("fingerprint") != fingerprint or len(fds) != 3:
        _send(conn, {"error": "worker runs other code (restart the run to pick up changes)"})
        return 0
    handler = os.getpid()
    pid = os.fork()
    if pid == 0:
        conn.close()
        for sig in (*FORWARDED_SIGNALS, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        _die_with_parent(handler)
        os._exit(_run_job(request, fds))
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": pid})
    # Wake the moment the job ends: a pidfd becomes readable at its exit (Linux); elsewhere poll. The 0.2 s
    # poll alone cost each of a local run's hundreds of jobs about 0.15 s (bench/worker_latency.sh).
    exited = [os.pidfd_open(pid)] if hasattr(os, "pidfd_open") else []
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _send(conn, {"exit": _exit_code(status)})
            return 0
        readable, _, _ = select.select([conn, *exited], [], [], 0.2)
        if conn in readable and not conn.recv(1):  # the client was killed (it forwards other signals): so is its job
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return 0


def _warm_caches() -> None:
    """Build, once, the pure-Python tables that jobs would otherwise each rebuild after the fork (no tensor
    op): transformers' checkpoint-conversion table (about 1,000 regular expressions; 0.47 of a demo job's
    0.64 s of model loading; absent in other transformers versions) and MLQA's Unicode punctuation set (a
    scan of every code point, 0.69 of a demo MLQA evaluation job's 2.3 s; cProfile, 2026-12-01)."""
    from xstilts import metrics

    metrics._mlqa_punct()
    try:
        from transformers.conversion_mapping import get_checkpoint_conversion_mapping
    except ImportError:
        return
    get_checkpoint_conversion_mapping("xlm-roberta")


def serve(socket_path: str, parent_pid: int | None = None) -> int:
    """Preload, then accept connections until the parent (the Snakemake that started us) is gone."""
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    _warm_caches()
    fingerprint = code_fingerprint()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    partial = f"{socket_path}.{os.getpid()}"
    server.bind(partial)
    server.listen(64)
    os.replace(partial, socket_path)  # clients never see a socket that is not yet listening
    server.settimeout(1.0)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of the run reaches each job through its client
    try:
        while parent_pid is None or os.getppid() == parent_pid:
            try:
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            except ChildProcessError:
                pass
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if os.fork() == 0:
                server.close()
                conn.settimeout(None)
                code = 1
                try:
                    code = _handle(conn, fingerprint)
                finally:
                    os._exit(code)
            conn.close()
    finally:
        server.close()
        if os.path.exists(socket_path):
            os.unlink(socket_path)
    return 0


def delegate(argv: list[str]) -> int | None:
    """Run `xstilts argv` in the warm worker named by $XSTILTS_WORKER; None when there is none to use."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ),
                              "fingerprint": code_fingerprint()}).encode()
        socket.send_fds(conn, [_HEADER.pack(len(request)) + request], [0, 1, 2])
        replies = conn.makefile("r")
        first = json.loads(replies.readline() or "{}")
    except (OSError, ValueError):
        conn.close()
        return None
    if "pid" not in first:
        conn.close()
        return None
    pid = first["pid"]

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    line = replies.readline()
    conn.close()
    if not line:
        print(f"xstilts: the warm worker at {path} went away while running {' '.join(argv)}", file=sys.stderr)
        return 1
    return int(json.loads(line)["exit"])


def start() -> None:
    """Start a worker for this process and its children (the Snakefile's onstart hook). Returns at once:
    until the worker listens (a few seconds of imports), jobs simply run in-process. The worker stops when
    this process exits, or by itself once this process is gone."""
    import atexit
    import shutil
    import subprocess
    import tempfile

    directory = tempfile.mkdtemp(prefix="xstilts-worker-")
    socket_path = os.path.join(directory, "socket")
    process = subprocess.Popen([sys.executable, "-m", "xstilts.worker", socket_path, str(os.getpid())],
                               stdin=subprocess.DEVNULL)
    os.environ[ENV_VAR] = socket_path
    print(f"xstilts warm worker: pid {process.pid}; local jobs fork from it (--config warm_worker=False turns "
          "it off)", file=sys.stderr)

    def stop():
        os.environ.pop(ENV_VAR, None)
        process.terminate()
        process.wait()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None))
