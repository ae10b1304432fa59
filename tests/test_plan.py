"""xstilts.plan: the synthetic data's transfer plan on the demo grid (config/config.yaml), and summary/planted.csv
from fabricated per-example predictions (tests/fake_results.py), where the fabricated gains either match the
plan (recovered) or contradict it (not recovered)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fake_results import fake_summary, fake_tree  # noqa: F401 (fixtures)
from tests.test_aggregate import SCHEMA, aggregate, experiment  # noqa: F401 (fixture)
from xstilts import grid, plan, registry
from xstilts.aggregate import ROW_KEYS, SETTING_KEYS, XTREME
from xstilts.io import write_json
from xstilts.uncertainty import adjust

ROOT = Path(__file__).resolve().parents[1]
XTREME_TARGETS = registry.XTREME_BENCHMARK.tasks  # the demo's targets (its config names none)


def rows_of(doc: dict) -> dict:
    """Replicates.rows of a cells doc: row key -> fields (as uncertainty.collect builds them)."""
    return {tuple(c[k] for k in ROW_KEYS): {k: c[k] for k in [*ROW_KEYS, "label"]} for c in doc["cells"]}


@pytest.fixture(scope="module")
def demo():
    """The demo grid's planted comparisons: (adaptation, row label, reference label, target) -> (sign, skills)."""
    cfg = grid.load_config(ROOT / "config" / "config.yaml", SCHEMA)
    doc = grid.cells(cfg)
    members = plan.members_of(doc["jobs"])
    assert members["multitask"] == grid.tasks_of(cfg, "multitask")
    rows = rows_of(doc)
    return {(rows[c.row]["adaptation"], rows[c.row]["label"], rows[c.reference]["label"], c.target): (c.sign, c.skills)
            for c in plan.comparisons(rows, doc["targets"], members, ROW_KEYS)}


def test_every_registry_task_has_skills():
    assert set(plan.SKILLS) == set(registry.intermediate_tasks()) | set(registry.target_tasks())


def test_english_rows_are_planted_against_none_on_the_targets_sharing_a_skill(demo):
    assert demo[("full", "mnli", "none", "xnli")] == (1, "inference")
    assert demo[("full", "anli_plus", "none", "xnli")] == (1, "inference")
    assert demo[("lora", "mnli", "none", "xnli")] == (1, "inference")
    assert demo[("full", "qqp", "none", "pawsx")] == (1, "roles")
    assert {t for t in XTREME_TARGETS if demo[("full", "squad_v2", "none", t)][0]} == {"xquad", "mlqa", "tydiqa"}
    assert demo[("full", "ccg", "none", "udpos")] == (1, "word_class")
    assert demo[("full", "ccg", "none", "panx")] == (1, "entity_type")
    for target in XTREME_TARGETS:  # `choice` has no XTREME target: planted nulls everywhere
        assert demo[("full", "hellaswag", "none", target)] == (0, "")
    assert demo[("full", "mnli", "none", "pawsx")] == (0, "")


def test_multitask_is_positive_wherever_a_member_shares_a_skill(demo):
    positive = {t for t in XTREME_TARGETS if demo[("full", "multitask", "none", t)][0]}
    assert positive == set(XTREME_TARGETS) - {"bucc2018", "tatoeba"}  # no English task aligns languages
    assert demo[("full", "multitask", "none", "panx")] == (1, "entity_type")


def test_variants_are_planted_against_their_english_counterpart(demo):
    assert demo[("full", "mnli [+mt]", "mnli", "xnli")] == (1, "inference")
    assert demo[("full", "mnli [+mt]", "mnli", "tatoeba")] == (0, "")
    assert demo[("full", "qqp [+mt]", "qqp", "pawsx")] == (1, "roles")
    for target in ("tatoeba", "bucc2018"):
        assert demo[("full", "qqp [+mlm]", "qqp", target)] == (1, "alignment")
    assert demo[("full", "qqp [+mlm]", "qqp", "pawsx")] == (0, "")
    assert not any(ref == "none" and "[+" in row for _, row, ref, _ in demo)


def test_every_row_but_none_has_one_comparison_per_target_and_xtreme_none(demo):
    cfg = grid.load_config(ROOT / "config" / "config.yaml", SCHEMA)
    rows = {(r.adaptation, r.label) for r in grid.rows(cfg) if r.intermediate != grid.NONE}
    assert len(demo) == len(rows) * len(XTREME_TARGETS)
    assert {target for *_, target in demo} == set(XTREME_TARGETS)


def test_tasks_or_variants_outside_the_plan_get_no_comparison():
    fields = {"backbone": "b", "adaptation": "full", "label": "x"}
    rows = {("b", "full", i, v): {**fields, "intermediate": i, "variant": v}
            for i, v in (("none", "en"), ("real_task", "en"), ("multitask", "en"), ("mnli", "en"), ("mnli", "other"))}
    members = {"real_task": ["real_task"], "multitask": ["mnli", "real_task"], "mnli": ["mnli"]}
    found = {(c.row[2], c.row[3]) for c in plan.comparisons(rows, registry.target_tasks(), members, ROW_KEYS)}
    assert found == {("mnli", "en")}
    no_none = {k: v for k, v in rows.items() if k[2] != "none"}
    assert plan.comparisons(no_none, ["xnli"], members, ROW_KEYS) == []  # no reference row


# ------------------------------------------------------------------------------------------- planted.csv
@pytest.fixture(scope="module")
def planted(fake_summary):  # noqa: F811
    return pd.read_csv(fake_summary / "planted.csv", keep_default_na=False, na_values=[""],
                       dtype={"planted": str, "skills": str}).set_index(["adaptation", "row", "target"])


def test_planted_csv_recovers_a_real_gain_and_a_true_null(planted):
    mnli = planted.loc[("full", "mnli", "xnli")]  # planted +, fabricated gain 30 points
    assert (mnli.planted, mnli.skills, mnli.reference) == ("+", "inference", "none")
    assert mnli.low > 0 and mnli.recovered
    null = planted.loc[("full", "squad_v1", "xnli")]  # planted 0, squad_v1 predicts as the baseline
    assert null.planted == "0" and null.delta == 0 and null.low <= 0 <= null.high and null.recovered


def test_planted_csv_flags_gains_that_contradict_the_plan(planted):
    wrong = planted.loc[("full", "mnli", "pawsx")]  # planted 0, but fabricated mnli gains on every target
    assert wrong.planted == "0" and wrong.low > 0 and not wrong.recovered
    missed = planted.loc[("full", "squad_v1", "xquad")]  # planted +, fabricated no gain
    assert missed.planted == "+" and missed.delta == 0 and not missed.recovered
    mlm = planted.loc[("full", "mnli [+mlm]", "tatoeba")]
    assert (mlm.reference, mlm.planted, mlm.skills) == ("mnli", "+", "alignment")
    assert XTREME not in planted.index.get_level_values("target")


def test_planted_p_is_bh_over_the_planted_family(planted, fake_summary):  # noqa: F811
    """p_adjusted is BH over planted.csv's own comparisons: the raw p of each from significance.csv (vs none)
    or tradeoff.csv (variant vs English), adjusted together, gives it back."""
    sig = pd.read_csv(fake_summary / "significance.csv").set_index(["adaptation", "label", "target"]).p
    trade = pd.read_csv(fake_summary / "tradeoff.csv")
    trade = trade[trade.comparison == "multilingual"].set_index(["row", "target"]).p
    raw = [sig[key] if r.reference == "none" else trade[(f"{r.backbone}/{key[0]}/{key[1]}", key[2])]
           for key, r in planted.iterrows()]
    assert np.allclose(adjust(raw), planted.p_adjusted.to_numpy(), rtol=0, atol=1e-5)  # CSVs: 6 decimals


def test_recovery_line_in_findings_and_planted_md(planted, fake_summary):  # noqa: F811
    positive, null = planted[planted.planted == "+"], planted[planted.planted == "0"]
    k_pos, k_null = int((positive.low > 0).sum()), int(((null.low <= 0) & (null.high >= 0)).sum())
    k_bh = int((null.p_adjusted >= 0.05).sum())
    line = (f"planted positives recovered (95% interval above 0) {k_pos} of {len(positive)}; planted nulls whose "
            f"interval contains 0 {k_null} of {len(null)} (not significant after BH, p >= 0.05: {k_bh} of "
            f"{len(null)}).")
    assert 0 < k_pos < len(positive) and 0 < k_null < len(null)
    assert line in (fake_summary / "findings.md").read_text(encoding="utf-8")
    md = (fake_summary / "planted.md").read_text(encoding="utf-8").splitlines()
    assert line in md[0] and sum("|" in x for x in md) == len(planted) + 2  # header, rule, one line each


def test_heatmap_marks_the_planted_positives_against_none(fake_tree, fake_summary):  # noqa: F811
    _, doc = fake_tree
    delta = pd.read_csv(fake_summary / "transfer_delta.csv")
    marked = plan.positive_cells(delta[SETTING_KEYS].itertuples(index=False, name=None), [*doc["targets"], XTREME],
                                 doc["cells"], doc["jobs"], SETTING_KEYS)
    assert marked == {("tiny", "full", "mnli", "xnli"), ("tiny", "lora", "mnli", "xnli"),
                      ("tiny", "full", "mnli [+mlm]", "xnli"), ("tiny", "full", "mnli [+mlm]", "bucc2018"),
                      ("tiny", "full", "mnli [+mlm]", "tatoeba"), ("tiny", "full", "squad_v1", "xquad"),
                      ("tiny", "full", "squad_v1", "mlqa"), ("tiny", "full", "squad_v1", "tydiqa")}


@pytest.mark.parametrize("synth", [False, None])
def test_no_plan_without_synthetic_data(experiment, synth):  # noqa: F811
    """Real data (cells.json `synth` false) or an older cells.json without the key: no planted files, and a
    stale one from an earlier run is removed."""
    results, doc = experiment
    if synth is None:
        doc.pop("synth")
    else:
        doc["synth"] = synth
    write_json(results / "cells.json", doc)
    (results / "summary").mkdir()
    (results / "summary" / "planted.csv").write_text("stale\n", encoding="utf-8")
    out = aggregate(results)
    assert not (out / "planted.csv").exists() and not (out / "planted.md").exists()
    assert "Transfer plan" not in (out / "findings.md").read_text(encoding="utf-8")
