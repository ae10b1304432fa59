"""Runs `xstilts` verbs (or named functions) in a fresh process whose environment points the hub clients at a
test server (HF_ENDPOINT, a temp HF_HOME), as a cluster job's environment would point them at the hub.

huggingface_hub and datasets read HF_ENDPOINT and the cache paths when they are imported, so a test cannot
redirect them inside its own process without replacing their constants; one child per batch of calls keeps
the clients exactly as shipped. Input (argv[1], JSON): a list of `{"cli": [...]}` or
`{"call": "module:function", "args": [...]}`; output (stdout, one JSON line): per call `{rc, err}` or
`{value}` / `{error}`.
"""

import contextlib
import importlib
import io
import json
import sys


def _one(step: dict) -> dict:
    from xstilts.cli import main
    from xstilts.errors import UserError

    if "cli" in step:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(step["cli"])
        return {"rc": rc, "err": err.getvalue()}
    module, name = step["call"].split(":")
    try:
        value = getattr(importlib.import_module(module), name)(*step.get("args", []))
        return {"value": value if isinstance(value, (str, int, float, list, dict, type(None))) else repr(value)}
    except UserError as e:
        return {"error": str(e)}
    except Exception as e:  # what a library raised, for tests that observe it
        return {"exception": f"{type(e).__name__}: {e}"}


def plain_load(repo: str, config: str, split: str, revision: str) -> int:
    """Rows `datasets.load_dataset` returns, as a user would call it (to observe its cached fallback)."""
    import datasets

    return len(datasets.load_dataset(repo, config, split=split, revision=revision))


if __name__ == "__main__":
    steps = json.loads(open(sys.argv[1], encoding="utf-8").read())
    out = []
    for step in steps:
        out.append(_one(step))
    print("\nRESULTS " + json.dumps(out))
