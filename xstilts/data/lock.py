"""`xstilts lock --configfile F`: resolve every hub revision a config reads to its commit, check each commit
can be used, and write the commits to a lock file the config names (`data.lock`), for review and commit.

A config may ask for a branch (`main`, `refs/convert/parquet`, `refs/pr/2`) only through the lock: the grid
reads the locked commit (`locked_commit`), so prepare caches, manifests and fetched models are keyed by
commits. Rerunning the verb detects a branch that moved since it was locked and refuses to move the lock
unless `--update` is given. Commits are checked before they are locked: a dataset commit must not hold a
loading script (datasets 5 refuses it), a model commit must hold safetensors weights.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import yaml

from xstilts.errors import UserError
from xstilts.io import write_text
from xstilts.registry import COMMIT_RE

SECTIONS = ("datasets", "models")
SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
_CACHE: dict[tuple[str, int], dict] = {}


def default_schema() -> Path:
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def default_lock_path(configfile: str | Path) -> Path:
    """`config/xtreme.yaml` -> `config/xtreme.lock.yaml` (beside the config)."""
    path = Path(configfile)
    return path.with_name(f"{path.stem}.lock.yaml")


def read_lock(path: str | Path | None) -> dict:
    """The lock file's {section: {id: {revision, commit}}}; {} when there is none. Bad content: one line."""
    if not path or not Path(path).is_file():
        return {}
    key = (str(path), Path(path).stat().st_mtime_ns)
    if key not in _CACHE:
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise UserError(f"lock file {path}: cannot read it as YAML ({e})") from None
        for section, entries in doc.items():
            if section not in SECTIONS or not isinstance(entries, dict):
                raise UserError(f"lock file {path}: unexpected key {section!r} (expected {', '.join(SECTIONS)})")
            for repo, entry in entries.items():
                if not isinstance(entry, dict) or not re.fullmatch(COMMIT_RE, str(entry.get("commit", ""))):
                    raise UserError(f"lock file {path}: {section}.{repo}: expected {{revision, commit: <40 hex>}}, "
                                    f"got {entry!r}")
        _CACHE[key] = doc
    return _CACHE[key]


def locked_commit(lock: str | None, section: str, repo: str, revision: str, key: str) -> str:
    """`revision` when it is a commit; else the commit the lock holds for (repo, revision), or one line."""
    if re.fullmatch(COMMIT_RE, revision):
        return revision
    entry = read_lock(lock).get(section, {}).get(repo)
    if entry is None or entry.get("revision") != revision:
        where = f"lock file {lock}" if lock else "no lock file (data.lock)"
        raise UserError(f"config key {key}: {revision!r} is a branch, not a commit, and {where} has no commit for "
                        f"{repo} @ {revision}; run `xstilts lock --configfile <this config>` (it resolves branches "
                        "and writes data.lock), or pin a 40-hex commit")
    return entry["commit"]


def check_safetensors(commit) -> None:
    """Backbones load safetensors only (no pickled weights): the commit must hold them."""
    if not any(f in commit.files for f in SAFETENSORS):
        raise UserError(f"hub model {commit.repo!r} at {commit.revision!r} ({commit.sha}) has no model.safetensors; "
                        "pin a revision that has them (e.g. the safetensors conversion PR, refs/pr/N)")


def main(args) -> int:
    """The `xstilts lock` verb."""
    from xstilts import grid
    from xstilts.data.sources import check_no_script, hub_commit

    config = grid.load_config(args.configfile, args.schema or default_schema(), locked=False)
    path = Path(config["data"].get("lock") or default_lock_path(args.configfile))
    repos = grid.hub_repos(config)
    if not any(repos.values()):
        print(f"{args.configfile} reads nothing from the hub: nothing to lock")
        return 0
    old = read_lock(path)
    new: dict[str, dict] = {section: {} for section in SECTIONS}
    moved = []
    for section, entries in repos.items():
        for repo, revision in entries.items():
            commit = hub_commit(repo, revision, "dataset" if section == "datasets" else "model")
            if section == "datasets":
                check_no_script(commit)
            else:
                check_safetensors(commit)
            before = old.get(section, {}).get(repo)
            if before and before.get("revision") == revision and before["commit"] != commit.sha:
                moved.append(f"{repo} @ {revision}: locked {before['commit']}, now {commit.sha}")
            new[section][repo] = {"revision": revision, "commit": commit.sha}
            print(f"{section[:-1]} {repo} @ {revision} -> {commit.sha}")
    if moved and not args.update:
        raise UserError(f"lock file {path}: {len(moved)} branch(es) moved since they were locked ({'; '.join(moved)}); "
                        "review the upstream change, then rerun with --update to lock the new commit(s)")
    header = (f"# Written by `xstilts lock --configfile {args.configfile}` on "
              f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}: the commit every hub revision of the\n"
              "# config resolved to. Review it and commit it with the config; runs read these commits.\n")
    write_text(path, header + yaml.safe_dump({k: v for k, v in new.items() if v}, sort_keys=True))
    if not config["data"].get("lock"):
        print(f"wrote {path}; add `lock: {path}` under `data:` in {args.configfile} so runs read it")
    else:
        print(f"wrote {path}")
    return 0
