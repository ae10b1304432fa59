"""Read one registry `Source` for one language, from the hub or from a local mirror, in the RAW hub schema.

Both paths return the same rows (hub ClassLabel columns stay int ids), so the normalisers in
`xstilts.data.normalize` cannot tell them apart. The hub is read at a pinned revision and never runs
dataset scripts; a local mirror stores the hub's columns at
`<local_dir>/<path>/<config>/<split>.parquet|jsonl` (design.md, "Local mirror layout").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.errors import DataError, UserError
from xstilts.io import sha256_file
from xstilts.registry import Source, hub_repo, source_format_args

LOCAL_SUFFIXES = (".parquet", ".jsonl")
# The three original files of one BUCC 2018 language pair and split: pools of both sides, then gold.
BUCC_PARTS = ("src", "en", "gold")
# The Mewsli-X release's JSONL files (`mewsli-x_20220518_6`, text restored by its get-mewsli-x.sh), by raw schema.
MEWSLIX_SCHEMAS = ("mewslix_pairs", "mewslix_mentions", "mewslix_entities")


@dataclass
class RawSplit:
    """The rows of one source split for one language, plus where they came from.

    `origin` names the input in error messages (a file path, or `hub:<path>/<config>:<split>@<revision>`);
    `inputs` are the manifest's records of it. BUCC rows carry `part` (src|en|gold), `file`, `line`, and the
    two tab-separated fields `id`, `value` (the sentence, or the English id on gold lines).
    """

    source: Source
    lang: str
    origin: str
    rows: list[dict]
    inputs: list[dict] = field(default_factory=list)


def resolve(source: Source, lang: str) -> Source:
    """The source with `{lang}`, `{udpos_name}`, `{iso3}`, `{tydiqa_name}` filled in for `lang`."""
    fmt = source_format_args(lang)
    return dataclasses.replace(
        source,
        config=source.config.format(**fmt) if source.config else None,
        split=source.split.format(**fmt),
        id_prefix=source.id_prefix.format(**fmt) if source.id_prefix else None,
    )


def source_tag(source: Source) -> str:
    """`path/config/split` of a resolved source: the stem of row ids for data without ids of its own."""
    return "/".join(x for x in (source.path, source.config, source.split) if x)


def read_source(source: Source, lang: str, *, local_dir: str | Path | None = None, revision: str | None = None,
                trust_remote_code: bool = False, task: str = "") -> RawSplit:
    """Read `source` for `lang`: from `local_dir` when given, else from its hub repository at `revision`
    (default: the registry's pin, `REPOS[path].revision`).

    `task` only names the caller's task in error messages.
    """
    src = resolve(source, lang)
    what = f"task {task!r}, language {lang!r}" if task else f"language {lang!r}"
    if local_dir is None:
        return _read_hub(src, lang, revision, trust_remote_code, what)
    root = Path(local_dir)
    if not root.is_dir():
        raise UserError(f"local mirror directory {root} does not exist (--local-dir)")
    if src.raw_schema == "bucc_original":
        return _read_bucc(src, lang, root, what)
    if src.raw_schema == "lareqa_original":
        return _read_lareqa(src, lang, root, what)
    if src.raw_schema in MEWSLIX_SCHEMAS:
        return _read_mewslix(src, lang, root, what)
    return _read_local(src, lang, root, what)


def local_stem(root: Path, source: Source) -> Path:
    """`<root>/<path>/<config>/<split>` (no config: `<root>/<path>/<split>`), without the suffix."""
    return root.joinpath(source.path, *([source.config] if source.config else []), source.split)


def _manual(src: Source) -> str:
    return f"; manual step: {src.manual}" if src.manual else ""


# ------------------------------------------------------------------------------------------------ hub
def first_line(e: Exception) -> str:
    """A library's message, cut to one line (errors here are one line)."""
    text = str(e)
    return text.splitlines()[0] if text else ""


def script_name(repo_id: str) -> str:
    """The loading script datasets looks for at a commit, `<name>.py` (datasets 5.2 load.py:1019-1021, 1134-1142)."""
    return repo_id.rsplit("/", 1)[-1] + ".py"


@dataclass(frozen=True)
class Commit:
    """What the hub says a revision of a repository is: its commit id and the files it holds."""

    repo: str
    revision: str
    sha: str
    files: tuple[str, ...]


_COMMITS: dict[tuple[str, str, str], Commit] = {}


def hub_commit(repo_id: str, revision: str, kind: str = "dataset") -> Commit:
    """Resolve `revision` of a hub repository to its commit (HfApi.dataset_info / model_info at the revision).
    An unknown id or revision, or no network, is one `UserError` line."""
    key = (kind, repo_id, revision)
    if key not in _COMMITS:
        import httpx2 as httpx  # huggingface_hub 2.x's HTTP client: its connection errors are not OSErrors
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

        what = f"hub {kind} {repo_id!r}"
        info = HfApi().dataset_info if kind == "dataset" else HfApi().model_info
        try:
            found = info(repo_id, revision=revision)
        except RevisionNotFoundError:
            raise UserError(f"{what} has no revision {revision!r} (a branch, tag or 40-hex commit)") from None
        except RepositoryNotFoundError:
            raise UserError(f"{what} does not exist (or is private/gated): check the id in "
                            f"{'registry.REPOS' if kind == 'dataset' else 'the backbone config'}") from None
        except (HfHubHTTPError, OSError, httpx.HTTPError) as e:
            raise UserError(f"{what} at {revision!r}: cannot reach the hub ({type(e).__name__}: "
                            f"{first_line(e)})") from None
        _COMMITS[key] = Commit(repo_id, revision, found.sha, tuple(s.rfilename for s in found.siblings or ()))
    return _COMMITS[key]


def check_no_script(commit: Commit) -> None:
    """datasets 5 refuses a commit that still holds `<name>.py` (load.py:1134-1142): say so in one line."""
    name = script_name(commit.repo)
    if name in commit.files:
        rev = commit.revision if commit.revision == commit.sha else f"{commit.revision!r} = {commit.sha}"
        raise UserError(f"hub dataset {commit.repo!r} at {rev} holds the loading script {name}, which datasets 5 "
                        "does not run: pin a commit without it (data.revisions) or use the manual step of "
                        "docs/data.md")


def _read_hub(src: Source, lang: str, revision: str | None, trust_remote_code: bool, what: str) -> RawSplit:
    if src.local_only:
        raise UserError(f"{source_tag(src)} ({what}) is only available from a local mirror{_manual(src)}; then "
                        "use --source local --local-dir DIR")
    repo = hub_repo(src)
    revision = revision or repo.revision
    # with data_files the files are named directly: `config` is then only the local mirror's folder
    config = None if src.data_files else (src.config or repo.config)
    origin = f"hub:{repo.id}{'/' + config if config else ''}:{src.split}@{revision}"
    if trust_remote_code:
        raise UserError(f"{origin}: --trust-remote-code is not supported: datasets 5 no longer runs dataset "
                        "scripts; pin a parquet commit of the repository or mirror the data locally (docs/data.md)")
    commit = hub_commit(repo.id, revision)
    check_no_script(commit)
    data_files = src.data_files.format(**source_format_args(lang)) if src.data_files else None
    ds = load_at_commit(repo.id, config, src.split, commit.sha, data_files, f"{origin} ({what})")
    record = {"hub": repo.id, "config": config, "split": src.split, "revision": revision, "commit": commit.sha}
    if data_files:
        record["data_files"] = data_files
    return RawSplit(src, lang, origin, ds.to_list(), [record])


def load_at_commit(repo_id: str, config: str | None, split: str, sha: str, data_files: str | None, where: str):
    """One split of a hub dataset, proven to come from commit `sha`.

    These are the calls `datasets.load_dataset` makes (datasets 5.2 load.py:1667 `load_dataset_builder`, :1687
    `download_and_prepare`, :1699 `as_dataset`), split up so that the builder can be checked before it reads:
    when the hub cannot be read for any reason, datasets falls back to ANY cached copy of the dataset
    (load.py:1167-1170, `except Exception` -> `CachedDatasetModuleFactory`) and offline it takes the newest
    cached one whatever revision was asked. The builder's hash is the commit its module was
    made from and its data files are `hf://datasets/<id>@<commit>/...` URLs: both must name `sha`.
    """
    import datasets
    from datasets.exceptions import DatasetNotFoundError

    kwargs = {"data_files": {split: data_files}} if data_files else {}
    try:
        builder = datasets.load_dataset_builder(repo_id, name=config, revision=sha, **kwargs)
    except DatasetNotFoundError as e:
        raise UserError(f"{where}: {first_line(e)}") from None
    except ValueError as e:  # BuilderConfig 'X' not found. Available: [...]
        raise UserError(f"{where}: no config {config!r} at commit {sha}: {first_line(e)}") from None
    except (OSError, RuntimeError) as e:  # not found, no network, a script
        raise UserError(f"{where}: could not load from the hub: {type(e).__name__}: "
                        f"{first_line(e)}") from None
    prefix = f"hf://datasets/{repo_id}@{sha}/"
    files = [f for fs in (builder.config.data_files or {}).values() for f in fs]
    if builder.hash != sha or any(not str(f).startswith(prefix) for f in files):
        raise UserError(f"{where}: datasets returned another revision's data (module {builder.hash}, not the pinned "
                        f"commit {sha}; it falls back to a cached copy when the hub cannot be read): refusing it")
    try:
        builder.download_and_prepare()
    except (OSError, RuntimeError, ValueError) as e:
        raise UserError(f"{where}: could not read the data files at commit {sha}: {type(e).__name__}: "
                        f"{first_line(e)}") from None
    splits = list(builder.info.splits or ())
    if split not in splits:
        raise UserError(f"{where}: no split {split!r} at commit {sha} (splits: {', '.join(splits) or 'none'})")
    return builder.as_dataset(split=split)


# ------------------------------------------------------------------------------------------------ local
def _read_local(src: Source, lang: str, root: Path, what: str) -> RawSplit:
    stem = local_stem(root, src)
    path = next((p for p in (stem.with_name(stem.name + s) for s in LOCAL_SUFFIXES) if p.is_file()), None)
    if path is None:
        raise UserError(f"{what}: local mirror file not found: expected {stem}.parquet or {stem}.jsonl"
                        + _manual(src))
    rows = _read_parquet(path, src.split) if path.suffix == ".parquet" else _read_jsonl(path, src.split)
    return RawSplit(src, lang, str(path), rows, [{"file": str(path), "sha256": sha256_file(path)}])


def _read_parquet(path: Path, split: str) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"not a readable parquet file ({e})", file=str(path), split=split) from None


def _read_jsonl(path: Path, split: str) -> list[dict]:
    rows = []
    for line_no, line in _lines(path, split):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"line {line_no} is not valid JSON ({e.msg} at column {e.colno})",
                            file=str(path), split=split, row=line_no - 1) from None
        if not isinstance(row, dict):
            raise DataError(f"line {line_no} is a JSON {type(row).__name__}, expected an object",
                            file=str(path), split=split, row=line_no - 1)
        rows.append(row)
    return rows


def _lines(path: Path, split: str):
    """(1-based line number, text without the line break) of a UTF-8 text file. Errors name the line and,
    like every `DataError`, the 0-based row (line - 1)."""
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                yield line_no, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise DataError(f"undecodable bytes on line {line_no} (not UTF-8: {e.reason} at byte {e.start})",
                                file=str(path), split=split, row=line_no - 1) from None


def _read_lareqa(src: Source, lang: str, root: Path, what: str) -> RawSplit:
    """`lareqa/xquad-r/<lang>.json`: SQuAD v1.1's structure with each paragraph's `sentence_breaks`; one row per
    question, carrying its paragraph's context and breaks."""
    path = local_stem(root, src).with_suffix(".json")
    if not path.is_file():
        raise UserError(f"{what}: LAReQA file not found: expected {path}{_manual(src)}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        rows = [{"id": qa["id"], "context": p["context"], "question": qa["question"],
                 "answers": {"text": [a["text"] for a in qa["answers"]],  # the hub's SQuAD columns
                             "answer_start": [a["answer_start"] for a in qa["answers"]]},
                 "sentence_breaks": p["sentence_breaks"]}
                for article in doc["data"] for p in article["paragraphs"] for qa in p["qas"]]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"not the xquad-r layout (data -> paragraphs -> context, sentence_breaks, qas): {e!r}",
                        file=str(path), split=src.split) from None
    return RawSplit(src, lang, str(path), rows, [{"file": str(path), "sha256": sha256_file(path)}])


def _read_mewslix(src: Source, lang: str, root: Path, what: str) -> RawSplit:
    """`mewslix/<file>.jsonl` of the Mewsli-X release, one raw row per (context, mention[, entity]): Wikipedia
    pairs as they are, WikiNews articles split into their mentions and kept when the article is in `lang`
    (as XTREME's utils_preprocess.mewslix_preprocess groups them), entities as they are."""
    path = (root / src.path / src.split).with_suffix(".jsonl")
    if not path.is_file():
        raise UserError(f"{what}: Mewsli-X file not found: expected {path}{_manual(src)}")
    rows = []
    for line_no, line in _lines(path, src.split):
        if not line:
            continue
        try:
            doc = json.loads(line)
            if src.raw_schema == "mewslix_pairs":
                rows.append({**doc["contextual_mention"], "entity": doc["entity"]})
            elif src.raw_schema == "mewslix_mentions":
                if doc["context"]["language"] == lang:
                    rows += [{"context": doc["context"], "mention": m} for m in doc["mentions"]]
            else:
                rows.append(dict(doc))
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"line {line_no}: not the Mewsli-X {src.split} layout ({e!r})", file=str(path),
                            split=src.split, row=line_no - 1) from None
    return RawSplit(src, lang, str(path), rows, [{"file": str(path), "sha256": sha256_file(path)}])


def _read_bucc(src: Source, lang: str, root: Path, what: str) -> RawSplit:
    """`bucc2018/<lang>-en/<lang>-en.<split>.{<lang>,en,gold}`: `id<TAB>sentence`; gold `lang_id<TAB>en_id`."""
    folder = root / src.path / src.config
    rows, inputs = [], []
    for part, suffix in zip(BUCC_PARTS, (lang, "en", "gold")):
        path = folder / f"{src.config}.{src.split}.{suffix}"
        if not path.is_file():
            raise UserError(f"{what}: BUCC file not found: expected {path}{_manual(src)}")
        for line_no, line in _lines(path, src.split):
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise DataError(f"line {line_no}: expected 2 tab-separated fields, got {len(fields)}: "
                                f"{line[:80]!r}", file=str(path), split=src.split, row=line_no - 1)
            rows.append({"part": part, "file": str(path), "line": line_no, "id": fields[0], "value": fields[1]})
        inputs.append({"file": str(path), "sha256": sha256_file(path)})
    return RawSplit(src, lang, str(folder), rows, inputs)
