"""`xstilts prepare`: read, normalise, cap and write one task (or the translated data, or the corpus) as
parquet plus a manifest; and the readers every later phase uses (`load_split` verifies checksums).

The output directory is built beside `--out` and swapped in only when complete, so a failed prepare leaves
a previous good directory untouched. Layout and manifest: docs/design.md, "Prepared data".
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from xstilts import __version__, kinds
from xstilts.data.normalize import normalize
from xstilts.data.sources import read_source
from xstilts.kinds.base import CANDIDATES
from xstilts.errors import DataError, UserError
from xstilts.registry import COMMIT_RE
from xstilts.io import atomic_path, read_json, sha256_file, write_json, write_parquet
from xstilts.registry import (CORPUS_HUB_SOURCE, CORPUS_SOURCE, TASKS, Source, Task, get_task,
                              hub_repo, sources_label, task_sources, translated_source)

CORPUS_SCHEMA = {"lang": "string", "text": "string"}
GOLD_SCHEMA = {"lang": "string", "src_id": "string", "en_id": "string"}
MANIFEST = "manifest.json"
# Held-out dev carved from train where a task has none (TyDiQA) and for the corpus: min(cap, fraction).
CARVE_MAX, CARVE_FRACTION = 500, 0.1
_ARROW_TYPES = {"string": pa.string(), "string?": pa.string(), "int64": pa.int64(),
                "list<string>": pa.list_(pa.string()), "list<int64>": pa.list_(pa.int64())}


# --------------------------------------------------------------------------------------------- cache keys
def cache_key(source: str, commits: dict[str, str] | None = None) -> str:
    """Name of the prepare cache directory: what was read and the internal-schema version it was written in.

    A hub cache is keyed by the COMMIT of every repository read (`{repo id: 40-hex commit}`), never by a
    branch name, so data that moved upstream is never reused under the old name."""
    if source == "local":
        return f"local-v{kinds.SCHEMA_VERSION}"
    if not commits or not all(re.fullmatch(COMMIT_RE, c) for c in commits.values()):
        raise UserError(f"a hub prepare cache is keyed by commits; got {commits!r} (run `xstilts lock`)")
    parts = [f"{re.sub(r'[^A-Za-z0-9._]+', '-', repo)}-{c[:12]}" for repo, c in sorted(commits.items())]
    return f"hub-{'+'.join(parts)}-v{kinds.SCHEMA_VERSION}"


def parse_revisions(values: list[str] | None, repos: list[str]) -> dict[str, str]:
    """`--revision REPO=REV` (repeatable) into {repo: rev}; a bare `REV` is allowed when one repository is read."""
    out: dict[str, str] = {}
    for value in values or ():
        repo, sep, rev = value.rpartition("=")
        if not sep:
            if len(repos) != 1:
                raise UserError(f"--revision {value!r}: this job reads {len(repos)} hub repositories "
                                f"({', '.join(repos)}); give REPO=REV for each")
            repo = repos[0]
        if repo not in repos:
            raise UserError(f"--revision {value!r}: {repo!r} is not a repository this job reads "
                            f"({', '.join(repos) or 'none'})")
        out[repo] = rev
    return out


# --------------------------------------------------------------------------------------------- readers
def _corrupt(directory: Path, what: str, file: Path) -> DataError:
    return DataError(f"{what}: the prepared cache {directory} is corrupt or incomplete; delete it and rerun "
                     "`xstilts prepare`", file=str(file))


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a prepared directory; missing, unreadable or of another schema version -> DataError."""
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        manifest = read_json(path)
    except FileNotFoundError:
        raise _corrupt(directory, "missing manifest", path) from None
    except ValueError as e:
        raise _corrupt(directory, f"unreadable manifest ({e})", path) from None
    if manifest.get("schema_version") != kinds.SCHEMA_VERSION:
        raise DataError(f"prepared with schema version {manifest.get('schema_version')!r}, this xstilts reads "
                        f"{kinds.SCHEMA_VERSION}: delete {directory} and rerun `xstilts prepare`", file=str(path))
    return manifest


def _verified_table(directory: Path, entry: dict):
    import pyarrow.parquet as pq

    path = directory / entry["file"]
    if not path.is_file():
        raise _corrupt(directory, "file listed in the manifest is missing", path)
    if sha256_file(path) != entry["sha256"]:
        raise _corrupt(directory, "sha256 does not match the manifest", path)
    return pq.read_table(path)


def _split_entry(directory: Path, manifest: dict, split: str) -> dict:
    try:
        return manifest["splits"][split]
    except KeyError:
        raise UserError(f"{directory}: no prepared split {split!r} (has: {', '.join(manifest['splits'])})") from None


def load_split(directory: str | Path, split: str, languages: list[str] | None = None) -> pa.Table:
    """One prepared split (checksum-verified), optionally only the rows of `languages`."""
    import pyarrow.compute as pc

    directory = Path(directory)
    table = _verified_table(directory, _split_entry(directory, read_manifest(directory), split))
    if languages is not None:
        table = table.filter(pc.is_in(table["lang"], value_set=pa.array(list(languages), pa.string())))
    return table


def load_gold(directory: str | Path, split: str) -> pa.Table:
    """BUCC gold pairs (lang, src_id, en_id) of one prepared split, checksum-verified."""
    directory = Path(directory)
    entry = _split_entry(directory, read_manifest(directory), split)
    if "gold" not in entry:
        raise UserError(f"{directory}: split {split!r} has no gold pairs (only BUCC has them)")
    return _verified_table(directory, entry["gold"])


# --------------------------------------------------------------------------------------------- selection
def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random("/".join([str(seed), *parts]))


def _cap(rows: list, k: int | None, rng: random.Random) -> list:
    """At most `k` rows, chosen by `rng`, in their original order."""
    if k is None or len(rows) <= k:
        return rows
    return [rows[i] for i in sorted(rng.sample(range(len(rows)), k))]


def _cap_bucc(rows: list[dict], gold: list[dict], k: int | None, rng: random.Random):
    """At most `k` sentences per side: a sample of gold pairs first (both sentences kept), then distractors."""
    if k is None:
        return rows, gold
    gold = _cap(gold, k, rng)
    keep = {("src", g["src_id"]) for g in gold} | {("en", g["en_id"]) for g in gold}
    out = []
    for side in ("src", "en"):
        pool = [r for r in rows if r["side"] == side]
        others = [r for r in pool if (side, r["sent_id"]) not in keep]
        chosen = {id(r) for r in _cap(others, max(0, k - len(gold)), rng)}
        out += [r for r in pool if (side, r["sent_id"]) in keep or id(r) in chosen]
    return out, gold


def _carve(rows: list[dict], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Split off a held-out dev of min(CARVE_MAX, 10%) rows (at least one); both parts keep their order."""
    if len(rows) < 2:
        raise DataError(f"cannot carve a dev split from {len(rows)} training row(s)", split="train")
    n = min(CARVE_MAX, max(1, int(len(rows) * CARVE_FRACTION)))
    held = set(rng.sample(range(len(rows)), n))
    return ([r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held])


def _table(rows: list[dict], columns: dict[str, str]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema([(name, _ARROW_TYPES[t]) for name, t in columns.items()]))


# --------------------------------------------------------------------------------------------- building
class _Build:
    """Rows gathered per split and language, with the inputs read and the rows dropped."""

    def __init__(self):
        self.rows: dict[str, dict[str, list]] = defaultdict(dict)
        self.gold: dict[str, dict[str, list]] = defaultdict(dict)
        self.dropped: dict[str, Counter] = defaultdict(Counter)
        self.inputs: list[dict] = []
        self.carved_dev: dict | None = None  # how a dev split was held out of train, when one was

    def read(self, split: str, lang: str, sources, task: Task | None, args) -> None:
        rows, gold = [], []
        for source in sources:
            hub = args.source == "hub" and not source.local_only
            raw = read_source(source, lang, local_dir=None if hub else args.local_dir,
                              revision=args.revisions.get(hub_repo(source).id) if hub else None,
                              trust_remote_code=args.trust_remote_code,
                              task=task.name if task else "corpus")
            norm = normalize(raw, task)
            rows += norm.rows
            gold += norm.gold or []
            self.dropped[split].update(norm.dropped)
            self.inputs += [{**x, "prepared_split": split, "lang": lang} for x in raw.inputs]
        _check_unique_ids(rows, split, lang)
        rng = _rng(args.seed, split, lang)
        if split == CANDIDATES:  # never capped: dropping candidates would make retrieval easier
            for row in rows:
                self.rows[split].setdefault(row["lang"], []).append(row)
        elif task is not None and kinds.of(task).gold_pairs:
            self.rows[split][lang], self.gold[split][lang] = _cap_bucc(rows, gold, args.max_examples, rng)
        else:
            self.rows[split][lang] = _cap(rows, args.max_examples, rng)


def _check_unique_ids(rows: list[dict], split: str, lang: str) -> None:
    """Predictions are keyed by id, so ids must be unique within a split and language."""
    if "id" not in rows[0]:
        return
    counts = Counter(r["id"] for r in rows)
    dup = next((k for k, v in counts.items() if v > 1), None)
    if dup is not None:
        raise DataError(f"id {dup!r} occurs {counts[dup]} times for language {lang!r}; ids must be unique",
                        split=split, field="id")


def _check_languages(task: Task, languages: list[str]) -> None:
    unknown = [x for x in languages if x not in task.languages]
    if unknown:
        raise UserError(f"task {task.name!r} has no language(s) {', '.join(unknown)} (source "
                        f"{sources_label(task)}); its languages: {', '.join(task.languages)}")


def _target_languages() -> list[str]:
    """Every language of any target task, in registry order (default for the corpus and translated data)."""
    return list(dict.fromkeys(x for t in TASKS.values() if t.role == "target" for x in t.languages))


def _carve_record(seed: int) -> dict:
    return {"max_rows": CARVE_MAX, "fraction": CARVE_FRACTION, "seed": seed}


def _gather_task(task: Task, args, build: _Build) -> list[str]:
    languages = args.languages or list(task.languages)
    _check_languages(task, languages)
    for split, sources in task_sources(task, args.source == "hub").items():
        if split == CANDIDATES:  # one table for every language, read whole ("*": no language of its own)
            build.read(split, "*", sources, task, args)
            continue
        # Zero-shot transfer: training data is English only, whatever the evaluation languages. A language is
        # read from the split's sources that have it (PAN-X: google/xtreme for XTREME's 40, full WikiANN for
        # XTREME-R's 8); one no source has (UD-POS kk/th/tl/yo have no validation) is test-only: skipped there.
        for lang in (["en"] if split == "train" else languages):
            present = [s for s in sources if s.has_language(lang)]
            if present:
                build.read(split, lang, present, task, args)
    if "train" in task.sources and "dev" not in task.sources:
        if getattr(args, "missing_dev", "carve") == "test":  # absent (callers before the option): carve
            # The authors' setting: all of English train is trained on and selection reads the English test
            # rows, as jiant's tydiqa_en val is the English GoldP dev file (docs/protocol.md, "TyDiQA dev").
            build.read("dev", "en", task.sources["test"], task, args)
        else:
            train, dev = _carve(build.rows["train"]["en"], _rng(args.seed, "carve-dev"))
            build.rows["train"]["en"], build.rows["dev"]["en"] = train, dev
            build.carved_dev = _carve_record(args.seed)
    return languages


def _gather_translated(task: Task, args, build: _Build) -> list[str]:
    if "train" not in task.sources:
        raise UserError(f"task {task.name!r} has no training split, so no translated training data")
    source = translated_source(task.name, hub=args.source == "hub")
    languages = _source_languages(source, task.name, args.languages, _target_languages())
    for lang in languages:
        build.read("train", lang, (source,), task, args)
    return languages


def _source_languages(source: Source, what: str, asked: list[str] | None, default: list[str]) -> list[str]:
    """The non-English languages to read from `source`: those asked (each must exist there, else one line
    naming task, language and source), or by default the ones of `default` it has."""
    path = f"{source.path}{'/' + source.config if source.config else ''}"
    if asked:
        missing = [x for x in asked if x != "en" and not source.has_language(x)]
        if missing:
            raise UserError(f"{what}: source {path!r} has no language(s) {', '.join(missing)}; it has: "
                            f"{', '.join(source.languages or ())}")
    return [x for x in (asked or default) if x != "en" and source.has_language(x)]


def _gather_corpus(args, build: _Build) -> list[str]:
    source = CORPUS_HUB_SOURCE if args.source == "hub" else CORPUS_SOURCE
    languages = args.languages or _target_languages()
    for lang in languages:
        build.read("train", lang, (source,), None, args)
        build.rows["train"][lang], build.rows["dev"][lang] = _carve(build.rows["train"][lang],
                                                                    _rng(args.seed, "carve-dev", lang))
    build.carved_dev = _carve_record(args.seed)
    return languages


def _labels(task: Task | None, build: _Build) -> list[str] | None:
    """The task's label names; for a tagging task without a fixed set (CCG) the sorted tags seen in train."""
    if task is None or (task.labels is None and not kinds.of(task).labels_from_data):
        return None  # QA and retrieval have no label set
    if task.labels is not None:
        return list(task.labels)
    return sorted({t for rows in build.rows["train"].values() for r in rows for t in r["tags"]})


def _check_args(args) -> None:
    if args.source == "local" and not args.local_dir:
        raise UserError("--source local needs --local-dir (the root of the local mirror)")
    if args.translated and not args.task:
        raise UserError("--translated needs --task (the intermediate task whose translations to prepare)")
    if args.max_examples is not None and args.max_examples < 1:
        raise UserError(f"--max-examples must be a positive integer, got {args.max_examples}")


def _job_repos(task: Task | None, args) -> list[str]:
    """The hub repositories this job reads (none for a local prepare)."""
    if args.source != "hub":
        return []
    if task is None:
        sources = [CORPUS_HUB_SOURCE]
    elif args.translated:
        sources = [translated_source(task.name, hub=True)]
    else:
        sources = [s for ss in task_sources(task, True).values() for s in ss if not s.local_only]
    return list(dict.fromkeys(hub_repo(s).id for s in sources))


def _hub_commits(inputs: list[dict]) -> dict[str, str] | None:
    """{repo: commit} of every hub input read (the manifest's `revisions`)."""
    return {x["hub"]: x["commit"] for x in inputs if "hub" in x} or None


def main(args) -> int:
    """The `xstilts prepare` verb (arguments as in `xstilts.cli`)."""
    _check_args(args)
    task = get_task(args.task) if args.task else None
    args.revisions = parse_revisions(getattr(args, "revision", None), _job_repos(task, args))
    build = _Build()
    if task is None:
        languages, columns, variant = _gather_corpus(args, build), CORPUS_SCHEMA, "corpus"
    elif args.translated:
        languages, columns, variant = _gather_translated(task, args, build), task.schema, "translated"
    else:
        languages, columns, variant = _gather_task(task, args, build), task.schema, "original"
    manifest = {
        "task": task.name if task else "corpus", "kind": task.kind if task else "text", "variant": variant,
        "source": args.source, "revisions": _hub_commits(build.inputs),
        "schema_version": kinds.SCHEMA_VERSION, "languages": languages, "labels": _labels(task, build), "splits": {},
        "max_examples": args.max_examples, "seed": args.seed, "inputs": build.inputs,
        "dev_carved_from_train": build.carved_dev,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "xstilts_version": __version__,
    }
    out = Path(args.out)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for split, per_lang in build.rows.items():
            rows = [r for lang_rows in per_lang.values() for r in lang_rows]
            split_columns = kinds.of(task).candidate_schema if split == CANDIDATES else columns
            entry = _write(tmp, f"{split}.parquet", rows, split_columns)
            entry["rows_per_lang"] = {lang: len(v) for lang, v in per_lang.items()}
            entry["dropped"] = dict(build.dropped[split])
            if split in build.gold:
                entry["gold"] = _write(tmp, f"{split}-gold.parquet",
                                       [g for gs in build.gold[split].values() for g in gs], GOLD_SCHEMA)
            manifest["splits"][split] = entry
        write_json(tmp / MANIFEST, manifest)
    return 0


def _write(directory: Path, name: str, rows: list[dict], columns: dict[str, str]) -> dict:
    path = directory / name
    write_parquet(path, _table(rows, columns))
    return {"file": name, "rows": len(rows), "sha256": sha256_file(path)}
