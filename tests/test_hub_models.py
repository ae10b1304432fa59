"""`xstilts lock` and `xstilts fetch-model` through the real clients against replica repositories served on
127.0.0.1 (tests/hub): branches resolve to commits, a moved branch is detected, script-only and pickle-only
commits are refused in one line, and the three backbone families load through their real loaders."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.hub import replicas, run_steps
from tests.hub.server import HubServer
from xstilts import grid
from xstilts.errors import UserError
from xstilts.registry import REPOS_BY_ID

XTREME = REPOS_BY_ID["google/xtreme"].revision
SCHEMA = grid.__file__.rsplit("/xstilts/", 1)[0] + "/workflow/schemas/config.schema.yaml"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    models = replicas.model_repos(tmp_path_factory.mktemp("models"))
    with HubServer(replicas.dataset_repos() + models) as server:
        yield server


def write_config(tmp_path, name: str, data_revision: str = "main", model=replicas.XLMR, model_revision="main"):
    path = tmp_path / f"{name}.yaml"
    cfg = {"experiment": name, "backbones": {"b": {"kind": "hub", "model": model, "revision": model_revision}},
           "seeds": [0], "targets": ["panx"], "intermediate": ["none"], "adaptations": {"full": None},
           "languages": ["en", "de"],
           "data": {"source": "hub", "revisions": {"google/xtreme": data_revision},
                    "lock": str(tmp_path / f"{name}.lock.yaml")}}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def lock(path, *extra) -> dict:
    return {"cli": ["lock", "--configfile", str(path), *extra]}


def one_line(result: dict, verb: str) -> str:
    assert result["rc"] == 2 and re.fullmatch(rf"xstilts {verb}: error: [^\n]+\n", result["err"]), result
    return result["err"]


def test_lock_resolves_branches_detects_moves_and_refuses_unusable_commits(hub, tmp_path):
    ok = write_config(tmp_path, "ok")
    with pytest.raises(UserError, match=r"config key data.revisions.google/xtreme: 'main' is a branch, not a commit.*"
                                        r"run `xstilts lock"):
        grid.load_config(ok, SCHEMA)  # no lock yet: refused before any job runs
    script = write_config(tmp_path, "script", data_revision=replicas.XTREME_SCRIPT_COMMIT)
    pickles = write_config(tmp_path, "pickles", model=replicas.MT5)
    first, bad_script, bad_model = run_steps(hub.url, tmp_path / "hf", [lock(ok), lock(script), lock(pickles)])
    assert first["rc"] == 0, first
    locked = yaml.safe_load((tmp_path / "ok.lock.yaml").read_text())
    assert locked == {"datasets": {"google/xtreme": {"revision": "main", "commit": XTREME}},
                      "models": {replicas.XLMR: {"revision": "main", "commit": replicas.MODEL_PINS[replicas.XLMR]}}}
    assert "holds the loading script xtreme.py" in one_line(bad_script, "lock")
    assert "has no model.safetensors" in one_line(bad_model, "lock")
    assert not (tmp_path / "script.lock.yaml").exists() and not (tmp_path / "pickles.lock.yaml").exists()

    cfg = grid.load_config(ok, SCHEMA)  # the grid reads the locked commits: no network
    (job,) = [j for j in grid.prepare_jobs(cfg) if j.task == "panx"]
    assert job.revisions == (("google/xtreme", XTREME),) and f"google-xtreme-{XTREME[:12]}" in job.out
    assert grid.backbone_commit(cfg, "b") == replicas.MODEL_PINS[replicas.XLMR]

    hub.move("dataset", "google/xtreme", "main", replicas.XTREME_MOVED_COMMIT)
    try:
        moved, updated = run_steps(hub.url, tmp_path / "hf", [lock(ok), lock(ok, "--update")])
    finally:
        hub.move("dataset", "google/xtreme", "main", XTREME)
    assert f"locked {XTREME}, now {replicas.XTREME_MOVED_COMMIT}" in one_line(moved, "lock")
    assert updated["rc"] == 0, updated
    cfg = grid.load_config(ok, SCHEMA)
    (job2,) = [j for j in grid.prepare_jobs(cfg) if j.task == "panx"]
    assert job2.revisions == (("google/xtreme", replicas.XTREME_MOVED_COMMIT),) and job2.out != job.out


def test_fetch_model_loads_each_backbone_family_through_its_real_loader(hub, tmp_path):
    from xstilts.models import load_encoder, load_tokenizer

    targets = {"xlmr": (replicas.XLMR, replicas.MODEL_PINS[replicas.XLMR]),
               "mbert": (replicas.MBERT, replicas.MODEL_PINS[replicas.MBERT]),
               "mt5": (replicas.MT5, "refs/pr/2"), "mt5-main": (replicas.MT5, "main")}
    steps = [{"cli": ["fetch-model", "--model", m, "--revision", rev, "--out", str(tmp_path / name)]}
             for name, (m, rev) in targets.items()]
    *fetched, pickle_only = run_steps(hub.url, tmp_path / "hf", steps)
    assert [r["rc"] for r in fetched] == [0, 0, 0], [r["err"][-800:] for r in fetched]
    assert "has no model.safetensors" in one_line(pickle_only, "fetch-model")
    assert not (tmp_path / "mt5-main").exists()
    classes = {}
    for name in ("xlmr", "mbert", "mt5"):
        source = json.loads((tmp_path / name / "xstilts_source.json").read_text())
        assert source["model"] == targets[name][0] and re.fullmatch(r"[0-9a-f]{40}", source["commit"])
        assert sorted(p.name for p in (tmp_path / name).glob("*.safetensors")) == ["model.safetensors"]
        assert not list((tmp_path / name).glob("*.bin"))
        classes[name] = (source["class"], type(load_encoder(tmp_path / name)).__name__)
        assert load_tokenizer(tmp_path / name)("the house").input_ids
    assert json.loads((tmp_path / "mt5" / "xstilts_source.json").read_text())["commit"] == replicas.MT5_PR2
    assert classes == {"xlmr": ("XLMRobertaForMaskedLM", "XLMRobertaModel"),
                       "mbert": ("BertForMaskedLM", "BertModel"), "mt5": ("MT5EncoderModel", "MT5EncoderModel")}


def test_the_workflow_prepares_and_fetches_through_the_hub_at_the_locked_commits(hub, tmp_path):
    """The rules a cluster run executes (prepare, fetch_model) against the replica hub: the locked commits reach
    the verbs, the manifest and the model record them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    cfg_path = write_config(tmp_path, "wf")
    (locked,) = run_steps(hub.url, tmp_path / "hf", [lock(cfg_path)])
    assert locked["rc"] == 0, locked
    cfg = grid.load_config(cfg_path, SCHEMA)
    (job,) = [j for j in grid.prepare_jobs(cfg) if j.task == "panx"]
    work = tmp_path / "work"
    root = Path(grid.__file__).resolve().parents[1]
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "XSTILTS_WORKER"))}
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "HF_ENDPOINT": hub.url,
                "HF_HOME": str(tmp_path / "hf-wf"), "HF_HUB_DISABLE_TELEMETRY": "1"})
    run = subprocess.run([str(bin_dir / "snakemake"), job.out, grid.model_dir("b"), "--snakefile",
                          str(root / "Snakefile"), "--directory", str(work), "--cores", "2", "--configfile",
                          str(cfg_path), "--config", "warm_worker=False"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((work / job.out / "manifest.json").read_text())
    assert manifest["revisions"] == {"google/xtreme": XTREME} and manifest["languages"] == ["en", "de"]
    source = json.loads((work / grid.model_dir("b") / "xstilts_source.json").read_text())
    assert (source["revision"], source["commit"]) == (replicas.MODEL_PINS[replicas.XLMR],) * 2
