"""summary/findings.md: one paragraph answering the research question, written from this run's numbers.

Which rows are significantly better (or worse) than their baseline on the XTREME score, which multilingual
variant is worth its cost (significantly above its English-only counterpart, and at what price per point),
what LoRA costs against full fine-tuning, and the dev-selected headline row. Every number comes from
significance.csv, tradeoff.csv and headline.csv; the rules are in docs/metrics.md, "Findings".
"""

from __future__ import annotations

import pandas as pd

from xstilts.registry import XTREME_BENCHMARK, get_benchmark
from xstilts.uncertainty import interval_text


def _ci(row) -> str:
    return interval_text(row.delta, row.low, row.high)


def _names(rows: pd.DataFrame) -> str:
    several = rows[["backbone", "adaptation"]].drop_duplicates().shape[0] > 1
    return "; ".join(f"{f'{r.backbone}/{r.adaptation} ' if several else ''}{r.label} {_ci(r)}"
                     for r in rows.itertuples())


def _rest(n: int) -> str:
    return "" if not n else f" {n} other{' is' if n == 1 else 's are'} not significantly different."


def paragraph(significance: pd.DataFrame, tradeoff: pd.DataFrame, headline: pd.DataFrame,
              planted: pd.DataFrame | None = None, benchmark: str = XTREME_BENCHMARK.name) -> str:
    """The paragraph (Markdown) about the score of `benchmark` (XTREME's by default): sentences only for what the
    run can say; on synthetic data, how much of the transfer plan it recovered (`planted`: planted.csv,
    xstilts.plan)."""
    parts, name, n_tasks = [], benchmark.upper(), len(get_benchmark(benchmark).tasks)
    xt = significance[significance.target == benchmark]
    seeds = sorted(set(significance.n_seeds.dropna().astype(int))) if len(significance) else []
    if xt.empty:
        parts.append(f"No row has an {name} score on all {n_tasks} targets next to its baseline yet, so the run "
                     "cannot say what the intermediate stage buys.")
    else:
        better = xt[xt.significant.astype(bool) & (xt.delta > 0)].sort_values("delta", ascending=False)
        worse = xt[xt.significant.astype(bool) & (xt.delta < 0)].sort_values("delta")
        parts.append(f"Against the `none` baseline, {len(better)} of {len(xt)} rows are significantly better on "
                     f"the {name} score (paired bootstrap, Benjamini-Hochberg over all {len(significance)} "
                     f"comparisons, 5%)" + (f": {_names(better)} points" if len(better) else "") + "."
                     + (f" Significantly worse: {_names(worse)}." if len(worse) else "")
                     + _rest(len(xt) - len(better) - len(worse)))
    multi = tradeoff[(tradeoff.comparison == "multilingual") & (tradeoff.target == benchmark)] if len(tradeoff) else \
        tradeoff
    for r in multi.itertuples():
        cost = ("" if pd.isna(r.d_device_h) else f" for {r.d_device_h:+.3g} device-hours"
                + ("" if pd.isna(r.gain_per_device_h) else f" ({r.gain_per_device_h:+.3g} points per extra hour)"))
        verdict = ("significantly better, so worth its cost if that price per point is"
                   if r.significant and r.delta > 0 else
                   "not worth its cost: it is significantly worse" if r.significant else
                   "not worth its cost on this evidence: no significant difference")
        parts.append(f"{r.row} vs {r.reference}: {_ci(r)} {name} points{cost}; {verdict}.")
    lora = tradeoff[(tradeoff.comparison == "adaptation") & (tradeoff.target == benchmark)] if len(tradeoff) else \
        tradeoff
    if len(lora):
        parts.append("LoRA against full fine-tuning: " + "; ".join(
            f"{r.row} {_ci(r)} points{'' if r.significant else ' (n.s.)'}"
            + ("" if pd.isna(r.d_device_h) else f", {r.d_device_h:+.3g} device-hours") for r in lora.itertuples())
            + ".")
    head = headline[headline.target == benchmark] if len(headline) else headline
    paper = " (the paper: +5.4 for XLM-R Large)" if benchmark == XTREME_BENCHMARK.name else ""
    for r in head.itertuples():
        if pd.notna(r.delta):
            parts.append(f"Choosing the intermediate task per target on English dev ({r.backbone}/{r.adaptation}) "
                         f"gives {name} {r.estimate:.2f}, {interval_text(r.delta, r.delta_low, r.delta_high)} "
                         f"over `none`{paper}.")
    if seeds:
        n = seeds[0] if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
        parts.append(f"Intervals are 95% over test examples and {n} seed{'' if n == 1 else 's'}"
                     + (" (one seed: they cover test-set sampling only, not training randomness)." if n == 1
                        else "."))
    gaps = coverage(benchmark)
    if gaps:
        parts.append(f"{name}'s own language lists are longer than what the registry reads for "
                     + "; ".join(f"{t} ({have} of {want}: no source for {' '.join(missing)})"
                                 for t, (have, want, missing) in gaps.items())
                     + f", so these task scores, and the {name} score, cover fewer languages than {name}'s "
                       "(docs/data.md, 'XTREME-R sources').")
    if planted is not None:
        from xstilts.plan import recovery_line

        parts.append(recovery_line(planted))
    return " ".join(parts) + "\n"


def coverage(benchmark: str) -> dict[str, tuple[int, int, tuple[str, ...]]]:
    """Per task of `benchmark` with languages no registered source reads: (readable, the benchmark's, missing)."""
    b = get_benchmark(benchmark)
    out = {}
    for task in b.tasks:
        missing = b.unreadable_languages(task)
        if missing:
            out[task] = (len(b.languages_of(task)) - len(missing), len(b.languages_of(task)), missing)
    return out
