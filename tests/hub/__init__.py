"""A replica Hugging Face Hub for tests: server.py (ours: the endpoints huggingface_hub / datasets call),
replicas.py (the real repositories' layouts at fixed commits), run_cli.py (xstilts verbs in a process whose
HF_ENDPOINT points at the server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_steps(hub_url: str, hf_home: Path, steps: list[dict], env: dict | None = None, cwd: Path | None = None,
              timeout: float = 300) -> list[dict]:
    """Run `steps` (see run_cli.py) in one child process that reads the hub at `hub_url`."""
    spec = Path(hf_home).parent / f"steps-{os.getpid()}-{len(steps)}-{abs(hash(json.dumps(steps)))}.json"
    spec.write_text(json.dumps(steps), encoding="utf-8")
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "XSTILTS_WORKER"))}
    child_env.update({"HF_ENDPOINT": hub_url, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                      "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT), **(env or {})})
    proc = subprocess.run([sys.executable, "-m", "tests.hub.run_cli", str(spec)], cwd=cwd or ROOT, env=child_env,
                          capture_output=True, text=True, timeout=timeout)
    marker = "\nRESULTS "
    if proc.returncode != 0 or marker not in proc.stdout:
        raise AssertionError(f"hub driver failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.rsplit(marker, 1)[1])
