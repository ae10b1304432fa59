"""Shared fixtures: a tiny random XLM-R-architecture model directory (no hub access), and an isolated
feature cache per test session; a copy of the workflow for tests that run Snakemake in a temporary directory."""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# For workflow runs in a subprocess: this venv's commands first, and no feature cache, so every run computes
# the same thing the same way.
WORKFLOW_ENV = {**{k: v for k, v in os.environ.items() if k != "XSTILTS_CACHE_DIR"},
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


def copy_workflow(work: Path, configs: dict[str, dict] | None = None) -> Path:
    """`work` with a copy of the repository's Snakefile, workflow/, config/ and profiles/ (so a run there never
    touches the checkout's results/ or resources/), plus each of `configs` written as `<name>` (YAML)."""
    work.mkdir(parents=True)
    shutil.copy2(ROOT / "Snakefile", work)
    for d in ("workflow", "config", "profiles"):
        shutil.copytree(ROOT / d, work / d)
    for name, cfg in (configs or {}).items():
        (work / name).write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return work


@pytest.fixture(autouse=True)
def _isolated_feature_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "feature-cache"))


WORDS = ["alpha", "beta", "gamma", "delta", "mu", "nu", "xi", "omega", "Anna", "Berlin", "12", "пример",
         "слово", "مثال", "कुछ", "字符", "yes", "no", "not", "the"]


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A save_pretrained directory with a trained Unigram tokenizer and a random 2-layer XLM-R MLM."""
    import torch

    from xstilts.pretrain import build_mlm, train_tokenizer

    out = tmp_path_factory.mktemp("tiny-model")
    tok = train_tokenizer(random_texts(2000), 200)
    torch.manual_seed(0)
    model = build_mlm(tok, {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                            "intermediate_size": 64})
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_mini_xtreme(root, size: str, tasks, model: dict):
    """Through the CLI verbs the workflow calls: synth at `size`, prepare each of `tasks` (English) and the
    en+de corpus, then a tokenizer trained on it with a randomly initialised encoder (one pretraining step)
    sized by `model` (vocab_size, hidden_size, intermediate_size; 2 layers, 2 heads). Returns `root`."""
    import json

    from xstilts.cli import main

    syn = str(root / "syn")
    assert main(["synth", "--out", syn, "--size", size]) == 0
    for task in tasks:
        assert main(["prepare", "--task", task, "--source", "local", "--local-dir", syn, "--languages", "en",
                     "--out", str(root / task)]) == 0
    assert main(["prepare", "--corpus", "--source", "local", "--local-dir", syn, "--languages", "en,de",
                 "--out", str(root / "corpus")]) == 0
    hp = {"max_steps": 1, "num_hidden_layers": 2, "num_attention_heads": 2, **model}
    assert main(["pretrain", "--corpus", str(root / "corpus"), "--out", str(root / "model"), "--hparams",
                 json.dumps(hp)]) == 0
    return root


def train_and_evaluate_target(root, target: str, languages: str, finetune_hp: dict, evaluate_hp: dict | None = None):
    """One target through the verbs a row runs, on a ci-size mini-XTREME with a one-step pretrained encoder:
    prepare `target` in `languages` (comma-separated), fine-tune on its English training split with
    `finetune_hp`, evaluate zero-shot. Writes `root/<target>` (prepared), `root/ft` and `root/eval`."""
    import json

    from xstilts.cli import main

    build_mini_xtreme(root, "ci", [], {"vocab_size": 300, "hidden_size": 32, "intermediate_size": 64})
    data = str(root / target)
    assert main(["prepare", "--task", target, "--source", "local", "--local-dir", str(root / "syn"),
                 "--languages", languages, "--out", data]) == 0
    assert main(["finetune", "--encoder", str(root / "model"), "--train-task", target, "--data", data, "--seed",
                 "0", "--state-dir", str(root / "state"), "--out", str(root / "ft"),
                 "--hparams", json.dumps(finetune_hp)]) == 0
    assert main(["evaluate", "--model", str(root / "ft" / "model"), "--target", target, "--data", data,
                 "--languages", languages, *(["--hparams", json.dumps(evaluate_hp)] if evaluate_hp else []),
                 "--out", str(root / "eval")]) == 0


def wait_until(condition, failure: str, timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail with `failure` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.02)
