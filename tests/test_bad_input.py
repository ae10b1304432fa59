"""Bad input, one test per case: exit code 2, ONE message naming the key, value or file at fault and what
was expected, no traceback, and nothing written. Data-layer cases live in tests/test_data.py and
tests/test_data_prepare.py and config cases already in tests/test_workflow.py are not repeated here;
docs/reliability.md lists them all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_workflow
from xstilts import cli, grid
from xstilts.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
FIXTURES = Path(__file__).parent / "fixtures" / "raw"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} | \
        {str(p.relative_to(root)) + "/": b"" for p in root.rglob("*") if p.is_dir()}


def without_snakemake(files: dict[str, bytes]) -> dict[str, bytes]:
    """Snakemake's own bookkeeping (.snakemake/) aside."""
    return {k: v for k, v in files.items() if not k.startswith(".snakemake")}


# ------------------------------------------------------------------------------------------ config
def config_error(change) -> str:
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    change(cfg)
    with pytest.raises(UserError) as e:
        grid.check_config(cfg, SCHEMA)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_config_unknown_backbone_kind():
    msg = config_error(lambda c: c["backbones"]["tiny"].update(kind="hf"))
    assert "backbones.tiny.kind" in msg and "'hf'" in msg and "pretrain" in msg and "hub" in msg


def test_config_unknown_adaptation_name():
    msg = config_error(lambda c: c["adaptations"].update(qlora=None))
    assert msg.startswith("config key adaptations:") and "'qlora'" in msg


def test_config_unknown_variant():
    msg = config_error(lambda c: c.update(variants={"xx": ["mnli"]}))
    assert msg.startswith("config key variants:") and "'xx'" in msg


def test_config_variant_for_the_baseline_row():
    msg = config_error(lambda c: c.update(variants={"mlm": ["none"]}))
    assert "variants.mlm" in msg and "'none'" in msg and "mnli, squad_v1" in msg


def test_config_hub_backbone_without_model_and_revision():
    msg = config_error(lambda c: c["backbones"].update(xlmr={"kind": "hub"}))
    assert "backbones.xlmr" in msg and "'model' is a required property" in msg


def test_config_seeds_of_the_wrong_type():
    msg = config_error(lambda c: c.update(seeds="0"))
    assert msg.startswith("config key seeds:") and "'0' is not of type 'array'" in msg


def test_config_negative_seed():
    assert "config key seeds.0: -1 is less than the minimum of 0" in config_error(lambda c: c.update(seeds=[-1]))


def test_config_zero_batch_size():
    msg = config_error(lambda c: c["hparams"]["finetune"]["default"].update(batch_size=0))
    assert "hparams.finetune.default.batch_size: 0 is less than the minimum of 1" in msg


def test_config_zero_epochs():
    msg = config_error(lambda c: c["hparams"]["intermediate"]["default"].update(epochs=0))
    assert "hparams.intermediate.default.epochs: 0" in msg


def test_config_zero_max_examples():
    assert "data.max_examples: 0 is less than the minimum of 1" in config_error(
        lambda c: c["data"].update(max_examples=0))


def test_config_negative_memory():
    assert "resources.default.mem_mb: -5" in config_error(lambda c: c["resources"]["default"].update(mem_mb=-5))


def test_config_missing_required_key():
    msg = config_error(lambda c: c.pop("seeds"))
    assert "'seeds' is a required property" in msg


def test_config_multitask_with_one_task():
    msg = config_error(lambda c: c.update(intermediate=["none", "multitask"], multitask=["mnli"]))
    assert msg.startswith("config key multitask:") and "at least 2 tasks" in msg


def test_config_eval_hparams_for_a_retrieval_target():
    msg = config_error(lambda c: c["hparams"]["evaluate"].update(tatoeba={"max_length": 32}))
    assert "hparams.evaluate" in msg and "'tatoeba'" in msg


def test_config_experiment_name_that_escapes_results():
    assert "config key experiment: '../etc'" in config_error(lambda c: c.update(experiment="../etc"))


@pytest.mark.parametrize("change,expected", [
    (lambda c: c["backbones"]["tiny"].update(kind="hf"), "backbones.tiny.kind"),
    (lambda c: c["intermediate"].append("mnlii"), "config key intermediate: 'mnlii'"),
], ids=["schema", "registry"])
def test_invalid_config_stops_snakemake_before_any_job_and_writes_nothing(change, expected, tmp_path):
    """Through the real Snakefile (a copy): the message, and the directory left as it was."""
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    change(cfg)
    work = copy_workflow(tmp_path / "work", {"bad.yaml": cfg})
    (work / "results/ci").mkdir(parents=True)
    (work / "results/ci/cells.json").write_text("{}")  # an earlier run's output must survive
    before = tree(work)
    run = subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--profile", "profiles/local",
                          "--configfile", "bad.yaml"], cwd=work, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert expected in run.stderr and "Traceback" not in run.stderr
    assert without_snakemake(tree(work)) == without_snakemake(before)


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture()
def workspace(tmp_path, tiny_model_dir):
    """A results-like directory: a prepared MNLI dir, an encoder, a model fine-tuned on MNLI, a corpus."""
    from xstilts.data.prepare import main as prepare_main
    from xstilts.models import build_task_model, load_tokenizer, save_model_dir

    import xstilts.phases  # noqa: F401  as in a job: importing the verbs turns transformers' progress bars off

    ws = tmp_path / "ws"
    for task, langs in (("mnli", []), ("tatoeba", ["--languages", "de"])):
        args = cli.build_parser().parse_args(["prepare", "--task", task, "--source", "local", "--local-dir",
                                              str(FIXTURES), *langs, "--out", str(ws / "data" / task)])
        assert prepare_main(args) == 0
    spec = {"kind": "classification", "n_labels": 3, "labels": ["entailment", "neutral", "contradiction"],
            "task": "mnli"}
    save_model_dir(build_task_model(tiny_model_dir, {"nli": spec}), load_tokenizer(tiny_model_dir), ws / "ft")
    shutil.copytree(tiny_model_dir, ws / "encoder")
    yield ws


def run_cli(ws: Path, capsys, *argv: str) -> str:
    """Run `xstilts argv` in-process: exit 2, one message line (after argparse's usage, for its own errors), no
    traceback, nothing under `ws` changed. Returns the message."""
    before = tree(ws)
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    usage, _, message = err.rpartition("\n")
    assert message.startswith(f"xstilts {argv[0]}: error: ") and "Traceback" not in err, err
    assert not usage or usage.startswith("usage: xstilts"), err
    assert tree(ws) == before
    return message


def train_args(ws: Path) -> list[str]:
    return ["--seed", "0", "--state-dir", str(ws / "state"), "--out", str(ws / "out")]


def test_cli_intermediate_mlm_without_corpus(workspace, capsys):
    msg = run_cli(workspace, capsys, "intermediate", "--model", str(workspace / "encoder"), "--tasks", "mnli",
                  "--data", str(workspace / "data/mnli"), "--variant", "mlm", *train_args(workspace))
    assert msg == "xstilts intermediate: error: --variant mlm needs --corpus (the prepared multilingual corpus)"


def test_cli_intermediate_tasks_and_data_of_different_lengths(workspace, capsys):
    msg = run_cli(workspace, capsys, "intermediate", "--model", str(workspace / "encoder"), "--tasks", "mnli,qqp",
                  "--data", str(workspace / "data/mnli"), *train_args(workspace))
    assert "--tasks has 2 entries but --data has 1" in msg


def test_cli_intermediate_translated_without_variant_mt(workspace, capsys):
    msg = run_cli(workspace, capsys, "intermediate", "--model", str(workspace / "encoder"), "--tasks", "mnli",
                  "--data", str(workspace / "data/mnli"), "--translated", str(workspace / "data/mnli"),
                  *train_args(workspace))
    assert "--translated given but --variant is 'en'" in msg


def test_cli_intermediate_on_a_retrieval_task(workspace, capsys):
    msg = run_cli(workspace, capsys, "intermediate", "--model", str(workspace / "encoder"), "--tasks", "tatoeba",
                  "--data", str(workspace / "data/tatoeba"), *train_args(workspace))
    assert "task 'tatoeba' has no training head" in msg


def test_cli_unknown_task_name(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "mnlii",
                  "--data", str(workspace / "data/mnli"), *train_args(workspace))
    assert "unknown task 'mnlii'" in msg and "mnli" in msg


def test_cli_unknown_hyperparameter(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "mnli",
                  "--data", str(workspace / "data/mnli"), "--hparams", '{"lrr": 0.1}', *train_args(workspace))
    assert "unknown hyperparameter 'lrr' for phase 'finetune'" in msg and "lr" in msg


def test_cli_hyperparameter_of_the_wrong_type(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "mnli",
                  "--data", str(workspace / "data/mnli"), "--hparams", '{"batch_size": "big"}', *train_args(workspace))
    assert "hyperparameter 'batch_size': 'big' is not of type 'integer'" in msg


def test_cli_hparams_that_are_not_json(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "mnli",
                  "--data", str(workspace / "data/mnli"), "--hparams", "{lr: 1}", *train_args(workspace))
    assert "--hparams" in msg and "not valid JSON" in msg and "{lr: 1}" in msg


def test_cli_missing_required_argument(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "mnli",
                  *train_args(workspace))
    assert "the following arguments are required: --data" in msg


def test_cli_finetune_on_a_target_without_training_data(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "xnli",
                  "--data", str(workspace / "data/mnli"), *train_args(workspace))
    assert "--train-task 'xnli' has no English training split" in msg


def test_cli_encoder_that_is_not_a_model_dir(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "data/mnli"), "--train-task", "mnli",
                  "--data", str(workspace / "data/mnli"), *train_args(workspace))
    assert str(workspace / "data/mnli") in msg and "not a model directory" in msg


def test_cli_data_dir_that_is_not_prepared(workspace, capsys):
    msg = run_cli(workspace, capsys, "finetune", "--encoder", str(workspace / "encoder"), "--train-task", "mnli",
                  "--data", str(workspace / "encoder"), *train_args(workspace))
    assert str(workspace / "encoder" / "manifest.json") in msg and "missing manifest" in msg


def test_cli_evaluate_with_a_retrieval_target(workspace, capsys):
    msg = run_cli(workspace, capsys, "evaluate", "--model", str(workspace / "ft"), "--target", "tatoeba",
                  "--data", str(workspace / "data/tatoeba"), "--out", str(workspace / "out"))
    assert "target 'tatoeba' is a retrieval task; use `xstilts retrieve`" in msg


def test_cli_retrieve_with_a_classification_target(workspace, capsys):
    msg = run_cli(workspace, capsys, "retrieve", "--encoder", str(workspace / "encoder"), "--target", "xnli",
                  "--data", str(workspace / "data/mnli"), "--out", str(workspace / "out"))
    assert "target 'xnli' is not a retrieval task; use `xstilts evaluate`" in msg


def test_cli_evaluate_a_model_dir_that_is_not_fine_tuned(workspace, capsys):
    msg = run_cli(workspace, capsys, "evaluate", "--model", str(workspace / "encoder"), "--target", "xnli",
                  "--data", str(workspace / "data/mnli"), "--out", str(workspace / "out"))
    assert str(workspace / "encoder") in msg and "not a fine-tuned model directory" in msg


def test_cli_evaluate_a_target_with_a_model_trained_for_another(workspace, capsys):
    msg = run_cli(workspace, capsys, "evaluate", "--model", str(workspace / "ft"), "--target", "xquad",
                  "--data", str(workspace / "data/mnli"), "--out", str(workspace / "out"))
    assert "fine-tuned on 'mnli' but target 'xquad' trains on 'squad_v1'" in msg


def test_cli_evaluate_several_targets_with_a_missing_flag_or_a_shared_out(workspace, capsys):
    """Several targets in one process pair the repeated flags in order: a count that does not match, or two
    targets writing one directory, is refused before anything is loaded or written."""
    two = ["--target", "xnli", "--target", "pawsx", "--data", str(workspace / "data/mnli"),
           "--data", str(workspace / "data/mnli")]
    msg = run_cli(workspace, capsys, "evaluate", "--model", str(workspace / "ft"), *two,
                  "--out", str(workspace / "a"), "--out", str(workspace / "b"))
    assert "--model: 1 given for 2 --target; give one per --target, in the same order" in msg
    msg = run_cli(workspace, capsys, "evaluate", "--model", str(workspace / "ft"), "--model", str(workspace / "ft"),
                  *two, "--hparams", "{}", "--out", str(workspace / "a"), "--out", str(workspace / "b"))
    assert "--hparams: 1 given for 2 --target" in msg and "(or none at all)" in msg
    msg = run_cli(workspace, capsys, "retrieve", "--encoder", str(workspace / "encoder"), "--target", "tatoeba",
                  "--target", "bucc2018", "--data", str(workspace / "data/tatoeba"), "--data", str(workspace / "x"),
                  "--out", str(workspace / "same"), "--out", str(workspace / "same"))
    assert f"--out {str(workspace / 'same')!r} given for two targets" in msg


def test_cli_prepare_a_local_mirror_that_does_not_exist(workspace, capsys):
    missing = workspace.parent / "no such mirror"
    msg = run_cli(workspace, capsys, "prepare", "--task", "mnli", "--source", "local", "--local-dir", str(missing),
                  "--out", str(workspace / "out"))
    assert str(missing) in msg


def test_cli_prepare_zero_max_examples(workspace, capsys):
    msg = run_cli(workspace, capsys, "prepare", "--task", "mnli", "--source", "local", "--local-dir", str(FIXTURES),
                  "--max-examples", "0", "--out", str(workspace / "out"))
    assert "--max-examples must be a positive integer, got 0" in msg


def test_cli_aggregate_without_a_cells_file(workspace, capsys):
    msg = run_cli(workspace, capsys, "aggregate", "--results", str(workspace), "--cells",
                  str(workspace / "cells.json"), "--out", str(workspace / "summary"))
    assert str(workspace / "cells.json") in msg and "no such file" in msg


def test_cli_aggregate_with_a_cells_file_that_is_not_a_cell_list(workspace, capsys, tmp_path):
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps({"cells": []}))
    msg = run_cli(workspace, capsys, "aggregate", "--results", str(workspace), "--cells", str(cells), "--out",
                  str(workspace / "summary"))
    assert str(cells) in msg and "targets" in msg


# ------------------------------------------------------------------------------------------ workflow
def test_config_unknown_key_names_the_closest_valid_one():
    assert "unknown key 'seed' (did you mean 'seeds'?)" in config_error(lambda c: c.update(seed=[0]))
    msg = config_error(lambda c: c["adaptations"].update(lroa=None))
    assert msg.startswith("config key adaptations: unknown key 'lroa' (did you mean 'lora'?)")
    assert "(did you mean 'mnli'?)" in config_error(lambda c: c["intermediate"].append("mnlii"))
    assert "(did you mean 'tiny'?)" in config_error(lambda c: c.update(backbone="tinny"))


def test_config_local_backbone_that_is_not_a_model_dir(tmp_path):
    msg = config_error(lambda c: c["backbones"].update(mine={"kind": "local", "path": str(tmp_path)}))
    assert f"backbones.mine.path: '{tmp_path}' has no config.json" in msg


def snakemake_dry_run(tmp_path: Path, config: dict | None, *args: str) -> subprocess.CompletedProcess:
    if config is not None:
        (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run([str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(ROOT / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(tmp_path / "cfg.yaml"), "-n", *args],
                          capture_output=True, text=True, timeout=180)


def test_target_outside_the_grid_names_the_wildcard_and_the_allowed_values(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    cfg["adaptations"]["lora"] = {"intermediate": ["none"]}
    cases = {"results/ci/tiny/full/seed7/mnli/en/eval/xnli/metrics.json":
             "tiny/full/seed7/mnli/en: wildcard seed=7 is outside this config's grid; allowed: 0",
             "results/ci/tiny/lora/seed0/mnli/en/finetune/mnli/dev.json":
             "wildcard adaptation='lora' does not cover intermediate 'mnli' variant 'en'; config key "
             "adaptations.lora selects intermediate: none, variants: all"}
    for target, expected in cases.items():
        run = snakemake_dry_run(tmp_path, cfg, target)
        assert run.returncode == 2, run.stderr[-2000:]
        last = run.stderr.rstrip().splitlines()[-1]
        assert last.startswith("xstilts: target ") and last.endswith(expected) and "Traceback" not in run.stderr


def test_unknown_config_key_through_snakemake_is_one_line(tmp_path):
    run = snakemake_dry_run(tmp_path, yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8")),
                            "--config", "experimnt=x")
    assert run.returncode == 2
    last = run.stderr.rstrip().splitlines()[-1]
    assert last.startswith("xstilts: invalid config: config key (top level): unknown key 'experimnt' (did you "
                           "mean 'experiment'?)") and "Traceback" not in run.stderr


@pytest.mark.xfail(strict=True, reason="Snakemake 9.27.1 opens a --configfile before the Snakefile runs and "
                   "prints a traceback for a missing one (snakemake/common/configfile.py opens the file outside "
                   "its own FileNotFoundError handler); this turns red when Snakemake fixes it")
def test_missing_config_file_is_one_line(tmp_path):
    run = snakemake_dry_run(tmp_path, None)
    assert run.returncode != 0 and "cfg.yaml" in run.stderr and "Traceback" not in run.stderr
