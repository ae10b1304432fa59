"""A scorer written for the tests to the official XTREME file formats and reading loops: google-research/xtreme
evaluate.py at 522434d (`read_tag` 27-38, `read_label` 41-43, `read_squad` 46-57, `evaluate_one_task` 141-157,
folder-level `evaluate` 160-215), its fix a0ffd24 (`read_tag` 38-39), and the question loop of
third_party/evaluate_squad.py:69-90 / evaluate_mlqa.py:114-135. It follows their behaviour, not their code; the
per-answer EM/F1 normalisers are xstilts.metrics' (checked against the official definitions in test_metrics.py).
The official scorer cannot run in CI (no network, and its code is not copied here).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import defaultdict
from pathlib import Path

from seqeval.metrics import f1_score

from xstilts import metrics

QA_TASKS = ("xquad", "mlqa", "tydiqa")


def _read_tag(path, keep_unterminated: bool) -> list[list[str]]:
    sentences, current = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.strip())
        else:
            sentences.append(current)
            current = []
    return sentences + ([current] if current and keep_unterminated else [])


def read_tag_2020(path) -> list[list[str]]:
    """522434d: a sentence is kept only when a blank line follows it."""
    return _read_tag(path, keep_unterminated=False)


def read_tag_2021(path) -> list[list[str]]:
    """a0ffd24: as 2020, plus a last sentence without a blank line after it."""
    return _read_tag(path, keep_unterminated=True)


def read_label(path) -> list[str]:
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]


def read_squad(path):
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return doc["data"] if "data" in doc else doc


def qa_references(dataset) -> dict[str, list[str]]:
    """The official question loop: article -> paragraphs -> qas -> answers[i]['text'] (a flat
    {id: [answers]} file fails here with TypeError, as in the official scripts)."""
    refs = {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                refs[qa["id"]] = [answer["text"] for answer in qa["answers"]]
    return refs


def score_file_pair(task: str, pred_path, label_path, lang: str, read_tag=read_tag_2020) -> dict[str, float]:
    """`evaluate_one_task` for one language."""
    if task in QA_TASKS:
        refs, predictions = qa_references(read_squad(label_path)), read_squad(pred_path)
        if task == "mlqa":
            return metrics.mlqa_scores(predictions, refs, lang)
        return metrics.squad_scores(predictions, refs)
    reader = read_tag if task in ("udpos", "panx") else read_label
    predictions, labels = reader(pred_path), reader(label_path)
    if task != "bucc2018":
        assert len(predictions) == len(labels), (pred_path, len(predictions), len(labels))
    if task in ("udpos", "panx"):
        with warnings.catch_warnings():  # raw UPOS tags: "seems not to be NE tag", as in the official run
            warnings.simplefilter("ignore")
            return {"f1": 100 * f1_score(labels, predictions)}
    if task == "bucc2018":
        return metrics.bucc_scores({tuple(x.split("\t")) for x in predictions}, {tuple(x.split("\t")) for x in labels})
    return {"accuracy": 100 * sum(p == g for p, g in zip(predictions, labels)) / len(predictions)}


def evaluate_folder(prediction_folder, label_folder, task_languages: dict[str, list[str]],
                    read_tag=read_tag_2020) -> dict[str, dict]:
    """The folder-level `evaluate`: every task sub-folder present in both folders, `test-<lang>.json` for QA
    and `.tsv` otherwise, averages over languages and `avg_metric` ((EM+F1)/2 for QA, else F1, else
    accuracy). `task_languages` stands for the official TASK2LANGS (the tests have fewer languages)."""
    prediction_tasks = next(os.walk(prediction_folder))[1]
    label_tasks = next(os.walk(label_folder))[1]
    detailed = {}
    for task, langs in task_languages.items():
        if task not in prediction_tasks or task not in label_tasks:
            continue
        suffix = "json" if task in QA_TASKS else "tsv"
        score = defaultdict(dict)
        for lang in langs:
            result = score_file_pair(task, Path(prediction_folder, task, f"test-{lang}.{suffix}"),
                                     Path(label_folder, task, f"test-{lang}.{suffix}"), lang, read_tag)
            for metric, value in result.items():
                score[metric][lang] = value
        averages = {f"avg_{m}": sum(v.values()) / len(v) for m, v in score.items()}
        score.update(averages)
        if task in QA_TASKS:
            score["avg_metric"] = (score["avg_exact_match"] + score["avg_f1"]) / 2
        elif "avg_f1" in score:
            score["avg_metric"] = score["avg_f1"]
        else:
            score["avg_metric"] = score["avg_accuracy"]
        detailed[task] = dict(score)
    return detailed


def read_xcopa(path) -> list:
    """XTREME-R's `read_xcopa` (google-research/xtreme evaluate.py, 838c13b:63-71): one JSON object per line,
    its `label` kept, for prediction and label files alike."""
    return [json.loads(line)["label"] for line in Path(path).read_text(encoding="utf-8").splitlines()]


def xcopa_accuracy(pred_file, label_file) -> float:
    """`evaluate_one_task` for xcopa: equal line counts asserted (838c13b:231-234), then positional accuracy x 100
    (`accuracy`, 81-84)."""
    preds, labels = read_xcopa(pred_file), read_xcopa(label_file)
    assert len(preds) == len(labels)
    return 100.0 * sum(p == g for p, g in zip(preds, labels)) / len(labels)
