"""`xstilts aggregate`: the summary of an experiment from whatever cells have finished.

Reads the expected cells and jobs (`cells.json`, written from `xstilts.grid.cells`), every cell's
`metrics.json` and every job's `cost.json` that exist, and writes the long score table, the transfer matrix
(mean and std over seeds), deltas against the `none` baseline, the efficiency table, the missing cells
with a reason, two plots, and on synthetic data the planted transfers (planted.csv, xstilts.plan). A
missing or broken cell is listed in missing.csv and never stops the summary; the benchmark score of a row (the
config's `benchmark`, XTREME by default) stays empty unless every one of its tasks has a score
(`xstilts.metrics.benchmark_score`), since an average over fewer tasks is not the benchmark's score.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts import findings
from xstilts.errors import DataError
from xstilts.io import atomic_path, read_json, write_parquet, write_text
from xstilts.registry import XTREME_BENCHMARK, get_benchmark

ROW_KEYS = ["backbone", "adaptation", "intermediate", "variant"]
SETTING_KEYS = ["backbone", "adaptation", "label"]  # a transfer-matrix row (seeds averaged)
SCORE_COLUMNS = ["backbone", "adaptation", "intermediate", "variant", "seed", "target", "split", "language",
                 "metric", "value"]
# Scored splits and the suffix of their summary files: test keeps the historical names (transfer_matrix.csv).
SPLITS = {"test": "", "dev": "_dev"}
# a training job's in-loop English dev evaluations (accounting.DevEvalCounter): part of its wall_s, not of its
# training tokens/FLOPs; the row totals sum them like every additive field
DEV_EVAL = ["dev_eval_useful_tokens", "dev_eval_executed_tokens", "dev_eval_useful_flops", "dev_eval_executed_flops",
            "dev_eval_s", "dev_eval_runs"]
COST_FIELDS = ["wall_s", "device", "device_count", "device_s", "useful_tokens", "executed_tokens",
               "useful_flops", "executed_flops", "peak_memory_bytes", "peak_memory_kind", "energy_j",
               "trainable_params", "total_params", "examples", "steps", *DEV_EVAL]
ADDITIVE = ["wall_s", "device_s", "useful_tokens", "executed_tokens", "useful_flops", "executed_flops",
            "energy_j", "examples", "steps", *DEV_EVAL]
AVERAGE = "average"  # the `language` of a task's unweighted mean over languages (and of its score)
XTREME = XTREME_BENCHMARK.name  # the XTREME score's column and target label: the name of its benchmark


def benchmark_of(cells_doc: dict) -> str:
    """The experiment's benchmark (cells.json `benchmark`, config `benchmark`): its score is the summary's
    benchmark column (named after it); XTREME for a cells.json written before the key existed."""
    return get_benchmark(cells_doc.get("benchmark", XTREME)).name


# ------------------------------------------------------------------------------------------- reading
def _read_cells(path: Path) -> dict:
    try:
        doc = read_json(path)
    except FileNotFoundError:
        raise DataError("no such file; the workflow's `cells` rule writes it", file=str(path)) from None
    except ValueError as e:
        raise DataError(f"not valid JSON ({e})", file=str(path)) from None
    for key in ("targets", "jobs", "cells"):
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
            raise DataError("expected a JSON object with lists `targets`, `jobs` and `cells` (xstilts.grid.cells)",
                            file=str(path), field=key)
    return doc


def _read_metrics(path: Path) -> dict:
    """A cell's metrics; raises DataError (reported in missing.csv, not fatal) when the file is unusable."""
    try:
        doc = read_json(path)
    except ValueError as e:
        raise DataError(f"not valid JSON ({e})", file=str(path)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("score"), (int, float)):
        raise DataError("expected a number under `score`", file=str(path), field="score")
    if not isinstance(doc.get("languages"), dict):
        raise DataError("expected an object of per-language metrics under `languages`", file=str(path),
                        field="languages")
    return doc


def _last_line(log: Path) -> str:
    lines = [x.strip() for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    return lines[-1] if lines else "(empty log)"


def _missing_reason(results: Path, cell: dict, jobs: dict[str, dict]) -> str:
    """Why a cell has no metrics: the first job of its chain without output, and its log's last line. Before
    blaming the cell's own job, the other inputs of that job (`waits_on`: the row's other fine-tuned models,
    which its evaluation job reads too) are checked the same way."""
    for path in cell["chain"]:
        job = jobs.get(path, {"phase": cell["phase"], "log": None})
        if (results / path / "cost.json").exists() and (path != cell["path"] or
                                                        (results / path / "metrics.json").exists()):
            continue
        if path == cell["path"]:
            for other in cell.get("waits_on", []):
                if not (results / other / "cost.json").exists():
                    return (_job_reason(results, other, jobs.get(other, {"phase": "finetune", "log": None}), True)
                            + f"; the row's {cell['phase']} job needs it too")
        return _job_reason(results, path, job, path != cell["path"])
    return "no output"


def _job_reason(results: Path, path: str, job: dict, upstream: bool) -> str:
    log = results / job["log"] if job.get("log") else None
    if log is not None and log.exists():
        return f"{job['phase']} failed ({job['log']}): {_last_line(log)}"
    return f"no output from {job['phase']} ({path})" + (", upstream" if upstream else "")


# ------------------------------------------------------------------------------------------- tables
def _score_rows(cell: dict, metrics: dict) -> list[dict]:
    """Long rows of one cell: test from metrics.json's top level, dev from its `dev` object when present."""
    out = []
    for split, doc in (("test", metrics), ("dev", metrics.get("dev"))):
        if not isinstance(doc, dict) or not isinstance(doc.get("score"), (int, float)):
            continue  # no dev labels for this target (XQuAD, Tatoeba) or an older metrics.json
        base = {**{k: cell[k] for k in ("backbone", "adaptation", "intermediate", "variant", "seed", "target")},
                "split": split}
        out += [{**base, "language": lang, "metric": name, "value": float(value)}
                for lang, values in (doc.get("languages") or {}).items() for name, value in values.items()]
        out += [{**base, "language": AVERAGE, "metric": name, "value": float(value)}
                for name, value in (doc.get("average") or {}).items()]
        out.append({**base, "language": AVERAGE, "metric": "score", "value": float(doc["score"])})
    return out


def _per_seed(cells_doc: dict, scores: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per expected (row, seed): the task scores of the configured targets on `split` and the
    benchmark score (on dev always empty: XQuAD and Tatoeba have no dev split)."""
    from xstilts.metrics import benchmark_score

    targets, bench = cells_doc["targets"], benchmark_of(cells_doc)
    rows = pd.DataFrame([{k: c[k] for k in [*ROW_KEYS, "seed", "label"]} for c in cells_doc["cells"]])
    rows = rows.drop_duplicates(ignore_index=True)
    task = scores[(scores.language == AVERAGE) & (scores.metric == "score") & (scores.split == split)]
    wide = task.pivot_table(index=[*ROW_KEYS, "seed"], columns="target", values="value", aggfunc="first")
    table = rows.merge(wide.reset_index(), on=[*ROW_KEYS, "seed"], how="left").reindex(
        columns=[*ROW_KEYS, "seed", "label", *targets])
    xt = [benchmark_score({t: r[t] for t in targets if pd.notna(r[t])}, bench) for _, r in table.iterrows()]
    table[bench] = pd.Series([np.nan if x is None else float(x) for x in xt], index=table.index, dtype=float)
    return table


def _over_seeds(per_seed: pd.DataFrame, targets: list[str], how: str, bench: str = XTREME) -> pd.DataFrame:
    """Mean or std over seeds per setting, in grid order. Targets use the seeds that have a score; the
    benchmark column is empty unless every seed of the setting has a complete benchmark score."""
    groups = per_seed.groupby(SETTING_KEYS, sort=False)
    out = getattr(groups[targets], how)()
    out[bench] = groups[bench].agg(_every_seed(how))
    return out.reset_index()


def _every_seed(how: str):
    """An aggregation over seeds that is NaN unless every seed has a value (for XTREME scores)."""
    return lambda values: getattr(values, how)() if values.notna().all() else np.nan


def _deltas(per_seed: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per-seed difference to the `none` row (English, same backbone, adaptation and seed)."""
    base = per_seed[(per_seed.intermediate == "none") & (per_seed.variant == "en")]
    base = base.set_index(["backbone", "adaptation", "seed"])[columns]
    key = pd.MultiIndex.from_frame(per_seed[["backbone", "adaptation", "seed"]])
    diff = per_seed[columns].to_numpy() - base.reindex(key).to_numpy()
    return per_seed.drop(columns=columns).assign(**dict(zip(columns, diff.T)))


def _efficiency(results: Path, cells_doc: dict) -> pd.DataFrame:
    """One row per job with a cost record, then one `row_total` per grid row (sums; peak memory: max)."""
    records = []
    for job in cells_doc["jobs"]:
        path = results / job["path"] / "cost.json"
        if not path.exists():
            continue
        cost = read_json(path)
        records.append({"phase": job["phase"], **{k: job[k] for k in [*ROW_KEYS, "seed", "label"]},
                        "task": job.get("target") or job.get("train_task") or job.get("tasks"),
                        "path": job["path"], **{k: cost.get(k) for k in COST_FIELDS}})
    columns = ["phase", *ROW_KEYS, "seed", "label", "task", "path", *COST_FIELDS]
    jobs = pd.DataFrame(records, columns=columns)
    if jobs.empty:
        return jobs
    keys = [*ROW_KEYS, "seed", "label"]
    summed = {c: (lambda s: s.sum(min_count=1)) for c in ADDITIVE}
    totals = jobs[keys].join(jobs[[*ADDITIVE, "peak_memory_bytes"]].apply(pd.to_numeric, errors="coerce"))
    totals = totals.groupby(keys, sort=False).agg({**summed, "peak_memory_bytes": "max"}).reset_index()
    return pd.concat([jobs, totals.assign(phase="row_total").reindex(columns=columns)], ignore_index=True)


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub table with one decimal; empty where there is no value (tabulate blanks None, not NaN)."""
    blanked = frame.astype(object).where(frame.notna(), None)
    return blanked.to_markdown(index=False, floatfmt=".1f", missingval="") + "\n"


def _plain(x: float) -> str:
    """A float as plain decimals, never `1.26016e+06`: integers in full, at most 6 decimals, shortest form."""
    return np.format_float_positional(x, precision=6, unique=True, fractional=True, trim="-")


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False, float_format=_plain))


def _uncertainty(results: Path, cells_doc: dict, scored: dict[str, dict], out: Path):
    """intervals.csv and significance.csv from the scored cells' test predictions (xstilts.uncertainty;
    docs/metrics.md, "Uncertainty"); returns the replicates and the significance table."""
    from xstilts import uncertainty

    replicates = uncertainty.collect(results, cells_doc["cells"], ROW_KEYS,
                                     lambda cell: list((scored.get(cell["path"]) or {}).get("languages") or []),
                                     benchmark=benchmark_of(cells_doc))
    if replicates.skipped:
        path, reason = replicates.skipped[0]
        print(f"aggregate: {len(replicates.skipped)} scored cells have no readable test predictions, so no "
              f"interval (first: {path}: {reason})")
    _write_csv(out / "intervals.csv", uncertainty.intervals_table(replicates, cells_doc["targets"], ROW_KEYS))
    significance = uncertainty.significance_table(replicates, cells_doc["targets"], ROW_KEYS)
    _write_csv(out / "significance.csv", significance)
    return replicates, significance


def _tradeoff(replicates, efficiency: pd.DataFrame, targets: list[str], out: Path) -> pd.DataFrame:
    """tradeoff.csv and tradeoff.md (xstilts.tradeoff; docs/metrics.md, "Tradeoff")."""
    from xstilts import tradeoff

    table = tradeoff.tradeoff_table(replicates, efficiency, targets, ROW_KEYS)
    _write_csv(out / "tradeoff.csv", table)
    write_text(out / "tradeoff.md", tradeoff.tradeoff_markdown(table, replicates.benchmark))
    return table


def _headline(replicates, scores: pd.DataFrame, results: Path, cells_doc: dict, out: Path) -> pd.DataFrame:
    """headline.csv/.md: per target the intermediate chosen on English dev, and its benchmark score
    (xstilts.headline; docs/metrics.md, "Headline row")."""
    from xstilts import headline

    jobs = {j["path"]: j for j in cells_doc["jobs"]}
    dev = headline.dev_scores(scores, results, cells_doc["cells"], jobs, ROW_KEYS)
    table = headline.headline_table(replicates, dev, ROW_KEYS)
    _write_csv(out / "headline.csv", table)
    write_text(out / "headline.md", _markdown(table.drop(columns=["p"])))
    return table


def _planted(replicates, cells_doc: dict, out: Path) -> pd.DataFrame | None:
    """planted.csv/.md on synthetic data (cells.json `synth`): each planted transfer of xstilts.plan with its
    paired delta and whether it was recovered (docs/metrics.md, "Planted transfers"); None (and any earlier
    planted files removed) otherwise."""
    from xstilts import plan

    if not cells_doc.get("synth"):
        for name in ("planted.csv", "planted.md"):
            (out / name).unlink(missing_ok=True)
        return None
    table = plan.planted_table(replicates, cells_doc["targets"], plan.members_of(cells_doc["jobs"]), ROW_KEYS)
    _write_csv(out / "planted.csv", table)
    write_text(out / "planted.md", plan.planted_markdown(table))
    print(f"aggregate: {plan.recovery_line(table)}")
    return table


def _claims(replicates, significance: pd.DataFrame, trade: pd.DataFrame, head: pd.DataFrame, out: Path) -> None:
    """claims.csv/.md: the paper's claims tested on this run (the claims table is xstilts.claims.CLAIMS)."""
    from xstilts import claims

    table = claims.evaluate(replicates, significance, trade, head, ROW_KEYS)
    _write_csv(out / "claims.csv", table)
    write_text(out / "claims.md", claims.claims_markdown(table))


# ------------------------------------------------------------------------------------------- plots
def _setting_names(frame: pd.DataFrame) -> list[str]:
    multi = frame[["backbone", "adaptation"]].drop_duplicates().shape[0] > 1
    return [f"{r.backbone}/{r.adaptation}: {r.label}" if multi else r.label for r in frame.itertuples()]


def _plot_delta(path: Path, delta: pd.DataFrame, columns: list[str], significance: pd.DataFrame,
                planted: set | None = None) -> None:
    """The transfer-delta heatmap; a boxed cell with `*` differs significantly from its baseline (BH); on
    synthetic data a green inner box marks the cells the transfer plan makes positive (`planted`:
    (backbone, adaptation, label, target); xstilts.plan.positive_cells), to compare with the stars."""
    from xstilts.uncertainty import ALPHA

    plt = _pyplot()
    values = delta[columns].to_numpy(dtype=float)
    names = _setting_names(delta)
    marked = {tuple(r) for r in significance.loc[significance.significant.astype(bool),
                                                 [*SETTING_KEYS, "target"]].itertuples(index=False)}
    span = np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(columns), 1.0 + 0.4 * len(names)), layout="constrained")
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu", vmin=-span or -1, vmax=span or 1, aspect="auto")
    settings = delta[SETTING_KEYS].itertuples(index=False)
    for i, setting in enumerate(settings):
        for j, column in enumerate(columns):
            v, star = values[i, j], (*setting, column) in marked
            ax.text(j, i, "" if math.isnan(v) else f"{v:+.1f}{'*' if star else ''}", ha="center", va="center",
                    fontsize=7, fontweight="bold" if star else "normal")
            if star:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.2))
            if planted is not None and (*setting, column) in planted:
                ax.add_patch(plt.Rectangle((j - 0.4, i - 0.36), 0.8, 0.72, fill=False, edgecolor="tab:green",
                                           linewidth=1.5))
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_title(f"Score difference to no intermediate task (mean over {_seeds_text(significance)};\n"
                 f"* boxed: significant, paired bootstrap, BH-adjusted p < {ALPHA:g}"
                 + (";\ngreen inner box: planted positive of the synthetic data's transfer plan)" if planted is not None
                    else ")"), fontsize=9)
    fig.colorbar(image, ax=ax, label="points")
    _save(fig, path)


def _seeds_text(frame: pd.DataFrame) -> str:
    counts = sorted(set(frame.n_seeds.dropna().astype(int))) if len(frame) else []
    if not counts:
        return "seeds"
    n = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{n} seed{'' if n == '1' else 's'}"


def _plot_efficiency(path: Path, significance: pd.DataFrame, efficiency: pd.DataFrame, bench: str = XTREME) -> None:
    """x: intermediate-phase FLOPs and device-hours (symlog, so each `none` baseline sits at zero cost); y: the
    benchmark score's delta to that baseline with its 95% interval; hollow = not significant (BH); one Pareto
    frontier per backbone and adaptation, since LoRA and full fine-tuning gains are measured against different
    baselines."""
    plt = _pyplot()
    from xstilts.grid import ADAPTATIONS
    from xstilts.tradeoff import efficiency_points

    points = efficiency_points(significance, efficiency, ROW_KEYS, bench)
    several = points.backbone.nunique() > 1
    colors = dict(zip(ADAPTATIONS, ("tab:blue", "tab:orange")))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True, layout="constrained")
    for ax, x, title in ((axes[0], "flops", "intermediate-phase FLOPs (useful)"),
                         (axes[1], "device_h", "intermediate-phase device-hours")):
        usable = points[points[x].notna()]
        if usable[usable[x] > 0].empty:
            ax.text(0.5, 0.5, f"no row has both a complete {bench.upper()} score\nand an intermediate cost record",
                    ha="center", va="center", transform=ax.transAxes)
        for (backbone, adaptation), group in usable.groupby(["backbone", "adaptation"], sort=False):
            color = colors.get(adaptation, "tab:grey")
            name = f"{backbone}/{adaptation}" if several else adaptation
            for multilingual, part in group.groupby(group.variant != "en"):
                for filled, sub in part.groupby("filled"):
                    ax.errorbar(sub[x], sub.gain, yerr=[sub.gain - sub.low, sub.high - sub.gain], capsize=3,
                                fmt="D" if multilingual else "o", color=color, linestyle="none",
                                markerfacecolor=color if filled else "none",
                                label=f"{name}, {'multilingual' if multilingual else 'English-only'}"
                                      f"{'' if filled else ' (n.s.)'}")
            frontier = _pareto(group[[x, "gain"]].to_numpy())
            if len(frontier):
                ax.step(frontier[:, 0], frontier[:, 1], where="post", color=color, linewidth=1, alpha=0.6,
                        label=f"frontier: {name}")
        for row in usable.itertuples():
            ax.annotate(row.label, (getattr(row, x), row.gain), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        positive = usable[x][usable[x] > 0]
        if len(positive):
            ax.set_xscale("symlog", linthresh=float(positive.min()))
            ax.legend(fontsize=6)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set_xlabel(title)
    axes[0].set_ylabel(f"{bench.upper()} score - its baseline (points; 95% CI)")
    fig.suptitle(f"What the intermediate stage costs and buys (mean over {_seeds_text(points)}; "
                 f"hollow: not significant)")
    _save(fig, path)


def _pareto(points: np.ndarray) -> np.ndarray:
    """The points no other point beats with lower-or-equal cost and higher gain, by increasing cost."""
    best, out = -math.inf, []
    for cost, gain in sorted(map(tuple, points), key=lambda p: (p[0], -p[1])):
        if gain > best:
            out.append((cost, gain))
            best = gain
    return np.array(out)


def _pyplot():
    """matplotlib's pyplot on the Agg backend (cluster nodes have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    _pyplot().close(fig)


# ------------------------------------------------------------------------------------------- main
def main(args) -> int:
    """The `xstilts aggregate` verb: --results DIR --cells CELLS.json --out SUMMARY_DIR."""
    from xstilts import plan

    results, out = Path(args.results), Path(args.out)
    cells_doc = _read_cells(Path(args.cells))
    jobs = {j["path"]: j for j in cells_doc["jobs"]}
    score_rows, missing, scored = [], [], {}
    for cell in cells_doc["cells"]:
        metrics_path = results / cell["path"] / "metrics.json"
        try:
            metrics = _read_metrics(metrics_path) if metrics_path.exists() else None
        except DataError as e:
            metrics, reason = None, f"unusable metrics: {e}"
        else:
            reason = None if metrics else _missing_reason(results, cell, jobs)
        if metrics is None:
            missing.append({**{k: cell[k] for k in [*ROW_KEYS, "seed", "target"]}, "path": cell["path"],
                            "reason": reason})
        else:
            score_rows += _score_rows(cell, metrics)
            scored[cell["path"]] = metrics

    scores = pd.DataFrame(score_rows, columns=SCORE_COLUMNS)
    write_parquet(out / "scores.parquet", _arrow(scores))
    targets, bench = cells_doc["targets"], benchmark_of(cells_doc)
    columns = [*targets, bench]
    for split, suffix in SPLITS.items():  # one set of matrices per split; plots below are of test
        per_seed = _per_seed(cells_doc, scores, split)
        matrix = _over_seeds(per_seed, targets, "mean", bench)
        write_text(out / f"transfer_matrix{suffix}.md", _markdown(matrix))
        _write_csv(out / f"transfer_matrix{suffix}.csv", matrix)
        _write_csv(out / f"transfer_matrix_std{suffix}.csv", _over_seeds(per_seed, targets, "std", bench))
        split_deltas = _deltas(per_seed, columns)
        split_delta = _over_seeds(split_deltas, targets, "mean", bench)
        _write_csv(out / f"transfer_delta{suffix}.csv", split_delta)
        write_text(out / f"transfer_delta{suffix}.md", _markdown(split_delta))
        if split == "test":
            delta = split_delta
    efficiency = _efficiency(results, cells_doc)
    _write_csv(out / "efficiency.csv", efficiency)
    _write_csv(out / "missing.csv", pd.DataFrame(missing, columns=[*ROW_KEYS, "seed", "target", "path", "reason"]))
    replicates, significance = _uncertainty(results, cells_doc, scored, out)
    trade = _tradeoff(replicates, efficiency, targets, out)
    head = _headline(replicates, scores, results, cells_doc, out)
    _claims(replicates, significance, trade, head, out)
    planted = _planted(replicates, cells_doc, out)
    write_text(out / "findings.md", findings.paragraph(significance, trade, head, planted, bench))
    _plot_delta(out / "plots" / "transfer_delta.png", delta, columns, significance,
                plan.positive_cells(delta[SETTING_KEYS].itertuples(index=False, name=None), columns,
                                    cells_doc["cells"], cells_doc["jobs"], SETTING_KEYS)
                if planted is not None else None)
    _plot_efficiency(out / "plots" / "efficiency_vs_gain.png", significance, efficiency, bench)
    print(f"aggregate: {len(cells_doc['cells']) - len(missing)} of {len(cells_doc['cells'])} cells scored, "
          f"{len(missing)} missing (see {out / 'missing.csv'})")
    return 0


def _arrow(scores: pd.DataFrame):
    import pyarrow as pa

    return pa.Table.from_pandas(scores.astype({"seed": "int64", "value": "float64"}), preserve_index=False)
