"""The synthetic mini-XTREME (`xstilts synth`): determinism, the mirror covers every registry source in the
hub schemas, QA spans, Tatoeba/BUCC formats, the noisy MT data and its chrF, language differences, that the
real `prepare` reads it, and a cheap learnability proxy (bag-of-words logistic regression)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xstilts import grid, synth
from xstilts.cli import main as cli_main
from xstilts.data import prepare
from xstilts.data.sources import MEWSLIX_SCHEMAS, local_stem, resolve
from xstilts.io import read_json, sha256_file
from xstilts.kinds.base import CANDIDATES
from xstilts.registry import CORPUS_SOURCE, TASKS, UPOS_TAGS, translated_source

NON_EN = synth.LANGUAGES[1:]
S, I = "string", "int"
# docs/design.md, "Raw (hub) schemas": column -> type ("int" = any integer width, "list<..>", "struct").
RAW_SCHEMAS = {
    "anli": {"uid": S, "premise": S, "hypothesis": S, "label": I, "reason": S},
    "glue_mnli": {"premise": S, "hypothesis": S, "label": I, "idx": I},
    "snli": {"premise": S, "hypothesis": S, "label": I},
    "glue_qqp": {"question1": S, "question2": S, "label": I, "idx": I},
    "squad": {"id": S, "title": S, "context": S, "question": S,
              "answers": "struct<text: list<string>, answer_start: list<int>>"},
    "squad_sentences": {"id": S, "title": S, "context": S, "question": S,  # SQuAD's own files, for LAReQA
                        "answers": "struct<text: list<string>, answer_start: list<int>>"},
    "hellaswag": {"ind": I, "activity_label": S, "ctx_a": S, "ctx_b": S, "ctx": S, "endings": "list<string>",
                  "source_id": S, "split": S, "split_type": S, "label": S},
    "commonsense_qa": {"id": S, "question": S, "question_concept": S,
                       "choices": "struct<label: list<string>, text: list<string>>", "answerKey": S},
    "cosmos_qa": {"id": S, "context": S, "question": S, "answer0": S, "answer1": S, "answer2": S, "answer3": S,
                  "label": I},
    "social_i_qa": {"context": S, "question": S, "answerA": S, "answerB": S, "answerC": S, "label": S},
    "copa": {"premise": S, "choice1": S, "choice2": S, "question": S, "idx": I, "label": I},
    "xcopa": {"premise": S, "choice1": S, "choice2": S, "question": S, "label": I, "idx": I, "changed": "bool"},
    "ccg": {"tokens": "list<string>", "supertags": "list<string>"},
    "xnli": {"language": S, "sentence1": S, "sentence2": S, "gold_label": S},
    "pawsx": {"sentence1": S, "sentence2": S, "label": S},
    "udpos": {"tokens": "list<string>", "pos_tags": "list<int>"},
    "panx": {"tokens": "list<string>", "ner_tags": "list<int>", "langs": "list<string>"},
    "tatoeba": {"source_sentence": S, "target_sentence": S, "source_lang": S, "target_lang": S},
    "text": {"text": S},
}


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return I
    if pa.types.is_string(t):
        return S
    if pa.types.is_list(t):
        return f"list<{_type_name(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ", ".join(f"{f.name}: {_type_name(f.type)}" for f in t) + ">"
    return str(t)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "ci"
    return root, synth.generate(root, seed=0, size="ci")


def _files(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _parquet_sources():
    """(raw_schema, Source, languages) of every parquet file the mirror must hold."""
    for task in TASKS.values():
        for split, sources in task.sources.items():
            for source in sources:
                # the releases' own files (BUCC's, LAReQA's, Mewsli-X's) are not parquet
                if source.raw_schema not in ("bucc_original", "lareqa_original", *MEWSLIX_SCHEMAS):
                    langs = ["en"] if task.role == "intermediate" or split == "train" else list(synth.LANGUAGES)
                    yield source.raw_schema, source, [x for x in langs if source.has_language(x)]
        if task.role == "intermediate":
            yield task.sources["train"][0].raw_schema, translated_source(task.name), list(NON_EN)
    yield "text", CORPUS_SOURCE, list(synth.LANGUAGES)


def _path(root, source, lang):
    return local_stem(root, resolve(source, lang)).with_suffix(".parquet")


def _rows(root, rel: str) -> list[dict]:
    return pq.read_table(root / rel).to_pylist()


# --------------------------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files_and_another_seed_different_data(mirror, tmp_path):
    root, report = mirror
    again = tmp_path / "again"
    assert synth.generate(again, seed=0, size="ci") == report
    assert _files(again) == _files(root)
    in_two = tmp_path / "in_two"  # two processes sharing the task groups write the very same bytes
    assert synth.generate(in_two, seed=0, size="ci", workers=2) == report
    assert _files(in_two) == _files(root)
    other = tmp_path / "other"
    synth.generate(other, seed=1, size="ci")
    a, b = _files(root), _files(other)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a if k.endswith(".parquet"))


# --------------------------------------------------------------------------------------------- coverage, schemas
def test_every_registry_source_has_its_files_in_the_hub_schema(mirror):
    root, report = mirror
    for raw_schema, source, langs in _parquet_sources():
        for lang in langs:
            path = _path(root, source, lang)
            assert path.is_file(), (source, lang)
            schema = pq.read_schema(path)
            got = {f.name: _type_name(f.type) for f in schema}
            assert got == RAW_SCHEMAS[raw_schema], path
            assert report["files"][path.relative_to(root).as_posix()] == pq.read_metadata(path).num_rows > 0
    for lang in NON_EN:
        for split in ("sample", "training"):
            for part in (lang, "en", "gold"):
                assert (root / "bucc2018" / f"{lang}-en" / f"{lang}-en.{split}.{part}").is_file()
    assert read_json(root / synth.REPORT) == report
    assert report["languages"] == list(synth.LANGUAGES) and (report["seed"], report["size"]) == (0, "ci")


def test_label_values_and_mixed_language_files(mirror):
    root, _ = mirror
    mnli = _rows(root, "glue/mnli/train.parquet")
    assert sorted({r["label"] for r in mnli}) == [0, 1, 2]
    counts = [sum(r["label"] == k for r in mnli) for k in range(3)]
    assert max(counts) - min(counts) <= 1  # balanced
    assert any(r["label"] == -1 for r in _rows(root, "snli/train.parquet"))
    assert {r["label"] for r in _rows(root, "google/xtreme/PAWS-X.en/train.parquet")} == {"0", "1"}
    assert {r["label"] for r in _rows(root, "Rowan/hellaswag/train.parquet")} <= {"0", "1", "2", "3"}
    assert {r["answerKey"] for r in _rows(root, "commonsense_qa/train.parquet")} == set("ABCDE")
    xnli = _rows(root, "google/xtreme/XNLI/test.parquet")
    assert {r["language"] for r in xnli} == set(synth.LANGUAGES)
    assert {r["gold_label"] for r in xnli} == {"entailment", "neutral", "contradiction"}
    tydiqa = {r["id"].split("-")[0] for r in _rows(root, "google/xtreme/tydiqa/validation.parquet")}
    assert tydiqa == {"english", "arabic", "russian", "swahili", "de", "hi", "zh"}
    assert all(r["id"].startswith("english-") for r in _rows(root, "google/xtreme/tydiqa/train.parquet"))
    en_tags = {UPOS_TAGS[k] for r in _rows(root, "google/xtreme/udpos.English/train.parquet") for k in r["pos_tags"]}
    assert {"PROPN", "NUM", "PUNCT", "DET", "VERB", "NOUN", "ADP"} <= en_tags


def test_qa_answers_sit_at_answer_start(mirror):
    root, _ = mirror
    seen = 0
    for raw_schema, source, langs in _parquet_sources():
        if raw_schema != "squad":
            continue
        for lang in langs:
            rows = _rows(root, _path(root, source, lang).relative_to(root).as_posix())
            for r in rows:
                for text, start in zip(r["answers"]["text"], r["answers"]["answer_start"]):
                    assert text and r["context"][start:start + len(text)] == text
                    seen += 1
            empty = sum(not r["answers"]["text"] for r in rows)
            v2 = "squad_v2" in (source.path, source.config.split(".")[0] if source.config else None)
            assert (empty > 0) == v2, (source, lang)  # only SQuAD v2 (and its translations) has unanswerable
    assert seen > 1000


def test_tatoeba_sentences_end_in_newline_and_bucc_gold_is_in_the_pools(mirror):
    root, _ = mirror
    for lang in NON_EN:
        rows = _rows(root, _path(root, TASKS["tatoeba"].sources["test"][0], lang).relative_to(root).as_posix())
        assert all(r["source_sentence"].endswith("\n") and r["target_sentence"].endswith("\n") for r in rows)
        assert len({r["target_sentence"] for r in rows}) == len(rows)  # 1-NN gold is unambiguous
        for split in ("sample", "training"):
            base = root / "bucc2018" / f"{lang}-en" / f"{lang}-en.{split}"
            pools = {}
            for side in (lang, "en"):
                lines = base.with_name(base.name + f".{side}").read_text(encoding="utf-8").splitlines()
                ids = [line.split("\t")[0] for line in lines]
                assert all(re.fullmatch(rf"{side}-\d{{6}}", x) for x in ids) and len(set(ids)) == len(ids)
                assert ids != sorted(ids)  # shuffled
                pools[side] = set(ids)
            gold = [line.split("\t") for line in base.with_name(base.name + ".gold").read_text().splitlines()]
            assert gold and all(a in pools[lang] and b in pools["en"] for a, b in gold)
            assert len(pools[lang]) >= 2 * len(gold) and len(pools["en"]) >= 2 * len(gold)  # distractors


# --------------------------------------------------------------------------------------------- languages
def test_languages_differ_in_script_spacing_and_word_order(mirror):
    root, _ = mirror
    scripts = {"ru": r"[\u0400-\u04FF]", "ar": r"[\u0600-\u06FF]", "hi": r"[\u0900-\u097F]", "zh": r"[\u4E00-\u9FFF]"}
    for lang, pattern in scripts.items():
        text = " ".join(r["text"] for r in _rows(root, f"xstilts-corpus/{lang}/train.parquet")[:50])
        assert re.search(pattern, text), lang
    zh = _rows(root, "google/xtreme/udpos.Chinese/test.parquet")
    cjk = re.compile(r"[\u4E00-\u9FFF]")
    assert all(len(r["tokens"]) > 3 for r in zh)
    text = "".join(r["text"] for r in _rows(root, "xstilts-corpus/zh/train.parquet")[:50])
    assert not re.search(rf"{cjk.pattern} {cjk.pattern}", text)  # no spaces between CJK words

    def final_word_tag(lang):  # the tag before the final punctuation of declarative sentences
        rows = _rows(root, f"google/xtreme/udpos.{ {'de': 'German', 'en': 'English'}[lang] }/test.parquet")
        return [UPOS_TAGS[r["pos_tags"][-2]] for r in rows if r["tokens"][-1] == "."]

    assert all(t == "VERB" for t in final_word_tag("de"))  # verb-final
    assert sum(t == "VERB" for t in final_word_tag("en")) == 0  # SVO: an object or adjunct ends the clause
    ar = _rows(root, "google/xtreme/udpos.Arabic/test.parquet")
    assert sum(UPOS_TAGS[r["pos_tags"][0]] in ("VERB", "PART") for r in ar) > len(ar) / 2  # verb-initial


def test_entities_and_numbers_are_shared_across_languages(mirror):
    root, _ = mirror
    en = _rows(root, "google/xtreme/PAN-X.en/test.parquet")
    for lang in NON_EN:
        other = _rows(root, f"google/xtreme/PAN-X.{lang}/test.parquet")
        assert len(other) == len(en)
        shared = sum(
            {t for t, k in zip(a["tokens"], a["ner_tags"]) if k} & {t for t, k in zip(b["tokens"], b["ner_tags"]) if k}
            != set() for a, b in zip(en, other))
        assert shared > len(en) / 2, lang  # parallel sentences mostly keep the Latin entity names
        assert [sum(k > 0 for k in r["ner_tags"]) > 0 for r in other] == [sum(k > 0 for k in r["ner_tags"]) > 0
                                                                           for r in en]


def test_the_corpus_has_documents_translation_pairs_and_code_switched_words(mirror):
    """docs/synth.md "The corpus": outside English a third of the rows end with their English rendering (TLM),
    documents repeat their person, about CODE_SWITCH_RATE of the lexicon's words are written in English, and zh
    keeps Latin names apart from the CJK words around them."""
    root, _ = mirror
    world = synth.World(0)
    english_words = {w for key, w in world.lex["en"].items() if isinstance(key, tuple)}
    for lang in ("de", "zh"):
        rows = [r["text"] for r in _rows(root, f"xstilts-corpus/{lang}/train.parquet")]
        own = set(world.lexicon_keys(lang))
        tlm = [t for t in rows if re.search(r"[.。] [A-Z][^。]*\.$", t)]
        assert 0.25 < len(tlm) / len(rows) < 0.42, lang
        words = [w for t in rows if t not in tlm for w in re.findall(r"[^\W\d]+", t)]
        switched = sum(w in english_words for w in words)
        assert 0.2 < switched / (switched + sum(w in own for w in words)) < 0.4, lang
    zh = " ".join(r["text"] for r in _rows(root, "xstilts-corpus/zh/train.parquet")[:200])
    assert not re.search(r"[\u4E00-\u9FFF][A-Za-z0-9]|[A-Za-z0-9][\u4E00-\u9FFF]", zh)
    en = [r["text"] for r in _rows(root, "xstilts-corpus/en/train.parquet")]
    documents = [t for t in en if t.count(".") + t.count("?") >= 3]
    assert 0.25 < len(documents) / len(en) < 0.42
    assert all(t.split()[0] == t.split(". ")[1].split()[0] for t in documents[:50])  # one person per document


# --------------------------------------------------------------------------------------------- MT data
def test_translated_data_chrf_is_reported_and_falls_with_the_error_rate(mirror, tmp_path):
    root, report = mirror
    intermediate = [t.name for t in TASKS.values() if t.role == "intermediate"]
    assert sorted(report["mt_chrf"]) == sorted(intermediate)
    assert all(set(v) == set(NON_EN) and 0 < min(v.values()) <= max(v.values()) < 100
               for v in report["mt_chrf"].values())
    assert report["mt_error_rate"] == synth.DEFAULT_MT_ERROR_RATE
    exact = synth.generate(tmp_path / "exact", size="ci", mt_error_rate=0.0)["mt_chrf"]
    noisy = synth.generate(tmp_path / "noisy", size="ci", mt_error_rate=0.5)["mt_chrf"]
    for task in intermediate:
        for lang in NON_EN:
            assert exact[task][lang] == 100.0
            assert noisy[task][lang] < report["mt_chrf"][task][lang] < 100.0
    en = _rows(root, "glue/mnli/train.parquet")
    de = _rows(root, "xstilts-mt/mnli.de/train.parquet")
    assert [r["label"] for r in de] == [r["label"] for r in en]  # translations keep the labels


# --------------------------------------------------------------------------------------------- the real loaders
def test_prepare_reads_every_task_the_corpus_and_the_translations(mirror, tmp_path):
    root, _ = mirror

    def run(name, task=None, languages=None, translated=False):
        args = argparse.Namespace(task=task, corpus=task is None, translated=translated, source="local",
                                  local_dir=str(root), revision=None, languages=languages, max_examples=None,
                                  seed=0, trust_remote_code=False, out=str(tmp_path / name))
        assert prepare.main(args) == 0
        return prepare.read_manifest(tmp_path / name)

    for task in TASKS.values():
        langs = [x for x in task.languages if x in synth.LANGUAGES]
        m = run(task.name, task.name, langs)
        assert all(entry["rows"] > 0 for entry in m["splits"].values()), task.name
        for split, entry in m["splits"].items():
            if split not in ("train", CANDIDATES) and not (split == "dev" and m["dev_carved_from_train"]):
                in_split = {x for x in langs if any(s.has_language(x) for s in task.sources[split])}
                assert set(entry["rows_per_lang"]) == in_split, (task.name, split)
    m = run("mt-squad", "squad_v1", list(NON_EN), translated=True)
    assert set(m["splits"]["train"]["rows_per_lang"]) == set(NON_EN)
    assert set(run("corpus", languages=list(synth.LANGUAGES))["splits"]["train"]["rows_per_lang"]) == \
        set(synth.LANGUAGES)


# --------------------------------------------------------------------------------------------- learnability
def test_the_learnability_config_measures_the_demos_data_and_model():
    """config/learnability/finetune-400.yaml (docs/synth.md's table against budget) is a valid config that
    differs from the demo only in what it varies: the fine-tuning budget."""
    root = Path(__file__).resolve().parents[1]
    schema = root / "workflow" / "schemas" / "config.schema.yaml"
    demo = grid.load_config(root / "config" / "config.yaml", schema)
    config = grid.load_config(root / "config" / "learnability" / "finetune-400.yaml", schema)
    assert config["intermediate"] == ["none"] and config["targets"] == demo["targets"]
    for key in ("languages", "data"):
        assert config[key] == demo[key], key
    assert config["hparams"]["pretrain"] == demo["hparams"]["pretrain"]
    assert config["hparams"]["evaluate"] == demo["hparams"]["evaluate"]
    assert config["hparams"]["finetune"]["default"]["max_train_examples"] == 400


def _bow_accuracy(train: list[dict], dev: list[dict], a: str, b: str, label: str) -> float:
    """Logistic regression on the words of `b` that are not in `a` (pair features), plus `b`'s own words."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def feats(r):
        words_a, words_b = set(re.findall(r"\w+", r[a].lower())), re.findall(r"\w+", r[b].lower())
        return " ".join([f"new_{w}" for w in words_b if w not in words_a] + words_b + ["len_" + str(
            sum(w not in words_a for w in words_b))])

    model = make_pipeline(CountVectorizer(token_pattern=r"\S+"), LogisticRegression(max_iter=2000))
    model.fit([feats(r) for r in train], [r[label] for r in train])
    return model.score([feats(r) for r in dev], [r[label] for r in dev])


def test_a_bag_of_words_model_learns_english_nli_and_pawsx_above_chance(mirror):
    root, _ = mirror
    nli = _bow_accuracy([r for r in _rows(root, "glue/mnli/train.parquet")],
                        _rows(root, "glue/mnli/validation_matched.parquet"), "premise", "hypothesis", "label")
    assert nli > 0.6  # chance: 1/3
    paws = _bow_accuracy(_rows(root, "google/xtreme/PAWS-X.en/train.parquet"),
                         _rows(root, "google/xtreme/PAWS-X.en/validation.parquet"), "sentence1", "sentence2", "label")
    assert paws > 0.6  # chance: 1/2 (role swaps are invisible to a bag of words; changed facts are not)


def test_two_text_tasks_get_scaled_training_splits_but_translations_stay_preset_sized(mirror):
    """PAWS-X, Cosmos QA and the SQuAD-schema tasks train on 10x the preset (a small model needs it to learn
    them, docs/synth.md); dev sets and the machine-translated copies keep the preset's size."""
    _, report = mirror
    files, ci = report["files"], synth.SIZES["ci"]
    assert files["google/xtreme/PAWS-X.en/train.parquet"] == 10 * ci["target_train"]
    assert files["google/xtreme/PAWS-X.en/validation.parquet"] == ci["eval"]
    assert files["cosmos_qa/train.parquet"] == 10 * ci["inter_train"]
    assert files["cosmos_qa/validation.parquet"] == ci["inter_dev"]
    assert files["squad_v2/train.parquet"] == 10 * ci["inter_train"]
    assert files["glue/mnli/train.parquet"] == ci["inter_train"]  # unscaled tasks keep the preset
    translated = [n for n in files if n.startswith(f"{translated_source('cosmosqa').path}/cosmosqa.")]
    assert translated and all(files[n] == ci["inter_train"] for n in translated)


# --------------------------------------------------------------------------------------------- CLI
def test_cli_prints_the_chrf_table_and_rejects_a_bad_size(tmp_path, capsys):
    assert cli_main(["synth", "--out", str(tmp_path / "bad"), "--size", "huge"]) == 2
    assert "--size 'huge'" in capsys.readouterr().err
    assert cli_main(["synth", "--out", str(tmp_path / "bad"), "--size", "ci", "--mt-error-rate", "1.5"]) == 2
    assert not (tmp_path / "bad").exists()


def test_cli_generates_and_summarises(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_generate(out, seed, size, mt_error_rate, workers):
        seen.update(out=out, seed=seed, size=size, rate=mt_error_rate, workers=workers)
        return {"seed": seed, "size": size, "languages": list(synth.LANGUAGES), "mt_error_rate": 0.15,
                "files": {"a.parquet": 3}, "mt_chrf": {"mnli": {x: 80.0 for x in NON_EN}}}

    monkeypatch.setattr(synth, "generate", fake_generate)
    assert cli_main(["synth", "--out", str(tmp_path / "o"), "--seed", "3", "--size", "ci", "--workers", "2"]) == 0
    assert seen == {"out": str(tmp_path / "o"), "seed": 3, "size": "ci", "rate": None, "workers": 2}
    out = capsys.readouterr().out
    assert "mnli" in out and "80.0" in out and "1 files (3 rows)" in out


# --------------------------------------------------------------------------------------------- transfer plan
def test_the_data_realise_the_plans_shared_skills():
    """xstilts.plan's shared skills, as the generator builds them: CCG's category of a name carries its PAN-X
    entity type (entity_type: ccg -> panx), QQP's non-duplicates include giver/recipient swaps with the same
    words, PAWS-X's hard case (roles: qqp -> pawsx), and the NLI tasks and XNLI are drawn by one generator (inference), the SQuAD tasks and the QA
    targets share one schema and generator (spans), as CCG, UD-POS and PAN-X share one sentence sampler."""
    from xstilts import plan

    w = synth.World(0)
    en = w.renderer("en")
    for item in synth._sentence_items(w, np.random.default_rng(1), 200, None):
        toks = synth._sentence_toks(item, en)
        for tok, tag in zip(toks, synth.supertags(toks)):
            if tok.upos == "PROPN":
                assert tag.endswith(f"[{tok.ner[2:].lower()}]"), (tok, tag)
    swaps = 0
    for (q1, q2, label) in synth._qqp_items(w, np.random.default_rng(2), 400, None):
        words = [sorted(en.sentence(en.fact(*q)).rstrip("?").split()) for q in (q1, q2)]
        if label == 0 and words[0] == words[1] and q1[0].rec is not None:
            assert (q1[0].person, q1[0].rec) == (q2[0].rec, q2[0].person)
            swaps += 1
    assert swaps > 50  # about a quarter of the 400 items
    gens = synth.GENERATORS
    assert gens["glue_mnli"].sample is gens["anli"].sample is gens["snli"].sample is gens["xnli"].sample
    assert gens["ccg"].sample is gens["udpos"].sample is gens["panx"].sample  # one sentence sampler
    assert plan.SKILLS["ccg"] >= plan.SKILLS["panx"] | plan.SKILLS["udpos"] and plan.SKILLS["qqp"] == plan.SKILLS["pawsx"]
