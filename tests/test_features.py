"""Tokenisation features: the cache key, dynamic padding, length grouping, QA windows, first-sub-word tags."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts import features as F
from xstilts.kinds import classification, multiple_choice, qa, tagging
from xstilts.models import load_tokenizer
from xstilts.registry import get_task

ROWS = [{"text_a": "alpha beta gamma", "text_b": "delta", "label": 1},
        {"text_a": "mu", "text_b": "nu xi omega Anna Berlin 12", "label": 0}]
HP = {"max_length": 32, "doc_stride": 8}


def test_cached_features_are_reused_and_keyed_by_tokenizer_length_and_stride(tiny_model_dir, monkeypatch):
    tok = load_tokenizer(tiny_model_dir)
    task = get_task("mnli")
    key = {"sha256": "abc", "limit": None, "languages": None}
    first = F.encode(task, ROWS, tok, HP, train=True, data_key=key)
    calls = []
    real = classification.encode
    monkeypatch.setattr(classification, "encode", lambda *a: calls.append(a) or real(*a))
    assert F.encode(task, ROWS, tok, HP, train=True, data_key=key) == first
    assert calls == []  # served from the cache
    F.encode(task, ROWS, tok, {**HP, "max_length": 16}, train=True, data_key=key)
    F.encode(task, ROWS, tok, {**HP, "doc_stride": 4}, train=True, data_key=key)
    F.encode(task, ROWS, tok, HP, train=True, data_key={**key, "sha256": "other"})
    assert len(calls) == 3  # max length, stride and data checksum are all part of the key
    assert F.tokenizer_fingerprint(tok) == F.tokenizer_fingerprint(load_tokenizer(tiny_model_dir))


def test_corrupt_cache_entry_is_rebuilt_not_trusted(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    key = {"sha256": "corrupt-test", "limit": None, "languages": None}
    good = F.encode(get_task("mnli"), ROWS, tok, HP, train=True, data_key=key)
    for entry in F.cache_dir().glob("*.parquet"):
        entry.write_bytes(b"not parquet")
    assert F.encode(get_task("mnli"), ROWS, tok, HP, train=True, data_key=key) == good


def test_length_grouped_batches_cover_everything_once_and_are_deterministic():
    lengths = np.random.default_rng(0).integers(5, 120, size=1000)
    a = F.length_grouped_batches(lengths, 16, seed=3, epoch=1)
    b = F.length_grouped_batches(lengths, 16, seed=3, epoch=1)
    c = F.length_grouped_batches(lengths, 16, seed=3, epoch=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    # grouping keeps padding low: padded tokens / useful tokens well under random batching's
    waste = sum(len(x) * lengths[x].max() for x in a) / lengths.sum()
    random_batches = np.array_split(np.random.default_rng(1).permutation(1000), len(a))
    random_waste = sum(len(x) * lengths[x].max() for x in random_batches) / lengths.sum()
    assert waste < 1.1 < random_waste


def test_collate_pads_to_the_batch_longest_only(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    feats = classification.encode(ROWS, tok, 64)
    batch = F.collate(feats, [0, 1], tok.pad_token_id)
    assert batch["input_ids"].shape[1] == max(len(x) for x in feats["input_ids"])
    assert int(batch["attention_mask"].sum()) == sum(len(x) for x in feats["input_ids"])


def test_multiple_choice_truncates_the_context_never_the_question_or_choice(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    rows = [{"context": " ".join(["alpha beta gamma delta"] * 20), "question": "Anna Berlin",
             "choices": ["omega", "12"], "label": 1},
            {"context": "", "question": "mu nu xi", "choices": ["omega", "12"], "label": 0}]
    feats = multiple_choice.encode(rows, tok, 64)
    for r, per_choice in zip(rows, feats["input_ids"]):
        for choice, ids in zip(r["choices"], per_choice):
            assert len(ids) <= 64
            tail = tok.decode(ids, skip_special_tokens=True).replace(" ", "")
            assert tail.endswith((r["question"] + choice).replace(" ", ""))  # context cut first, if at all
    assert feats["label"] == [1, 0]


def test_tagging_labels_sit_on_first_subwords(tiny_model_dir):
    tok = load_tokenizer(tiny_model_dir)
    rows = [{"tokens": ["Berlinalphabeta", "12", "omega"], "tags": ["PROPN", "NUM", "NOUN"]}]
    index = {"NOUN": 0, "NUM": 1, "PROPN": 2}
    feats = tagging.encode(rows, tok, 32, index)
    labels, firsts = feats["tags"][0], feats["word_first"][0]
    assert [labels[j] for j in firsts] == [2, 1, 0]
    assert sum(x != F.IGNORE for x in labels) == 3  # every other sub-word is ignored by the loss


@pytest.mark.parametrize("max_length", [32, 48])
def test_qa_windows_locate_the_answer_span(tiny_model_dir, max_length):
    tok = load_tokenizer(tiny_model_dir)
    context = " ".join(["alpha beta gamma delta"] * 12) + " Berlin omega"
    rows = [{"question": "where is it", "context": context, "answer_texts": ["Berlin"],
             "answer_starts": [context.index("Berlin")]}]
    feats = qa.encode(rows, tok, max_length, 16, train=True)
    assert len(feats["input_ids"]) > 1  # several windows over the long context
    hits = [(s, e, o) for s, e, o in zip(feats["start"], feats["end"], feats["offsets"]) if s > 0]
    assert hits
    for s, e, offsets in hits:
        assert context[offsets[s][0]:offsets[e][1]].strip() == "Berlin"


def test_a_saved_tokenizer_does_not_depend_on_its_last_call(tiny_model_dir, tmp_path):
    """The backend keeps the last call's truncation (QA windows: only_second with a stride) and save_pretrained
    would write it; `save_tokenizer` writes the same file whichever call came last (issue 16's demo check found
    tokenizer.json differing between two runs of one job for this)."""
    from xstilts.models import save_tokenizer

    files = []
    for kwargs in ({"truncation": "only_second", "max_length": 16, "stride": 3, "return_overflowing_tokens": True},
                   {"truncation": True, "max_length": 8}):
        tok = load_tokenizer(tiny_model_dir)
        tok(["alpha beta"], ["gamma delta " * 9], **kwargs)
        save_tokenizer(tok, tmp_path / str(len(files)))
        files.append((tmp_path / str(len(files)) / "tokenizer.json").read_bytes())
    assert files[0] == files[1]
    from transformers import AutoTokenizer

    assert F.tokenizer_fingerprint(AutoTokenizer.from_pretrained(tmp_path / "0")) == F.tokenizer_fingerprint(tok)
