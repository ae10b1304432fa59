"""Tokenisation into model features, an on-disk feature cache, and padding-efficient batching.

Features are dicts of plain lists (one entry per feature). Batches are padded to the longest sequence in
the batch only (dynamic padding); training batches are grouped by length, inference runs length-sorted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from xstilts import __version__
from xstilts.io import atomic_path, sha256_file, write_text

# Part of every feature-cache key: bump it when an encoder below changes what it produces for the same data.
# 3: QA windows step by `doc_stride` (jiant's meaning) instead of overlapping by it; questions cut at 64 tokens.
FEATURE_FORMAT = 3
MAX_QUESTION_TOKENS = 64  # jiant squad_style/core.py:375 `max_query_length`

IGNORE = -100


# ------------------------------------------------------------------------------------------ tokenising
def encode_classification(rows: list[dict], tok, max_length: int) -> dict[str, list]:
    a = [r["text_a"] for r in rows]
    b = [r["text_b"] for r in rows]
    enc = tok(a, b if any(x is not None for x in b) else None, truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "label": [int(r["label"]) for r in rows],
            "example": list(range(len(rows)))}


def encode_multiple_choice(rows: list[dict], tok, max_length: int) -> dict[str, list]:
    """One (first, second) pair per choice: (context, question + choice) as jiant and HF's run_swag pair them,
    or (question, choice) without a context. Truncation then shortens the context, never the question."""
    firsts, seconds = [], []
    for r in rows:
        for choice in r["choices"]:
            if r["context"]:
                firsts.append(r["context"])
                seconds.append(f"{r['question']} {choice}".strip())
            else:
                firsts.append(r["question"])
                seconds.append(choice)
    enc = tok(firsts, seconds, truncation="longest_first", max_length=max_length)
    out: dict[str, list] = {"input_ids": [], "label": [], "example": []}
    i = 0
    for n, r in enumerate(rows):
        k = len(r["choices"])
        out["input_ids"].append(enc["input_ids"][i:i + k])
        out["label"].append(int(r["label"]))
        out["example"].append(n)
        i += k
    return out


def encode_qa(rows: list[dict], tok, max_length: int, stride: int, train: bool) -> dict[str, list]:
    """Question + context windows. `stride` is jiant's and XTREME's `doc_stride`: the STEP between the first
    context tokens of consecutive windows (nyu-mll/jiant squad_style/core.py:161-185 hands the tokenizer an
    overlap of max_length - doc_stride - question - special tokens), so it is turned into that overlap per
    question length. Questions keep at most 64 tokens (jiant core.py:375), and never more than half the window.
    Training targets: answer token span, or 0/0 when the answer is not inside the window or the question is
    unanswerable. Inference keeps context offsets. Features come in example order."""
    questions = [r["question"].lstrip() for r in rows]
    contexts = [r["context"] for r in rows]
    q_budget = min(MAX_QUESTION_TOKENS, max_length // 2)
    q_ids = tok(questions, add_special_tokens=False)["input_ids"]
    questions = [tok.decode(ids[:q_budget]) if len(ids) > q_budget else q for q, ids in zip(questions, q_ids)]
    special = tok.num_special_tokens_to_add(pair=True)
    by_overlap: dict[int, list[int]] = {}
    for i, ids in enumerate(tok(questions, add_special_tokens=False)["input_ids"]):
        room = max_length - len(ids) - special  # context tokens per window
        by_overlap.setdefault(max(0, min(room - stride, room - 1)), []).append(i)
    per_example: list[list[tuple]] = [[] for _ in rows]
    for overlap, members in by_overlap.items():
        enc = tok([questions[i] for i in members], [contexts[i] for i in members], truncation="only_second",
                  max_length=max_length, stride=overlap, return_overflowing_tokens=True, return_offsets_mapping=True)
        for f, ids in enumerate(enc["input_ids"]):
            ex = members[enc["overflow_to_sample_mapping"][f]]
            seq = enc.sequence_ids(f)
            offsets = enc["offset_mapping"][f]
            ctx_tokens = [j for j, s in enumerate(seq) if s == 1]
            start_tok = end_tok = 0
            r = rows[ex]
            if r["answer_texts"]:
                a_start = int(r["answer_starts"][0])
                a_end = a_start + len(r["answer_texts"][0])
                if ctx_tokens and offsets[ctx_tokens[0]][0] <= a_start and offsets[ctx_tokens[-1]][1] >= a_end:
                    start_tok = next(j for j in ctx_tokens if offsets[j][1] > a_start)
                    end_tok = next(j for j in reversed(ctx_tokens) if offsets[j][0] < a_end)
            per_example[ex].append((ids, start_tok, end_tok,
                                    [list(offsets[j]) if seq[j] == 1 else [-1, -1] for j in range(len(ids))]))
    out: dict[str, list] = {"input_ids": [], "example": [], "start": [], "end": [], "offsets": []}
    for ex, windows in enumerate(per_example):
        for ids, start_tok, end_tok, offsets in windows:
            out["input_ids"].append(ids)
            out["example"].append(ex)
            out["start"].append(start_tok)
            out["end"].append(end_tok)
            out["offsets"].append(offsets)
    return out


def encode_tagging(rows: list[dict], tok, max_length: int, label_index: dict[str, int]) -> dict[str, list]:
    """Each word's label goes on its first sub-word; `word_first` maps words to token positions."""
    enc = tok([list(r["tokens"]) for r in rows], is_split_into_words=True, truncation=True, max_length=max_length)
    out: dict[str, list] = {"input_ids": enc["input_ids"], "tags": [], "word_first": [], "example": []}
    for i, r in enumerate(rows):
        labels = [IGNORE] * len(enc["input_ids"][i])
        firsts = [-1] * len(r["tokens"])  # -1: word cut off by max_length
        prev = None
        for j, w in enumerate(enc.word_ids(i)):
            if w is not None and w != prev:
                firsts[w] = j
                labels[j] = label_index.get(r["tags"][w], IGNORE)
            prev = w
        out["tags"].append(labels)
        out["word_first"].append(firsts)
        out["example"].append(i)
    return out


def encode_text(rows: list[dict], tok, max_length: int) -> dict[str, list]:
    enc = tok([r["text"] for r in rows], truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "example": list(range(len(rows)))}


# ------------------------------------------------------------------------------------------ caching
def tokenizer_fingerprint(tok) -> str:
    """Hash of the tokenizer's full serialisation: any change in vocabulary or rules changes it."""
    backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
    if backend is None:
        payload = json.dumps(tok.get_vocab(), sort_keys=True)
    else:  # truncation/padding are call-time settings the backend remembers: not part of the identity
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        payload = json.dumps(state, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_dir() -> Path | None:
    """Feature cache root: $XSTILTS_CACHE_DIR (the workflow sets it); unset or empty disables caching."""
    root = os.environ.get("XSTILTS_CACHE_DIR")
    return Path(root) if root else None


def cached_features(key: dict, build: Callable[[], dict[str, list]]) -> dict[str, list]:
    """Features for `key` (tokenizer fingerprint, data checksum, kind, max length, stride, ...) from the cache,
    or built and stored. Stored as parquet (no pickle: a shared cache must not execute code on load) beside
    its sha256: parquet has no checksum of its own, so a flipped byte could otherwise be read as other data."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = cache_dir()
    if root is None:
        return build()
    identity = {**key, "xstilts": __version__, "format": FEATURE_FORMAT}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    path, checksum = root / f"{digest}.parquet", root / f"{digest}.sha256"
    if path.exists():
        if checksum.exists() and checksum.read_text(encoding="utf-8") == sha256_file(path):
            return pq.read_table(path).to_pydict()
        path.unlink(missing_ok=True)  # corrupt or unverifiable: rebuilt, never trusted
    feats = build()
    root.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(feats), tmp)
        write_text(checksum, sha256_file(tmp))  # before the data appears under its name
    return feats


# ------------------------------------------------------------------------------------------ batching
def seq_lengths(feats: dict[str, list]) -> np.ndarray:
    ids = feats["input_ids"]
    if ids and isinstance(ids[0][0], list):  # multiple choice: the longest choice
        return np.array([max(len(c) for c in x) * len(x) for x in ids])
    return np.array([len(x) for x in ids])


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffle, sort by length inside mega-batches of 50 batches, shuffle the batch order: little padding,
    still random. Deterministic in (seed, epoch) so a resumed job rebuilds the same order."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(lengths))
    mega = batch_size * 50
    batches = []
    for s in range(0, len(perm), mega):
        chunk = perm[s:s + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Inference batches in length order (results are put back in input order by index)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(feats: dict[str, list], idx, pad_id: int) -> dict[str, torch.Tensor]:
    """One padded batch. Multiple-choice features flatten to (batch*choices, length)."""
    ids = [feats["input_ids"][i] for i in idx]
    batch: dict[str, torch.Tensor] = {}
    if ids and isinstance(ids[0][0], list):
        n_choices = len(ids[0])
        flat = [c for x in ids for c in x]
        batch["input_ids"] = pad(flat, pad_id)
        batch["n_choices"] = torch.tensor(n_choices)
    else:
        batch["input_ids"] = pad(ids, pad_id)
    batch["attention_mask"] = (batch["input_ids"] != pad_id).long()
    if "label" in feats:
        batch["label"] = torch.tensor([feats["label"][i] for i in idx])
    if "tags" in feats:
        batch["tags"] = pad([feats["tags"][i] for i in idx], IGNORE)
    if "start" in feats:
        batch["start"] = torch.tensor([feats["start"][i] for i in idx])
        batch["end"] = torch.tensor([feats["end"][i] for i in idx])
    return batch
