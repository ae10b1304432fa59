"""The headline row (intermediate chosen on English dev per target) and the claims table, on the fabricated
tree of tests/fake_results.py, whose dev scores and test differences are known by construction."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fake_results import fake_summary, fake_tree  # noqa: F401 (fixtures)
from xstilts import claims


@pytest.fixture(scope="module")
def headline(fake_summary):
    return pd.read_csv(fake_summary / "headline.csv").set_index(["adaptation", "target"])


def test_headline_chooses_on_dev_never_on_test(headline):
    chosen = headline.loc["full", "chosen"].to_dict()
    # squad_v1 wins XNLI's English dev and SQuAD dev (dev.json: XQuAD) although on test it equals the baseline;
    # mnli wins every other dev; Tatoeba has no dev split and takes BUCC's choice; none and +mlm never count
    assert chosen == {"xnli": "squad_v1", "pawsx": "mnli", "udpos": "mnli", "panx": "mnli", "xquad": "squad_v1",
                      "mlqa": "mnli", "tydiqa": "mnli", "bucc2018": "mnli", "tatoeba": "mnli",
                      "xtreme": "best per target (dev)"}
    assert "dev.json" in headline.loc[("full", "xquad"), "selected_on"]
    assert "bucc2018" in headline.loc[("full", "tatoeba"), "selected_on"]
    assert headline.loc[("full", "xnli"), "delta"] == 0  # the dev choice is no better than none on test


def test_headline_xtreme_is_the_mean_of_the_chosen_test_scores(headline, fake_summary):
    intervals = pd.read_csv(fake_summary / "intervals.csv")
    task = intervals[(intervals.language == "average") & (intervals.adaptation == "full")]
    score = task.set_index(["label", "target"]).estimate
    full = headline.loc["full"]
    picks = full.drop("xtreme")
    expected = sum(score[(label, target)] for target, label in picks.chosen.items()) / 9
    row = full.loc["xtreme"]
    assert row.estimate == pytest.approx(expected)
    assert row.low < row.estimate < row.high and row.n_seeds == 2
    assert row.delta == pytest.approx(expected - score[("none", "xtreme")])
    assert row.delta_low > 0


def test_claim_verdicts_follow_the_construction(fake_summary):
    table = pd.read_csv(fake_summary / "claims.csv")
    verdict = table.set_index(["adaptation", "claim"]).verdict
    assert set(table.claim) == {c.id for c in claims.CLAIMS}
    assert verdict[("full", "retrieval_large")] == claims.SUPPORTED  # mnli: +15% more right on bucc/tatoeba
    assert verdict[("full", "qa_moderate")] == claims.SUPPORTED
    assert verdict[("full", "best_per_target")] == claims.SUPPORTED
    assert verdict[("full", "mlm_not_better")] == claims.NOT_SUPPORTED  # +mlm is right on a superset
    assert verdict[("full", "tydiqa_not_xnli")] == claims.NOT_SUPPORTED  # mnli gains on both, squad_v1 on none
    assert verdict[("full", "mt_not_better")] == claims.NOT_TESTABLE  # no +mt row
    assert verdict[("full", "mnli_best")] == claims.NOT_TESTABLE  # 2 single-task rows cannot rank a top 3
    best = table[(table.adaptation == "full") & (table.claim == "best_per_target")].iloc[0]
    assert best.paper_value == 5.4 and best.low <= best.estimate <= best.high
    md = (fake_summary / "claims.md").read_text(encoding="utf-8")
    assert "not checked against the paper" in md and "| verdict" in md


def test_every_claim_names_its_source_and_its_test():
    for claim in claims.CLAIMS:
        assert claim.source and claim.checked and claim.operationalised
        assert callable(getattr(claims, claim.test))
    numbers = {c.id: c.paper_value for c in claims.CLAIMS if c.paper_value is not None}
    assert numbers == {"mnli_best": 8.2, "squad_best": 7.5, "hellaswag_best": 7.0, "multitask_small_extra": 8.7,
                       "best_per_target": 5.4}


def test_findings_paragraph_names_the_significant_rows_and_the_variant_verdict(fake_summary):
    text = (fake_summary / "findings.md").read_text(encoding="utf-8")
    assert "3 of 4 rows are significantly better" in text  # full mnli, full mnli [+mlm], lora mnli; not squad_v1
    assert "1 other is not significantly different" in text
    assert "tiny/full/mnli [+mlm] vs tiny/full/mnli" in text and "significantly better, so worth its cost" in text
    assert "+1 device-hours" in text and "2 seeds" in text


def test_mean_delta_terms_pair_every_row_and_target_with_the_baseline():
    rows = {("b", "full", i, "en"): {"backbone": "b", "adaptation": "full", "intermediate": i, "variant": "en",
                                     "label": i} for i in ("none", "mnli", "qqp")}
    ctx = claims.Context(type("R", (), {"rows": rows})(), None, None, None,
                         ["backbone", "adaptation", "intermediate", "variant"], "b", "full")
    terms = ctx.mean_delta_terms(ctx.english_rows(), ("xnli", "tatoeba"))
    plus = sorted((r[2], t) for w, r, t in terms if w > 0)
    assert plus == [("mnli", "tatoeba"), ("mnli", "xnli"), ("qqp", "tatoeba"), ("qqp", "xnli")]
    assert sorted((r[2], t, w) for w, r, t in terms if w < 0) == [("none", "tatoeba", -0.25)] * 2 + [
        ("none", "xnli", -0.25)] * 2
    assert sum(w for w, _, _ in terms) == pytest.approx(0)
