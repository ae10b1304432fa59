"""The synthetic data's transfer plan: which latent skill each task exercises, hence which transfers the
generator plants (a positive) and which it leaves out (a null).

This is the ground truth the summary is checked against: `xstilts aggregate` writes summary/planted.csv
for synthetic data (cells.json `synth`), every planted comparison with its measured paired delta and
whether the run recovered it. Real data have no plan (their transfers are what the experiment asks), and
a task the plan does not list gets no planted comparison. The table in words: docs/synth.md,
"Transfer plan"; planted.csv: docs/metrics.md, "Planted transfers".
"""

from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from xstilts.grid import NONE
from xstilts.uncertainty import ALPHA, interval_text

INFERENCE, ROLES, SPANS = "inference", "roles", "spans"
WORD_CLASS, ENTITY_TYPE, CHOICE, ALIGNMENT = "word_class", "entity_type", "choice", "alignment"
# The skill(s) each English intermediate task and each target exercises. `choice`'s only target is XTREME-R's
# XCOPA (not an XTREME task: in an XTREME grid the choice tasks are planted nulls everywhere); `alignment` has
# no English task (only the mlm variant adds it).
SKILLS: dict[str, frozenset[str]] = {
    "anli_plus": frozenset({INFERENCE}), "mnli": frozenset({INFERENCE}), "xnli": frozenset({INFERENCE}),
    "qqp": frozenset({ROLES}), "pawsx": frozenset({ROLES}),
    "squad_v1": frozenset({SPANS}), "squad_v2": frozenset({SPANS}),
    "xquad": frozenset({SPANS}), "mlqa": frozenset({SPANS}), "tydiqa": frozenset({SPANS}),
    "ccg": frozenset({WORD_CLASS, ENTITY_TYPE}), "udpos": frozenset({WORD_CLASS}), "panx": frozenset({ENTITY_TYPE}),
    "hellaswag": frozenset({CHOICE}), "commonsenseqa": frozenset({CHOICE}), "cosmosqa": frozenset({CHOICE}),
    "xcopa": frozenset({CHOICE}), "siqa": frozenset({CHOICE}),  # SIQA: XTREME-R's stage before COPA
    # LAReQA finds the answer's sentence (SQuAD's skill) in a pool of every language (retrieval's)
    "lareqa": frozenset({SPANS, ALIGNMENT}),
    # Mewsli-X links a mention (the entity names PAN-X tags) to its entity described in any language
    "mewslix": frozenset({ENTITY_TYPE, ALIGNMENT}),
    "bucc2018": frozenset({ALIGNMENT}), "tatoeba": frozenset({ALIGNMENT}),
}
# What a multilingual variant adds over its English counterpart whatever its task. `mt` (the task's own
# training data also in the target languages) adds the row's own skills instead: see `variant_skills`.
MT = "mt"
VARIANT_SKILLS: dict[str, frozenset[str]] = {"mlm": frozenset({ALIGNMENT})}
POSITIVE, NULL = "+", "0"  # planted.csv's `planted`
COLUMNS = ["backbone", "adaptation", "row", "reference", "target", "skills", "planted", "delta", "low", "high",
           "p_adjusted", "n_seeds", "recovered"]


class Planted(NamedTuple):
    """One planted comparison: `row` - `reference` on `target` (row keys), sign +1 or 0, the skills the row
    adds over its reference that the target exercises (`+`-joined, empty for a null)."""

    row: tuple
    reference: tuple
    target: str
    sign: int
    skills: str


def members_of(jobs: list[dict]) -> dict[str, list[str]]:
    """Setting -> the tasks it trains on, from cells.json's intermediate jobs (their `tasks` field is
    `grid.tasks_of` joined by `+`: the multitask row's members)."""
    return {j["intermediate"]: j["tasks"].split("+") for j in jobs
            if j.get("phase") == "intermediate" and j.get("tasks")}


def task_skills(setting: str, members: Mapping[str, Sequence[str]]) -> frozenset[str] | None:
    """The union of the skills of a setting's tasks; None if any task is not in the plan."""
    tasks = members.get(setting, [setting])
    if not tasks or any(t not in SKILLS for t in tasks):
        return None
    return frozenset().union(*(SKILLS[t] for t in tasks))


def variant_skills(variant: str, own: frozenset[str]) -> frozenset[str] | None:
    """What `variant` adds over the English row with skills `own`; None for a variant the plan lacks."""
    return own if variant == MT else VARIANT_SKILLS.get(variant)


def skills_vs_none(fields: dict, members: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """A row's skills against the `none` row (its task skills plus what its variant adds): the planted
    positives of the transfer-delta heatmap, whose every cell is a difference to `none`."""
    if fields["intermediate"] == NONE:
        return frozenset()
    own = task_skills(fields["intermediate"], members)
    if own is None:
        return frozenset()
    return own | (frozenset() if fields["variant"] == "en" else variant_skills(fields["variant"], own) or frozenset())


def positive_cells(settings: Iterable[tuple], targets: Sequence[str], cells: list[dict], jobs: list[dict],
                   setting_keys: Sequence[str]) -> set[tuple]:
    """The transfer-delta heatmap's planted cells: each (*setting, target) the plan makes positive against
    `none`. `settings` are tuples of the `setting_keys` fields (backbone, adaptation, label); `cells` and
    `jobs` are cells.json's lists."""
    members = members_of(jobs)
    fields = {tuple(c[k] for k in setting_keys): c for c in cells}  # a heatmap row -> its row's fields
    return {(*setting, t) for setting in settings for t in targets
            if t in SKILLS and skills_vs_none(fields[setting], members) & SKILLS[t]}


def comparisons(rows: dict, targets: Sequence[str], members: Mapping[str, Sequence[str]],
                row_keys: Sequence[str]) -> list[Planted]:
    """The planted comparisons among `rows` (Replicates.rows: key -> fields): an English row against the
    `none` row of its backbone and adaptation, a multilingual variant against its English counterpart; a
    positive on every target sharing a skill the row adds, a null on every other target. Rows whose tasks
    or variant the plan does not know, or whose reference is absent, have none."""
    out = []
    for row, fields in rows.items():
        if fields["intermediate"] == NONE:
            continue
        own = task_skills(fields["intermediate"], members)
        if own is None:
            continue
        if fields["variant"] == "en":
            change, adds = {"intermediate": NONE}, own
        else:
            change, adds = {"variant": "en"}, variant_skills(fields["variant"], own)
            if adds is None:
                continue
        reference = tuple({**fields, **change}[k] for k in row_keys)
        if reference not in rows:
            continue
        for target in targets:
            if target in SKILLS:
                shared = adds & SKILLS[target]
                out.append(Planted(row, reference, target, int(bool(shared)), "+".join(sorted(shared))))
    return out


def planted_table(replicates, targets: Sequence[str], members: Mapping[str, Sequence[str]],
                  row_keys: Sequence[str]) -> pd.DataFrame:
    """planted.csv: every planted comparison with a common seed, its paired delta and 95% interval
    (xstilts.uncertainty), p BH-adjusted over this table, and `recovered`: a positive's interval lies above
    0, a null's contains 0."""
    from xstilts.uncertainty import adjust

    records, p = [], []
    for c in comparisons(replicates.rows, targets, members, row_keys):
        diff = replicates.difference(c.row, c.reference, c.target)
        if diff is None:
            continue
        fields = replicates.rows[c.row]
        records.append({"backbone": fields["backbone"], "adaptation": fields["adaptation"], "row": fields["label"],
                        "reference": replicates.rows[c.reference]["label"], "target": c.target, "skills": c.skills,
                        "planted": POSITIVE if c.sign else NULL,
                        **{k: diff[k] for k in ("delta", "low", "high", "n_seeds")}})
        p.append(diff["p"])
    frame = pd.DataFrame(records, columns=[c for c in COLUMNS if c not in ("p_adjusted", "recovered")])
    frame.insert(COLUMNS.index("p_adjusted"), "p_adjusted", adjust(p) if p else np.array([], dtype=float))
    positive = frame.planted == POSITIVE
    frame["recovered"] = np.where(positive, frame.low > 0, (frame.low <= 0) & (frame.high >= 0)).astype(bool)
    return frame.reindex(columns=COLUMNS)


def recovery_line(table: pd.DataFrame) -> str:
    """One sentence: how many planted positives and nulls the run recovered. Nulls are also counted by the
    BH-adjusted p (the heatmap's significance): with ~100 unadjusted 95% intervals, some 5% of a perfectly
    realised plan's nulls exclude 0 by chance, which the adjusted count does not charge to the plan."""
    if table.empty:
        return "Transfer plan (synthetic data): no planted comparison has scores on both sides yet."
    parts = {sign: table[table.planted == sign] for sign in (POSITIVE, NULL)}
    counts = {sign: f"{int(part.recovered.sum())} of {len(part)}" for sign, part in parts.items()}
    nulls = parts[NULL]
    return (f"Transfer plan (synthetic data): planted positives recovered (95% interval above 0) "
            f"{counts[POSITIVE]}; planted nulls whose interval contains 0 {counts[NULL]} (not significant "
            f"after BH, p >= {ALPHA:g}: {int((nulls.p_adjusted >= ALPHA).sum())} of {len(nulls)}).")


def planted_markdown(table: pd.DataFrame) -> str:
    """planted.md: the recovery line, then the table with the delta and its interval in one column."""
    if table.empty:
        return recovery_line(table) + "\n"
    several = table[["backbone", "adaptation"]].drop_duplicates().shape[0] > 1
    shown = pd.DataFrame({
        "row": [f"{b}/{a}: {r}" if several else r for b, a, r in zip(table.backbone, table.adaptation, table.row)],
        "reference": table.reference, "target": table.target, "skills": table.skills, "planted": table.planted,
        "delta [95% CI]": [interval_text(*v) for v in zip(table.delta, table.low, table.high)],
        "p (BH)": [f"{p:.3g}" for p in table.p_adjusted], "seeds": table.n_seeds,
        "recovered": table.recovered.map({True: "yes", False: "no"})})
    return recovery_line(table) + "\n\n" + shown.to_markdown(index=False) + "\n"
