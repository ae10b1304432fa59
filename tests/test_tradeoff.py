"""`xstilts aggregate` on the fabricated tree of tests/fake_results.py: tradeoff rows (multilingual vs English,
LoRA vs full), the efficiency plot's hollow/filled points, intervals.csv / significance.csv as written."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.fake_results import fake_summary, fake_tree  # noqa: F401 (fixtures)
from xstilts.aggregate import ROW_KEYS
from xstilts.tradeoff import efficiency_points


def test_tradeoff_rows_pair_the_right_rows_with_their_cost(fake_summary):
    table = pd.read_csv(fake_summary / "tradeoff.csv")
    xtreme = table[table.target == "xtreme"].set_index("row")
    assert sorted(zip(xtreme.comparison, xtreme.index, xtreme.reference)) == [
        ("adaptation", "tiny/lora/mnli", "tiny/full/mnli"), ("adaptation", "tiny/lora/none", "tiny/full/none"),
        ("multilingual", "tiny/full/mnli [+mlm]", "tiny/full/mnli")]
    mlm = xtreme.loc["tiny/full/mnli [+mlm]"]
    # the +mlm row's intermediate job took 7200 s against 3600 s; every other job of both rows is equal
    assert mlm.d_device_h == pytest.approx(1.0)
    assert mlm.d_useful_flops == pytest.approx(1e12 * 3600)
    assert mlm.gain_per_device_h == pytest.approx(mlm.delta)
    assert 0 < mlm.delta < 3 and mlm.low <= mlm.delta <= mlm.high  # 81% vs 80% right
    lora = xtreme.loc["tiny/lora/mnli"]
    assert lora.delta == pytest.approx(-10, abs=3) and lora.significant  # 70% vs 80% right
    assert lora.d_device_h == pytest.approx(-0.5) and pd.isna(lora.gain_per_device_h)  # cheaper: no "per extra"
    assert lora.d_peak_memory_bytes == -(2**20)
    same = xtreme.loc["tiny/lora/none"]
    assert same.delta == 0 and not same.significant
    md = (fake_summary / "tradeoff.md").read_text(encoding="utf-8")
    assert "tiny/full/mnli [+mlm]" in md and "XTREME delta [95% CI]" in md


def test_efficiency_points_hollow_where_not_significant(fake_summary):
    significance = pd.read_csv(fake_summary / "significance.csv")
    efficiency = pd.read_csv(fake_summary / "efficiency.csv")
    points = efficiency_points(significance, efficiency, ROW_KEYS).set_index(["adaptation", "label"])
    assert points.loc[("full", "none"), "flops"] == 0 and points.loc[("lora", "none"), "gain"] == 0
    assert points.loc[("full", "none"), "filled"] and points.loc[("full", "mnli"), "filled"]
    assert not points.loc[("full", "squad_v1"), "filled"]  # predicts exactly as the baseline
    assert points.loc[("full", "mnli [+mlm]"), "device_h"] == pytest.approx(2.0)
    assert (fake_summary / "plots" / "efficiency_vs_gain.png").stat().st_size > 0
    assert (fake_summary / "plots" / "transfer_delta.png").stat().st_size > 0


def test_interval_and_significance_files(fake_summary):
    intervals = pd.read_csv(fake_summary / "intervals.csv")
    assert list(intervals.columns) == [*ROW_KEYS, "label", "target", "language", "estimate", "low", "high",
                                       "n_examples", "n_seeds"]
    assert (intervals.low <= intervals.estimate + 1e-9).all() and (intervals.estimate <= intervals.high + 1e-9).all()
    significance = pd.read_csv(fake_summary / "significance.csv")
    assert significance.groupby(["adaptation", "label"]).significant.all().to_dict() == {
        ("full", "mnli"): True, ("full", "mnli [+mlm]"): True, ("full", "squad_v1"): False, ("lora", "mnli"): True}
