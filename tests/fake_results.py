"""A fabricated results tree with per-example predictions and known differences between rows, written in the
layouts `xstilts evaluate` / `xstilts retrieve` write (xstilts.evaluate.write_submission; retrieval: one line
per English sentence or mined pair), for the uncertainty, tradeoff and claims tests.

Every (target, language) has N examples with a shared difficulty u_i; a cell gets example i right iff
u_i < ACCURACY[row] + SEED_SHIFT * seed (+ TARGET_BONUS), so better rows are right on a superset of the examples (strongly
paired). squad_v1 predicts exactly as the baseline (delta 0)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.test_aggregate import aggregate, config  # the same grid as test_aggregate's
from xstilts import grid, metrics
from xstilts.evaluate import score_rows, write_submission
from xstilts.io import write_json, write_text
from xstilts.registry import get_task

LANGS = ("en", "de")
N = 120
SEED_SHIFT = 0.02
# (adaptation, intermediate, variant) -> share right; unlisted rows predict as their baseline
ACCURACY = {("full", "none", "en"): 0.5, ("full", "mnli", "en"): 0.8, ("full", "mnli", "mlm"): 0.81,
            ("lora", "none", "en"): 0.5, ("lora", "mnli", "en"): 0.7}
# extra share right of a row on a target: mnli gains most on the retrieval targets (claim retrieval_large)
TARGET_BONUS = {("mnli", "bucc2018"): 0.15, ("mnli", "tatoeba"): 0.15}
# English dev scores (selection reads only these): squad_v1 wins XNLI's own dev and SQuAD dev (dev.json, so
# XQuAD and MLQA's fine-tuning job) although its test scores are the baseline's; mnli wins the rest; the
# excluded candidates (none, the +mlm variant) would win everything
DEV = {"none": 99.0, "mnli": 60.0, "squad_v1": 55.0}
DEV_WINS = {("squad_v1", "xnli"): 70.0, ("squad_v1", "squad_v1"): 70.0}  # (intermediate, target|train task)
NO_DEV = ("xquad", "tatoeba")
# intermediate-phase device-seconds per row (mnli+mlm costs twice mnli); other jobs cost 100 s
DEVICE_S = {("full", "mnli", "en"): 3600.0, ("full", "mnli", "mlm"): 7200.0, ("full", "squad_v1", "en"): 1800.0,
            ("lora", "mnli", "en"): 1800.0}


def share_right(cell: dict, target: str) -> float:
    key = (cell["adaptation"], cell["intermediate"], cell["variant"])
    return (ACCURACY.get(key, ACCURACY[(cell["adaptation"], "none", "en")]) + SEED_SHIFT * cell["seed"]
            + TARGET_BONUS.get((cell["intermediate"], target), 0.0))


def _right(target: str, lang: str, cell: dict) -> np.ndarray:
    difficulty = np.random.default_rng(zlib.crc32(f"{target}/{lang}".encode())).random(N)
    return difficulty < share_right(cell, target)


def write_cell(cell_dir: Path, target: str, cell: dict) -> dict:
    """Predictions, labels and metrics.json of one cell; returns the metrics."""
    task = get_task(target)
    per_language = {}
    for lang in LANGS:
        right = _right(target, lang, cell)
        if task.kind == "bitext_retrieval":
            pred = [i if r else (i + 1) % N for i, r in enumerate(right)]
            write_text(cell_dir / "predictions" / target / f"test-{lang}.tsv", "".join(f"{p}\n" for p in pred))
            write_text(cell_dir / "labels" / target / f"test-{lang}.tsv", "".join(f"{i}\n" for i in range(N)))
            per_language[lang] = {"accuracy": metrics.accuracy(pred, list(range(N)))}
            continue
        if task.kind == "bitext_mining":
            gold = {(f"{lang}-{i}", f"en-{i}") for i in range(N)}
            pred = {(f"{lang}-{i}", f"en-{i if r else i + N}") for i, r in enumerate(right)}
            for kind, pairs in (("predictions", pred), ("labels", gold)):
                write_text(cell_dir / kind / target / f"test-{lang}.tsv", "".join(f"{s}\t{e}\n" for s, e in sorted(pairs)))
            per_language[lang] = metrics.bucc_scores(pred, gold)
            continue
        rows, preds, labels = _examples(task, right)
        per_language[lang] = score_rows(task, rows, preds, lang)
        write_submission(cell_dir, task, lang, rows, preds, labels)
    doc = {"task": target, "metric": task.metric, **metrics.task_summary(target, per_language),
           "dev": None if target in NO_DEV else metrics.task_summary(target, {"en": _dev_keys(task, cell)})}
    write_json(cell_dir / "metrics.json", doc)
    return doc


def dev_score(cell: dict, name: str) -> float:
    """The fabricated English dev score of a cell's row on target (or training task) `name`."""
    if cell["variant"] != "en":
        return 99.0
    return DEV_WINS.get((cell["intermediate"], name), DEV[cell["intermediate"]])


def _dev_keys(task, cell: dict) -> dict:
    value = dev_score(cell, task.name)
    keys = {"qa": ("exact_match", "f1"), "tagging": ("f1",), "bitext_mining": ("precision", "recall", "f1")}
    return {k: value for k in keys.get(task.kind, ("accuracy",))}


def _examples(task, right):
    if task.kind == "tagging":
        gold = ["B-PER", "I-PER", "O"] if task.name == "panx" else ["NOUN", "VERB", "DET"]
        wrong = ["O", "B-LOC", "O"] if task.name == "panx" else ["VERB", "VERB", "NOUN"]
        rows = [{"tags": gold} for _ in right]
        return rows, [gold if r else wrong for r in right], None
    if task.kind == "qa":
        rows = [{"id": f"q{i}", "context": f"context answer{i}", "question": "?", "answer_texts": [f"answer{i}"],
                 "answer_starts": [8]} for i in range(len(right))]
        return rows, [f"answer{i}" if r else "nothing" for i, r in enumerate(right)], None
    labels = list(task.labels)
    rows = [{"label": i % len(labels)} for i in range(len(right))]
    return rows, [i % len(labels) if r else (i + 1) % len(labels) for i, r in enumerate(right)], labels


def cost(job: dict) -> dict:
    key = (job["adaptation"], job["intermediate"], job["variant"])
    device_s = DEVICE_S.get(key, 100.0) if job["phase"] == "intermediate" else 100.0
    return {"phase": job["phase"], "wall_s": device_s, "device": "cpu", "device_count": 1, "device_s": device_s,
            "useful_tokens": 1000, "executed_tokens": 1200, "useful_flops": 1e12 * device_s,
            "executed_flops": 1.2e12 * device_s, "peak_memory_bytes": 2**20 * (2 if key[0] == "full" else 1),
            "energy_j": None, "trainable_params": 100}


def write_tree(root: Path) -> tuple[Path, dict]:
    """results/t with every job's cost.json and every cell's outputs; returns (results dir, cells doc)."""
    doc = grid.cells(config())
    results = root / "results" / "t"
    write_json(results / "cells.json", doc)
    for job in doc["jobs"]:
        write_json(results / job["path"] / "cost.json", cost(job))
        if job["phase"] == "finetune":
            write_json(results / job["path"] / "dev.json", {"task": job["train_task"], "metric": "accuracy",
                                                            "best_dev": dev_score(job, job["train_task"])})
    for cell in doc["cells"]:
        write_cell(results / cell["path"], cell["target"], cell)
    return results, doc


@pytest.fixture(scope="session")
def fake_tree(tmp_path_factory):
    """The tree, written once per test session: (results dir, cells doc)."""
    return write_tree(tmp_path_factory.mktemp("fake_results"))


@pytest.fixture(scope="session")
def fake_summary(fake_tree):
    """`xstilts aggregate` of the tree: the summary directory."""
    return aggregate(fake_tree[0])
