"""`xstilts export`: one row's test predictions (and gold labels) as ONE folder in the XTREME (or XTREME-R)
submission layout.

Every cell writes its own `predictions/<task>/test-<lang>.*` and `labels/...` (xstilts.evaluate.write_submission,
phases.run_retrieve). The XTREME leaderboard and the official folder scorer want them together: one folder with a
sub-folder per task named as the official scorer's tasks (google-research/xtreme evaluate.py 522434d:102-112,
`TASK2LANGS`: udpos panx xnli pawsx xquad mlqa tydiqa bucc2018 tatoeba, the tasks of registry.XTREME_BENCHMARK), each
holding `test-<lang>.json` for the QA group and `test-<lang>.tsv` otherwise (lines 176-181), and
`evaluate(prediction_folder, label_folder)` (line 160) walks both folders' task sub-folders (lines 169-175).
The export checks each file pair the way that scorer reads it, so a folder it writes is one the scorer parses.
`--benchmark xtreme-r` writes XTREME-R's folder (evaluate.py 838c13b `--xtreme_version xtreme-r`: its 10 task
folders, `jsonl` for XCOPA and `json` for Mewsli-X, lines 239-245) without LAReQA, which that scorer cannot read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from xstilts import kinds
from xstilts.errors import UserError
from xstilts.evaluate import read_submission_files, submission_name
from xstilts.grid import PHASE_DIRS
from xstilts.io import atomic_path, read_json, write_json
from xstilts.registry import XTREME_BENCHMARK, get_benchmark, get_task

SPLIT = "test"  # the submission is the test split; dev files of the cells stay where they are


def _cell_dir(row: Path, task_name: str) -> Path:
    task = get_task(task_name)
    return row / PHASE_DIRS["retrieval" if task.retrieval else "evaluate"] / task_name


def _cell_metrics(cell: Path) -> dict:
    """A cell's metrics.json, which names the languages it scored (`languages`) and its `score`."""
    path = cell / "metrics.json"
    try:
        metrics = read_json(path)
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(metrics, dict) or not isinstance(metrics.get("languages"), dict) or not metrics["languages"]:
        raise UserError(f"{path}: no per-language scores under `languages`")
    return metrics


def _check_files(cell: Path, task_name: str, lang: str) -> None:
    """Read the test pair once and parse it as `evaluate.read_submission` does (the official structures: QA gold
    in the SQuAD v1.1 dataset shape), require the blank line after every tag sentence that the 2020 `read_tag`
    needs (evaluate.py 522434d:27-38), and equal numbers of predictions and labels, as `evaluate_one_task`
    asserts (line 155: every task but bucc2018 and the QA group)."""
    task = get_task(task_name)
    kind = kinds.of(task)
    paths, texts = read_submission_files(cell, task, lang, SPLIT)
    pred, gold = kind.parse_submission(paths, texts)
    for path, text in zip(paths, texts):
        problem = kind.check_submission_file(path, text)
        if problem:
            raise UserError(f"{path}: {problem}")
    if kind.one_prediction_per_gold and len(pred) != len(gold):
        raise UserError(f"{paths[0]}: {len(pred)} predictions for {len(gold)} gold "
                        f"entries; the official scorer asserts equal numbers")


def folder_tasks(benchmark: str) -> list[str]:
    """The tasks of a submission folder of `benchmark`: those its official scorer reads."""
    b = get_benchmark(benchmark)
    return [t for t in b.tasks if t not in b.no_official_scorer]


def export(row: Path, out: Path, benchmark: str = XTREME_BENCHMARK.name) -> dict:
    """Copy every scored target of `row` that `benchmark`'s folder holds into `out/predictions` and `out/labels`;
    write `out/manifest.json`."""
    if not row.is_dir():
        raise UserError(f"--row {row}: no such directory; expected a results row directory "
                        f"(results/<experiment>/<backbone>/<adaptation>/seed<seed>/<intermediate>/<variant>)")
    bench, tasks = get_benchmark(benchmark), folder_tasks(benchmark)
    present = [t for t in tasks if (_cell_dir(row, t) / "metrics.json").is_file()]
    if not present:
        raise UserError(f"--row {row}: no scored cell (eval/<target>/metrics.json or "
                        f"retrieval/<target>/metrics.json); expected a results row directory whose cells have run")
    manifest = {"row": str(row), "split": SPLIT, "benchmark": bench.name, "tasks": {}, "missing_tasks": [],
                "scores": {}, "left_out": list(bench.no_official_scorer)}
    with atomic_path(out) as tmp:
        for task_name in tasks:
            if task_name not in present:
                manifest["missing_tasks"].append(task_name)
                continue
            cell = _cell_dir(row, task_name)
            metrics = _cell_metrics(cell)
            langs = list(metrics["languages"])
            for lang in langs:
                _check_files(cell, task_name, lang)
                name = submission_name(SPLIT, lang, get_task(task_name))
                for kind in ("predictions", "labels"):
                    (tmp / kind / task_name).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(cell / kind / task_name / name, tmp / kind / task_name / name)
            official = bench.languages_of(task_name)
            manifest["tasks"][task_name] = {
                "languages": langs, "official_languages_missing": [lg for lg in official if lg not in langs]}
            manifest["scores"][task_name] = metrics["score"]
        write_json(tmp / "manifest.json", manifest)
    return manifest


def main(args) -> int:
    """The `xstilts export` verb: --row RESULTS_ROW_DIR --out DIR [--benchmark NAME]."""
    manifest = export(Path(args.row), Path(args.out), args.benchmark)
    name = manifest["benchmark"].upper()
    incomplete = {t: v["official_languages_missing"] for t, v in manifest["tasks"].items()
                  if v["official_languages_missing"]}
    print(f"export: {len(manifest['tasks'])} of {len(folder_tasks(args.benchmark))} {name} tasks to {args.out}"
          + (f"; missing tasks: {', '.join(manifest['missing_tasks'])}" if manifest["missing_tasks"] else "")
          + (f"; left out (the official scorer cannot read them): {', '.join(manifest['left_out'])}"
             if manifest["left_out"] else ""))
    if incomplete:
        print(f"export: {len(incomplete)} tasks lack official {name} languages (see manifest.json); the official "
              f"folder scorer opens every official language and stops at the first missing file")
    return 0
