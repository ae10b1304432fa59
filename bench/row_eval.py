"""A row's evaluation as one job against one job per target (the layout before aec9445), side by side.

Run in the directory of a finished run (it reads the row's fine-tuned models and prepared data, and writes only
to a temporary directory), with a warm worker as the workflow has, e.g. after `make demo`:

    .venv/bin/python bench/row_eval.py [--configfile config/config.yaml] [--repeats 5]

After one untimed call of each, every repeat times the row's targets as separate `xstilts evaluate` calls (what
each per-target job ran) and as one call with every target (what the row's job runs), in alternating order,
with the run's feature cache as the workflow sets it; prints JSON with the medians and their ratio. Snakemake's own per-job cost, which grows with the number of ready jobs, comes on top of the
per-target figure (docs/workflow.md, "The DAG")."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xstilts import grid


def per_target(args: list[str]) -> list[list[str]]:
    """`grid.evaluate_args` split at each --model: one argument list per target."""
    starts = [i for i, a in enumerate(args) if a == "--model"] + [len(args)]
    return [args[a:b] for a, b in zip(starts, starts[1:])]


def redirected(args: list[str], out_root: Path) -> list[str]:
    """The same arguments with every --out under `out_root` (the run's own results stay untouched)."""
    return [str(out_root / Path(a).name) if i and args[i - 1] == "--out" else a for i, a in enumerate(args)]


def timed(calls: list[list[str]], env: dict) -> float:
    start = time.perf_counter()
    for argv in calls:
        subprocess.run([sys.executable, "-m", "xstilts.cli", "evaluate", *argv], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configfile", default="config/config.yaml")
    p.add_argument("--schema", default="workflow/schemas/config.schema.yaml")
    p.add_argument("--repeats", type=int, default=5)
    opts = p.parse_args()
    cfg = grid.load_config(opts.configfile, opts.schema)
    row = grid.rows(cfg)[0]
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "socket"
        worker = subprocess.Popen([sys.executable, "-m", "xstilts.worker", str(sock), str(os.getpid())])
        try:
            while not sock.exists():
                time.sleep(0.2)
            # the workflow's feature cache (common.smk), already filled by the run: the jobs' condition
            env = {**os.environ, "XSTILTS_WORKER": str(sock),
                   "XSTILTS_CACHE_DIR": os.environ.get("XSTILTS_CACHE_DIR") or os.path.abspath(grid.FEATURE_CACHE)}
            whole = redirected(grid.evaluate_args(cfg, row), Path(tmp) / "out")
            split = per_target(whole)
            timed(split, env), timed([whole], env)  # warm-up: page cache, the worker's first forks
            times: dict[str, list[float]] = {"per_target_jobs": [], "one_row_job": []}
            for r in range(opts.repeats):
                runs = [("per_target_jobs", split), ("one_row_job", [whole])]
                for name, calls in runs if r % 2 == 0 else runs[::-1]:
                    times[name].append(timed(calls, env))
        finally:
            worker.terminate()
            worker.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"row": row.path, "targets": len(split), "seconds": times,
                      "median_s": {k: round(v, 3) for k, v in med.items()},
                      "ratio_per_target_over_row": round(med["per_target_jobs"] / med["one_row_job"], 3)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
