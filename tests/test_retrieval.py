"""Retrieval on planted data with known answers, backend agreement, and hand-computed margins."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts import metrics, retrieval
from xstilts.errors import DataError, UserError


def _unit(rng, n, d=32):
    return retrieval.l2_normalize(rng.standard_normal((n, d)).astype(np.float32))


def _noisy(rng, x, scale=0.05):
    return retrieval.l2_normalize(x + scale * rng.standard_normal(x.shape).astype(np.float32))


def test_l2_normalize_rows_and_bad_rows():
    x = retrieval.l2_normalize(np.array([[3.0, 4.0], [0.0, 2.0]]))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)
    with pytest.raises(DataError, match="row 1"):
        retrieval.l2_normalize(np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(DataError, match="row 0"):
        retrieval.l2_normalize(np.array([[np.nan, 1.0]]))


def test_faiss_and_numpy_agree_and_chunking_changes_nothing():
    rng = np.random.default_rng(0)
    queries, base = _unit(rng, 53), _unit(rng, 97)
    f_scores, f_idx = retrieval.knn(queries, base, 5, backend="faiss", chunk_size=7)
    n_scores, n_idx = retrieval.knn(queries, base, 5, backend="numpy", chunk_size=7)
    whole_scores, whole_idx = retrieval.knn(queries, base, 5, backend="numpy", chunk_size=1000)
    np.testing.assert_array_equal(f_idx, n_idx)
    np.testing.assert_array_equal(n_idx, whole_idx)
    np.testing.assert_allclose(f_scores, n_scores, atol=1e-5)
    np.testing.assert_allclose(n_scores, whole_scores, atol=1e-6)
    # Exact: the true top-5 by a full sort, best first.
    full = queries @ base.T
    np.testing.assert_array_equal(n_idx, np.argsort(-full, axis=1)[:, :5])
    assert (np.diff(n_scores, axis=1) <= 0).all()


def test_knn_k_equal_to_base_size_and_bad_arguments():
    rng = np.random.default_rng(1)
    q, b = _unit(rng, 3), _unit(rng, 4)
    _, idx = retrieval.knn(q, b, 4, backend="numpy")
    assert sorted(idx[0]) == [0, 1, 2, 3]
    with pytest.raises(UserError, match="k = 5"):
        retrieval.knn(q, b, 5)
    with pytest.raises(UserError, match="backend"):
        retrieval.knn(q, b, 1, backend="annoy")
    with pytest.raises(DataError, match="dimension"):
        retrieval.knn(q, _unit(rng, 4, d=8), 1)


def test_faiss_index_goes_to_all_gpus_when_faiss_sees_one(monkeypatch):
    import faiss

    moved = []

    def to_gpus(index):
        moved.append(index)
        return index  # stands in for the GPU index: same search API

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_gpus, raising=False)
    rng = np.random.default_rng(2)
    retrieval.knn(_unit(rng, 5), _unit(rng, 6), 2, backend="faiss")
    assert len(moved) == 1


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_tatoeba_planted_pairs(backend):
    rng = np.random.default_rng(3)
    en = _unit(rng, 200)
    perm = rng.permutation(200)
    src = _noisy(rng, en[perm]) * 3.0  # unnormalised input: prediction uses cosine
    pred = retrieval.tatoeba_predict(src, en, backend=backend, chunk_size=64)
    # one prediction per English sentence j: the source row i with perm[i] == j
    np.testing.assert_array_equal(pred, np.argsort(perm))
    assert retrieval.tatoeba_accuracy(pred, np.argsort(perm)) == 100.0
    assert retrieval.tatoeba_accuracy(pred, np.arange(200)) == pytest.approx(100 * np.mean(perm == np.arange(200)))


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_tatoeba_direction_is_xtremes_english_queries_into_the_source_index(backend):
    # Gold: source row i <-> English row i. s0 and s1 both lie near e0, s1 nearer. Source -> English (the
    # other direction) gives s0 -> e0 (right), s1 -> e0 (wrong): 50 %. XTREME's rule (utils_retrieve.py
    # similarity_search: index the source side, query with English; IndexFlatL2 on unit rows) gives
    # e0 -> s1 (wrong) and e1 -> s0 (cos 0.110 vs 0.053, wrong): 0 %.
    src = np.array([[0.9, 0.1], [0.95, 0.05]])
    en = np.array([[1.0, 0.0], [0.0, 1.0]])
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    l2 = ((unit(en)[:, None, :] - unit(src)[None, :, :]) ** 2).sum(-1)  # the XTREME rule, written out
    np.testing.assert_array_equal(l2.argmin(axis=1), [1, 0])
    pred = retrieval.tatoeba_predict(src, en, backend=backend)
    np.testing.assert_array_equal(pred, [1, 0])
    assert retrieval.tatoeba_accuracy(pred, [0, 1]) == 0.0
    _, nearest_en = retrieval.knn(retrieval.l2_normalize(src), retrieval.l2_normalize(en), 1, backend=backend)
    other_direction = nearest_en[:, 0]
    assert retrieval.tatoeba_accuracy(other_direction, [0, 1]) == 50.0


def test_margin_hand_computed():
    # cos: x0.y0 = 1, x0.y1 = 0.6, x1.y0 = 0, x1.y1 = 0.8. With k = 2 (whole pools) the neighbourhood
    # means are x0 0.8, x1 0.4, y0 0.5, y1 0.7, so margin(x0, y0) = 1 / ((0.8 + 0.5) / 2) and
    # margin(x1, y1) = 0.8 / ((0.4 + 0.7) / 2); both sides agree on these two pairs.
    src = np.array([[1.0, 0.0], [0.0, 1.0]])
    en = np.array([[1.0, 0.0], [0.6, 0.8]])
    cands = retrieval.bucc_candidates(src, ["x0", "x1"], en, ["y0", "y1"], k=2, backend="numpy")
    assert [(s, e) for _, s, e in cands] == [("x0", "y0"), ("x1", "y1")]
    assert cands[0][0] == pytest.approx(1 / 0.65, rel=1e-6)
    assert cands[1][0] == pytest.approx(0.8 / 0.55, rel=1e-6)


def test_max_retrieval_uses_each_sentence_once():
    # y1 is a near-copy of y0: its own best source is x0 (margin 0.98 / ((0.99 + 0.5895) / 2) ~ 1.241),
    # but x0 is already taken by the better pair (x0, y0), so the greedy "max" step drops (x0, y1) and
    # x1's proposal (x1, y1) survives.
    y1 = np.array([0.98, np.sqrt(1 - 0.98 ** 2)])
    src = np.array([[1.0, 0.0], [0.0, 1.0]])
    en = np.array([[1.0, 0.0], y1])
    cands = retrieval.bucc_candidates(src, ["x0", "x1"], en, ["y0", "y1"], k=2)
    assert [(s, e) for _, s, e in cands] == [("x0", "y0"), ("x1", "y1")]
    m_x1y1 = y1[1] / (((y1[1] + 0.0) / 2 + (0.98 + y1[1]) / 2) / 2)
    assert cands[1][0] == pytest.approx(m_x1y1, rel=1e-5)


def test_best_threshold_is_midpoint_after_best_prefix():
    cands = [(0.9, "a", "A"), (0.6, "d", "D"), (0.8, "b", "B"), (0.7, "c", "X")]  # any order
    # prefixes by score: F1 0.5, 0.8, 0.667, 0.571 -> best after "b": threshold (0.8 + 0.7) / 2.
    threshold, f1 = retrieval.bucc_best_threshold(cands, {("a", "A"), ("b", "B"), ("e", "E")})
    assert threshold == pytest.approx(0.75)
    assert f1 == pytest.approx(80.0)
    assert retrieval.bucc_mine(cands, threshold) == {("a", "A"), ("b", "B")}
    # Best prefix = every candidate: the threshold is the last score, so it is still mined.
    threshold, f1 = retrieval.bucc_best_threshold(cands, {("a", "A"), ("b", "B"), ("d", "D")})
    assert threshold == pytest.approx(0.6)
    assert f1 == pytest.approx(100 * 6 / 7)
    assert len(retrieval.bucc_mine(cands, threshold)) == 4
    with pytest.raises(DataError, match="gold"):
        retrieval.bucc_best_threshold(cands, set())


def _bucc_split(rng, prefix, n_pairs=60, n_src_extra=40, n_en_extra=80):
    """Pools with planted parallel pairs among distractors, ids shuffled, and the gold pairs."""
    en_par = _unit(rng, n_pairs)
    src = np.concatenate([_noisy(rng, en_par, 0.1), _unit(rng, n_src_extra)])
    en = np.concatenate([en_par, _unit(rng, n_en_extra)])
    src_order, en_order = rng.permutation(len(src)), rng.permutation(len(en))
    src_ids = [f"{prefix}-src-{i}" for i in range(len(src))]
    en_ids = [f"{prefix}-en-{i}" for i in range(len(en))]
    gold = {(src_ids[i], en_ids[i]) for i in range(n_pairs)}
    return src[src_order], [src_ids[i] for i in src_order], en[en_order], [en_ids[i] for i in en_order], gold


@pytest.mark.parametrize("backend", ["faiss", "numpy"])
def test_bucc_threshold_from_dev_mines_exactly_the_test_gold(backend):
    rng = np.random.default_rng(4)
    *dev_pools, dev_gold = _bucc_split(rng, "dev")
    *test_pools, test_gold = _bucc_split(rng, "test", n_pairs=90)
    dev = retrieval.bucc_candidates(*dev_pools, k=4, backend=backend, chunk_size=16)
    threshold, dev_f1 = retrieval.bucc_best_threshold(dev, dev_gold)
    assert dev_f1 == 100.0
    test = retrieval.bucc_candidates(*test_pools, k=4, backend=backend, chunk_size=16)
    mined = retrieval.bucc_mine(test, threshold)
    assert mined == test_gold
    assert metrics.bucc_scores(mined, test_gold)["f1"] == 100.0
    # Distractors were proposed too (each sentence proposes a partner) but fall below the threshold.
    assert len(test) > len(test_gold)


def test_bucc_backends_give_the_same_candidates():
    rng = np.random.default_rng(5)
    *pools, _ = _bucc_split(rng, "x")
    a = retrieval.bucc_candidates(*pools, backend="faiss")
    b = retrieval.bucc_candidates(*pools, backend="numpy", chunk_size=9)
    assert [(s, e) for _, s, e in a] == [(s, e) for _, s, e in b]
    np.testing.assert_allclose([c[0] for c in a], [c[0] for c in b], atol=1e-5)


def test_bucc_candidates_check_ids():
    rng = np.random.default_rng(6)
    x, y = _unit(rng, 3), _unit(rng, 3)
    with pytest.raises(DataError, match="3 embeddings"):
        retrieval.bucc_candidates(x, ["a", "b"], y, ["A", "B", "C"])
    with pytest.raises(DataError, match="row 2.*'b'.*row 1"):
        retrieval.bucc_candidates(x, ["a", "b", "b"], y, ["A", "B", "C"])


def test_bucc_merges_identical_texts_and_never_predicts_a_duplicated_sentence():
    # XTREME's reference code: mine over distinct texts (text_load_unify / unique_embeddings), then map text
    # -> id deleting texts that occur under several ids (read_sent2id), so their pairs are never predicted.
    # English "B" appears under e1 and e2. With distinct texts the pools are those of
    # test_margin_hand_computed: margin(a, A) = 1 / 0.65; (b, B) is mined but B has two ids, so it is dropped.
    vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "A": [1.0, 0.0], "B": [0.6, 0.8]}
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([vectors[t] for t in texts])

    cands = retrieval.bucc_mine_pools(["s0", "s1"], ["a", "b"], ["e0", "e1", "e2"], ["A", "B", "B"], embed, k=2,
                                      backend="numpy")
    assert calls == [["a", "b"], ["A", "B"]]  # each distinct text embedded once
    assert [(s, e) for _, s, e in cands] == [("s0", "e0")]
    assert cands[0][0] == pytest.approx(1 / 0.65, rel=1e-6)
    # Without the merge (ids taken as distinct sentences), b's 2 nearest English are B twice: a pair with
    # one of B's ids is proposed, which the reference code can never output.
    plain = retrieval.bucc_candidates(embed(["a", "b"]), ["s0", "s1"], embed(["A", "B", "B"]), ["e0", "e1", "e2"],
                                      k=2, backend="numpy")
    assert {e for _, _, e in plain} & {"e1", "e2"}
    # read_sent2id compares stripped lines: "B" and "B " are one repeated sentence there.
    vectors["B "] = vectors["B"]
    cands = retrieval.bucc_mine_pools(["s0", "s1"], ["a", "b"], ["e0", "e1", "e2"], ["A", "B", "B "], embed, k=2)
    assert [(s, e) for _, s, e in cands] == [("s0", "e0")]
    # On pools without duplicates nothing changes.
    plain = retrieval.bucc_candidates(embed(["a", "b"]), ["s0", "s1"], embed(["A", "B"]), ["e0", "e1"], k=2)
    assert retrieval.bucc_mine_pools(["s0", "s1"], ["a", "b"], ["e0", "e1"], ["A", "B"], embed, k=2) == plain
