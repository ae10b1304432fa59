"""`xstilts export`: one row's test predictions (and gold labels) as ONE folder in the XTREME submission layout.

Every cell writes its own `predictions/<task>/test-<lang>.*` and `labels/...` (xstilts.evaluate.write_submission,
phases.run_retrieve). The XTREME leaderboard and the official folder scorer want them together: one folder with a
sub-folder per task named as the official scorer's tasks (google-research/xtreme evaluate.py 522434d:102-112,
`TASK2LANGS`: udpos panx xnli pawsx xquad mlqa tydiqa bucc2018 tatoeba, the registry's target names), each
holding `test-<lang>.json` for the QA group and `test-<lang>.tsv` otherwise (lines 176-181), and
`evaluate(prediction_folder, label_folder)` (line 160) walks both folders' task sub-folders (lines 169-175).
The export checks each file pair the way that scorer reads it, so a folder it writes is one the scorer parses.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from xstilts.errors import UserError
from xstilts.evaluate import submission_name
from xstilts.grid import PHASE_DIRS, RETRIEVAL_KINDS
from xstilts.io import atomic_path, read_json, write_json
from xstilts.registry import XTREME_LANGUAGES, get_task, target_tasks

SPLIT = "test"  # the submission is the test split; dev files of the cells stay where they are


def _cell_dir(row: Path, task_name: str) -> Path:
    task = get_task(task_name)
    return row / PHASE_DIRS["retrieval" if task.kind in RETRIEVAL_KINDS else "evaluate"] / task_name


def _languages(cell: Path, task_name: str) -> list[str]:
    """The languages of a cell, from its metrics.json (the languages it scored)."""
    try:
        metrics = read_json(cell / "metrics.json")
    except ValueError as e:
        raise UserError(f"{cell / 'metrics.json'}: not valid JSON ({e})") from None
    langs = metrics.get("languages") if isinstance(metrics, dict) else None
    if not isinstance(langs, dict) or not langs:
        raise UserError(f"{cell / 'metrics.json'}: no per-language scores under `languages`")
    return list(langs)


def _tag_sentences(path: Path, text: str) -> int:
    """Sentences as the 2020 `read_tag` counts them (evaluate.py 522434d:27-38: one per blank line)."""
    if text and not text.endswith("\n\n"):
        raise UserError(f"{path}: tag file does not end with a blank line, so the 2020 official `read_tag` drops "
                        f"its last sentence; rerun this cell's evaluation (files from before issue 12)")
    return sum(1 for line in text.splitlines() if not line.strip())


def _json(path: Path):
    try:
        return json.loads(path.read_text("utf-8"))
    except ValueError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None


def _check_pair(task_name: str, pred: Path, gold: Path) -> None:
    """Parse the two files as the official readers do (evaluate.py 522434d:27-57) and compare their sizes as
    `evaluate_one_task` asserts (line 155: every task but bucc2018 and the QA group)."""
    task = get_task(task_name)
    for path in (pred, gold):
        if not path.is_file():
            raise UserError(f"{path}: missing; expected a {'label' if path is gold else 'prediction'} file per "
                            f"language the cell scored")
    if task.kind in ("qa", "qa_unanswerable"):
        predictions, dataset = _json(pred), _json(gold)
        if not isinstance(predictions, dict) or "data" in predictions:
            raise UserError(f"{pred}: expected a JSON object {{question id: answer text}}")
        articles = dataset.get("data") if isinstance(dataset, dict) else None
        if not isinstance(articles, list) or not all(isinstance(a, dict) and "paragraphs" in a for a in articles):
            raise UserError(f"{gold}: not in the SQuAD v1.1 dataset structure (data -> paragraphs -> qas -> "
                            f"answers) the official QA readers need; rerun this cell's evaluation")
        return
    pred_text, gold_text = pred.read_text("utf-8"), gold.read_text("utf-8")
    if task.kind == "tagging":
        n_pred, n_gold = _tag_sentences(pred, pred_text), _tag_sentences(gold, gold_text)
    else:
        n_pred, n_gold = len(pred_text.splitlines()), len(gold_text.splitlines())
    if task.kind != "bitext_mining" and n_pred != n_gold:
        raise UserError(f"{pred}: {n_pred} predictions for {n_gold} gold entries in {gold}; the official scorer "
                        f"asserts equal numbers")


def export(row: Path, out: Path) -> dict:
    """Copy every scored target of `row` into `out/predictions` and `out/labels`; write `out/manifest.json`."""
    if not row.is_dir():
        raise UserError(f"--row {row}: no such directory; expected a results row directory "
                        f"(results/<experiment>/<backbone>/<adaptation>/seed<seed>/<intermediate>/<variant>)")
    present = [t for t in target_tasks() if (_cell_dir(row, t) / "metrics.json").is_file()]
    if not present:
        raise UserError(f"--row {row}: no scored cell (eval/<target>/metrics.json or retrieval/<target>/metrics.json); "
                        f"expected a results row directory whose cells have run")
    manifest = {"row": str(row), "split": SPLIT, "tasks": {}, "missing_tasks": [], "scores": {}}
    with atomic_path(out) as tmp:
        for task_name in target_tasks():
            if task_name not in present:
                manifest["missing_tasks"].append(task_name)
                continue
            cell = _cell_dir(row, task_name)
            langs = _languages(cell, task_name)
            for lang in langs:
                name = submission_name(SPLIT, lang, get_task(task_name))
                pred, gold = cell / "predictions" / task_name / name, cell / "labels" / task_name / name
                _check_pair(task_name, pred, gold)
                for kind, src in (("predictions", pred), ("labels", gold)):
                    (tmp / kind / task_name).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, tmp / kind / task_name / name)
            official = XTREME_LANGUAGES[task_name]
            manifest["tasks"][task_name] = {
                "languages": langs, "official_languages_missing": [lg for lg in official if lg not in langs]}
            manifest["scores"][task_name] = read_json(cell / "metrics.json")["score"]
        write_json(tmp / "manifest.json", manifest)
    return manifest


def main(args) -> int:
    """The `xstilts export` verb: --row RESULTS_ROW_DIR --out DIR."""
    manifest = export(Path(args.row), Path(args.out))
    incomplete = {t: v["official_languages_missing"] for t, v in manifest["tasks"].items()
                  if v["official_languages_missing"]}
    print(f"export: {len(manifest['tasks'])} of {len(target_tasks())} tasks to {args.out}"
          + (f"; missing tasks: {', '.join(manifest['missing_tasks'])}" if manifest["missing_tasks"] else ""))
    if incomplete:
        print(f"export: {len(incomplete)} tasks lack official XTREME languages (see manifest.json); the official "
              f"folder scorer opens every official language and stops at the first missing file")
    return 0
