"""Uncertainty of the summary: bootstrap intervals and paired tests, from the per-example predictions.

Every cell's predictions and gold labels (`predictions/<task>/test-<lang>.*`, `labels/...`, read by
`xstilts.evaluate.read_submission`) are reduced to per-example sufficient statistics (`Units`): a score over any
multiset of examples is `100 * sum(num) / sum(den)`. Means (accuracy, Tatoeba, QA's per-question (EM+F1)/2)
have den = 1; F1 scores that are not means (seqeval chunk F1 per sentence, BUCC per source sentence) have
num = 2 * correct, den = predicted + gold, so a resample recomputes the F1 exactly (the tests check it against
`metrics.seqeval_f1` and `metrics.bucc_scores` on resampled data).

Resampling is a two-way (crossed) bootstrap: seeds and test examples are crossed (every seed is scored on the
same test set), so a replicate draws ONE multiset of seeds (for the whole experiment) and ONE multiset of
examples per (target, language), and applies the example weights to every drawn seed. The same draws are
shared by every row, so the replicates of any two rows are paired (same examples, same seeds) and task and
XTREME replicates are means of language and task replicates of the same draw. Method: docs/metrics.md,
"Uncertainty".

Why not `scipy.stats.bootstrap`: it draws new resamples per call, so two cells' (or tasks') resamples could not
be shared, which the paired differences and the XTREME interval need, and it resamples one level only (no
crossed seeds x examples). The resampler here is a few lines of numpy (multinomial counts times sufficient
statistics, one matrix product per target and language); on one level it is the ordinary percentile bootstrap
and the tests compare it with scipy.stats.bootstrap(method="percentile").
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Iterable

import numpy as np

from xstilts.errors import DataError
from xstilts.registry import XTREME_BENCHMARK, get_benchmark, get_task

N_RESAMPLES = 1000  # enough for a 95% percentile interval; the demo summary stays cheap
LEVEL = 0.95
ALPHA = 0.05  # significant: BH-adjusted p below this
RANDOM_STATE = 0
@dataclass(frozen=True)
class Units:
    """One cell-language's examples as sufficient statistics; its score over a multiset of them is
    100 * sum(num) / sum(den). `ids` align examples across rows (row order for means, question ids for QA,
    source sentence ids for BUCC)."""

    ids: tuple
    num: np.ndarray
    den: np.ndarray

    @property
    def estimate(self) -> float:
        return float(_ratio(self.num.sum(), self.den.sum()))


def _ratio(num, den):
    """100 * num / den, 0 where den is 0 (no chunk or pair anywhere: F1 0, as seqeval and bucc_scores)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.where(den > 0, 100.0 * num / np.where(den > 0, den, 1.0), 0.0)


def units(task_name: str, lang: str, pred, gold) -> Units:
    """Sufficient statistics of one language from `read_submission`'s (predictions, gold), by the task's kind
    (xstilts.kinds: a hit per example, seqeval chunk counts per sentence, EM/F1 per question, BUCC pairs per
    source sentence)."""
    from xstilts import kinds

    task = get_task(task_name)
    return kinds.of(task).units(task, lang, pred, gold)


def read_units(cell_dir: Path, task_name: str, languages: Iterable[str], split: str = "test") -> dict[str, Units]:
    """Every language's Units of one cell directory (eval/<target> or retrieval/<target>)."""
    from xstilts.evaluate import read_submission

    task = get_task(task_name)
    return {lang: units(task_name, lang, *read_submission(cell_dir, task, lang, split)) for lang in languages}


# ------------------------------------------------------------------------------------------- resampling
class Bootstrap:
    """The shared draws: seed weights for the experiment's seeds, example weights per (target, language)."""

    def __init__(self, seeds: Iterable[int], n_resamples: int = N_RESAMPLES, random_state: int = RANDOM_STATE):
        self.seeds = sorted(set(seeds))
        self.n_resamples, self.random_state = n_resamples, random_state
        self.seed_weights = self._counts("seeds", len(self.seeds))  # (B, S)

    def _counts(self, key: str, n: int) -> np.ndarray:
        """(B, n) multinomial resample counts, from a generator keyed by `key` (independent of call order)."""
        if n == 0:  # e.g. a BUCC language with neither predicted nor gold pairs: its F1 is 0 in every replicate
            return np.zeros((self.n_resamples, 0))
        rng = np.random.default_rng([self.random_state, zlib.crc32(key.encode())])
        draws = rng.integers(0, n, size=(self.n_resamples, n)) + n * np.arange(self.n_resamples)[:, None]
        return np.bincount(draws.ravel(), minlength=self.n_resamples * n).reshape(self.n_resamples, n).astype(float)

    def replicate(self, key: str, group: dict[Hashable, Units]) -> dict[Hashable, tuple[float, np.ndarray, int]]:
        """(estimate, B replicates, n examples) of every member of `group` (cells of one target and language),
        all on the same example draw. Members are aligned on their ids; an id a member lacks weighs nothing
        in it (BUCC: a source sentence in neither its predictions nor the gold)."""
        ids = list(dict.fromkeys(i for u in group.values() for i in u.ids))
        index = {i: k for k, i in enumerate(ids)}
        num, den = np.zeros((len(ids), len(group))), np.zeros((len(ids), len(group)))
        for column, u in enumerate(group.values()):
            rows = [index[i] for i in u.ids]
            num[rows, column], den[rows, column] = u.num, u.den
        weights = self._counts(key, len(ids))
        reps = _ratio(weights @ num, weights @ den)  # (B, members)
        return {name: (u.estimate, reps[:, column], len(u.ids)) for column, (name, u) in enumerate(group.items())}

    def over_seeds(self, per_seed: dict[int, tuple[float, np.ndarray]]) -> tuple[float, np.ndarray]:
        """Mean over the seeds given, and its replicates on the shared seed draw (NaN where a replicate drew
        none of these seeds: only when some seeds of the experiment are missing here)."""
        columns = [self.seeds.index(s) for s in per_seed]
        weights = self.seed_weights[:, columns]
        reps = np.stack([r for _, r in per_seed.values()], axis=1)
        total = weights.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            combined = np.where(total > 0, (weights * reps).sum(axis=1) / total, np.nan)
        return float(np.mean([e for e, _ in per_seed.values()])), combined


def interval(reps: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the replicates (NaN ones, see `Bootstrap.over_seeds`, are left out)."""
    reps = reps[np.isfinite(reps)]
    if not len(reps):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(reps, [tail, 100 - tail])
    return float(low), float(high)


def interval_text(estimate: float, low: float, high: float) -> str:
    """`+1.23 [+0.45, +2.01]`: an estimate with its interval, as every summary table and sentence writes it."""
    return f"{estimate:+.2f} [{low:+.2f}, {high:+.2f}]"


def p_value(delta: float, reps: np.ndarray) -> float:
    """Two-sided p of `delta` = 0 from the paired bootstrap's standard error (normal approximation).

    Not the Monte Carlo share of replicates beyond 0: with 1,000 resamples that share cannot go below 1/1001,
    while a Benjamini-Hochberg adjustment over ~150 comparisons needs p-values far below 0.05/150 to flag a
    lone effect. The differences are sums over many examples, close to normal (checked against scipy's paired
    t-test in tests/test_uncertainty.py)."""
    from scipy.stats import norm

    reps = reps[np.isfinite(reps)]
    if len(reps) < 2 or not np.isfinite(delta):
        return float("nan")
    se = float(np.std(reps, ddof=1))
    if se == 0:
        return 1.0 if delta == 0 else 0.0
    return float(2 * norm.sf(abs(delta) / se))


def adjust(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (scipy.stats.false_discovery_control); NaN stays NaN.

    BH, not Holm: the matrix asks which of ~150 rows x targets gained, a screening question for which a 5%
    false discovery rate is the usual criterion; Holm's family-wise control would leave almost nothing
    significant at this number of comparisons. The comparisons share their baseline and test sets, so they
    are positively dependent, under which BH remains valid (Benjamini & Yekutieli 2001, PRDS)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


# ------------------------------------------------------------------------------------------- the experiment
@dataclass
class Replicates:
    """Per (row, target) and seed: (estimate, replicates, n examples) of the task score; target `benchmark`
    (`xtreme`, or the experiment's benchmark) too where a seed has all its tasks. `rows` maps a row key to its
    cell fields."""

    bootstrap: Bootstrap
    benchmark: str = XTREME_BENCHMARK.name
    rows: dict = field(default_factory=dict)
    row_seeds: dict = field(default_factory=dict)  # the seeds each row is expected to have (cells.json)
    task: dict = field(default_factory=dict)
    languages: list = field(default_factory=list)  # interval rows per language (for intervals.csv)
    skipped: list = field(default_factory=list)  # (cell path, reason) of scored cells without usable files

    def difference(self, row: Hashable, other: Hashable, target: str) -> dict | None:
        """`row` - `other` on `target`, paired over their common seeds: delta, low, high, p, n_seeds."""
        out = self.contrast([(1.0, row, target), (-1.0, other, target)])
        return None if out is None else {"delta": out.pop("estimate"), **out}

    def contrast(self, terms: list[tuple[float, Hashable, str]]) -> dict | None:
        """sum(weight * score of row on target) over `terms`, on the seeds every term has, with its paired
        interval and p (of contrast = 0): estimate, low, high, p, n_seeds. None without a common seed."""
        per_term = [self.task.get((row, target), {}) for _, row, target in terms]
        seeds = sorted(set.intersection(*(set(p) for p in per_term))) if per_term else []
        if not seeds:
            return None
        per_seed = {s: (sum(w * p[s][0] for (w, _, _), p in zip(terms, per_term)),
                        sum(w * p[s][1] for (w, _, _), p in zip(terms, per_term))) for s in seeds}
        estimate, reps = self.bootstrap.over_seeds(per_seed)
        low, high = interval(reps)
        return {"estimate": estimate, "low": low, "high": high, "p": p_value(estimate, reps), "n_seeds": len(seeds)}

    def estimate(self, row: Hashable, target: str) -> dict | None:
        """The seed mean of `row` on `target` with its interval, n_examples and n_seeds."""
        per_seed = self.task.get((row, target))
        if not per_seed:
            return None
        est, reps = self.bootstrap.over_seeds({s: v[:2] for s, v in per_seed.items()})
        low, high = interval(reps)
        return {"estimate": est, "low": low, "high": high, "n_examples": next(iter(per_seed.values()))[2],
                "n_seeds": len(per_seed)}


def collect(results: Path, cells: list[dict], row_keys: list[str], languages_of, split: str = "test",
            n_resamples: int = N_RESAMPLES, benchmark: str = XTREME_BENCHMARK.name) -> Replicates:
    """Replicates of every scored cell in `cells` (a cells.json `cells` list), and of `benchmark`'s score.
    `languages_of(cell)` gives the languages a cell scored (None: not scored). A scored cell whose files cannot
    be read is skipped, with the reason, never fatal (as a missing cell is in the summary)."""
    out = Replicates(Bootstrap([c["seed"] for c in cells], n_resamples), benchmark=benchmark)
    by_target: dict[str, list[dict]] = {}
    for cell in cells:
        row = tuple(cell[k] for k in row_keys)
        out.rows.setdefault(row, {k: cell[k] for k in [*row_keys, "label"]})
        out.row_seeds.setdefault(row, set()).add(cell["seed"])
        by_target.setdefault(cell["target"], []).append(cell)
    for target, target_cells in by_target.items():
        read = {}
        for cell in target_cells:
            langs = languages_of(cell)
            if not langs:
                continue
            try:
                read[(tuple(cell[k] for k in row_keys), cell["seed"])] = read_units(
                    results / cell["path"], target, langs, split)
            except DataError as e:
                out.skipped.append((cell["path"], str(e)))
        _replicate_target(out, target, read)
    _add_benchmark(out)
    return out


def _replicate_target(out: Replicates, target: str, read: dict) -> None:
    """Language replicates of one target, their interval rows, and each cell's task-score replicates."""
    per_cell: dict = {key: {} for key in read}
    for lang in dict.fromkeys(lang for by_lang in read.values() for lang in by_lang):
        group = {key: by_lang[lang] for key, by_lang in read.items() if lang in by_lang}
        for key, value in out.bootstrap.replicate(f"{target}/{lang}", group).items():
            per_cell[key][lang] = value
        for row in dict.fromkeys(row for row, _ in group):
            seeds = {seed: per_cell[(r, seed)][lang] for r, seed in group if r == row}
            est, reps = out.bootstrap.over_seeds({s: v[:2] for s, v in seeds.items()})
            out.languages.append({"row": row, "target": target, "language": lang, "estimate": est,
                                  **dict(zip(("low", "high"), interval(reps))),
                                  "n_examples": next(iter(seeds.values()))[2], "n_seeds": len(seeds)})
    for (row, seed), by_lang in per_cell.items():  # task score: the unweighted mean over languages
        values = list(by_lang.values())
        out.task.setdefault((row, target), {})[seed] = (
            float(np.mean([v[0] for v in values])), np.mean([v[1] for v in values], axis=0),
            int(sum(v[2] for v in values)))


def _add_benchmark(out: Replicates) -> None:
    """Per row and seed: the benchmark's replicates (XTREME's: the mean of the 9 task replicates); only for a
    row whose every seed has all its tasks (as the transfer matrix's benchmark column, never a partial mean)."""
    names = get_benchmark(out.benchmark).tasks
    for row, seeds in out.row_seeds.items():
        per_task = [out.task.get((row, t), {}) for t in names]
        if not all(seeds <= set(p) for p in per_task):
            continue
        for seed in sorted(seeds):
            values = [p[seed] for p in per_task]
            out.task.setdefault((row, out.benchmark), {})[seed] = (
                float(np.mean([v[0] for v in values])), np.mean([v[1] for v in values], axis=0),
                int(sum(v[2] for v in values)))


# ------------------------------------------------------------------------------------------- tables
def baseline_of(row_fields: dict, row_keys: list[str]) -> tuple:
    """The key of a row's baseline: no intermediate task, English, same backbone and adaptation."""
    from xstilts.grid import NONE

    return tuple({**row_fields, "intermediate": NONE, "variant": "en"}[k] for k in row_keys)


def intervals_table(reps: Replicates, targets: list[str], row_keys: list[str]):
    """intervals.csv: per row, target and language (`average`: the task score; target: the benchmark's name for
    its score)."""
    import pandas as pd

    from xstilts.aggregate import AVERAGE

    columns = [*row_keys, "label", "target", "language", "estimate", "low", "high", "n_examples", "n_seeds"]
    order = {t: i for i, t in enumerate([*targets, reps.benchmark])}
    records = [{**reps.rows[r["row"]], **{k: v for k, v in r.items() if k != "row"}} for r in reps.languages]
    for row, fields in reps.rows.items():
        for target in order:
            value = reps.estimate(row, target)
            if value is not None:
                records.append({**fields, "target": target, "language": AVERAGE, **value})
    frame = pd.DataFrame(records, columns=columns)
    rank = {row: i for i, row in enumerate(reps.rows)}
    keys = frame[row_keys].apply(tuple, axis=1).map(rank)
    frame = frame.assign(_row=keys, _target=frame.target.map(order), _avg=frame.language == AVERAGE)
    return frame.sort_values(["_row", "_target", "_avg"], kind="stable").drop(columns=["_row", "_target", "_avg"])


def significance_table(reps: Replicates, targets: list[str], row_keys: list[str]):
    """significance.csv: every row against its baseline on every target and the benchmark score, BH-adjusted
    over all."""
    import pandas as pd

    records = []
    for row, fields in reps.rows.items():
        base = baseline_of(fields, row_keys)
        if base == row or base not in reps.rows:
            continue
        for target in [*targets, reps.benchmark]:
            diff = reps.difference(row, base, target)
            if diff is not None:
                records.append({**fields, "baseline": reps.rows[base]["label"], "target": target, **diff})
    columns = [*row_keys, "label", "baseline", "target", "delta", "low", "high", "p", "p_adjusted", "significant",
               "n_seeds"]
    frame = pd.DataFrame(records, columns=[c for c in columns if c not in ("p_adjusted", "significant")])
    frame["p_adjusted"] = adjust(frame.p.to_numpy()) if len(frame) else []
    frame["significant"] = frame.p_adjusted < ALPHA
    return frame.reindex(columns=columns)
