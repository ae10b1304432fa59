"""Mewsli-X, XTREME-R's entity retrieval: the query text and metric as XTREME-R's code defines them, XTREME-R's
own mock submission scored to the number its test expects, the release's files read (and bad ones refused with
file, row and field), and the whole path (synthetic release -> prepare -> fine-tune on English Wikipedia pairs ->
one candidate table for every language -> files in XTREME-R's layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import train_and_evaluate_target
from xstilts import evaluate, kinds
from xstilts.cli import main
from xstilts.data.prepare import load_split, read_manifest
from xstilts.kinds.entity_retrieval import query_text, reciprocal_rank
from xstilts.registry import get_task

MOCK = Path(__file__).parent / "fixtures" / "xtreme_r_mock"


def test_the_query_marks_the_mention_in_its_sentence_and_repeats_it_in_front():
    """utils_mewslix.preprocess_mention (838c13b:562-610): one sentence of context, ` { mention } `, existing
    braces turned into parentheses, "<mention>: " prepended, newlines and double spaces collapsed."""
    first, second = "Before.\n", "The verdict came\nback for Smith, who {left} office."
    text = first + second + " After."
    start, end = text.index("Smith"), text.index("Smith") + 5
    spans = [(0, 7), (len(first), len(first + second)), (len(first + second) + 1, len(text))]
    assert query_text(text, "Smith", start, end, spans) == \
        "Smith: The verdict came back for { Smith } , who (left) office."
    assert query_text(text, "Smith", start, end, [(0, start + 2), (start + 2, len(text))]) is None  # crosses one


def test_the_metric_is_the_reciprocal_rank_in_the_top_20_and_an_unpredicted_example_scores_0():
    """utils_mewslix.evaluate / mean_reciprocal_rank (838c13b:623-695): iterate the gold examples."""
    assert reciprocal_rank(["a", "b", "g"], "g") == pytest.approx(1 / 3)
    assert reciprocal_rank([f"x{i}" for i in range(20)] + ["g"], "g") == 0.0
    kind, task = kinds.get("entity_retrieval"), get_task("mewslix")
    units = kind.units(task, "en", {"e1": ["g1"], "extra": ["g9"]}, {"e1": ["g1 "], "e2": ["g2"]})
    assert units.ids == ("e1", "e2") and units.estimate == pytest.approx(50.0)  # gold stripped; e2 missing: 0


def test_xtreme_r_mock_submission_scores_what_its_own_test_expects():
    """google-research/xtreme evaluate_test.py (838c13b:58): avg_map@20 = 14.39025156130419 on mock_test_data."""
    task = get_task("mewslix")
    scores = [kinds.of(task).units(task, lang, *evaluate.read_submission(MOCK, task, lang)).estimate
              for lang in task.languages]
    assert sum(scores) / len(scores) == pytest.approx(14.39025156130419, abs=1e-9)


def test_the_release_s_own_wikinews_example_becomes_one_query_per_mention_of_its_language():
    """google-research's Mewsli-X test data (two real articles, byte-exact: their text_md5 holds) through the
    reader and normaliser: articles kept by language, one row per mention, the query as preprocess_mention."""
    import hashlib

    from xstilts.data.normalize import normalize
    from xstilts.data.sources import read_source

    raw_file = Path(__file__).parent / "fixtures" / "raw" / "mewslix" / "wikinews_mentions-test.jsonl"
    for line in raw_file.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        assert hashlib.md5(doc["context"]["text"].encode()).hexdigest() == doc["mentions"][0]["metadata"]["text_md5"]
    task = get_task("mewslix")

    def rows(lang):
        raw = read_source(task.sources["test"][0], lang, local_dir=raw_file.parents[1], task="mewslix")
        return normalize(raw, task).rows

    [en] = rows("en")
    assert en == {"id": "c79595350cc2d5c7f2b095e2cb785212", "lang": "en", "entity_id": "Q1757", "entity_text": "",
                  "query": "Helsinki: In { Helsinki } , the Finnish trade union for bus and truck drivers has gone on "
                           "strike on Sunday evening, mainly over the use of part-time labor."}
    ar = rows("ar")
    assert [r["entity_id"] for r in ar] == ["Q167217", "Q3447452"]
    assert ar[1]["query"].startswith("طنب الصغرى: زار") and "و { طنب الصغرى } ،" in ar[1]["query"]
    from xstilts.errors import DataError

    with pytest.raises(DataError, match=r"wikinews_mentions-test\.jsonl.*empty split"):
        rows("de")  # no German article in the file: an error naming it, never an empty language


def _release(root: Path) -> Path:
    """A one-article Mewsli-X release in its files' layout."""
    folder = root / "mewslix"
    folder.mkdir(parents=True)
    context = {"document_id": "en-1", "language": "en", "text": "Anna Berg spoke. Then she left.",
               "sentence_spans": [{"start": 0, "end": 16}, {"start": 17, "end": 31}]}
    mention = {"example_id": "m1", "entity_id": "Q1", "mention_span": {"start": 0, "end": 9, "text": "Anna Berg"}}
    entity = {"entity_id": "Q1", "title": "Anna Berg", "description": "Anna Berg is a writer.\nShe lives.",
              "description_language": "en", "sentence_spans": [{"start": 0, "end": 22}, {"start": 23, "end": 33}]}
    pair = {"contextual_mention": {"context": context, "mention": mention}, "entity": entity}
    for name, doc in (("wikipedia_pairs-train", pair), ("wikipedia_pairs-dev", pair),
                      ("wikinews_mentions-test", {"context": context, "mentions": [mention]}),
                      ("candidate_set_entities", entity)):
        (folder / f"{name}.jsonl").write_text(json.dumps(doc) + "\n")
    return folder


def test_prepare_reads_the_release_files_and_keeps_the_whole_candidate_table(tmp_path):
    _release(tmp_path / "src")
    out = tmp_path / "p"
    assert main(["prepare", "--task", "mewslix", "--source", "local", "--local-dir", str(tmp_path / "src"),
                 "--languages", "en", "--out", str(out)]) == 0
    manifest = read_manifest(out)
    assert set(manifest["splits"]) == {"train", "dev", "test", "candidates"}
    [row] = load_split(out, "train").to_pylist()
    assert row["query"] == "Anna Berg: { Anna Berg } spoke."
    assert row["entity_text"] == "Anna Berg is a writer. She lives."
    assert load_split(out, "test").to_pylist()[0]["entity_text"] == ""  # WikiNews rows: the QID only
    assert load_split(out, "candidates").to_pylist() == [{"id": "Q1", "lang": "en", "text": row["entity_text"]}]


def test_a_mention_span_that_does_not_hold_its_text_names_file_row_and_field(tmp_path, capsys):
    folder = _release(tmp_path / "src")
    bad = json.loads((folder / "wikinews_mentions-test.jsonl").read_text())
    bad["mentions"][0]["mention_span"]["end"] = 5
    (folder / "wikinews_mentions-test.jsonl").write_text(json.dumps(bad) + "\n")
    assert main(["prepare", "--task", "mewslix", "--source", "local", "--local-dir", str(tmp_path / "src"),
                 "--languages", "en", "--out", str(tmp_path / "p")]) != 0
    err = capsys.readouterr().err
    assert "wikinews_mentions-test.jsonl" in err and "row 0" in err and "mention_span" in err
    assert not (tmp_path / "p").exists()


def test_mewslix_trains_on_english_pairs_and_retrieves_from_one_table_for_every_language(tmp_path):
    train_and_evaluate_target(tmp_path, "mewslix", "en,de,ar",
                              {"max_steps": 30, "batch_size": 16, "grad_accum": 1, "eval_every": 10,
                               "eval_examples": 40, "pooling": "mean", "lr": 1e-3})
    data, out = tmp_path / "mewslix", tmp_path / "eval"
    manifest = read_manifest(data)
    table = load_split(data, "candidates").to_pylist()
    assert manifest["splits"]["candidates"]["rows"] == len(table) == 220  # every entity, of several languages
    assert len({c["lang"] for c in table}) > 3
    assert set(manifest["splits"]["train"]["rows_per_lang"]) == {"en"}
    metrics = json.loads((out / "metrics.json").read_text())
    task = get_task("mewslix")
    for lang in ("en", "de", "ar"):
        pred = json.loads((out / "predictions" / "mewslix" / f"test-{lang}.json").read_text())
        gold = json.loads((out / "labels" / "mewslix" / f"test-{lang}.json").read_text())
        assert set(pred) == set(gold) and all(len(v) == 20 for v in pred.values())
        assert all(set(v) <= {c["id"] for c in table} for v in pred.values())
        # the file, scored as utils_mewslix.evaluate reads it, is the number metrics.json reports
        official = 100 * sum(reciprocal_rank(pred.get(k, []), v[0].strip()) for k, v in gold.items()) / len(gold)
        assert metrics["languages"][lang]["map@20"] == pytest.approx(official)
        assert kinds.of(task).units(task, lang, pred, gold).estimate == pytest.approx(official)
    chance = 100 * sum(1 / r for r in range(1, 21)) / 220
    assert metrics["score"] > 3 * chance  # the tiny model learns name matching from 30 steps of English pairs
    assert metrics["dev"]["languages"].keys() == {"en"}  # the English Wikipedia dev, against the whole table


def test_an_xtreme_r_export_holds_mewslix_in_its_layout_and_leaves_lareqa_out(tmp_path, capsys):
    """`xstilts export --benchmark xtreme-r`: the task folders XTREME-R's evaluate.py reads (mewslix/test-<lang>.json),
    without LAReQA, which that scorer cannot read; the files copied are the cell's, byte for byte."""
    import shutil

    task = get_task("mewslix")
    row = tmp_path / "row"
    for target in ("mewslix", "lareqa"):
        cell = row / "eval" / target
        for kind in ("predictions", "labels"):
            shutil.copytree(MOCK / kind / "mewslix", cell / kind / target)
        scores = {lang: {"map@20": kinds.of(task).units(task, lang, *evaluate.read_submission(MOCK, task, lang))
                         .estimate} for lang in task.languages}
        (cell / "metrics.json").write_text(json.dumps({"languages": scores, "score": 14.39025156130419}))
    shutil.rmtree(row / "eval" / "lareqa" / "predictions")  # never read: LAReQA is not in XTREME-R's folder
    assert main(["export", "--row", str(row), "--out", str(tmp_path / "sub"), "--benchmark", "xtreme-r"]) == 0
    manifest = json.loads((tmp_path / "sub" / "manifest.json").read_text())
    assert manifest["benchmark"] == "xtreme-r" and manifest["left_out"] == ["lareqa"]
    assert set(manifest["tasks"]) == {"mewslix"} and manifest["tasks"]["mewslix"]["official_languages_missing"] == []
    assert not (tmp_path / "sub" / "predictions" / "lareqa").exists()
    for lang in task.languages:
        for kind in ("predictions", "labels"):
            name = f"{kind}/mewslix/test-{lang}.json"
            assert (tmp_path / "sub" / name).read_bytes() == (MOCK / name).read_bytes()
    assert "left out (the official scorer cannot read them): lareqa" in capsys.readouterr().out


def test_a_submission_value_that_is_not_a_list_names_file_and_example(tmp_path):
    from xstilts.errors import DataError

    task = get_task("mewslix")
    for kind, doc in (("predictions", {"e1": "Q1"}), ("labels", {"e1": ["Q1"]})):
        (tmp_path / kind / "mewslix").mkdir(parents=True)
        (tmp_path / kind / "mewslix" / "test-en.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"predictions/mewslix/test-en\.json.*the value of 'e1' is not a list"):
        evaluate.read_submission(tmp_path, task, "en")
