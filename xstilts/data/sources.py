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
from xstilts.registry import DEFAULT_REVISION, Source, source_format_args

LOCAL_SUFFIXES = (".parquet", ".jsonl")
# The three original files of one BUCC 2018 language pair and split: pools of both sides, then gold.
BUCC_PARTS = ("src", "en", "gold")


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
    """Read `source` for `lang`: from `local_dir` when given, else from the hub at `revision`.

    `task` only names the caller's task in error messages.
    """
    src = resolve(source, lang)
    what = f"task {task!r}, language {lang!r}" if task else f"language {lang!r}"
    if local_dir is None:
        return _read_hub(src, lang, revision or DEFAULT_REVISION, trust_remote_code, what)
    root = Path(local_dir)
    if not root.is_dir():
        raise UserError(f"local mirror directory {root} does not exist (--local-dir)")
    if src.raw_schema == "bucc_original":
        return _read_bucc(src, lang, root, what)
    return _read_local(src, lang, root, what)


def local_stem(root: Path, source: Source) -> Path:
    """`<root>/<path>/<config>/<split>` (no config: `<root>/<path>/<split>`), without the suffix."""
    return root.joinpath(source.path, *([source.config] if source.config else []), source.split)


def _read_hub(src: Source, lang: str, revision: str, trust_remote_code: bool, what: str) -> RawSplit:
    origin = f"hub:{src.path}{'/' + src.config if src.config else ''}:{src.split}@{revision}"
    if src.local_only:
        raise UserError(f"{origin} ({what}) is only available from a local mirror (licensed or original files); "
                        "use --source local --local-dir DIR, see docs/data.md")
    if trust_remote_code:
        raise UserError(f"{origin}: --trust-remote-code is not supported: datasets 5 no longer runs dataset "
                        f"scripts; read the hub's parquet export (revision {DEFAULT_REVISION!r}, the default) "
                        "or mirror the data locally (docs/data.md)")
    import datasets

    try:
        ds = datasets.load_dataset(src.path, name=src.config, split=src.split, revision=revision)
    except (OSError, ValueError) as e:  # not found, unknown config/split/revision, no network
        raise UserError(f"{origin} ({what}): could not load from the hub: {e}") from None
    return RawSplit(src, lang, origin, ds.to_list(),
                    [{"hub": src.path, "config": src.config, "split": src.split, "revision": revision}])


def _read_local(src: Source, lang: str, root: Path, what: str) -> RawSplit:
    stem = local_stem(root, src)
    path = next((p for p in (stem.with_name(stem.name + s) for s in LOCAL_SUFFIXES) if p.is_file()), None)
    if path is None:
        raise UserError(f"{what}: local mirror file not found: expected {stem}.parquet or {stem}.jsonl")
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


def _read_bucc(src: Source, lang: str, root: Path, what: str) -> RawSplit:
    """`bucc2018/<lang>-en/<lang>-en.<split>.{<lang>,en,gold}`: `id<TAB>sentence`; gold `lang_id<TAB>en_id`."""
    folder = root / src.path / src.config
    rows, inputs = [], []
    for part, suffix in zip(BUCC_PARTS, (lang, "en", "gold")):
        path = folder / f"{src.config}.{src.split}.{suffix}"
        if not path.is_file():
            raise UserError(f"{what}: BUCC file not found: expected {path}")
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
