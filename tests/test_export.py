"""A real row (every target evaluated or retrieved by the CLI verbs on the fixture mirror, with a tiny untrained
model), its dev scores, and `xstilts export`: one XTREME submission folder that a scorer written to the official
folder-level `evaluate` (tests/xtreme_reader.py) reads and scores exactly as xstilts did."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import xtreme_reader
from xstilts import cli, registry
from xstilts.io import read_json

ROOT = Path(__file__).resolve().parents[1]
XTREME_TARGETS = list(registry.XTREME_BENCHMARK.tasks)  # what an exported row holds (export.py)
FIXTURES = Path(__file__).parent / "fixtures" / "raw"
LANGS = {"tydiqa": "en,ar", "bucc2018": "de", "tatoeba": "de"}  # the others: en,de (what the fixtures hold)
NO_DEV = ("xquad", "tatoeba")  # XTREME has no dev split for these


def _cli(*argv: str) -> None:
    assert cli.main(list(argv)) == 0, argv


@pytest.fixture(scope="module")
def row(tmp_path_factory, tiny_model_dir) -> Path:
    """results/<exp>/tiny/full/seed0/none/en with all 9 cells, written by `xstilts evaluate` / `retrieve`."""
    from xstilts import phases
    from xstilts.models import build_task_model, load_tokenizer, save_model_dir

    root = tmp_path_factory.mktemp("export")
    data, row = root / "data", root / "results" / "x" / "tiny" / "full" / "seed0" / "none" / "en"
    langs_of = {t: LANGS.get(t, "en" if registry.get_task(t).role == "intermediate" else "en,de")
                for t in XTREME_TARGETS + ["mnli", "squad_v1"]}
    for task, langs in langs_of.items():
        _cli("prepare", "--task", task, "--source", "local", "--local-dir", str(FIXTURES), "--languages", langs,
             "--out", str(data / task))
    tok = load_tokenizer(tiny_model_dir)
    for train_task in registry.training_tasks_for(XTREME_TARGETS):
        task = registry.get_task(train_task)
        spec = phases._head_spec(task, str(data / train_task), {"pooling": "mean"})
        save_model_dir(build_task_model(tiny_model_dir, {task.head_name: spec}), tok, root / "ft" / train_task)
    for target in XTREME_TARGETS:
        task = registry.get_task(target)
        hp = {"max_length": 128, "doc_stride": 32} if task.kind == "qa" else {"max_length": 64}
        common = ["--target", target, "--data", str(data / target), "--languages", langs_of[target],
                  "--hparams", json.dumps(hp)]
        if task.train_on:
            _cli("evaluate", "--model", str(root / "ft" / task.train_on), *common, "--out", str(row / "eval" / target))
        else:
            _cli("retrieve", "--encoder", str(tiny_model_dir), *common, "--out", str(row / "retrieval" / target))
    return row


@pytest.fixture(scope="module")
def submission(row) -> Path:
    out = row.parents[5] / "submission"
    _cli("export", "--row", str(row), "--out", str(out))
    return out


def _metrics(row: Path, target: str) -> dict:
    phase = "retrieval" if registry.get_task(target).train_on is None else "eval"
    return read_json(row / phase / target / "metrics.json")


def test_export_is_one_tree_the_official_folder_scorer_scores_as_xstilts_did(row, submission):
    targets = XTREME_TARGETS
    assert sorted(p.name for p in (submission / "predictions").iterdir()) == sorted(targets)
    assert sorted(p.name for p in (submission / "labels").iterdir()) == sorted(targets)
    manifest = read_json(submission / "manifest.json")
    assert manifest["missing_tasks"] == [] and manifest["split"] == "test"
    languages = {t: manifest["tasks"][t]["languages"] for t in targets}
    assert languages["tydiqa"] == ["ar", "en"] and languages["bucc2018"] == ["de"] and languages["xnli"] == ["de", "en"]
    for t in targets:
        ext = "json" if t in xtreme_reader.QA_TASKS else "tsv"
        assert sorted(p.name for p in (submission / "predictions" / t).iterdir()) == \
            sorted(f"test-{lang}.{ext}" for lang in languages[t])  # no dev files in a submission
    assert manifest["tasks"]["xnli"]["official_languages_missing"] == [
        lang for lang in registry.XTREME_LANGUAGES["xnli"] if lang not in ("en", "de")]
    for read_tag in (xtreme_reader.read_tag_2020, xtreme_reader.read_tag_2021):
        official = xtreme_reader.evaluate_folder(submission / "predictions", submission / "labels", languages, read_tag)
        assert sorted(official) == sorted(targets)
        for t in targets:
            assert official[t]["avg_metric"] == pytest.approx(_metrics(row, t)["score"], abs=1e-9), t
            assert official[t]["avg_metric"] == pytest.approx(manifest["scores"][t], abs=1e-9), t


def test_every_labelled_dev_split_is_scored_beside_test(row):
    for target in XTREME_TARGETS:
        m = _metrics(row, target)
        cell = row / ("retrieval" if registry.get_task(target).train_on is None else "eval") / target
        if target in NO_DEV:
            assert m["dev"] is None, target
            assert not list(cell.glob("*/*/dev-*")), target
            continue
        dev_langs = {"tydiqa": ["en"], "bucc2018": ["de"]}.get(target, ["de", "en"])  # TyDiQA dev: carved English
        assert sorted(m["dev"]["languages"]) == dev_langs, target
        for lang in dev_langs:
            for kind in ("predictions", "labels"):
                assert list((cell / kind / target).glob(f"dev-{lang}.*")), (target, kind, lang)
    bucc = _metrics(row, "bucc2018")
    # BUCC dev = the split its threshold is tuned on: its dev F1 is the tuning optimum itself
    assert bucc["dev"]["languages"]["de"]["f1"] == pytest.approx(bucc["bucc_dev_tuning"]["de"]["dev_f1"])


def test_dev_max_examples_caps_the_dev_split_only(row, tmp_path, tiny_model_dir):
    data = row.parents[6] / "data" / "pawsx"
    out = tmp_path / "pawsx"
    _cli("evaluate", "--model", str(row.parents[6] / "ft" / "pawsx"), "--target", "pawsx", "--data", str(data),
         "--languages", "en", "--hparams", '{"max_length": 64, "dev_max_examples": 1}', "--out", str(out))
    assert len((out / "labels/pawsx/dev-en.tsv").read_text().splitlines()) == 1
    assert len((out / "labels/pawsx/test-en.tsv").read_text().splitlines()) == 3


def test_a_dev_split_made_of_test_rows_is_not_scored_as_dev(row, tmp_path):
    # data.missing_dev: test (the authors' TyDiQA selection on the English test rows) is no validation split
    data = tmp_path / "tydiqa"
    _cli("prepare", "--task", "tydiqa", "--source", "local", "--local-dir", str(FIXTURES), "--languages", "en,ar",
         "--missing-dev", "test", "--out", str(data))
    out = tmp_path / "eval"
    _cli("evaluate", "--model", str(row.parents[6] / "ft" / "tydiqa"), "--target", "tydiqa", "--data", str(data),
         "--languages", "en,ar", "--hparams", '{"max_length": 128, "doc_stride": 32}', "--out", str(out))
    assert read_json(out / "metrics.json")["dev"] is None
    assert not list(out.glob("*/*/dev-*"))


def _bad_export(capsys, row: Path, out: Path) -> str:
    code = cli.main(["export", "--row", str(row), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not out.exists()
    return err


def test_export_refuses_cells_the_official_scorer_would_misread(row, tmp_path, capsys):
    broken = tmp_path / "row"
    shutil.copytree(row, broken)
    assert "no such directory" in _bad_export(capsys, tmp_path / "nowhere", tmp_path / "out")
    # a QA label file in the pre-issue-12 {id: [answers]} shape
    label = broken / "eval/xquad/labels/xquad/test-de.json"
    label.write_text(json.dumps({"q": ["a"]}), encoding="utf-8")
    err = _bad_export(capsys, broken, tmp_path / "out")
    assert str(label) in err and "SQuAD v1.1 dataset structure" in err
    shutil.copytree(row / "eval/xquad", broken / "eval/xquad", dirs_exist_ok=True)
    # a tag file whose last sentence the 2020 read_tag would drop
    tags = broken / "eval/panx/predictions/panx/test-en.tsv"
    tags.write_text(tags.read_text(encoding="utf-8").rstrip("\n") + "\n", encoding="utf-8")
    err = _bad_export(capsys, broken, tmp_path / "out")
    assert str(tags) in err and "blank line" in err


def test_export_of_a_partial_row_lists_the_missing_tasks(row, tmp_path):
    partial = tmp_path / "row"
    shutil.copytree(row / "eval", partial / "eval")
    manifest = read_json(_export(partial, tmp_path / "out") / "manifest.json")
    assert manifest["missing_tasks"] == ["bucc2018", "tatoeba"]
    assert sorted(p.name for p in (tmp_path / "out/predictions").iterdir()) == sorted(
        t for t in XTREME_TARGETS if t not in ("bucc2018", "tatoeba"))


def _export(row: Path, out: Path) -> Path:
    _cli("export", "--row", str(row), "--out", str(out))
    return out


def test_snakemake_has_an_export_target_per_row(tmp_path):
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    run = subprocess.run([snakemake, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
                          "--configfile", str(ROOT / "config" / "ci.yaml"), "--cores", "1", "-n", "export_all"],
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    from xstilts import grid
    import yaml

    cfg = grid.check_config(yaml.safe_load((ROOT / "config" / "ci.yaml").read_text()),
                            ROOT / "workflow" / "schemas" / "config.schema.yaml")
    rows = grid.rows(cfg)
    assert f"export                {len(rows)}" in run.stdout or \
        any(line.split() == ["export", str(len(rows))] for line in run.stdout.splitlines())
    assert f"results/{cfg['experiment']}/{rows[0].path}/submission" in run.stdout
