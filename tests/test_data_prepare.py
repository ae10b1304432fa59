"""`xstilts prepare` end to end on the fixture mirror, the manifest, the checksummed readers and the CLI (the hub
path goes through a replica hub server: tests/test_hub_data.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xstilts.cli import main as cli_main
from xstilts.data import prepare
from xstilts.errors import DataError, UserError
from xstilts.io import sha256_file
from xstilts.kinds import SCHEMA_VERSION
from xstilts.registry import TASKS, UPOS_TAGS

RAW = Path(__file__).parent / "fixtures" / "raw"


def args(out, task=None, **kw) -> argparse.Namespace:
    base = dict(task=task, corpus=task is None, translated=False, source="local", local_dir=str(RAW), revision=None,
                languages=None, max_examples=None, seed=0, trust_remote_code=False, out=str(out))
    return argparse.Namespace(**{**base, **kw})


def run(out, task=None, **kw) -> dict:
    assert prepare.main(args(out, task, **kw)) == 0
    return prepare.read_manifest(out)


def fixture_rows(rel: str) -> list[dict]:
    return [json.loads(line) for line in (RAW / rel).read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------------------------- manifest
def test_manifest_records_splits_checksums_inputs_and_labels(tmp_path):
    out = tmp_path / "pawsx"
    m = run(out, "pawsx", languages=["en", "de"])
    assert (m["task"], m["kind"], m["source"], m["revisions"], m["schema_version"]) == \
        ("pawsx", "pair_classification", "local", None, SCHEMA_VERSION)
    assert m["labels"] == ["0", "1"] and m["languages"] == ["en", "de"]
    assert set(m["splits"]) == {"train", "dev", "test"}
    for split, entry in m["splits"].items():
        assert entry["sha256"] == sha256_file(out / entry["file"])
        assert pq.read_table(out / entry["file"]).num_rows == entry["rows"]
    assert m["splits"]["train"]["rows_per_lang"] == {"en": 3}  # training data is English only
    assert m["splits"]["test"]["rows_per_lang"] == {"en": 3, "de": 2}
    test_inputs = [x for x in m["inputs"] if x["prepared_split"] == "test"]
    assert [x["lang"] for x in test_inputs] == ["en", "de"]
    assert test_inputs[1]["sha256"] == sha256_file(RAW / "google/xtreme/PAWS-X.de/test.jsonl")
    assert m["dev_carved_from_train"] is None


def test_internal_schema_columns_and_types_are_written(tmp_path):
    run(tmp_path / "u", "udpos", languages=["de"])
    table = prepare.load_split(tmp_path / "u", "test")
    assert table.column_names == ["id", "lang", "tokens", "tags"]
    assert table.schema.field("tags").type.equals(pa.list_(pa.string()))
    assert set(t for tags in table.column("tags").to_pylist() for t in tags) <= set(UPOS_TAGS)


def test_ccg_labels_are_the_supertags_seen_in_train(tmp_path):
    m = run(tmp_path / "ccg", "ccg")
    train_tags = {t for r in fixture_rows("ccgbank/train.jsonl") for t in r["supertags"]}
    assert m["labels"] == sorted(train_tags)
    assert "S\\S" not in m["labels"]  # seen only in validation


def test_tydiqa_gets_a_seeded_dev_carved_from_train(tmp_path):
    m1 = run(tmp_path / "a", "tydiqa", languages=["en", "ar"])
    m2 = run(tmp_path / "b", "tydiqa", languages=["en", "ar"])
    assert m1["dev_carved_from_train"] == {"max_rows": 500, "fraction": 0.1, "seed": 0}
    assert m1["splits"]["dev"]["rows"] == 1 and m1["splits"]["train"]["rows"] == 4
    dev = prepare.load_split(tmp_path / "a", "dev").column("id").to_pylist()
    train = prepare.load_split(tmp_path / "a", "train").column("id").to_pylist()
    assert not set(dev) & set(train) and len(set(dev) | set(train)) == 5
    assert dev == prepare.load_split(tmp_path / "b", "dev").column("id").to_pylist()
    assert m1["splits"]["test"]["rows_per_lang"] == {"en": 2, "ar": 1}


def test_anli_plus_concatenates_its_sources_and_counts_dropped_snli_rows(tmp_path):
    m = run(tmp_path / "anli", "anli_plus")
    assert m["splits"]["train"]["rows"] == 9 + 7 + 3
    assert m["splits"]["train"]["dropped"] == {"no_gold_label": 1}
    assert m["labels"] == ["entailment", "neutral", "contradiction"]
    assert len(m["inputs"]) == 5 + 3


def test_max_examples_is_seeded_deterministic_and_keeps_order(tmp_path):
    ids = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run(tmp_path / name, "mnli", max_examples=3, seed=seed)
        ids[name] = prepare.load_split(tmp_path / name, "train").column("id").to_pylist()
    all_ids = [f"glue/mnli/train-{i}" for i in range(7)]
    assert len(ids["a"]) == 3 and ids["a"] == ids["b"]
    assert ids["a"] == sorted(ids["a"], key=all_ids.index)
    assert ids["a"] != ids["c"]  # a different seed picks another subset (fixed for these fixtures)


def test_bucc_writes_pools_and_gold_and_caps_keeping_gold_consistent(tmp_path):
    m = run(tmp_path / "full", "bucc2018", languages=["de"])
    assert m["splits"]["test"]["gold"]["rows"] == 3
    assert m["splits"]["test"]["gold"]["sha256"] == sha256_file(tmp_path / "full" / "test-gold.parquet")
    run(tmp_path / "cap", "bucc2018", languages=["de"], max_examples=2)
    pool = prepare.load_split(tmp_path / "cap", "test").to_pylist()
    gold = prepare.load_gold(tmp_path / "cap", "test").to_pylist()
    assert len(gold) == 2
    ids = {(r["side"], r["sent_id"]) for r in pool}
    assert all(("src", g["src_id"]) in ids and ("en", g["en_id"]) in ids for g in gold)
    assert sum(r["side"] == "src" for r in pool) == 2 and sum(r["side"] == "en" for r in pool) == 2


def test_translated_variant_writes_train_for_non_english_languages(tmp_path):
    m = run(tmp_path / "mt", "mnli", translated=True, languages=["en", "de"])
    assert m["variant"] == "translated" and set(m["splits"]) == {"train"}
    assert m["splits"]["train"]["rows_per_lang"] == {"de": 2}


def test_corpus_writes_train_and_a_held_out_dev(tmp_path):
    m = run(tmp_path / "corpus", languages=["en", "de"])
    assert m["task"] == "corpus" and m["labels"] is None
    train = prepare.load_split(tmp_path / "corpus", "train")
    dev = prepare.load_split(tmp_path / "corpus", "dev")
    assert train.column_names == dev.column_names == ["lang", "text"]
    assert m["splits"]["dev"]["rows_per_lang"] == {"en": 1, "de": 1}
    assert m["splits"]["train"]["rows_per_lang"] == {"en": 3, "de": 2}
    assert not set(train.column("text").to_pylist()) & set(dev.column("text").to_pylist())


def test_missing_language_in_the_mirror_names_language_task_and_path(tmp_path):
    with pytest.raises(UserError, match=r"task 'pawsx', language 'ja': .*PAWS-X\.ja/validation\.parquet"):
        prepare.main(args(tmp_path / "p", "pawsx", languages=["en", "ja"]))


def test_language_not_of_the_task_is_rejected_naming_task_language_and_source(tmp_path):
    with pytest.raises(UserError, match=r"task 'mnli' has no language\(s\) de \(source nyu-mll/glue mnli\)"):
        prepare.main(args(tmp_path / "p", "mnli", languages=["de"]))
    with pytest.raises(UserError, match=r"task 'xquad' has no language\(s\) kk \(source google/xtreme XQuAD.\{lang\}, "
                                        r"google/xquad xquad.\{lang\}\)"):
        prepare.main(args(tmp_path / "p", "xquad", languages=["en", "kk"]))
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------------------------------- atomicity / cache
def test_failed_prepare_leaves_the_previous_output_untouched(tmp_path):
    out = tmp_path / "pawsx"
    run(out, "pawsx", languages=["en"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError):
        prepare.main(args(out, "pawsx", languages=["en", "ja"]))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["pawsx"]  # no temp dir left behind


def test_corrupted_parquet_is_detected_by_load_split(tmp_path):
    out = tmp_path / "x"
    run(out, "xnli", languages=["en", "de"])
    with open(out / "test.parquet", "ab") as f:
        f.write(b"garbage")
    with pytest.raises(DataError, match=r"test\.parquet: sha256 does not match the manifest: the prepared cache "
                                        ".* is corrupt or incomplete; delete it"):
        prepare.load_split(out, "test")


def test_missing_manifest_is_a_corrupt_cache(tmp_path):
    out = tmp_path / "x"
    run(out, "xnli", languages=["en"])
    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match="missing manifest: the prepared cache .* is corrupt"):
        prepare.load_split(out, "test")


def test_load_split_filters_languages_and_rejects_unknown_splits(tmp_path):
    run(tmp_path / "x", "xnli", languages=["en", "de"])
    assert set(prepare.load_split(tmp_path / "x", "test", ["de"]).column("lang").to_pylist()) == {"de"}
    with pytest.raises(UserError, match="no prepared split 'train'"):
        prepare.load_split(tmp_path / "x", "train")


def test_cache_key_names_every_commit_and_never_a_branch():
    a, b = "0123456789abcdef0123456789abcdef01234567", "fedcba9876543210fedcba9876543210fedcba98"
    assert prepare.cache_key("local") == f"local-v{SCHEMA_VERSION}"
    assert prepare.cache_key("hub", {"nyu-mll/glue": b, "facebook/anli": a}) == \
        f"hub-facebook-anli-0123456789ab+nyu-mll-glue-fedcba987654-v{SCHEMA_VERSION}"
    for bad in ({"google/xtreme": "main"}, {"google/xtreme": "refs/convert/parquet"}, None):
        with pytest.raises(UserError, match="keyed by commits"):
            prepare.cache_key("hub", bad)


# The hub path (every task through the real datasets / huggingface_hub clients against replicas of the hub
# repositories served on 127.0.0.1) is tested in tests/test_hub_data.py.


# ------------------------------------------------------------------------------------------- CLI
def test_cli_missing_local_dir_exits_2_with_one_message(tmp_path, capsys):
    code = cli_main(["prepare", "--task", "mnli", "--source", "local", "--local-dir", str(tmp_path / "none"),
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("xstilts prepare: error: local mirror directory ") and "none does not exist" in err


def test_cli_local_source_needs_local_dir(tmp_path, capsys):
    assert cli_main(["prepare", "--task", "mnli", "--source", "local", "--out", str(tmp_path / "o")]) == 2
    assert "--source local needs --local-dir" in capsys.readouterr().err


def test_cli_prepares_from_the_fixture_mirror(tmp_path):
    assert cli_main(["prepare", "--task", "hellaswag", "--source", "local", "--local-dir", str(RAW),
                     "--max-examples", "2", "--out", str(tmp_path / "h")]) == 0
    assert prepare.read_manifest(tmp_path / "h")["splits"]["train"]["rows"] == 2


# ------------------------------------------------------------------------------------------- synthetic mirror
def test_every_registry_task_prepares_from_the_synthetic_mirror(tmp_path):
    synth = pytest.importorskip("xstilts.synth", reason="xstilts/synth.py not written yet")
    mirror = tmp_path / "mirror"
    synth.generate(mirror, size="ci")
    for name in TASKS:
        langs = [x for x in TASKS[name].languages if x in synth.LANGUAGES]
        m = run(tmp_path / name, name, local_dir=str(mirror), languages=langs)
        assert all(entry["rows"] > 0 for entry in m["splits"].values()), name
