"""Sources and normalisers: every raw schema on its hand-made fixture (tests/fixtures/raw, the real hub
columns), each dataset quirk, and every kind of bad data (the message names file, split, row and field)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xstilts.data.normalize import NORMALIZERS, normalize
from xstilts.data.sources import RawSplit, read_source, resolve
from xstilts.errors import DataError, UserError
from xstilts import kinds
from xstilts.registry import CORPUS_SOURCE, TASKS, Source, get_task, translated_source

RAW = Path(__file__).parent / "fixtures" / "raw"


def read(task: str, split: str, lang: str = "en", root: Path = RAW):
    """Normalised rows of a task's split from a mirror, via the real reader (the split's source of `lang`)."""
    t = get_task(task)
    (source,) = [s for s in t.sources[split] if s.has_language(lang)]
    return normalize(read_source(source, lang, local_dir=root, task=task), t)


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def mirror_with(tmp_path: Path, rel: str, rows: list) -> Path:
    """A one-file local mirror in `tmp_path` holding `rows` at `rel` (jsonl)."""
    write_jsonl(tmp_path / rel, rows)
    return tmp_path


def fixture_rows(rel: str) -> list[dict]:
    return [json.loads(line) for line in (RAW / rel).read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------------------- registry coverage
def test_every_raw_schema_in_the_registry_has_a_normaliser():
    schemas = {s.raw_schema for t in TASKS.values() for ss in t.sources.values() for s in ss}
    schemas |= {CORPUS_SOURCE.raw_schema} | {translated_source(n).raw_schema for n, t in TASKS.items()
                                               if t.role == "intermediate"}
    assert schemas <= set(NORMALIZERS)


@pytest.mark.parametrize("task,split,lang", [
    ("mnli", "train", "en"), ("qqp", "dev", "en"), ("squad_v1", "train", "en"), ("squad_v2", "train", "en"),
    ("hellaswag", "train", "en"), ("commonsenseqa", "train", "en"), ("cosmosqa", "train", "en"),
    ("siqa", "train", "en"),
    ("ccg", "train", "en"), ("xnli", "test", "de"), ("pawsx", "test", "de"), ("udpos", "test", "de"),
    ("panx", "test", "de"), ("xquad", "test", "de"), ("mlqa", "test", "en"), ("tydiqa", "test", "ar"),
    ("tatoeba", "test", "de"),
])
def test_normalised_rows_have_exactly_the_internal_schema(task, split, lang):
    t = get_task(task)
    norm = read(task, split, lang)
    assert norm.rows
    for r in norm.rows:
        assert list(r) == list(kinds.of(t).schema)
        assert r["lang"] == lang and isinstance(r["id"], str)
    assert len({r["id"] for r in norm.rows}) == len(norm.rows)


# ------------------------------------------------------------------------------------------- quirks
def test_anli_keeps_uid_and_maps_labels_onto_nli_order():
    t = get_task("anli_plus")
    norm = normalize(read_source(t.sources["train"][0], "en", local_dir=RAW), t)
    assert [r["id"] for r in norm.rows] == ["train_r1-a0", "train_r1-a1", "train_r1-a2"]
    assert [t.labels[r["label"]] for r in norm.rows] == ["entailment", "neutral", "contradiction"]


def test_mnli_label_ints_map_to_the_registry_nli_label_names():
    rows = read("mnli", "train").rows
    raw = fixture_rows("glue/mnli/train.jsonl")
    names = ("entailment", "neutral", "contradiction")  # glue/mnli ClassLabel order
    assert [get_task("mnli").labels[r["label"]] for r in rows] == [names[r["label"]] for r in raw]
    assert rows[0]["id"] == "glue/mnli/train-0" and rows[0]["text_b"] == raw[0]["hypothesis"]


def test_qqp_labels_index_the_task_labels():
    rows = read("qqp", "train").rows
    assert [get_task("qqp").labels[r["label"]] for r in rows] == ["not_duplicate", "duplicate", "not_duplicate"]


def test_snli_no_gold_label_rows_are_dropped_and_counted():
    t = get_task("anli_plus")
    snli = next(s for s in t.sources["train"] if s.raw_schema == "snli")
    norm = normalize(read_source(snli, "en", local_dir=RAW), t)
    assert len(norm.rows) == 3 and norm.dropped["no_gold_label"] == 1
    assert all(0 <= r["label"] < 3 for r in norm.rows)


def test_pawsx_string_labels_become_indices():
    rows = read("pawsx", "train", "en").rows
    assert [r["label"] for r in rows] == [1, 1, 0]


def test_pawsx_int_label_is_outside_the_string_label_set(tmp_path):
    root = mirror_with(tmp_path, "google/xtreme/PAWS-X.en/train.jsonl",
                       [{"sentence1": "a", "sentence2": "b", "label": 1}])
    with pytest.raises(DataError, match=r"row 0, field label: label 1 outside the label set \['0', '1'\]"):
        read("pawsx", "train", "en", root)


def test_xnli_keeps_only_the_language_and_maps_string_gold_labels():
    rows = read("xnli", "dev", "de").rows
    assert [r["lang"] for r in rows] == ["de", "de"]
    assert [get_task("xnli").labels[r["label"]] for r in rows] == ["contradiction", "entailment"]
    assert rows[0]["text_a"].startswith("und er hat gesagt")


def test_xnli_language_missing_from_the_file_is_an_empty_split():
    with pytest.raises(DataError, match="XNLI/validation.jsonl, split validation: empty split: no rows left "
                                        "for language 'ar'"):
        read("xnli", "dev", "ar")


def test_hellaswag_string_labels_ctx_and_endings():
    rows = read("hellaswag", "train").rows
    raw = fixture_rows("Rowan/hellaswag/train.jsonl")
    assert [r["label"] for r in rows] == [3, 3, 0]
    assert rows[0]["context"] == raw[0]["ctx"] and rows[0]["choices"] == raw[0]["endings"]
    assert rows[0]["question"] == "" and rows[0]["id"] == "4"


def test_commonsenseqa_answer_key_is_looked_up_in_choice_labels(tmp_path):
    rows = read("commonsenseqa", "train").rows
    assert [r["label"] for r in rows] == [0, 1, 0]
    assert rows[1]["choices"][rows[1]["label"]] == "populated areas"
    # the answer key is found by the choice labels, not by alphabet position
    raw = fixture_rows("commonsense_qa/train.jsonl")[:1]
    raw[0]["choices"]["label"] = ["E", "D", "C", "B", "A"]
    root = mirror_with(tmp_path, "commonsense_qa/train.jsonl", raw)
    assert read("commonsenseqa", "train", root=root).rows[0]["label"] == 4


def test_siqa_answers_a_to_c_are_the_choices_and_its_string_label_is_1_based():
    rows = read("siqa", "dev").rows
    raw = fixture_rows("social_i_qa/validation.jsonl")
    assert [r["choices"] for r in rows] == [[x[f"answer{k}"] for k in "ABC"] for x in raw]
    assert [r["label"] for r in rows] == [int(x["label"]) - 1 for x in raw] == [2, 0]


def test_siqa_int_label_is_outside_the_label_set(tmp_path):
    root = mirror_with(tmp_path, "social_i_qa/validation.jsonl",
                       [{**fixture_rows("social_i_qa/validation.jsonl")[0], "label": 3}])
    with pytest.raises(DataError, match=r"social_i_qa/validation\.jsonl, split validation, row 0, field label: "
                                        r"label 3 outside the label set \['1', '2', '3'\]"):
        read("siqa", "dev", root=root)


def test_cosmosqa_answers_0_to_3_are_the_choices():
    rows = read("cosmosqa", "train").rows
    raw = fixture_rows("cosmos_qa/train.jsonl")
    assert rows[0]["choices"] == [raw[0][f"answer{k}"] for k in range(4)] and rows[0]["label"] == 1
    assert rows[0]["id"] == raw[0]["id"]


def test_udpos_classlabel_ids_become_upos_strings():
    rows = read("udpos", "train", "en").rows
    assert rows[0]["tags"] == ["PRON", "SCONJ", "PROPN", "VERB", "ADP", "PROPN", "PUNCT"]


def test_panx_classlabel_ids_become_bio_strings():
    rows = read("panx", "dev", "de").rows
    assert rows[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]
    assert rows[1]["tags"] == ["B-ORG", "I-ORG"]


def test_ccg_supertags_pass_through_as_strings():
    rows = read("ccg", "train").rows
    assert rows[1]["tags"] == ["N/N", "N", "(S[dcl]\\NP)/NP", "N", "."]


def test_tydiqa_keeps_only_ids_with_the_language_prefix():
    train = read("tydiqa", "train", "ar")  # training is the English part whatever the language
    assert [r["id"].split("-")[0] for r in train.rows] == ["english"] * 5
    assert train.dropped["other_id_prefix"] == 1
    test = read("tydiqa", "test", "ar")
    assert [r["id"] for r in test.rows] == ["arabic-2000-0"]


def test_tatoeba_strips_the_trailing_newline_and_keeps_order():
    rows = read("tatoeba", "test", "de").rows
    assert [r["source"] for r in rows][:2] == ["Ich muss schlafen gehen.", "Heute ist der 18. Juni."]
    assert rows[2]["target"] == "Muiriel is 20 now."


def test_squad_v2_allows_unanswerable_but_v1_kinds_need_an_answer():
    rows = read("squad_v2", "dev").rows
    assert rows[-1]["answer_texts"] == [] and rows[-1]["answer_starts"] == []
    raw = RawSplit(get_task("squad_v1").sources["train"][0], "en", "squad_v2/train.jsonl",
                   fixture_rows("squad_v2/train.jsonl"))
    with pytest.raises(DataError, match="file squad_v2/train.jsonl, split train, row 3, field answers: "
                                        "question '5a8d7bf7df8bba001a0f9ab1' has no answer"):
        normalize(raw, get_task("squad_v1"))


def test_squad_keeps_every_answer():
    row = read("squad_v1", "train").rows[1]
    assert row["answer_texts"] == ["Catholic", "a Catholic character"]
    assert [row["context"][s:s + len(t)] for s, t in zip(row["answer_starts"], row["answer_texts"])] == \
        row["answer_texts"]


def test_bucc_original_files_give_pools_and_gold():
    norm = read("bucc2018", "dev", "de")
    sides = [r["side"] for r in norm.rows]
    assert sides.count("src") == 4 and sides.count("en") == 5
    assert norm.rows[0] == {"lang": "de", "side": "src", "sent_id": "de-000000000", "text": "Das Haus ist groß."}
    assert norm.gold[0] == {"lang": "de", "src_id": "de-000000000", "en_id": "en-000000001"}


def test_bucc_gold_naming_an_unknown_sentence_is_an_error(tmp_path):
    folder = tmp_path / "bucc2018" / "de-en"
    folder.mkdir(parents=True)
    (folder / "de-en.sample.de").write_text("de-1\tHallo.\n", encoding="utf-8")
    (folder / "de-en.sample.en").write_text("en-1\tHello.\n", encoding="utf-8")
    (folder / "de-en.sample.gold").write_text("de-1\ten-1\nde-1\ten-9\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"de-en\.sample\.gold, split sample, row 1, field en_id: line 2: .*'en-9'"):
        read("bucc2018", "dev", "de", tmp_path)


def test_bucc_line_without_a_tab_is_an_error(tmp_path):
    folder = tmp_path / "bucc2018" / "de-en"
    folder.mkdir(parents=True)
    (folder / "de-en.sample.de").write_text("de-1\tHallo.\nde-2 Welt\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"de-en\.sample\.de, split sample, row 1: line 2: expected 2 tab-separated"):
        read("bucc2018", "dev", "de", tmp_path)


def test_corpus_text_drops_blank_lines():
    norm = normalize(read_source(CORPUS_SOURCE, "en", local_dir=RAW), None)
    assert norm.rows[0] == {"lang": "en", "text": "The cat sat on the mat."}
    assert len(norm.rows) == 4 and norm.dropped["blank_text"] == 1


def test_translated_data_reads_the_task_raw_schema():
    t = get_task("mnli")
    rows = normalize(read_source(translated_source("mnli"), "de", local_dir=RAW), t).rows
    assert [r["lang"] for r in rows] == ["de", "de"] and rows[0]["text_a"].startswith("Konzeptionell")


def test_resolve_fills_language_placeholders():
    assert resolve(get_task("udpos").sources["test"][0], "de").config == "udpos.German"
    assert resolve(get_task("tatoeba").sources["test"][0], "zh").config == "tatoeba.cmn"
    assert resolve(get_task("tydiqa").sources["test"][0], "sw").id_prefix == "swahili-"


# ------------------------------------------------------------------------------------------- bad data
def test_missing_column_names_file_split_row_and_field(tmp_path):
    root = mirror_with(tmp_path, "google/xtreme/PAWS-X.en/test.jsonl",
                       [{"sentence1": "a", "sentence2": "b", "label": "0"}, {"sentence1": "a", "label": "1"}])
    with pytest.raises(DataError, match=r"PAWS-X\.en/test\.jsonl, split test, row 1, field sentence2: "
                                        "missing column 'sentence2'"):
        read("pawsx", "test", "en", root)


def test_label_outside_the_label_set(tmp_path):
    rows = fixture_rows("glue/mnli/train.jsonl")[:2]
    rows[1]["label"] = 3
    root = mirror_with(tmp_path, "glue/mnli/train.jsonl", rows)
    with pytest.raises(DataError, match=r"mnli/train\.jsonl, split train, row 1, field label: label 3 outside"):
        read("mnli", "train", root=root)


def test_hellaswag_empty_label_is_outside_the_label_set(tmp_path):
    rows = fixture_rows("Rowan/hellaswag/train.jsonl")[:1]
    rows[0]["label"] = ""
    root = mirror_with(tmp_path, "Rowan/hellaswag/train.jsonl", rows)
    with pytest.raises(DataError, match="row 0, field label: label '' outside the label set"):
        read("hellaswag", "train", root=root)


def test_commonsenseqa_unknown_answer_key(tmp_path):
    rows = fixture_rows("commonsense_qa/train.jsonl")[:1]
    rows[0]["answerKey"] = "F"
    root = mirror_with(tmp_path, "commonsense_qa/train.jsonl", rows)
    with pytest.raises(DataError, match="row 0, field answerKey: label 'F' outside"):
        read("commonsenseqa", "train", root=root)


def test_classlabel_id_out_of_range(tmp_path):
    root = mirror_with(tmp_path, "google/xtreme/udpos.English/train.jsonl",
                       [{"tokens": ["a", "b"], "pos_tags": [0, 17]}])
    with pytest.raises(DataError, match=r"udpos\.English/train\.jsonl, split train, row 0, field pos_tags: "
                                        r"label 17 outside the label set \(expected an int id 0\.\.16"):
        read("udpos", "train", "en", root)


def test_answer_not_found_at_answer_start(tmp_path):
    rows = fixture_rows("squad/train.jsonl")
    rows[2]["answers"]["answer_start"] = [3]
    root = mirror_with(tmp_path, "squad/train.jsonl", rows)
    with pytest.raises(DataError, match=r"squad/train\.jsonl, split train, row 2, field answers: answer text "
                                        "'gold' not found at answer_start 3"):
        read("squad_v1", "train", root=root)


def test_empty_split(tmp_path):
    root = mirror_with(tmp_path, "cosmos_qa/validation.jsonl", [])
    with pytest.raises(DataError, match=r"cosmos_qa/validation\.jsonl, split validation: empty split"):
        read("cosmosqa", "dev", root=root)


def test_tokens_tags_length_mismatch(tmp_path):
    root = mirror_with(tmp_path, "google/xtreme/PAN-X.de/train.jsonl",
                       [{"tokens": ["Angela", "Merkel"], "ner_tags": [1], "langs": ["de", "de"]}])
    with pytest.raises(DataError, match=r"PAN-X\.de/train\.jsonl, split train, row 0, field ner_tags: "
                                        "2 tokens but 1 tags"):
        read("panx", "train", "de", root)


def test_undecodable_bytes_in_jsonl_name_the_line(tmp_path):
    path = write_jsonl(tmp_path / "google/xtreme/PAWS-X.de/test.jsonl",
                       [{"sentence1": "a", "sentence2": "b", "label": "0"}])
    with open(path, "ab") as f:
        f.write(b'{"sentence1": "\xff\xfe", "sentence2": "b", "label": "0"}\n')
    with pytest.raises(DataError, match=r"PAWS-X\.de/test\.jsonl, split test, row 1: undecodable bytes on line 2"):
        read("pawsx", "test", "de", tmp_path)


def test_undecodable_bytes_in_parquet_name_row_and_field(tmp_path):
    path = tmp_path / "google/xtreme/PAWS-X.de/test.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"sentence1": pa.array([b"ok", b"\xffbad"], pa.binary()),
                             "sentence2": ["x", "y"], "label": ["0", "1"]}), path)
    with pytest.raises(DataError, match=r"PAWS-X\.de/test\.parquet, split test, row 1, field sentence1: "
                                        "undecodable bytes"):
        read("pawsx", "test", "de", tmp_path)


def test_undecodable_bytes_in_bucc_files(tmp_path):
    folder = tmp_path / "bucc2018" / "de-en"
    folder.mkdir(parents=True)
    (folder / "de-en.sample.de").write_bytes(b"de-1\tgut\nde-2\t\xc3\x28\n")
    with pytest.raises(DataError, match=r"de-en\.sample\.de, split sample, row 1: undecodable bytes on line 2"):
        read("bucc2018", "dev", "de", tmp_path)


def test_jsonl_bad_line_names_the_line_number(tmp_path):
    path = write_jsonl(tmp_path / "squad/train.jsonl", fixture_rows("squad/train.jsonl")[:1])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"id": "x", "context": \n')
    with pytest.raises(DataError, match=r"squad/train\.jsonl, split train, row 1: line 2 is not valid JSON"):
        read("squad_v1", "train", root=tmp_path)


def test_missing_local_file_names_the_expected_path(tmp_path):
    with pytest.raises(UserError, match=r"task 'pawsx', language 'ko': local mirror file not found: expected "
                                        r".*google/xtreme/PAWS-X\.ko/test\.parquet or .*\.jsonl"):
        read("pawsx", "test", "ko")


def test_missing_local_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="local mirror directory .*nowhere does not exist"):
        read("mnli", "train", root=tmp_path / "nowhere")


def test_missing_bucc_file_names_it(tmp_path):
    (tmp_path / "bucc2018").mkdir()
    with pytest.raises(UserError, match=r"BUCC file not found: expected .*bucc2018/fr-en/fr-en\.sample\.fr"):
        read("bucc2018", "dev", "fr", tmp_path)


# ------------------------------------------------------------------------------------------- local parquet
def test_parquet_mirror_reads_like_jsonl(tmp_path):
    rows = fixture_rows("google/xtreme/udpos.German/test.jsonl")
    path = tmp_path / "google/xtreme/udpos.German/test.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert read("udpos", "test", "de", tmp_path).rows == read("udpos", "test", "de").rows


def test_hub_source_marked_local_only_refuses_the_hub_naming_the_manual_step():
    with pytest.raises(UserError, match="only available from a local mirror; manual step: CCGbank is licensed"):
        read_source(get_task("ccg").sources["train"][0], "en", task="ccg")


def test_missing_manual_source_names_task_and_manual_step(tmp_path):
    (tmp_path / "cosmos_qa").mkdir()
    with pytest.raises(UserError) as e:
        read_source(get_task("cosmosqa").sources["train"][0], "en", local_dir=tmp_path, task="cosmosqa")
    assert "task 'cosmosqa'" in str(e.value) and "manual step: allenai/cosmos_qa holds only a loading script" \
        in str(e.value) and "\n" not in str(e.value)


def test_squad_answers_without_answer_start_names_the_nested_field(tmp_path):
    rows = fixture_rows("squad/train.jsonl")[:1]
    del rows[0]["answers"]["answer_start"]
    root = mirror_with(tmp_path, "squad/train.jsonl", rows)
    with pytest.raises(DataError, match="row 0, field answers.answer_start: expected a struct"):
        read("squad_v1", "train", root=root)


def test_null_token_is_an_error_naming_the_field(tmp_path):
    root = mirror_with(tmp_path, "ccgbank/train.jsonl", [{"tokens": ["a", None], "supertags": ["N", "N"]}])
    with pytest.raises(DataError, match="row 0, field tokens: expected a string, got NoneType"):
        read("ccg", "train", root=root)


def test_squad_schema_keeps_whitespace_so_answer_start_never_shifts(tmp_path):
    """Issue 11: the SQuAD-schema normaliser must not .strip() contexts or answers (stripping a context that
    starts with whitespace moves every answer_start; datasets fixed that for squad in 2021). Nothing is stripped,
    so the raw offsets stay valid, and the QA encoder's token offsets index the same context."""
    from xstilts.kinds.qa import encode as encode_qa
    from xstilts.pretrain import train_tokenizer

    context = "  \n Architecturally, the school has a golden statue of the Virgin Mary. "
    answer = " a golden statue"
    start = context.index(answer)
    row = {"id": "q1", "title": "t", "context": context, "question": "  What is there?",
           "answers": {"text": [answer, "Virgin Mary"], "answer_start": [start, context.index("Virgin Mary")]}}
    (out,) = read("squad_v1", "train", root=mirror_with(tmp_path, "squad/train.jsonl", [row])).rows
    assert out["context"] == context and out["answer_texts"] == [answer, "Virgin Mary"]
    assert out["answer_starts"] == row["answers"]["answer_start"]
    assert [context[s:s + len(t)] for s, t in zip(out["answer_starts"], out["answer_texts"])] == out["answer_texts"]
    tok = train_tokenizer([context, "What is there?"] * 20, 60)
    enc = encode_qa([out], tok, 64, 32, train=True)
    offsets = enc["offsets"][0]
    span = context[offsets[enc["start"][0]][0]:offsets[enc["end"][0]][1]]
    assert span.strip() == answer.strip()
