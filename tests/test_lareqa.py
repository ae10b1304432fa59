"""LAReQA, XTREME-R's answer retrieval: mAP@20 as XTREME-R's code defines it, the multilingual pool, the dual
encoder's in-batch loss, and the whole path (synthetic xquad-r -> prepare -> fine-tune on English SQuAD pairs ->
one pool over every language -> files)."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import train_and_evaluate_target
from xstilts import evaluate, kinds
from xstilts.data.prepare import load_split, read_manifest
from xstilts.kinds.answer_retrieval import average_precision_at_k, pool, sentence_breaks
from xstilts.kinds.heads import DualEncoderHead, get
from xstilts.registry import get_task


def test_average_precision_at_20_divides_by_min_of_relevant_and_k():
    """utils_lareqa.average_precision_at_k (838c13b:348-359): precision at each relevant rank in the top k,
    summed, over min(#relevant, k)."""
    assert average_precision_at_k(["a", "x", "b", "y"], {"a", "b", "c"}) == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(["x", "a"], {"a"}) == pytest.approx(0.5)
    many = {f"r{i}" for i in range(25)}
    assert average_precision_at_k([f"r{i}" for i in range(20)], many) == pytest.approx(1.0)  # 20 of 25: divisor 20
    assert average_precision_at_k(["x"] * 20 + ["a"], {"a"}) == 0.0  # rank 21 is outside the top 20


def test_the_pool_is_every_sentence_of_every_paragraph_and_a_question_has_its_answer_in_each_language():
    rows = [{"id": "q1", "lang": lang, "question": "?", "context": ctx, "sentences": sents, "answer_sentence": k}
            for lang, ctx, sents, k in (("en", "A b. C d.", ["A b.", "C d."], 1), ("de", "E f. G h. I", ["E f.", "G h.", "I"], 0))]
    rows.append({**rows[0], "id": "q2", "answer_sentence": 0})  # a second question on the same English paragraph
    uids, texts, answer_of = pool(rows)
    assert uids == ["en_0_0", "en_0_1", "de_0_0", "de_0_1", "de_0_2"]  # the shared paragraph is in once
    assert texts[0] == "A b.A b. C d." and len(texts) == 5  # sentence + paragraph, no separator
    assert answer_of == {("en", "q1"): "en_0_1", ("de", "q1"): "de_0_0", ("en", "q2"): "en_0_0"}
    assert sentence_breaks("One. Two!  Three") == [(0, 4), (5, 9), (11, 16)]
    assert sentence_breaks("甲乙。丙丁。") == [(0, 3), (3, 6)]


def test_the_release_s_own_xquad_r_paragraph_gives_the_official_pool_and_answers():
    """The first paragraph of LAReQA's xquad-r/en.json and de.json (9bc8c7f, tests/fixtures/raw/lareqa): sentences
    cut by the file's own sentence_breaks, the answer sentence the one holding answer_start, and in the pool a
    question's relevant candidates are its answer sentence in both languages (the shared id links them)."""
    from pathlib import Path

    from xstilts.data.normalize import normalize
    from xstilts.data.sources import read_source

    task, rows = get_task("lareqa"), []
    for lang in ("en", "de"):
        raw = read_source(task.sources["test"][0], lang, local_dir=Path(__file__).parent / "fixtures" / "raw",
                          task="lareqa")
        rows += normalize(raw, task).rows
    assert [(r["lang"], r["answer_sentence"]) for r in rows] == [(lang, k) for lang in ("en", "de") for k in (0, 3, 5)]
    en = rows[1]
    assert len(en["sentences"]) == 7 and en["sentences"][3].startswith("The Panthers line also featured")
    assert "136" in en["sentences"][3]  # the answer of "How many career sacks ..."
    uids, _, answer_of = pool(rows)
    assert len(uids) == 14  # 7 sentences of the paragraph in each language, the paragraph once per language
    assert {answer_of["en", en["id"]], answer_of["de", en["id"]]} == {"en_0_3", "de_0_3"}


def test_the_dual_encoder_loss_is_the_in_batch_softmax_from_questions_to_answers():
    torch.manual_seed(0)
    head = DualEncoderHead(8)
    pooled = torch.randn(6, 8)  # 3 (question, answer) pairs, flattened as collate flattens choices
    out = head(pooled)
    q, a = out[0].view(3, 2, 8)[:, 0], out[0].view(3, 2, 8)[:, 1]
    expected = torch.nn.functional.cross_entropy(100.0 * q @ a.T, torch.arange(3))
    assert float(get("dual_encoder").loss(out, {"n_choices": torch.tensor(2)})) == pytest.approx(float(expected.detach()))
    assert torch.allclose(out[0].norm(dim=-1), torch.ones(6))


def test_lareqa_trains_on_english_squad_pairs_and_retrieves_from_one_multilingual_pool(tmp_path):
    train_and_evaluate_target(tmp_path, "lareqa", "en,de,zh",
                              {"max_steps": 6, "batch_size": 8, "grad_accum": 1, "eval_every": 3, "eval_examples": 40,
                               "max_length": 64, "pooling": "mean", "lr": 1e-3}, {"max_length": 64})
    data = tmp_path / "lareqa"
    manifest = read_manifest(data)
    assert set(manifest["splits"]["test"]["rows_per_lang"]) == {"en", "de", "zh"}
    assert manifest["dev_carved_from_train"]
    assert json.loads((tmp_path / "ft" / "dev.json").read_text())["metric"] == "map@20"
    assert json.loads((tmp_path / "ft" / "cost.json").read_text())["examples"] == 6 * 8  # pairs, not sequences
    out = tmp_path / "eval"
    metrics = json.loads((out / "metrics.json").read_text())
    task, kind = get_task("lareqa"), kinds.get("answer_retrieval")
    test_rows = load_split(data, "test").to_pylist()
    n_candidates = sum(len(r["sentences"]) for r in {(r["lang"], r["context"]): r for r in test_rows}.values())
    for lang in ("en", "de", "zh"):
        pred, gold = evaluate.read_submission(out, task, lang)
        assert len(gold) == 60 and all(len(v) == 3 for v in gold.values())  # its answer in each language
        assert all(len(v) == 20 and len(set(v)) == 20 for v in pred.values())
        assert {u.split("_")[0] for v in pred.values() for u in v} <= {"en", "de", "zh"}
        recomputed = 100 * sum(average_precision_at_k(pred[q], set(r)) for q, r in gold.items()) / len(gold)
        assert recomputed == pytest.approx(metrics["languages"][lang]["map@20"])
        assert kind.units(task, lang, pred, gold).estimate == pytest.approx(recomputed)
    assert n_candidates > 3 * 60  # the pool holds every sentence, not just the answers
    assert metrics["score"] == pytest.approx(sum(v["map@20"] for v in metrics["languages"].values()) / 3)
