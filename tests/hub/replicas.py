"""Replicas of the hub repositories the pipeline reads, built from the small fixture mirror (tests/fixtures/raw).

Each replica copies the REAL repository's layout as shared/reference/hub-sources.md describes it: canonical id,
file paths (`<config>/<split>-00000-of-00001.parquet`, `data/<split>-*` for `default` configs, the parquet
export's `<config>/<split>/0000.parquet`), README `configs:` metadata, split names and column types (ClassLabel
columns as in the hub's parquet, written by `datasets` with its feature metadata), a few rows each, at the
commit registry.REPOS pins (or a fixed fake one). Which replica follows which section: docs/data.md, "Test
replicas of the hub". Nothing binary is committed: the parquet files are generated here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import yaml

from tests.hub.server import Repo, fake_commit
from xstilts.data.sources import local_stem, resolve
from xstilts.registry import (CORPUS_HUB_SOURCE, NLI_LABELS, PANX_TAGS, REPOS, REPOS_BY_ID, TASKS,
                              TRANSLATED_HUB_SOURCES, UPOS_TAGS, hub_repo, source_format_args)

RAW = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
datasets.disable_progress_bars()
# Languages the replicas hold: the fixture mirror's (en, de) plus UD-POS test-only ones made from German rows.
EXTRA_UDPOS = {"kk": ("train", "test"), "th": ("test",)}  # Kazakh: train + test; Thai: test only (section 1)

# Old commits the tests need, at the ids hub-sources.md records for them.
XTREME_SCRIPT_COMMIT = "906cd56999b3ba487eb49102ff36156076eb2e9b"  # section 1: old main with xtreme.py
XTREME_MOVED_COMMIT = fake_commit("google/xtreme", "a later parquet commit")
COSMOS_SCRIPT_COMMIT = REPOS["cosmos_qa"].revision  # section 9: main still holds cosmos_qa.py
XQUAD_SCRIPT_COMMIT = "41d9ea3c3faee14b30cf35004a805dd92558d373"  # section 11: main is xquad_xtreme.py
XQUAD_PARQUET_COMMIT = fake_commit("juletxara/xquad_xtreme", "refs/convert/parquet")

_CLASS_LABELS = {
    "anli": {"label": datasets.ClassLabel(names=list(NLI_LABELS))},
    "glue_mnli": {"label": datasets.ClassLabel(names=list(NLI_LABELS)), "idx": datasets.Value("int32")},
    "glue_qqp": {"label": datasets.ClassLabel(names=["not_duplicate", "duplicate"]), "idx": datasets.Value("int32")},
    "snli": {"label": datasets.ClassLabel(names=list(NLI_LABELS))},
    "xnli_mt": {"label": datasets.ClassLabel(names=list(NLI_LABELS))},
    "udpos": {"pos_tags": datasets.Sequence(datasets.ClassLabel(names=list(UPOS_TAGS)))},
    "panx": {"ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(PANX_TAGS)))},
}


def parquet(rows: list[dict], raw_schema: str) -> bytes:
    """Rows as the hub's parquet: datasets' own writer, with ClassLabel features where the hub has them."""
    ds = datasets.Dataset.from_list(rows)
    for column, feature in _CLASS_LABELS.get(raw_schema, {}).items():
        if column in ds.column_names:
            ds = ds.cast_column(column, feature)
    buf = io.BytesIO()
    ds.to_parquet(buf)
    return buf.getvalue()


def readme(configs: dict[str, dict[str, str]]) -> bytes:
    """A dataset card whose YAML `configs:` maps each config's splits to its files (what datasets 5 reads)."""
    card = {"configs": [{"config_name": name, "data_files": [{"split": s, "path": p} for s, p in splits.items()]}
                        for name, splits in configs.items()]}
    return f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n# replica for tests\n".encode()


def fixture(rel: str | Path) -> list[dict] | None:
    """The rows of one fixture-mirror file (`<path>/<config>/<split>`, suffix optional); None if absent."""
    path = RAW / rel
    path = path.with_suffix(".jsonl") if path.suffix != ".jsonl" else path
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class _Builder:
    """Files and README configs of one replica commit, gathered source by source."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.configs: dict[str, dict[str, str]] = {}

    def add(self, config: str | None, split: str, rows: list[dict], raw_schema: str) -> None:
        folder = config or "data"
        path = f"{folder}/{split}-00000-of-00001.parquet"
        if path in self.files:
            return
        self.files[path] = parquet(rows, raw_schema)
        self.configs.setdefault(config or "default", {})[split] = f"{folder}/{split}-*"

    def commit(self) -> dict[str, bytes]:
        return {"README.md": readme(self.configs), **self.files}


def _task_sources():
    """(source, lang) for every registry task source and fixture language, plus the UD-POS test-only languages."""
    for task in TASKS.values():
        for split, sources in task.sources.items():
            for source in sources:
                if source.local_only:
                    continue
                for lang in ("en",) if split == "train" else task.languages:
                    if source.has_language(lang):
                        yield task, split, source, lang


def dataset_repos() -> list[Repo]:
    """A replica of every registry hub repository, at its pinned commit (its `main`)."""
    builders: dict[str, _Builder] = {}
    for task, split, source, lang in _task_sources():
        src = resolve(source, lang)
        rows = fixture(local_stem(Path(), src))
        if rows is None and task.name == "udpos" and lang in EXTRA_UDPOS:
            if src.split not in EXTRA_UDPOS[lang]:
                continue
            rows = fixture(local_stem(Path(), resolve(source, "de")))
        if rows is None:
            continue
        repo = hub_repo(src)
        builders.setdefault(repo.id, _Builder()).add(src.config or repo.config, src.split, rows, src.raw_schema)
    repos = []
    for repo_id, b in builders.items():
        r = Repo("dataset", repo_id)
        r.commit(REPOS_BY_ID[repo_id].revision, b.commit(), "main")
        repos.append(r)
    xtreme = next(r for r in repos if r.id == "google/xtreme")
    _xtreme_history(xtreme)
    return repos + [_cosmos(), _xnli(), _xquad_xtreme(), _wikipedia()]


def _xtreme_history(repo: Repo) -> None:
    """google/xtreme's old script-only main, and a later parquet commit (PAN-X.de test one row shorter)."""
    pinned = repo.commits[REPOS_BY_ID["google/xtreme"].revision]
    repo.commit(XTREME_SCRIPT_COMMIT, {"README.md": b"---\npretty_name: XTREME\n---\n", "xtreme.py": b"# script\n",
                                       "dataset_infos.json": b"{}"})
    later = dict(pinned)
    rows = fixture(Path("google/xtreme/PAN-X.de/test"))[:-1]
    later["PAN-X.de/test-00000-of-00001.parquet"] = parquet(rows, "panx")
    repo.commit(XTREME_MOVED_COMMIT, later)


def _cosmos() -> Repo:
    """allenai/cosmos_qa: main still holds the loading script (section 9)."""
    r = Repo("dataset", "allenai/cosmos_qa")
    r.commit(COSMOS_SCRIPT_COMMIT, {"README.md": b"---\npretty_name: Cosmos QA\n---\n", "cosmos_qa.py": b"# script\n",
                                    "dataset_infos.json": b"{}"}, "main")
    return r


def _xnli() -> Repo:
    """facebook/xnli: per-language configs `<lang>/{train,validation,test}-00000-of-00001.parquet` (section 11);
    the German MNLI translations of the fixture mirror as `de` train."""
    b = _Builder()
    source = TRANSLATED_HUB_SOURCES["mnli"]
    rows = [{k: r[k] for k in ("premise", "hypothesis", "label")} for r in fixture(Path("xstilts-mt/mnli.de/train"))]
    b.add("de", source.split, rows, source.raw_schema)
    b.add("de", "validation", rows[:2], source.raw_schema)
    r = Repo("dataset", "facebook/xnli")
    r.commit(REPOS_BY_ID["facebook/xnli"].revision, b.commit(), "main")
    return r


def _xquad_xtreme() -> Repo:
    """juletxara/xquad_xtreme: main is a loading script; the parquet export branch holds
    `<lang>/translate_train/0000.parquet` and no README (section 11)."""
    r = Repo("dataset", "juletxara/xquad_xtreme")
    r.commit(XQUAD_SCRIPT_COMMIT, {"README.md": b"---\npretty_name: XQuAD-XTREME\n---\n",
                                   "xquad_xtreme.py": b"# script\n"}, "main")
    rows = fixture(Path("squad/train"))
    pattern = TRANSLATED_HUB_SOURCES["squad_v1"].data_files
    files = {pattern.format(**source_format_args("de")).replace("*", "0000"): parquet(rows, "squad"),
             "de/test/0000.parquet": parquet(fixture(Path("google/xtreme/XQuAD.de/validation")), "squad")}
    r.commit(XQUAD_PARQUET_COMMIT, files, "refs/convert/parquet")
    return r


def _wikipedia() -> Repo:
    """wikimedia/wikipedia: configs `20231101.<lang>`, train split in numbered shards (section 10)."""
    b = _Builder()
    files = {}
    for lang in ("en", "de"):
        texts = [r["text"] for r in fixture(Path(f"xstilts-corpus/{lang}/train"))]
        rows = [{"id": str(i), "url": f"https://{lang}.wikipedia.org/wiki?curid={i}", "title": f"T{i}", "text": t}
                for i, t in enumerate(texts)]
        for k, part in enumerate((rows[:-1], rows[-1:])):  # the pipeline reads the first shard only
            files[f"20231101.{lang}/train-{k:05d}-of-00002.parquet"] = parquet(part, "text")
        b.configs[f"20231101.{lang}"] = {"train": f"20231101.{lang}/train-*"}
    r = Repo("dataset", CORPUS_HUB_SOURCE.path)
    r.commit(REPOS_BY_ID[CORPUS_HUB_SOURCE.path].revision, {"README.md": readme(b.configs), **files}, "main")
    return r
