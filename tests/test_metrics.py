"""Official XTREME metrics on hand-computed cases, and the aggregation rules."""

from __future__ import annotations

import math

import pytest

from xstilts import metrics
from xstilts.errors import DataError, UserError
from xstilts.registry import XTREME_BENCHMARK


# ------------------------------------------------------------------------------------------------ accuracy
def test_accuracy_is_percent_of_equal_pairs():
    assert metrics.accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == 50.0
    assert metrics.accuracy(["a"], ["a"]) == 100.0


@pytest.mark.parametrize("preds, golds", [([1, 2], [1]), ([], [])])
def test_accuracy_rejects_bad_lengths(preds, golds):
    with pytest.raises(DataError):
        metrics.accuracy(preds, golds)


# ------------------------------------------------------------------------------------------------ seqeval
def test_udpos_seqeval_f1_is_not_token_accuracy():
    gold = [["DET", "NOUN", "NOUN", "VERB", "PUNCT"]]
    pred = [["DET", "NOUN", "VERB", "VERB", "PUNCT"]]
    # seqeval reads the first letter as a chunk prefix: gold chunks DET, NOUN NOUN, VERB, PUNCT;
    # predicted DET, NOUN, VERB VERB, PUNCT -> 2 of 4 chunks match on each side: F1 = 50.
    assert metrics.seqeval_f1(pred, gold) == pytest.approx(50.0)
    assert metrics.accuracy(pred[0], gold[0]) == pytest.approx(80.0)


def test_panx_seqeval_f1_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "O"]]
    # gold entities: PER(0-1), LOC(3), ORG(1-2); predicted PER(0-1), ORG(3), ORG(1) -> 1 correct of 3 / 3.
    assert metrics.seqeval_f1(pred, gold) == pytest.approx(100 / 3)


def test_seqeval_accepts_tuples_like_lists():
    gold = [("B-PER", "I-PER", "O")]
    assert metrics.seqeval_f1(gold, gold) == 100.0


def test_seqeval_length_mismatch_names_the_sentence():
    with pytest.raises(DataError, match="row 1"):
        metrics.seqeval_f1([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(DataError, match="sequences"):
        metrics.seqeval_f1([["O"]], [["O"], ["O"]])


# ------------------------------------------------------------------------------------------------ SQuAD
def test_squad_normalisation():
    assert metrics.squad_normalize("The  Cat,   sat!") == "cat sat"
    assert metrics.squad_normalize("An apple a day") == "apple day"
    assert metrics.squad_normalize("theatre") == "theatre"  # articles only as whole words


def test_squad_scores_hand_computed():
    refs = {"q1": ["The cat!"], "q2": ["red dog barked", "a blue fish"], "q3": ["x"], "q4": ["Paris"]}
    preds = {"q1": "cat", "q2": "the big red dog", "q3": "y", "extra": "ignored"}
    # q1 exact; q2 F1 vs "red dog barked": 2 common of 3/3 -> 2/3; q3 0; q4 unanswered -> 0, still counted.
    scores = metrics.squad_scores(preds, refs)
    assert scores["exact_match"] == pytest.approx(100 * 1 / 4)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 4)


def test_squad_max_over_gold_answers():
    scores = metrics.squad_scores({"q": "blue fish"}, {"q": ["red dog", "a blue fish"]})
    assert scores == {"exact_match": 100.0, "f1": 100.0}


def test_squad_unanswerable_question_needs_empty_prediction():
    refs = {"a": [], "b": []}
    assert metrics.squad_scores({"a": "", "b": "the"}, refs) == {"exact_match": 100.0, "f1": 100.0}
    assert metrics.squad_scores({"a": "cat", "b": ""}, refs) == {"exact_match": 50.0, "f1": 50.0}


def test_squad_scores_need_references():
    with pytest.raises(DataError):
        metrics.squad_scores({"q": "x"}, {})


# ------------------------------------------------------------------------------------------------ MLQA
def test_mlqa_unicode_punctuation_and_spanish_articles():
    assert metrics.mlqa_normalize("¿Los «Gatos»?", "es") == "gatos"
    # The SQuAD normaliser keeps ¿ « » and Spanish articles, so EM differs.
    assert metrics.squad_scores({"q": "¿Los «Gatos»?"}, {"q": ["gatos"]})["exact_match"] == 0.0
    assert metrics.mlqa_scores({"q": "¿Los «Gatos»?"}, {"q": ["gatos"]}, "es")["exact_match"] == 100.0


@pytest.mark.parametrize("lang, text, expected", [
    ("de", "Der Hund und eine Katze", "hund und katze"),
    ("vi", "những con mèo của tôi", "con mèo tôi"),
    ("en", "The Cat—sat", "catsat"),  # the em dash is Unicode punctuation: removed, not a space
    ("hi", "एक किताब।", "एक किताब"),  # no articles; the danda is punctuation
    ("ar", "الكتاب الكبير", "كتاب كبير"),  # every "ال" is replaced by a space, as in the MLQA script
])
def test_mlqa_per_language_normaliser(lang, text, expected):
    assert metrics.mlqa_normalize(text, lang) == expected


def test_mlqa_chinese_mixed_segmentation():
    assert metrics.mlqa_normalize("iPhone手机 很好", "zh") == "iphone 手 机 很 好"
    # pred tokens 北 京 大 学, gold 北 京: 2 common -> P 1/2, R 1 -> F1 2/3; not an exact match.
    scores = metrics.mlqa_scores({"q": "北京大学", "r": "上海。"}, {"q": ["北京"], "r": ["上海"]}, "zh")
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (2 / 3 + 1) / 2)
    # Whitespace tokens (the SQuAD script) see one token each: no credit at all for the partial answer.
    assert metrics.squad_scores({"q": "北京大学"}, {"q": ["北京"]})["f1"] == 0.0


def test_mlqa_language_outside_mlqa_keeps_words_and_drops_punctuation():
    # ru is not an MLQA language (the synthetic demo uses it): no articles, whitespace tokens.
    assert metrics.mlqa_normalize("The «Кот» a", "ru") == "the кот a"


# ------------------------------------------------------------------------------------------------ BUCC
def test_bucc_scores_hand_computed():
    gold = {("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-3"), ("de-4", "en-4")}
    pred = {("de-1", "en-1"), ("de-2", "en-9")}
    scores = metrics.bucc_scores(pred, gold)
    assert scores["precision"] == pytest.approx(50.0)
    assert scores["recall"] == pytest.approx(25.0)
    assert scores["f1"] == pytest.approx(100 / 3)
    assert metrics.bucc_scores(set(), gold) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


# ------------------------------------------------------------------------------------------------ aggregation
def test_task_summary_qa_score_is_mean_of_em_and_f1():
    s = metrics.task_summary("xquad", {"en": {"exact_match": 60.0, "f1": 80.0},
                                       "de": {"exact_match": 40.0, "f1": 60.0}})
    assert s["average"] == {"exact_match": 50.0, "f1": 70.0}
    assert s["score"] == 60.0
    assert s["languages"]["de"] == {"exact_match": 40.0, "f1": 60.0}


@pytest.mark.parametrize("task, key", [("udpos", "f1"), ("xnli", "accuracy"), ("tatoeba", "accuracy")])
def test_task_summary_single_metric_tasks(task, key):
    s = metrics.task_summary(task, {"a": {key: 70.0}, "b": {key: 90.0}, "c": {key: 20.0}})
    assert s["score"] == pytest.approx(60.0)


def test_task_summary_bucc_averages_every_key_and_scores_f1():
    s = metrics.task_summary("bucc2018", {"de": {"precision": 80.0, "recall": 60.0, "f1": 70.0},
                                          "fr": {"precision": 60.0, "recall": 40.0, "f1": 50.0}})
    assert s["average"] == {"precision": 70.0, "recall": 50.0, "f1": 60.0}
    assert s["score"] == 60.0


def test_task_summary_rejects_inconsistent_or_wrong_keys():
    with pytest.raises(DataError, match="'de'"):
        metrics.task_summary("xquad", {"en": {"exact_match": 1.0, "f1": 2.0}, "de": {"f1": 2.0}})
    with pytest.raises(DataError, match="accuracy"):
        metrics.task_summary("xnli", {"en": {"f1": 2.0}})
    with pytest.raises(DataError):
        metrics.task_summary("xnli", {})
    with pytest.raises(UserError, match="nope"):
        metrics.task_summary("nope", {"en": {"accuracy": 1.0}})


def _all_targets(value=None) -> dict[str, float]:
    return {name: (value if value is not None else float(10 * i)) for i, name in enumerate(XTREME_BENCHMARK.tasks)}


def test_xtreme_score_is_mean_of_all_nine_targets():
    scores = _all_targets()
    assert len(scores) == 9
    assert metrics.benchmark_score(scores, "xtreme") == pytest.approx(sum(scores.values()) / 9)
    assert metrics.benchmark_score(scores) == metrics.benchmark_score(scores, "xtreme")  # the default


@pytest.mark.parametrize("hole", [None, math.nan, "drop"])
def test_xtreme_score_is_none_when_any_target_is_missing(hole):
    scores = _all_targets(50.0)
    if hole == "drop":
        del scores["tatoeba"]
    else:
        scores["tatoeba"] = hole
    assert metrics.benchmark_score(scores) is None


def test_benchmark_score_rejects_non_target_names_and_unknown_benchmarks():
    with pytest.raises(UserError, match="mnli"):
        metrics.benchmark_score({**_all_targets(), "mnli": 80.0})
    with pytest.raises(UserError, match="nope"):
        metrics.benchmark_score({**_all_targets(), "nope": 80.0})
    for score in (metrics.benchmark_score, metrics.group_scores):
        with pytest.raises(UserError, match="'xtreme-s'.*known benchmarks: xtreme, xtreme-r"):
            score(_all_targets(), "xtreme-s")


def test_group_scores():
    scores = {"xnli": 80.0, "pawsx": 90.0, "udpos": 70.0, "panx": 60.0, "xquad": 70.0, "mlqa": 60.0,
              "tydiqa": 50.0, "tatoeba": 40.0}
    assert metrics.group_scores(scores) == {"classification": 85.0, "tagging": 65.0, "qa": 60.0,
                                            "retrieval": None}


# ------------------------------------------------------------------------------------------------ files the
# official scorer reads (xstilts.evaluate.write_submission), through tests/xtreme_reader.py
QA_ROWS = [
    {"id": "q1", "lang": "de", "context": "Berlin ist die Hauptstadt von Deutschland.", "question": "Was?",
     "answer_texts": ["Berlin"], "answer_starts": [0]},
    {"id": "q2", "lang": "de", "context": "Berlin ist die Hauptstadt von Deutschland.", "question": "Wovon?",
     "answer_texts": ["von Deutschland", "Deutschland"], "answer_starts": [26, 30]},
    {"id": "q3", "lang": "de", "context": "Der Rhein fliesst nach Norden.", "question": "Wohin?",
     "answer_texts": ["nach Norden"], "answer_starts": [17]},
]


@pytest.mark.parametrize("task_name", ["xquad", "mlqa", "tydiqa"])
def test_qa_label_files_are_squad_v1_datasets_the_official_readers_parse(tmp_path, task_name):
    from tests import xtreme_reader
    from xstilts.evaluate import score_rows, write_submission
    from xstilts.registry import get_task

    task = get_task(task_name)
    preds = ["Berlin", "Deutschland.", "im Norden"]
    write_submission(tmp_path, task, "de", QA_ROWS, preds, None)
    dataset = xtreme_reader.read_squad(tmp_path / "labels" / task_name / "test-de.json")
    assert [len(p["qas"]) for p in dataset[0]["paragraphs"]] == [2, 1]  # rows sharing a context share a paragraph
    assert dataset[0]["paragraphs"][0]["qas"][1]["answers"] == [{"text": "von Deutschland", "answer_start": 26},
                                                                {"text": "Deutschland", "answer_start": 30}]
    assert xtreme_reader.qa_references(dataset) == {r["id"]: r["answer_texts"] for r in QA_ROWS}
    official = xtreme_reader.score_file_pair(task_name, tmp_path / "predictions" / task_name / "test-de.json",
                                             tmp_path / "labels" / task_name / "test-de.json", "de")
    ours = score_rows(task, QA_ROWS, preds, "de")
    assert official == pytest.approx(ours, abs=1e-12)
    # EM 2 of 3 (q2 after normalisation: "deutschland"); F1 q3 = 2 * 1/2 * 1/2 / 1 = 0.5
    assert ours["exact_match"] == pytest.approx(200 / 3) and ours["f1"] == pytest.approx(250 / 3)


@pytest.mark.parametrize("task_name, sentences", [
    ("panx", [["B-PER", "I-PER", "O"], ["O"], ["B-LOC", "O", "O"]]),
    ("udpos", [["DET", "NOUN"], ["PROPN", "VERB", "PUNCT"]]),
])
def test_tag_files_round_trip_through_the_2020_read_tag(tmp_path, task_name, sentences):
    from tests import xtreme_reader
    from xstilts.evaluate import score_rows, write_submission
    from xstilts.registry import get_task

    task = get_task(task_name)
    rows = [{"id": str(i), "lang": "de", "tokens": ["w"] * len(s), "tags": s} for i, s in enumerate(sentences)]
    preds = [list(s[:-1]) + ["O" if task_name == "panx" else "NOUN"] for s in sentences]  # last tag wrong
    write_submission(tmp_path, task, "de", rows, preds, list(task.labels))
    pred_file, gold_file = (tmp_path / kind / task_name / "test-de.tsv" for kind in ("predictions", "labels"))
    for read in (xtreme_reader.read_tag_2020, xtreme_reader.read_tag_2021):
        assert read(pred_file) == preds and read(gold_file) == sentences  # every sentence, the last one too
    official = xtreme_reader.score_file_pair(task_name, pred_file, gold_file, "de")
    assert official["f1"] == pytest.approx(score_rows(task, rows, preds, "de")["f1"], abs=1e-12)
