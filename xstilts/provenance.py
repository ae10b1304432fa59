"""What produced an output: interpreter and library versions, the git commit of this checkout, the host.

Recorded with each job's outputs so a number can be traced to the code and software that made it; model
and dataset revisions are recorded separately (fetch-model's `xstilts_source.json`, the prepare manifest).
"""

from __future__ import annotations

import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from xstilts import __version__

PACKAGES = ("torch", "transformers", "datasets", "peft", "safetensors", "numpy", "pyarrow")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(path: str | Path = Path(__file__).resolve().parent) -> dict | None:
    """`{"commit", "dirty"}` of the repository holding `path`, or None outside a git checkout (an installed
    wheel) or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def provenance() -> dict:
    """Versions (without importing the libraries), git commit and hostname, as one JSON-ready dict."""
    return {"xstilts": __version__, "python": platform.python_version(),
            "packages": {p: _version(p) for p in PACKAGES}, "git": git_commit(), "hostname": socket.gethostname()}
