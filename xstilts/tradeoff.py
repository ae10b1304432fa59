"""The cost-gain tradeoff: what a multilingual variant, full fine-tuning or another backbone buys, and costs.

Each comparison pairs two rows that differ in one thing (xstilts.uncertainty's paired replicates: same test
examples, same seeds): a multilingual variant (`mlm`, `mt`) against its English-only counterpart, LoRA against
full fine-tuning, and every backbone against the config's first one. Cost differences come from the rows'
`row_total` lines of efficiency.csv (all jobs of the row: intermediate, fine-tuning, evaluation), mean over
the row's seeds. Written to summary/tradeoff.csv and tradeoff.md (docs/metrics.md, "Tradeoff").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from xstilts.registry import XTREME_BENCHMARK, get_benchmark
from xstilts.uncertainty import ALPHA, Replicates, adjust, interval_text

# efficiency.csv column -> tradeoff column (device-seconds become device-hours)
COSTS = {"device_s": "d_device_h", "useful_flops": "d_useful_flops", "executed_flops": "d_executed_flops",
         "energy_j": "d_energy_j", "peak_memory_bytes": "d_peak_memory_bytes"}
COLUMNS = ["comparison", "row", "reference", "target", "delta", "low", "high", "p", "p_adjusted", "significant",
           "n_seeds", *COSTS.values(), "gain_per_device_h"]


def row_name(fields: dict) -> str:
    return f"{fields['backbone']}/{fields['adaptation']}/{fields['label']}"


def comparisons(rows: dict, row_keys: list[str]) -> list[tuple[str, tuple, tuple]]:
    """(kind, row, reference) for every pair of rows present that differ in the variant (vs `en`), the
    adaptation (lora vs full) or the backbone (vs the first backbone)."""
    index = {tuple(f[k] for k in row_keys): f for f in rows.values()}
    backbones = list(dict.fromkeys(f["backbone"] for f in rows.values()))

    def key(fields: dict, **change) -> tuple:
        return tuple({**fields, **change}[k] for k in row_keys)

    out = []
    for row, fields in index.items():
        for kind, change, applies in (
                ("multilingual", {"variant": "en"}, fields["variant"] != "en"),
                ("adaptation", {"adaptation": "full"}, fields["adaptation"] == "lora"),
                ("backbone", {"backbone": backbones[0]}, fields["backbone"] != backbones[0])):
            reference = key(fields, **change)
            if applies and reference in index:
                out.append((kind, row, reference))
    return out


def _row_costs(efficiency: pd.DataFrame, row_keys: list[str]) -> pd.DataFrame:
    """Mean over seeds of each row's totals (efficiency.csv's `row_total` lines)."""
    totals = efficiency[efficiency.phase == "row_total"] if len(efficiency) else efficiency
    if not len(totals):
        return pd.DataFrame(columns=list(COSTS), index=pd.MultiIndex.from_tuples([], names=row_keys))
    values = totals[row_keys].join(totals[list(COSTS)].apply(pd.to_numeric, errors="coerce"))
    return values.groupby(row_keys).mean()


def tradeoff_table(replicates: Replicates, efficiency: pd.DataFrame, targets: list[str],
                   row_keys: list[str]) -> pd.DataFrame:
    """tradeoff.csv: per comparison and target (and the benchmark score), the paired score delta with its
    interval and p (BH-adjusted over this table), the cost deltas and the score gained per extra device-hour."""
    costs = _row_costs(efficiency, row_keys)
    records = []
    for kind, row, reference in comparisons(replicates.rows, row_keys):
        cost = {}
        for column, name in COSTS.items():
            a = costs[column].get(row, np.nan) if row in costs.index else np.nan
            b = costs[column].get(reference, np.nan) if reference in costs.index else np.nan
            cost[name] = a - b
        cost["d_device_h"] /= 3600
        for target in [*targets, replicates.benchmark]:
            diff = replicates.difference(row, reference, target)
            if diff is None:
                continue
            per_hour = diff["delta"] / cost["d_device_h"] if cost["d_device_h"] > 0 else np.nan
            records.append({"comparison": kind, "row": row_name(replicates.rows[row]),
                            "reference": row_name(replicates.rows[reference]), "target": target, **diff, **cost,
                            "gain_per_device_h": per_hour})
    frame = pd.DataFrame(records, columns=[c for c in COLUMNS if c not in ("p_adjusted", "significant")])
    frame["p_adjusted"] = adjust(frame.p.to_numpy()) if len(frame) else []
    frame["significant"] = frame.p_adjusted < ALPHA
    return frame.reindex(columns=COLUMNS)


def tradeoff_markdown(table: pd.DataFrame, benchmark: str = XTREME_BENCHMARK.name) -> str:
    """tradeoff.md: the rows of the benchmark score (XTREME's by default), a readable subset of the columns."""
    rows, name = table[table.target == benchmark], benchmark.upper()
    if rows.empty:
        return (f"No comparison has an {name} score on both sides (every seed of both rows needs all "
                f"{len(get_benchmark(benchmark).tasks)} tasks).\n")
    shown = pd.DataFrame({
        "comparison": rows.comparison, "row": rows.row, "reference": rows.reference,
        f"{name} delta [95% CI]": [interval_text(*v) for v in zip(rows.delta, rows.low, rows.high)],
        "p (BH)": [f"{p:.3g}" for p in rows.p_adjusted], "significant": rows.significant.map({True: "yes",
                                                                                             False: "no"}),
        "seeds": rows.n_seeds, "delta device-h": rows.d_device_h.round(4),
        "delta useful FLOPs": rows.d_useful_flops.map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
        "delta energy (J)": rows.d_energy_j.map(lambda v: "" if pd.isna(v) else f"{v:.3g}"),
        "delta peak memory (MiB)": (rows.d_peak_memory_bytes / 2**20).round(1),
        "points per extra device-h": rows.gain_per_device_h.round(3)})
    return shown.astype(object).where(shown.notna(), "").to_markdown(index=False) + "\n"


def efficiency_points(significance: pd.DataFrame, efficiency: pd.DataFrame, row_keys: list[str],
                      benchmark: str = XTREME_BENCHMARK.name) -> pd.DataFrame:
    """The efficiency plot's points: every row's benchmark-score delta to its baseline with interval, `filled`
    when significant, x = its intermediate-phase FLOPs and device-hours (mean over seeds); each baseline at
    (0, 0, filled)."""
    from xstilts.grid import NONE

    rows = significance[significance.target == benchmark]
    inter = efficiency[efficiency.phase == "intermediate"] if len(efficiency) else efficiency
    cost = inter[row_keys].assign(flops=pd.to_numeric(inter.useful_flops, errors="coerce"),
                                  device_h=pd.to_numeric(inter.device_s, errors="coerce") / 3600)
    cost = cost.groupby(row_keys, as_index=False)[["flops", "device_h"]].mean()
    points = rows[[*row_keys, "label", "delta", "low", "high", "significant", "n_seeds"]].merge(
        cost, on=row_keys, how="inner").rename(columns={"delta": "gain"})
    points["filled"] = points.pop("significant").astype(bool)
    bases = rows[["backbone", "adaptation", "baseline", "n_seeds"]].drop_duplicates(["backbone", "adaptation"])
    bases = bases.rename(columns={"baseline": "label"}).assign(
        intermediate=NONE, variant="en", gain=0.0, low=0.0, high=0.0, filled=True, flops=0.0, device_h=0.0)
    return pd.concat([bases.reindex(columns=points.columns), points], ignore_index=True)
