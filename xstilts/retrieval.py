"""Vector-level retrieval for Tatoeba and BUCC: exact inner-product k-NN, margin mining, thresholds.

The engine embeds sentences (mean over non-pad tokens of one hidden layer) and hands float32 matrices
here. Search is exact: faiss `IndexFlatIP` (on every GPU when faiss sees one), or a numpy brute-force
baseline that returns the same neighbours. Queries go in chunks, so the extra memory of a search stays
bounded on top of the two embedding matrices: numpy holds a chunk_size x n_base similarity block plus its
int64 argpartition (12 bytes per entry), hence small chunks; faiss blocks each call internally (4,096
queries x 1,024 base rows), so it takes large chunks, which keep its BLAS calls big (docs/benchmarks.md:
with 256-query chunks faiss was slower than the numpy baseline).

BUCC follows the LASER / XTREME `mine_bitext` protocol: ratio margin over k nearest neighbours in both
directions, retrieval "max", over distinct texts (a sentence repeated under several ids is never
predicted, as in XTREME's reference code), then an F1-maximising threshold chosen on the dev gold and
applied unchanged to test. Tatoeba searches the source-language sentences with the English ones, as
XTREME's code does. See docs/metrics.md.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Hashable, Iterable, Literal, Sequence

import numpy as np

from xstilts.errors import DataError, UserError
from xstilts.metrics import accuracy

Backend = Literal["faiss", "numpy"]
# Queries per search call, per backend (see the module docstring for why they differ).
DEFAULT_CHUNK_SIZE: dict[str, int] = {"faiss": 4096, "numpy": 256}
# One mined candidate: (margin score, source sentence id, English sentence id).
Candidate = tuple[float, Hashable, Hashable]


def _as_matrix(x, name: str) -> np.ndarray:
    """A C-contiguous float32 matrix of finite values (what faiss needs), or a DataError naming the row."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"{name}: embeddings of shape {x.shape}; expected a 2-D (sentences x dim) array")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise DataError(f"{name}: embedding has a non-finite value; expected finite floats", row=int(bad[0]))
    return x


def l2_normalize(x, name: str = "embeddings") -> np.ndarray:
    """Rows scaled to unit length (a new float32 array), so inner product = cosine similarity."""
    x = _as_matrix(x, name)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise DataError(f"{name}: embedding has zero norm, so no cosine is defined", row=int(zero[0]))
    return x / norms


def _faiss_index(base: np.ndarray):
    """Exact inner-product index over `base`, moved to all GPUs when faiss sees any."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    if faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(base)
    return index


def _numpy_topk(queries: np.ndarray, base: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k by inner product: one matmul, argpartition, then sort the k survivors."""
    sims = queries @ base.T
    n = base.shape[0]
    top = np.argpartition(sims, n - k, axis=1)[:, n - k:]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top_sims, order, axis=1), np.take_along_axis(top, order, axis=1)


def knn(queries, base, k: int, backend: Backend = "faiss",
        chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of each query in `base` by inner product.

    Returns (scores, indices), both (n_queries, k), best first: float32 inner products and int64 rows
    of `base`. Both backends give identical neighbours on data without ties.
    """
    q, b = _as_matrix(queries, "queries"), _as_matrix(base, "base")
    if q.shape[1] != b.shape[1]:
        raise DataError(f"queries have dimension {q.shape[1]} but base has {b.shape[1]}; expected equal")
    if not 1 <= k <= b.shape[0]:
        raise UserError(f"k = {k} neighbours requested from a base of {b.shape[0]} vectors; expected 1..{b.shape[0]}")
    if backend not in DEFAULT_CHUNK_SIZE:
        raise UserError(f"retrieval backend {backend!r}; expected 'faiss' or 'numpy'")
    chunk_size = DEFAULT_CHUNK_SIZE[backend] if chunk_size is None else chunk_size
    if chunk_size < 1:
        raise UserError(f"chunk_size = {chunk_size}; expected a positive number of queries per chunk")
    if backend == "faiss":
        index = _faiss_index(b)
        search = lambda chunk: index.search(chunk, k)  # noqa: E731
    else:
        search = lambda chunk: _numpy_topk(chunk, b, k)  # noqa: E731
    scores = np.empty((q.shape[0], k), dtype=np.float32)
    indices = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], chunk_size):
        end = min(start + chunk_size, q.shape[0])
        scores[start:end], indices[start:end] = search(q[start:end])
    return scores, indices


# ------------------------------------------------------------------------------------------------ Tatoeba
# XTREME's reference code (google-research/xtreme at b9da5f5, the parent of c168376):
# third_party/run_retrieval.py:444-450 embeds x = `tatoeba.<lang>-eng.<lang>` and y = `tatoeba.<lang>-eng.eng`,
# line 458 calls `similarity_search(x, y, ...)`, and third_party/utils_retrieve.py:333-341 normalises both,
# `idx.add(x)` (line 339) and `idx.search(y, 1)` (line 340): the NON-English sentences are the index and the
# English ones the queries. 1-NN accuracy is not symmetric, so the direction is part of the protocol.
def tatoeba_predict(src_emb, en_emb, backend: Backend = "faiss",
                    chunk_size: int | None = None) -> np.ndarray:
    """For each English sentence, the index of the nearest (cosine) source-language sentence (XTREME's
    direction: source sentences indexed, English sentences query; see the comment above)."""
    src, en = l2_normalize(src_emb, "source embeddings"), l2_normalize(en_emb, "English embeddings")
    return knn(en, src, 1, backend=backend, chunk_size=chunk_size)[1][:, 0]


def tatoeba_accuracy(pred, gold_idx) -> float:
    """Share of English queries whose retrieved source sentence is the gold (aligned) one, in percent."""
    return accuracy(np.asarray(pred).tolist(), np.asarray(gold_idx).tolist())


# ------------------------------------------------------------------------------------------------ BUCC
def _check_ids(ids: Sequence[Hashable], n: int, name: str) -> list:
    ids = list(ids)
    if len(ids) != n:
        raise DataError(f"{name}: {len(ids)} sentence ids for {n} embeddings; expected one id per embedding")
    first: dict[Hashable, int] = {}
    for row, sid in enumerate(ids):
        if first.setdefault(sid, row) != row:
            raise DataError(f"{name}: sentence id {sid!r} also at row {first[sid]}; expected unique ids", row=row)
    return ids


def bucc_candidates(src_emb, src_ids: Sequence[Hashable], en_emb, en_ids: Sequence[Hashable], k: int = 4,
                    backend: Backend = "faiss", chunk_size: int | None = None) -> list[Candidate]:
    """Mine candidate pairs with the ratio margin and retrieval "max"; best score first.

    margin(x, y) = cos(x, y) / ((mean cos of x's k NN in en + mean cos of y's k NN in src) / 2), k capped
    at the pool size. Each source sentence proposes its best-margin English sentence among its k NN, and
    each English sentence its best source sentence. As in LASER's "max" retrieval the proposals are then
    taken greedily by score, keeping a pair only while neither side is used yet: a pair proposed from
    both sides appears once, and every sentence is in at most one candidate.
    """
    x, y = l2_normalize(src_emb, "source embeddings"), l2_normalize(en_emb, "English embeddings")
    src_ids = _check_ids(src_ids, x.shape[0], "source pool")
    en_ids = _check_ids(en_ids, y.shape[0], "English pool")
    if k < 1:
        raise UserError(f"BUCC margin neighbourhood k = {k}; expected k >= 1")
    x2y_sim, x2y_ind = knn(x, y, min(k, y.shape[0]), backend=backend, chunk_size=chunk_size)
    y2x_sim, y2x_ind = knn(y, x, min(k, x.shape[0]), backend=backend, chunk_size=chunk_size)
    x2y_mean, y2x_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
    fwd = x2y_sim / ((x2y_mean[:, None] + y2x_mean[x2y_ind]) / 2)
    bwd = y2x_sim / ((y2x_mean[:, None] + x2y_mean[y2x_ind]) / 2)
    fwd_arg, bwd_arg = fwd.argmax(axis=1), bwd.argmax(axis=1)
    src_side = np.concatenate([np.arange(x.shape[0]), y2x_ind[np.arange(y.shape[0]), bwd_arg]])
    en_side = np.concatenate([x2y_ind[np.arange(x.shape[0]), fwd_arg], np.arange(y.shape[0])])
    scores = np.concatenate([fwd[np.arange(x.shape[0]), fwd_arg], bwd[np.arange(y.shape[0]), bwd_arg]])
    seen_src, seen_en, out = set(), set(), []
    for i in np.argsort(-scores, kind="stable"):
        s, e = int(src_side[i]), int(en_side[i])
        if s not in seen_src and e not in seen_en:
            seen_src.add(s)
            seen_en.add(e)
            out.append((float(scores[i]), src_ids[s], en_ids[e]))
    return out


def unify_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct texts in first-seen order, and for every input row the index of its text.

    XTREME mines over distinct sentences: `text_load_unify` (third_party/utils_retrieve.py:95-116 at
    b9da5f5) maps identical lines to one index and `unique_embeddings` (lines 119-122) keeps one embedding
    per text, both called by `mine_bitext` (lines 136-140), so a repeated sentence does not fill a k-NN
    neighbourhood twice.
    """
    index: dict[str, int] = {}
    rows = np.array([index.setdefault(t, len(index)) for t in texts], dtype=np.int64)
    return list(index), rows


def bucc_mine_pools(src_ids: Sequence[Hashable], src_texts: Sequence[str], en_ids: Sequence[Hashable],
                    en_texts: Sequence[str], embed: Callable[[list[str]], np.ndarray], k: int = 4,
                    backend: Backend = "faiss", chunk_size: int | None = None) -> list[Candidate]:
    """BUCC candidates of two pools as XTREME's reference code makes them, best first, by sentence id.

    1. Identical texts are merged before mining (`unify_texts`); `embed` is called once per side on the
       distinct texts only.
    2. `bucc_candidates` mines the distinct texts; like `mine_bitext` with its default threshold 0
       (utils_retrieve.py:229) only candidates with a positive margin are kept.
    3. Text -> id: `read_sent2id` (utils_retrieve.py:268-282) maps each stripped text to its id and
       DELETES every text that occurs under more than one id (lines 274-281); `read_candidate2score`
       (line 298) then skips any candidate whose source or English text is not in that map. So a pair
       involving a duplicated sentence is never predicted, whichever of its ids the gold names.
    """
    src_ids = _check_ids(src_ids, len(src_texts), "source pool")
    en_ids = _check_ids(en_ids, len(en_texts), "English pool")
    sides = []
    for ids, texts in ((src_ids, list(src_texts)), (en_ids, list(en_texts))):
        distinct, _ = unify_texts(texts)
        stripped = Counter(t.strip() for t in texts)
        id_of = dict(zip(texts, ids))  # only read for texts that occur once
        sides.append((distinct, [id_of[t] if stripped[t.strip()] == 1 else None for t in distinct]))
    (src_distinct, src_id_of), (en_distinct, en_id_of) = sides
    raw = bucc_candidates(embed(src_distinct), range(len(src_distinct)), embed(en_distinct), range(len(en_distinct)),
                          k=k, backend=backend, chunk_size=chunk_size)
    return [(score, src_id_of[s], en_id_of[e]) for score, s, e in raw
            if score > 0 and src_id_of[s] is not None and en_id_of[e] is not None]


def bucc_best_threshold(candidates: Iterable[Candidate],
                        gold_pairs: Iterable[tuple[Hashable, Hashable]]) -> tuple[float, float]:
    """The margin threshold that maximises F1 against `gold_pairs` (the dev gold), and that F1 in percent.

    Candidates are taken best first; after each one the F1 of the prefix is computed, and the threshold
    is the midpoint between the scores of the best prefix's last candidate and the next one (its own
    score when it is the last). Ties in F1 keep the shorter prefix. If no candidate is gold the threshold
    is 0, as in the XTREME implementation. Apply the result unchanged to test with `bucc_mine`.
    """
    gold = set(gold_pairs)
    if not gold:
        raise DataError("no gold pairs to tune the BUCC threshold on; expected the dev ('sample') gold")
    ranked = sorted(candidates, key=lambda c: -c[0])
    threshold, best_f1, correct = 0.0, 0.0, 0
    for n, (score, src, en) in enumerate(ranked, start=1):
        correct += (src, en) in gold
        if correct == 0:
            continue
        precision, recall = correct / n, correct / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best_f1 = f1
            threshold = (score + ranked[n][0]) / 2 if n < len(ranked) else score
    return threshold, 100.0 * best_f1


def bucc_mine(candidates: Iterable[Candidate], threshold: float) -> set[tuple[Hashable, Hashable]]:
    """The (src_id, en_id) pairs whose margin score is at least `threshold`."""
    return {(src, en) for score, src, en in candidates if score >= threshold}

