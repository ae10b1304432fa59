"""XCOPA, XTREME-R's first target here: its files are what XTREME-R's scorer reads, and it runs through the
pipeline's verbs (synthetic data -> prepare -> fine-tune on English COPA -> zero-shot evaluation)."""

from __future__ import annotations

import json

import pytest

from tests import xtreme_reader
from tests.conftest import train_and_evaluate_target
from xstilts import evaluate
from xstilts.data.prepare import load_split, read_manifest
from xstilts.registry import XTREME_BENCHMARK, get_task

ROWS = [{"id": str(i), "lang": "et", "context": "", "question": f"p{i} What was the cause?", "choices": ["a", "b"],
         "label": y} for i, y in enumerate([0, 1, 1, 0, 1])]


def test_xcopa_files_are_read_by_the_xtreme_r_reader_as_xstilts_scores_them(tmp_path):
    task = get_task("xcopa")
    preds = [0, 1, 0, 0, 0]
    evaluate.write_submission(tmp_path, task, "et", ROWS, preds, list(task.labels))
    pred_file, label_file = (tmp_path / kind / "xcopa" / "test-et.jsonl" for kind in ("predictions", "labels"))
    assert xtreme_reader.read_xcopa(label_file) == [r["label"] for r in ROWS]
    official = xtreme_reader.xcopa_accuracy(pred_file, label_file)
    assert official == evaluate.score_rows(task, ROWS, preds, "et")["accuracy"] == 60.0
    assert evaluate.read_submission(tmp_path, task, "et") == (preds, [r["label"] for r in ROWS])


def test_a_bad_xcopa_line_names_file_and_line(tmp_path):
    from xstilts.errors import DataError

    task = get_task("xcopa")
    evaluate.write_submission(tmp_path, task, "et", ROWS, [0] * 5, list(task.labels))
    (tmp_path / "predictions" / "xcopa" / "test-et.jsonl").write_text('{"label": 0}\n{"answer": 1}\n')
    with pytest.raises(DataError, match=r"test-et.jsonl.*line 2: expected a JSON object with an int 'label'"):
        evaluate.read_submission(tmp_path, task, "et")


def test_xcopa_is_not_an_xtreme_task():
    assert "xcopa" not in XTREME_BENCHMARK.tasks and get_task("xcopa").train_on == "xcopa"


def test_xcopa_trains_on_english_copa_and_evaluates_zero_shot(tmp_path):
    train_and_evaluate_target(tmp_path, "xcopa", "sw,zh", {"max_steps": 4, "batch_size": 8, "eval_every": 2,
                                                           "eval_examples": 20, "max_length": 64, "pooling": "mean"})
    data = tmp_path / "xcopa"
    manifest = read_manifest(data)
    # English COPA train + validation, a dev carved from them for selection, XCOPA test in sw and zh
    assert set(manifest["splits"]["train"]["rows_per_lang"]) == {"en"} and manifest["dev_carved_from_train"]
    assert set(manifest["splits"]["test"]["rows_per_lang"]) == {"sw", "zh"}
    row = load_split(data, "test").to_pylist()[0]
    assert row["context"] == "" and row["question"].endswith(("What was the cause?", "What was the effect?"))
    assert json.loads((tmp_path / "ft" / "dev.json").read_text())["metric"] == "accuracy"
    out = tmp_path / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["languages"]) == {"sw", "zh"}
    for lang in ("sw", "zh"):
        official = xtreme_reader.xcopa_accuracy(out / "predictions" / "xcopa" / f"test-{lang}.jsonl",
                                                out / "labels" / "xcopa" / f"test-{lang}.jsonl")
        assert official == pytest.approx(metrics["languages"][lang]["accuracy"])
    assert metrics["score"] == pytest.approx(sum(v["accuracy"] for v in metrics["languages"].values()) / 2)
