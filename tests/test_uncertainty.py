"""xstilts.uncertainty: per-example statistics that recompute the official metrics, the bootstrap against scipy,
paired vs unpaired intervals, p-values and BH, and intervals / significance on a fabricated results tree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests import fake_results
from tests.fake_results import fake_tree  # noqa: F401 (fixture)
from xstilts import metrics
from xstilts import uncertainty as U
from xstilts.aggregate import ROW_KEYS
from xstilts.evaluate import read_submission, write_submission
from xstilts.io import read_json
from xstilts.registry import get_task


def mean_units(values) -> U.Units:
    values = np.asarray(values, dtype=float)
    return U.Units(tuple(range(len(values))), values, np.ones_like(values))


# ------------------------------------------------------------------------------------------- statistics
def test_tagging_units_recompute_seqeval_on_a_resample():
    gold = [["B-PER", "I-PER", "O"], ["NOUN", "NOUN", "VERB"], ["O", "B-LOC"], ["DET", "NOUN"]]
    pred = [["B-PER", "O", "O"], ["NOUN", "VERB", "VERB"], ["O", "B-LOC"], ["DET", "NOUN"]]
    u = U.units("udpos", "en", pred, gold)
    assert u.estimate == pytest.approx(metrics.seqeval_f1(pred, gold))
    counts = np.array([2, 0, 1, 3])  # a resample: sentence 0 twice, sentence 2 once, sentence 3 three times
    resampled = [i for i, c in enumerate(counts) for _ in range(c)]
    expected = metrics.seqeval_f1([pred[i] for i in resampled], [gold[i] for i in resampled])
    assert float(U._ratio(counts @ u.num, counts @ u.den)) == pytest.approx(expected)


def test_bucc_units_recompute_f1_on_subsets_of_source_sentences():
    gold = {("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-3"), ("de-4", "en-4")}
    pred = {("de-1", "en-1"), ("de-2", "en-9"), ("de-5", "en-5"), ("de-3", "en-3")}
    u = U.units("bucc2018", "de", pred, gold)
    assert u.estimate == pytest.approx(metrics.bucc_scores(pred, gold)["f1"])
    for keep in ({"de-1", "de-2"}, {"de-2", "de-5"}, {"de-1", "de-3", "de-4"}):
        weights = np.array([float(s in keep) for s in u.ids])
        sub = metrics.bucc_scores({p for p in pred if p[0] in keep}, {g for g in gold if g[0] in keep})["f1"]
        assert float(U._ratio(weights @ u.num, weights @ u.den)) == pytest.approx(sub)


def test_bucc_without_any_pair_scores_zero_in_every_replicate():
    u = U.units("bucc2018", "de", set(), set())
    (est, reps, n), = U.Bootstrap([0], n_resamples=50).replicate("bucc2018/de", {"a": u}).values()
    assert est == 0 and n == 0 and (reps == 0).all()


def test_qa_units_are_per_question_means_of_em_and_f1(tmp_path):
    task = get_task("mlqa")
    rows = [{"id": f"q{i}", "context": "c", "question": "?", "answer_texts": [a], "answer_starts": [0]}
            for i, a in enumerate(["the cat", "Berlin", "zwei Hunde"])]
    preds = ["cat", "in Berlin", "drei"]
    write_submission(tmp_path, task, "de", rows, preds, None)
    u = U.units("mlqa", "de", *read_submission(tmp_path, task, "de"))
    scores = metrics.mlqa_scores({r["id"]: p for r, p in zip(rows, preds)},
                                 {r["id"]: r["answer_texts"] for r in rows}, "de")
    assert u.estimate == pytest.approx((scores["exact_match"] + scores["f1"]) / 2)
    assert u.ids == ("q0", "q1", "q2")


# ------------------------------------------------------------------------------------------- resampling
def test_percentile_interval_matches_scipy_bootstrap():
    values = np.random.default_rng(1).random(200) < 0.6
    boot = U.Bootstrap([0], n_resamples=20000)
    (_, reps, _), = boot.replicate("x/en", {"a": mean_units(values)}).values()
    ref = stats.bootstrap((100.0 * values,), np.mean, n_resamples=20000, method="percentile",
                          random_state=np.random.default_rng(2)).confidence_interval
    low, high = U.interval(reps)
    assert low == pytest.approx(ref.low, abs=0.5) and high == pytest.approx(ref.high, abs=0.5)
    assert low < 100 * values.mean() < high


def test_paired_interval_excludes_zero_where_the_unpaired_does_not():
    """B is A plus 8 of 200 more examples right: a consistent gain the unpaired resampling cannot see."""
    a = np.random.default_rng(3).random(200) < 0.5
    b = a.copy()
    b[np.flatnonzero(~a)[:8]] = True
    boot = U.Bootstrap([0])
    paired = boot.replicate("t/en", {"a": mean_units(a), "b": mean_units(b)})
    delta = paired["b"][1] - paired["a"][1]
    unpaired = boot.replicate("t/other", {"b": mean_units(b)})["b"][1] - paired["a"][1]
    assert U.interval(delta)[0] > 0
    low, high = U.interval(unpaired)
    assert low < 0 < high
    # the normal-approximation p of the paired bootstrap agrees with scipy's paired t-test
    p = U.p_value(100 * (b.mean() - a.mean()), delta)
    assert p == pytest.approx(stats.ttest_rel(b.astype(float), a.astype(float)).pvalue, rel=0.35)
    assert p < 0.05


def test_identical_rows_have_zero_delta_and_p_one():
    a = mean_units(np.random.default_rng(4).random(50) < 0.5)
    reps = U.Bootstrap([0]).replicate("t/en", {"a": a, "b": a})
    delta = reps["b"][1] - reps["a"][1]
    assert U.interval(delta) == (0.0, 0.0) and U.p_value(0.0, delta) == 1.0


def test_seeds_are_resampled_with_the_examples():
    """Two seeds far apart: the interval over seeds spans both; the example-only interval of a seed does not."""
    rng = np.random.default_rng(5)
    low_seed, high_seed = mean_units(rng.random(300) < 0.4), mean_units(rng.random(300) < 0.8)
    boot = U.Bootstrap([0, 1])
    reps = boot.replicate("t/en", {0: low_seed, 1: high_seed})
    est, combined = boot.over_seeds({s: v[:2] for s, v in reps.items()})
    assert est == pytest.approx((low_seed.estimate + high_seed.estimate) / 2)
    low, high = U.interval(combined)
    assert low < low_seed.estimate + 5 and high > high_seed.estimate - 5
    assert U.interval(reps[0][1])[1] < est  # one seed's own interval stays far below the mean


def test_benjamini_hochberg_by_hand():
    adjusted = U.adjust([0.01, 0.04, 0.03, 0.5, np.nan])
    assert adjusted[:4] == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert np.isnan(adjusted[4])


# ------------------------------------------------------------------------------------------- the tree
@pytest.fixture(scope="module")
def tree(fake_tree):
    results, doc = fake_tree
    reps = U.collect(results, doc["cells"], ROW_KEYS,
                     lambda c: list(read_json(results / c["path"] / "metrics.json")["languages"]))
    return results, doc, reps


def test_intervals_estimates_are_the_metrics_and_contain_them(tree):
    results, doc, reps = tree
    assert not reps.skipped
    table = U.intervals_table(reps, doc["targets"], ROW_KEYS)
    assert set(table.columns) >= {"estimate", "low", "high", "n_examples", "n_seeds", "language", "target"}
    for cell in doc["cells"]:
        m = read_json(results / cell["path"] / "metrics.json")
        rows = table[(table.adaptation == cell["adaptation"]) & (table.label == cell["label"])
                     & (table.target == cell["target"])]
        seed_scores = [read_json(results / c["path"] / "metrics.json")["score"] for c in doc["cells"]
                       if (c["adaptation"], c["label"], c["target"]) == (cell["adaptation"], cell["label"],
                                                                         cell["target"])]
        task = rows[rows.language == "average"].iloc[0]
        assert task.estimate == pytest.approx(np.mean(seed_scores))
        assert task.low <= task.estimate <= task.high and task.n_seeds == 2
        assert set(rows.language) == {*m["languages"], "average"}
    xtreme = table[table.target == "xtreme"].set_index(["adaptation", "label"])
    assert len(xtreme) == 6 and (xtreme.n_examples == 9 * 2 * fake_results.N).all()
    # the XTREME interval is narrower than its tasks' (it averages 9 independently resampled tasks)
    mnli = table[(table.adaptation == "full") & (table.label == "mnli") & (table.language == "average")]
    width = (mnli.high - mnli.low).set_axis(mnli.target)
    assert width["xtreme"] < width.drop("xtreme").min()


def test_significance_flags_the_known_differences(tree):
    _, doc, reps = tree
    sig = U.significance_table(reps, doc["targets"], ROW_KEYS)
    assert len(sig) == 4 * 10  # 4 non-baseline rows x (9 targets + xtreme)
    by = sig.set_index(["adaptation", "label", "target"])
    assert by.loc[("full", "mnli"), "significant"].all() and by.loc[("lora", "mnli"), "significant"].all()
    same = by.loc[("full", "squad_v1")]  # predicts exactly as the baseline
    assert (same.delta == 0).all() and (same.p == 1).all() and not same.significant.any()
    assert (sig.p_adjusted >= sig.p).all()
    # 80% vs 50% right, +15 more on bucc2018 and tatoeba (fake_results.TARGET_BONUS): about 30 + 30 / 9 points
    assert by.loc[("full", "mnli", "xtreme"), "delta"] == pytest.approx(30 + 30 / 9, abs=3)
    gain = by.loc[("full", "mnli", "xtreme")]
    assert gain.low < gain.delta < gain.high


def test_unreadable_predictions_skip_the_cell_not_the_summary(tree, tmp_path):
    results, doc, _ = tree
    cell = next(c for c in doc["cells"] if c["target"] == "xquad" and c["intermediate"] == "mnli")
    broken = tmp_path / "copy"
    import shutil

    shutil.copytree(results / cell["path"], broken)
    (broken / "labels" / "xquad" / "test-en.json").write_text('{"q0": ["answer0"]}', encoding="utf-8")
    reps = U.collect(tmp_path, [{**cell, "path": "copy"}], ROW_KEYS, lambda c: ["en", "de"])
    assert reps.skipped and "test-en.json" in reps.skipped[0][1] and "SQuAD v1.1" in reps.skipped[0][1]
    assert not reps.task
