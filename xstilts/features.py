"""Tokenisation into model features (through each task's kind), an on-disk feature cache, and
padding-efficient batching.

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

from xstilts import __version__, kinds
from xstilts.io import atomic_path, sha256_file, write_text

# Part of every feature-cache key: bump it when a kind's encoder (xstilts.kinds) changes what it produces for the same data.
# 3: QA windows step by `doc_stride` (jiant's meaning) instead of overlapping by it; questions cut at 64 tokens.
FEATURE_FORMAT = 3

IGNORE = -100


# ------------------------------------------------------------------------------------------ tokenising
def encode(task, rows: list[dict], tok, hp: dict, train: bool, data_key: dict,
           labels: list[str] | None = None, candidates: bool = False) -> dict[str, list]:
    """Features of `rows` of `task` by its kind's encoder (`candidates`: rows of its candidate table), through
    the feature cache when `data_key` identifies the rows. `labels` (tagging) maps tag strings to head indices."""
    kind = kinds.of(task)

    def build():
        return kind.encode_candidates(rows, tok, hp) if candidates else kind.encode(rows, tok, hp, train, labels)

    if not data_key:
        return build()
    key = {**data_key, "labels": labels, "kind": kind.name, "max_length": hp["max_length"],
           "stride": hp.get("doc_stride", 128), "train": train, "tokenizer": tokenizer_fingerprint(tok),
           **({"candidates": True} if candidates else {})}
    return cached_features(key, build)


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
