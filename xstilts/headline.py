"""The paper's headline row: per target, the intermediate task chosen on English dev, and its XTREME score.

Phang et al. report the XTREME score of "the best intermediate model per target" (+5.4 over XLM-R Large).
Here the choice reads dev only, never test (docs/metrics.md, "Headline row"):
- the target's own English dev score (scores.parquet, split `dev`, language `en`, the selection metric of
  `TaskKind.selection_metric`) where the target has one;
- else the fine-tuning job's `dev.json` (`best_dev`: English dev of the target's training task, e.g. SQuAD
  v1.1 dev for XQuAD);
- BUCC: its dev ("sample") score over languages (there is no English side to score alone);
- Tatoeba has no dev split: it takes BUCC's choice (the other retrieval task, same encoder).
Candidates: every English-only intermediate row (the 9 tasks and multitask; not `none`, not the multilingual
variants), per backbone and adaptation; ties keep the first row in grid order. The headline XTREME score is
the mean over the 9 targets of each chosen row's test score; its interval and its delta to `none` use the
shared paired replicates (xstilts.uncertainty).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.errors import DataError
from xstilts.io import read_json
from xstilts.registry import get_benchmark, get_task, target_tasks
from xstilts.uncertainty import Replicates, baseline_of

COLUMNS = ["backbone", "adaptation", "target", "chosen", "selected_on", "dev_score", "estimate", "low", "high",
           "delta", "delta_low", "delta_high", "p", "n_seeds"]
NO_DEV_FALLBACK = {"tatoeba": "bucc2018"}  # a target without any dev split takes this target's choice


def dev_scores(scores: pd.DataFrame, results: Path, cells: list[dict], jobs: dict[str, dict],
               row_keys: list[str]) -> pd.DataFrame:
    """One row per (row, seed, target) with a dev score: `dev_score` and where it comes from (`selected_on`)."""
    from xstilts import kinds
    from xstilts.aggregate import AVERAGE

    dev = scores[scores.split == "dev"]
    by_cell = {key: dict(zip(group.metric, group.value))
               for key, group in dev.groupby([*row_keys, "seed", "target", "language"], sort=False)}
    records = []
    for cell in cells:
        task = get_task(cell["target"])
        key = (*(cell[k] for k in row_keys), cell["seed"], cell["target"])
        value, source = None, None
        if task.retrieval and (*key, AVERAGE) in by_cell:  # no English side to score alone
            value, source = by_cell[(*key, AVERAGE)].get("score"), f"{task.name} dev, all languages"
        elif not task.retrieval and (*key, "en") in by_cell:
            try:
                value = kinds.of(task).selection_score(task, by_cell[(*key, "en")])
            except KeyError:
                value = None
            source = f"{task.name} English dev ({kinds.of(task).selection_metric(task)})"
        if value is None:
            value, source = _finetune_dev(results, cell, jobs)
        if value is not None:
            records.append({**{k: cell[k] for k in [*row_keys, "label", "seed", "target"]}, "dev_score": value,
                            "selected_on": source})
    return pd.DataFrame(records, columns=[*row_keys, "label", "seed", "target", "dev_score", "selected_on"])


def _finetune_dev(results: Path, cell: dict, jobs: dict[str, dict]):
    """`best_dev` of the cell's fine-tuning job (English dev of its training task), or (None, None)."""
    for path in cell["chain"]:
        job = jobs.get(path, {})
        if job.get("phase") != "finetune" or not (results / path / "dev.json").exists():
            continue
        try:
            doc = read_json(results / path / "dev.json")
        except ValueError as e:
            raise DataError(f"not valid JSON ({e})", file=str(results / path / "dev.json")) from None
        if isinstance(doc.get("best_dev"), (int, float)):
            return float(doc["best_dev"]), f"{job.get('train_task')} English dev ({doc.get('metric')}, dev.json)"
    return None, None


def choose(dev: pd.DataFrame, row_keys: list[str]) -> dict[tuple, dict]:
    """(backbone, adaptation, target) -> {row, label, dev_score, selected_on}: the best candidate on dev
    (mean over its seeds); Tatoeba takes BUCC's choice."""
    from xstilts.grid import NONE

    candidates = dev[(dev.intermediate != NONE) & (dev.variant == "en")]
    means = candidates.groupby([*row_keys, "label", "target"], sort=False).agg(
        dev_score=("dev_score", "mean"), selected_on=("selected_on", "first")).reset_index()
    chosen = {}
    for (backbone, adaptation, target), group in means.groupby(["backbone", "adaptation", "target"], sort=False):
        best = group.iloc[int(np.argmax(group.dev_score.to_numpy()))]
        chosen[(backbone, adaptation, target)] = {"row": tuple(best[k] for k in row_keys), "label": best.label,
                                                  "dev_score": best.dev_score, "selected_on": best.selected_on}
    for target, source in NO_DEV_FALLBACK.items():
        for (backbone, adaptation, t), pick in list(chosen.items()):
            if t == source and (backbone, adaptation, target) not in chosen:
                chosen[(backbone, adaptation, target)] = {
                    **pick, "dev_score": np.nan, "selected_on": f"{source}'s choice ({target} has no dev split)"}
    return chosen


def headline_table(replicates: Replicates, dev: pd.DataFrame, row_keys: list[str]) -> pd.DataFrame:
    """headline.csv: per backbone and adaptation, each target's chosen row with its test score, and the
    benchmark score of the choices (XTREME's, or the experiment's benchmark: `replicates.benchmark`), each with
    its interval and paired delta to `none`."""
    chosen = choose(dev, row_keys)
    records = []
    for backbone, adaptation in dict.fromkeys((b, a) for b, a, _ in chosen):
        picks = {t: chosen.get((backbone, adaptation, t)) for t in target_tasks()}
        for target, pick in picks.items():
            if pick is None:
                continue
            value = replicates.estimate(pick["row"], target) or {}
            diff = _vs_baseline(replicates, {target: pick["row"]}, row_keys) or {}
            records.append({"backbone": backbone, "adaptation": adaptation, "target": target, "chosen": pick["label"],
                            "selected_on": pick["selected_on"], "dev_score": pick["dev_score"], **value,
                            **{f"delta{s}": diff.get(k) for s, k in (("", "delta"), ("_low", "low"),
                                                                      ("_high", "high"))}, "p": diff.get("p")})
        # any other target is not part of it
        bench_picks = {t: picks.get(t) for t in get_benchmark(replicates.benchmark).tasks}
        if all(bench_picks.values()):
            overall = _combined(replicates, {t: p["row"] for t, p in bench_picks.items()}, row_keys)
            if overall is not None:
                records.append({"backbone": backbone, "adaptation": adaptation, "target": replicates.benchmark,
                                "chosen": "best per target (dev)", "selected_on": "per target, above", **overall})
    return pd.DataFrame(records).reindex(columns=COLUMNS)


def _vs_baseline(replicates: Replicates, rows: dict[str, tuple], row_keys: list[str]) -> dict | None:
    """Mean over `rows`' targets of each chosen row minus its `none` row, paired, over common seeds."""
    n = len(rows)
    out = replicates.contrast([(1 / n, r, t) for t, r in rows.items()]
                              + [(-1 / n, baseline_of(replicates.rows[r], row_keys), t) for t, r in rows.items()])
    return None if out is None else {"delta": out.pop("estimate"), **out}


def _combined(replicates: Replicates, rows: dict[str, tuple], row_keys: list[str]) -> dict | None:
    """The XTREME score of the choices (mean over targets of each chosen row's test score) and its delta."""
    overall = replicates.contrast([(1 / len(rows), r, t) for t, r in rows.items()])
    if overall is None:
        return None
    diff = _vs_baseline(replicates, rows, row_keys) or {}
    return {"estimate": overall["estimate"], "low": overall["low"], "high": overall["high"],
            "delta": diff.get("delta"), "delta_low": diff.get("low"), "delta_high": diff.get("high"),
            "p": diff.get("p"), "n_seeds": overall["n_seeds"]}
