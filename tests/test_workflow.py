"""The Snakemake workflow: config validation, dry runs of the three configs against job counts derived from
the config, lint, shell quoting, and a real run of the CI grid with a fake `xstilts` on PATH (it writes each
verb's declared outputs in milliseconds) to check that a failed cell never blocks the summary and that
`--list-changes params` names only the cells whose hyperparameters changed."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from xstilts import grid, registry
from xstilts.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
CONFIGS = {name: ROOT / "config" / f"{name}.yaml" for name in ("config", "ci", "xtreme", "xtreme-r-ci")}
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def load(name: str) -> dict:
    return yaml.safe_load(CONFIGS[name].read_text(encoding="utf-8"))


def snakemake(workdir: Path, configfile: Path, *args: str, env: dict | None = None,
              timeout: int = 240) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in `workdir` (so no output of a real run interferes)."""
    cmd = [SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """The `Job stats` table of a dry run."""
    table = output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


# ------------------------------------------------------------------------------ expected counts by formula
def expected_counts(cfg: dict) -> dict[str, int]:
    """Job counts of a fresh run, written out from the config independently of xstilts.grid."""
    targets = cfg.get("targets") or registry.get_benchmark(cfg.get("benchmark", "xtreme")).tasks
    retrieval = [t for t in targets if registry.get_task(t).kind in ("bitext_retrieval", "bitext_mining")]
    train = {registry.get_task(t).train_on for t in targets} - {None}
    variants = cfg.get("variants") or {}
    settings = cfg["intermediate"]
    english = [s for s in settings if s not in ("none", "multitask")]
    multi = cfg.get("multitask") or english

    def n_rows(selector):
        selector = selector or {}
        n = 0
        for s in selector.get("intermediate") or settings:
            row_variants = ["en"] + [v for v, names in variants.items() if s in names]
            n += len([v for v in row_variants if v in (selector.get("variants") or row_variants)])
        return n

    rows = sum(n_rows(sel) for sel in cfg["adaptations"].values()) * len(cfg["seeds"]) * len(cfg["backbones"])
    none_rows = sum(1 for sel in cfg["adaptations"].values() if "none" in ((sel or {}).get("intermediate") or settings))
    none_rows *= len(cfg["seeds"]) * len(cfg["backbones"])
    tasks = set(english) | set(multi if "multitask" in settings else []) | train | set(targets)
    mt_tasks = {t for s in variants.get("mt", []) for t in (multi if s == "multitask" else [s])}
    pretrained = sum(1 for b in cfg["backbones"].values() if b["kind"] == "pretrain")
    counts = {
        "cells": 1, "all": 1, "prepare": len(tasks), "prepare_translated": len(mt_tasks),
        "prepare_corpus": int(bool(variants.get("mlm")) or pretrained > 0), "synth": int(bool(cfg["data"].get("synth"))),
        "pretrain": pretrained, "fetch_model": len(cfg["backbones"]) - pretrained,
        "intermediate": rows - none_rows, "finetune": rows * len(train),
        "evaluate": rows * bool(set(targets) - set(retrieval)), "retrieve": rows * bool(retrieval),  # one per row
    }
    return {k: v for k, v in counts.items() if v}


@pytest.mark.parametrize("name", ["config", "ci", "xtreme"])
def test_dry_run_lists_the_whole_grid(name, tmp_path):
    result = snakemake(tmp_path, CONFIGS[name], "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout) == expected_counts(load(name))


def test_xtreme_r_targets_join_the_grid_by_name(tmp_path):
    """XCOPA, LAReQA and Mewsli-X (not XTREME tasks, so never default targets) run when a config names them:
    their own prepare and fine-tuning jobs, and their evaluation in each row's one evaluate job; SIQA (XTREME-R's
    stage before COPA) is an intermediate setting like the paper's."""
    cfg = {**load("ci"), "targets": ["xnli", "xcopa", "lareqa", "mewslix"], "languages": ["en", "de", "zh"],
           "intermediate": ["none", "mnli", "siqa"]}
    result = snakemake(tmp_path, CONFIGS["ci"], "-n", "--quiet", "rules", "--config",
                       "targets=[xnli,xcopa,lareqa,mewslix]", "languages=[en,de,zh]", "intermediate=[none,mnli,siqa]")
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout) == expected_counts(cfg)
    checked = grid.check_config(cfg, SCHEMA)
    # in the task's order
    assert grid.languages(checked, "xcopa") == ["zh"] and grid.languages(checked, "lareqa") == ["de", "en", "zh"]
    assert grid.languages(checked, "mewslix") == ["de", "en"]


def test_benchmark_xtreme_r_is_a_grid_of_its_ten_tasks(tmp_path):
    """config/xtreme-r-ci.yaml (`benchmark: xtreme-r`, no `targets`): XTREME-R's 10 tasks as the DAG's targets
    (PAWS-X and BUCC gone), SIQA as the intermediate row."""
    cfg = load("xtreme-r-ci")
    result = snakemake(tmp_path, CONFIGS["xtreme-r-ci"], "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    assert job_counts(result.stdout) == expected_counts(cfg)
    assert set(grid.targets(grid.check_config(cfg, SCHEMA))) == set(registry.XTREME_R_BENCHMARK.tasks)


def test_backbone_selector_replaces_where_config_backbones_merge(tmp_path):
    """`--config backbones={...}` merges into the file's backbones (both run); `backbone=NAME` keeps one."""
    extra = ("backbones={mbert: {kind: hub, model: google-bert/bert-base-multilingual-cased, revision: "
             + "0" * 40 + "}}")
    merged = snakemake(tmp_path, CONFIGS["ci"], "-n", "--quiet", "rules", "--config", extra)
    selected = snakemake(tmp_path, CONFIGS["ci"], "-n", "--quiet", "rules", "--config", extra, "backbone=mbert")
    assert merged.returncode == 0 and selected.returncode == 0, merged.stderr + selected.stderr
    ci, both, one = expected_counts(load("ci")), job_counts(merged.stdout), job_counts(selected.stdout)
    assert both["intermediate"] == 2 * ci["intermediate"] and both["pretrain"] == 1
    assert one["fetch_model"] == 1 and "pretrain" not in one
    assert {k: one[k] for k in ("intermediate", "finetune", "evaluate", "retrieve")} == \
        {k: ci[k] for k in ("intermediate", "finetune", "evaluate", "retrieve")}


def test_local_backbone_is_read_in_place(tmp_path):
    """kind: local names a save_pretrained directory: no fetch or pretrain job, the rules read it directly."""
    model = tmp_path / "my model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cfg = load("ci")
    cfg["backbones"] = {"mine": {"kind": "local", "path": str(model)}}
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run = snakemake(tmp_path / "work", path, "-n", "-p")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "rule fetch_model" not in run.stdout and "rule pretrain:" not in run.stdout
    assert f"--model '{model}'" in run.stdout  # phase (ii) reads the directory itself
    assert "results/ci/mine/full/seed0/none/en/finetune/mnli" in run.stdout


@pytest.mark.parametrize("name,downloads", [("xtreme", {"fetch_model", "prepare", "prepare_translated",
                                                          "prepare_corpus"}), ("ci", {"fetch_model"})])
def test_download_rules_are_local_rules_where_they_download(name, downloads, tmp_path):
    """On a cluster the hub downloads run in the submitting Snakemake (the login node has the network)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet=True)) as api:
        workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=ROOT / "Snakefile",
                                config_settings=ConfigSettings(configfiles=[CONFIGS[name]]), workdir=tmp_path)
        local = workflow._workflow._localrules  # what Workflow.is_local reads; no public accessor
    assert local & {"fetch_model", "prepare", "prepare_translated", "prepare_corpus"} == downloads
    assert not local & {"pretrain", "intermediate", "finetune", "evaluate", "retrieve"}


def test_demo_grid_has_what_the_brief_promises():
    cfg = grid.load_config(CONFIGS["config"], SCHEMA)
    rows = grid.rows(cfg)
    settings = {r.intermediate for r in rows}
    # the paper's nine English tasks (SIQA, registered for XTREME-R's XCOPA baseline, is not one of them)
    assert settings == {"none", "multitask", *(t for t in registry.intermediate_tasks() if t != "siqa")}
    # both multilingual variants, each on at least two tasks; LoRA on the baseline and at least one task
    multilingual = {(r.intermediate, r.variant) for r in rows if r.variant != "en"}
    for variant in ("mlm", "mt"):
        assert len({task for task, v in multilingual if v == variant}) >= 2, variant
    lora = {r.intermediate for r in rows if r.adaptation == "lora"}
    assert "none" in lora and len(lora) >= 2
    assert grid.targets(cfg) == list(registry.XTREME_BENCHMARK.tasks)
    # XQuAD and MLQA share one SQuAD-trained model: 6 fine-tuning jobs per row for 9 targets, none twice.
    jobs = grid.finetune_jobs(cfg)
    assert len(jobs) == len(set(jobs)) == 6 * len(rows)
    assert len(grid.multitask_tasks(cfg)) == 9


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, CONFIGS["config"], "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


# ------------------------------------------------------------------------------ config validation
def invalid(change) -> str:
    cfg = load("config")
    change(cfg)
    with pytest.raises(UserError) as e:
        grid.check_config(cfg, SCHEMA)
    return str(e.value)


def test_unknown_task_name_is_named_with_its_key():
    msg = invalid(lambda c: c["intermediate"].append("mnlii"))
    assert "config key intermediate" in msg and "'mnlii'" in msg and "anli_plus" in msg


def test_unknown_target_and_variant_task_are_named():
    assert "config key targets" in invalid(lambda c: c.update(targets=["xnli", "xwinograd"]))
    msg = invalid(lambda c: c["variants"].update(mt=["qqp", "paws"]))
    assert "variants.mt" in msg and "'paws'" in msg


def test_wrong_type_names_key_and_value():
    msg = invalid(lambda c: c.update(seeds="0"))
    assert msg.startswith("config key seeds:") and "'0' is not of type 'array'" in msg
    msg = invalid(lambda c: c["hparams"]["finetune"]["default"].update(epochs="two"))
    assert "hparams.finetune.default.epochs" in msg and "'two'" in msg


def test_unknown_key_and_hyperparameter_are_rejected():
    assert "unknown key 'seed' (did you mean 'seeds'?)" in invalid(lambda c: c.update(seed=1))
    msg = invalid(lambda c: c["hparams"]["evaluate"]["default"].update(learning_rate=1e-5))
    assert "hparams.evaluate.default" in msg and "'learning_rate'" in msg
    msg = invalid(lambda c: c["hparams"]["evaluate"].update(tatoeba={"max_length": 32}))
    assert "hparams.evaluate" in msg and "'tatoeba'" in msg  # retrieval targets take hparams.retrieval


def test_language_not_in_a_target_is_rejected():
    msg = invalid(lambda c: c.update(languages={"pawsx": ["de", "sw"]}))
    assert "languages.pawsx" in msg and "'sw'" in msg


def test_hub_config_without_a_local_mirror_names_what_needs_one():
    def change(c):
        c["data"] = {"source": "hub"}
        c["variants"]["mt"] = ["mnli"]  # translated MNLI is on the hub (facebook/xnli); the mt data reads it
    msg = invalid(change)
    assert "data.local_dir" in msg and "'ccg'" in msg and "'cosmosqa'" in msg and "variant mt" not in msg


def test_hub_config_asking_translations_that_do_not_exist_is_one_line():
    def change(c):
        c["data"] = {"source": "hub", "local_dir": "mirror"}
    assert invalid(change) == ("config key variants.mt: task 'qqp' has no machine-translated hub source (there are: "
                               "mnli, squad_v1); read it from a local mirror (data.source local)")
    def only_yoruba(c):
        change(c)
        c["variants"]["mt"], c["languages"], c["targets"] = ["mnli"], ["en", "yo"], ["udpos"]
    assert invalid(only_yoruba) == ("config key languages: variant mt of task 'mnli': source 'facebook/xnli' has none "
                                    "of ['en', 'yo'] (it has: ar, bg, de, el, es, fr, hi, ru, sw, th, tr, ur, vi, zh)")


def test_invalid_config_fails_the_dry_run_with_one_clear_line(tmp_path):
    cfg = load("ci")
    cfg["intermediate"] = ["none", "mnli", "sqaud_v1"]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    result = snakemake(tmp_path, path, "-n")
    assert result.returncode != 0
    assert "invalid config: config key intermediate: 'sqaud_v1' is not valid" in result.stdout + result.stderr


# ------------------------------------------------------------------------------ grid details
def test_languages_intersect_each_target_and_retrieval_drops_english():
    cfg = grid.load_config(CONFIGS["config"], SCHEMA)
    assert grid.languages(cfg, "pawsx") == ["de", "en", "zh"]
    assert grid.languages(cfg, "tatoeba") == ["ar", "de", "zh"]  # registry order
    assert grid.languages(cfg, "tydiqa") == ["en", "ar"]  # the demo languages TyDiQA-GoldP has
    assert "en" not in grid.languages(cfg, "bucc2018")


def test_hparams_merge_default_then_name():
    cfg = grid.load_config(CONFIGS["config"], SCHEMA)
    hp = grid.hparams(cfg, "finetune", "squad_v1")
    # the task's own key wins, the rest comes from `default`
    assert hp["max_length"] == cfg["hparams"]["finetune"]["squad_v1"]["max_length"] == 128
    assert hp["epochs"] == cfg["hparams"]["finetune"]["squad_v1"]["epochs"] == 6
    assert "lr" not in cfg["hparams"]["finetune"]["squad_v1"]
    assert hp["lr"] == cfg["hparams"]["finetune"]["default"]["lr"]
    assert grid.hparams(cfg, "finetune", "pawsx")["max_length"] == 64
    assert grid.hparams(cfg, "finetune", "pawsx")["epochs"] == cfg["hparams"]["finetune"]["default"]["epochs"]


def test_resources_grow_with_attempt():
    cfg = grid.load_config(CONFIGS["xtreme"], SCHEMA)
    first, second = grid.rule_resources(cfg, "intermediate"), grid.rule_resources(cfg, "intermediate", attempt=2)
    assert first["gpu"] == 1 and second["mem_mb"] == 2 * first["mem_mb"] and second["runtime"] == 2 * first["runtime"]


@pytest.mark.parametrize("setting,started", [((), True), (("--config", "warm_worker=False"), False)])
def test_local_runs_start_the_warm_worker_unless_turned_off(tmp_path, setting, started):
    run = snakemake(tmp_path / "work", CONFIGS["ci"], "results/ci/cells.json", *setting)
    assert run.returncode == 0, run.stderr[-2000:]
    assert ("xstilts warm worker: pid" in run.stderr) is started


def test_cells_chain_finetune_through_the_shared_training_task():
    cfg = grid.load_config(CONFIGS["ci"], SCHEMA)
    cells = {(c["intermediate"], c["target"]): c for c in grid.cells(cfg)["cells"]}
    xquad = cells[("mnli", "xquad")]
    assert xquad["chain"] == ["tiny/full/seed0/mnli/en/intermediate", "tiny/full/seed0/mnli/en/finetune/squad_v1",
                              "tiny/full/seed0/mnli/en/eval/xquad"]
    assert cells[("none", "tatoeba")]["chain"] == ["tiny/full/seed0/none/en/retrieval/tatoeba"]


# ------------------------------------------------------------------------------ runs with a fake engine
FAKE_XSTILTS = r'''#!{python}
"""Stand-in for `xstilts`: records its argv and writes the outputs the rules declare."""
import json, os, sys
from pathlib import Path

verb, argv = sys.argv[1], sys.argv[2:]
with open(os.environ["FAKE_XSTILTS_LOG"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
if verb == "aggregate":
    from xstilts.cli import main
    sys.exit(main(sys.argv[1:]))
outs = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "--out"]  # evaluate/retrieve: one per --target
targets = [argv[i + 1] for i, a in enumerate(argv) if a == "--target"]
out = outs[0]
if os.environ.get("FAKE_FAIL") and any(os.environ["FAKE_FAIL"] in str(o) for o in outs):
    print(f"xstilts {{verb}}: error: fake failure for {{out}}", file=sys.stderr)
    sys.exit(2)
for o in outs:
    o.mkdir(parents=True, exist_ok=True)
cost = {{"phase": verb, "wall_s": 1.0, "device": "cpu", "device_count": 1, "device_s": 36.0,
        "useful_tokens": 100, "executed_tokens": 120, "useful_flops": 1e12, "executed_flops": 1.2e12,
        "peak_memory_bytes": 1000, "energy_j": None, "trainable_params": 10}}
if verb == "intermediate":
    (out / "encoder").mkdir()
    for name in ("cost.json", "train_log.json"):
        (out / name).write_text(json.dumps(cost))
elif verb == "finetune":
    (out / "model").mkdir()
    for name in ("cost.json", "dev.json"):
        (out / name).write_text(json.dumps(cost))
elif verb in ("evaluate", "retrieve"):
    for target, out in zip(targets, outs, strict=True):
        score = 50.0 + (5.0 if "/none/" not in str(out) else 0.0)
        (out / "metrics.json").write_text(json.dumps({{"task": target, "metric": "accuracy", "score": score,
            "languages": {{"de": {{"accuracy": score}}}}, "average": {{"accuracy": score}}}}))
        (out / "cost.json").write_text(json.dumps(cost))
'''


@pytest.fixture()
def fake_engine(tmp_path):
    """PATH with a fake `xstilts` first, and the file it logs its command lines to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "xstilts"
    exe.write_text(FAKE_XSTILTS.format(python=sys.executable), encoding="utf-8")
    exe.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_XSTILTS_LOG": str(log)}
    return env, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.mark.slow  # five Snakemake runs of the CI grid (~20 s)
def test_failed_cell_never_blocks_the_summary(tmp_path, fake_engine):
    env, _ = fake_engine
    work = tmp_path / "work"
    configfile = CONFIGS["ci"]
    env = {**env, "FAKE_FAIL": "mnli/en/finetune/mnli"}  # fails the mnli row's XNLI model
    run = snakemake(work, configfile, "--keep-going", env=env)
    assert run.returncode != 0
    summary = snakemake(work, configfile, "summary", env=env)
    assert summary.returncode == 0, summary.stderr
    out = work / "results" / "ci" / "summary"
    missing = pd.read_csv(out / "missing.csv")
    # the row's evaluation job reads both of its fine-tuned models, so XQuAD waits too (its reason says so);
    # its retrieval and every other row are complete
    assert missing[["intermediate", "target"]].values.tolist() == [["mnli", "xnli"], ["mnli", "xquad"]]
    assert all("finetune failed" in r and "fake failure" in r for r in missing.reason)
    assert "needs it too" in missing.reason[1] and "needs it too" not in missing.reason[0]
    matrix = pd.read_csv(out / "transfer_matrix.csv").set_index("label")
    assert matrix.loc["mnli", "tatoeba"] == 55.0 and matrix.loc["squad_v1", "xquad"] == 55.0
    assert pd.isna(matrix.loc["mnli", "xnli"]) and pd.isna(matrix.loc["mnli", "xquad"])
    assert (out / "plots" / "efficiency_vs_gain.png").read_bytes()[:4] == b"\x89PNG"
    report = snakemake(work, configfile, "--report", str(tmp_path / "report.html"), "summary", env=env)
    assert report.returncode == 0 and (tmp_path / "report.html").stat().st_size > 0, report.stderr
    # Once the cell is fixed, the summary picks it up (its params fingerprint the finished cells).
    env.pop("FAKE_FAIL")
    assert snakemake(work, configfile, env=env).returncode == 0
    assert snakemake(work, configfile, "summary", env=env).returncode == 0
    assert pd.read_csv(out / "missing.csv").empty


def run_then_edit_xquad(tmp_path, env) -> tuple[Path, Path]:
    """Run the CI grid with the fake engine, then write a config that changes only XQuAD's eval hparams."""
    work, cfg = tmp_path / "work", load("ci")
    assert snakemake(work, write_config(tmp_path / "ci.yaml", cfg), env=env).returncode == 0
    cfg["hparams"]["evaluate"]["xquad"]["max_length"] = 96
    return work, write_config(tmp_path / "edited.yaml", cfg)


# a row evaluates all its targets in one job: the edit reruns each row's evaluation job (XNLI and XQuAD), and
# neither fine-tuning nor retrieval
EVAL_JOB_OUTPUTS = sorted(f"results/ci/tiny/full/seed0/{r}/en/eval/{t}/{f}" for r in ("none", "mnli", "squad_v1")
                          for t in ("xnli", "xquad") for f in ("metrics.json", "cost.json"))


def test_edited_target_hparams_rerun_only_the_evaluation_jobs(tmp_path, fake_engine):
    work, edited = run_then_edit_xquad(tmp_path, fake_engine[0])
    dry = snakemake(work, edited, "-n", "--rerun-triggers", "params", env=fake_engine[0])
    assert dry.returncode == 0, dry.stderr
    outputs = sorted(f for line in re.findall(r"^\s+output: (.+)$", dry.stdout, re.M) for f in line.split(", "))
    assert outputs == EVAL_JOB_OUTPUTS
    assert dry.stdout.count("Params have changed") == 3


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="snakemake 9.27: --list-changes params lists every output with metadata "
                   "(ParamsChange.__or__ returns an empty change that still carries its files); use the dry run "
                   "of the test above until it is fixed")
def test_list_changes_params_names_only_the_evaluation_jobs_outputs(tmp_path, fake_engine):
    work, edited = run_then_edit_xquad(tmp_path, fake_engine[0])
    listed = snakemake(work, edited, "--list-changes", "params", env=fake_engine[0])
    assert listed.returncode == 0, listed.stderr
    assert sorted(line for line in listed.stdout.split() if line.startswith("results/")) == EVAL_JOB_OUTPUTS


def test_paths_and_values_reach_the_verbs_unsplit(tmp_path, fake_engine):
    env, log = fake_engine
    work = tmp_path / "work"
    cfg = load("ci")
    cfg["data"] = {"source": "local", "local_dir": "raw mirror; touch pwned", "max_examples": 5}
    result = snakemake(work, write_config(tmp_path / "quoted.yaml", cfg), "data_all", env=env)
    assert result.returncode == 0, result.stderr
    prepare = [c for c in calls(log) if c[0] == "prepare"]
    assert prepare and all(c[c.index("--local-dir") + 1] == "raw mirror; touch pwned" for c in prepare)
    assert not (work / "pwned").exists()
    xquad = next(c for c in prepare if "xquad" in c)
    assert xquad[xquad.index("--languages") + 1] == "en,de,ru,ar,zh,hi"


@pytest.mark.slow  # the real engine through the CI-sized XTREME-R grid (~1-2 min)
def test_the_xtreme_r_grid_runs_and_its_summary_is_the_xtreme_r_score(tmp_path):
    """config/xtreme-r-ci.yaml with the real `xstilts`: every XTREME-R cell is scored (XCOPA, LAReQA and Mewsli-X
    among them), the summary's benchmark column is `xtreme-r` (the mean of the 10 task scores), its findings
    name the XTREME-R languages no source reads, and a row exports as XTREME-R's submission folder."""
    work = tmp_path / "work"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for target in ((), ("summary",)):
        run = snakemake(work, CONFIGS["xtreme-r-ci"], *target, env=env, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
    out = work / "results" / "ci-xtreme-r" / "summary"
    assert pd.read_csv(out / "missing.csv").empty
    matrix = pd.read_csv(out / "transfer_matrix.csv").set_index("label")
    tasks = list(registry.XTREME_R_BENCHMARK.tasks)
    assert list(matrix.columns[-11:]) == [*tasks, "xtreme-r"] and "xtreme" not in matrix
    assert matrix["xtreme-r"].to_numpy() == pytest.approx(matrix[tasks].mean(axis=1).to_numpy())
    assert "no source for lt pl uk wo ro" in (out / "findings.md").read_text()
    assert set(pd.read_csv(out / "significance.csv").target) >= {"xtreme-r", "mewslix", "lareqa", "xcopa"}
    row = work / "results" / "ci-xtreme-r" / "tiny" / "full" / "seed0" / "siqa" / "en"
    export = subprocess.run([str(Path(sys.executable).parent / "xstilts"), "export", "--benchmark", "xtreme-r",
                             "--row", str(row), "--out", str(tmp_path / "sub")], capture_output=True, text=True)
    assert export.returncode == 0, export.stderr
    assert sorted(p.name for p in (tmp_path / "sub" / "predictions").iterdir()) == sorted(
        t for t in tasks if t != "lareqa")
