"""`xstilts aggregate` on fake cell outputs of a real grid (xstilts.grid.cells): the long score table, the
transfer matrix and its deltas, efficiency, and missing cells that never stop the summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from xstilts import grid, registry
from xstilts.cli import main as cli_main
from xstilts.errors import DataError
from xstilts.io import write_json

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
TARGETS = list(registry.XTREME_BENCHMARK.tasks)  # the experiment fixture names no targets: XTREME's
# A fake cell's score: the baseline scores BASE on every target; each setting adds its gain; seed 1 adds 2.
BASE, GAIN, SEED_SHIFT = 50.0, {"none": 0.0, "mnli": 4.0, "squad_v1": 1.0}, 2.0
DEV_SHIFT, NO_DEV = 10.0, ("xquad", "tatoeba")


def config() -> dict:
    return grid.check_config({
        "experiment": "t", "backbones": {"tiny": {"kind": "pretrain"}}, "seeds": [0, 1],
        "intermediate": ["none", "mnli", "squad_v1"], "variants": {"mlm": ["mnli"]},
        "adaptations": {"full": None, "lora": {"intermediate": ["none", "mnli"], "variants": ["en"]}},
        "data": {"source": "local", "synth": {"size": "ci"}},
    }, SCHEMA)


def score(cell: dict) -> float:
    extra = 0.5 if cell["variant"] == "mlm" else 0.0
    return BASE + GAIN[cell["intermediate"]] + extra + SEED_SHIFT * cell["seed"]


def cost(phase: str, flops: float) -> dict:
    return {"phase": phase, "wall_s": 10.0, "device": "cpu", "device_count": 1, "device_s": 3600.0,
            "useful_tokens": 1000, "executed_tokens": 1200, "useful_flops": flops, "executed_flops": 1.2 * flops,
            "peak_memory_bytes": 2**20, "energy_j": None, "trainable_params": 100}


@pytest.fixture()
def experiment(tmp_path):
    """A results dir with every job's outputs except two cells: full/seed0/mnli -> xnli, whose fine-tuning
    failed with a log, and lora/seed1/none -> tatoeba, which left no trace."""
    cfg = config()
    doc = grid.cells(cfg)
    results = tmp_path / "results" / "t"
    write_json(results / "cells.json", doc)
    failed_finetune = "tiny/full/seed0/mnli/en/finetune/mnli"
    no_trace = "tiny/lora/seed1/none/en/retrieval/tatoeba"
    for job in doc["jobs"]:
        if job["path"] in (failed_finetune, no_trace):
            continue
        flops = 1e15 if job["phase"] == "intermediate" and job["intermediate"] == "mnli" else 1e14
        write_json(results / job["path"] / "cost.json", cost(job["phase"], flops))
    for cell in doc["cells"]:
        if failed_finetune in cell["chain"] or cell["path"] == no_trace:
            continue
        value = score(cell)
        # dev where the target has a dev split (not XQuAD, Tatoeba): DEV_SHIFT points above test
        dev = None if cell["target"] in NO_DEV else {
            "score": value + DEV_SHIFT, "languages": {"en": {"accuracy": value + DEV_SHIFT}},
            "average": {"accuracy": value + DEV_SHIFT}}
        write_json(results / cell["path"] / "metrics.json", {
            "task": cell["target"], "metric": "accuracy", "score": value,
            "languages": {"en": {"accuracy": value + 1}, "de": {"accuracy": value - 1}},
            "average": {"accuracy": value}, "dev": dev})
    log = results / "logs" / "finetune" / "tiny/full/seed0/mnli/en/mnli.log"
    log.parent.mkdir(parents=True)
    log.write_text("step 10 loss 0.7\nxstilts finetune: diverged: loss is nan at step 12\n", encoding="utf-8")
    return results, doc


def aggregate(results: Path) -> Path:
    out = results / "summary"
    assert cli_main(["aggregate", "--results", str(results), "--cells", str(results / "cells.json"),
                     "--out", str(out)]) == 0
    return out


def matrix(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).set_index(["adaptation", "label"])


def test_missing_cells_are_listed_with_their_reason(experiment):
    results, _ = experiment
    missing = pd.read_csv(aggregate(results) / "missing.csv")
    by_path = dict(zip(missing.path, missing.reason))
    assert set(by_path) == {"tiny/full/seed0/mnli/en/eval/xnli", "tiny/lora/seed1/none/en/retrieval/tatoeba"}
    assert by_path["tiny/full/seed0/mnli/en/eval/xnli"] == (
        "finetune failed (logs/finetune/tiny/full/seed0/mnli/en/mnli.log): "
        "xstilts finetune: diverged: loss is nan at step 12")
    assert by_path["tiny/lora/seed1/none/en/retrieval/tatoeba"].startswith("no output from retrieval")


def test_transfer_matrix_means_over_seeds_and_leaves_incomplete_xtreme_empty(experiment):
    results, _ = experiment
    out = aggregate(results)
    m = matrix(out / "transfer_matrix.csv")
    assert list(m.columns) == ["backbone", *TARGETS, "xtreme"]
    assert m.index.tolist() == [("full", "none"), ("full", "mnli"), ("full", "mnli [+mlm]"), ("full", "squad_v1"),
                                ("lora", "none"), ("lora", "mnli")]
    mean = BASE + SEED_SHIFT / 2
    assert m.loc[("full", "squad_v1"), "xtreme"] == pytest.approx(mean + GAIN["squad_v1"])
    assert m.loc[("full", "mnli [+mlm]"), "pawsx"] == pytest.approx(mean + GAIN["mnli"] + 0.5)
    # The failed cell's seed is missing: XNLI averages the seed that exists, XTREME stays empty.
    assert m.loc[("full", "mnli"), "xnli"] == pytest.approx(BASE + GAIN["mnli"] + SEED_SHIFT)
    assert pd.isna(m.loc[("full", "mnli"), "xtreme"]) and pd.isna(m.loc[("lora", "none"), "xtreme"])
    std = matrix(out / "transfer_matrix_std.csv")
    assert std.loc[("full", "none"), "udpos"] == pytest.approx(2 ** 0.5, rel=1e-5)  # seeds 50 and 52
    md = (out / "transfer_matrix.md").read_text(encoding="utf-8").splitlines()
    assert md[0].split("|")[-2].strip() == "xtreme"
    mnli = next(line for line in md if "| mnli " in line).split("|")
    assert mnli[4].strip() == "56.0" and mnli[-2].strip() == ""  # xnli from seed 1; no XTREME score


def test_deltas_are_against_none_of_the_same_adaptation(experiment):
    results, _ = experiment
    out = aggregate(results)
    d = matrix(out / "transfer_delta.csv")
    assert d.loc[("full", "squad_v1"), "xtreme"] == pytest.approx(GAIN["squad_v1"])
    assert d.loc[("full", "mnli [+mlm]"), "udpos"] == pytest.approx(GAIN["mnli"] + 0.5)
    assert d.loc[("full", "none"), "xnli"] == 0
    assert d.loc[("lora", "mnli"), "tatoeba"] == pytest.approx(GAIN["mnli"])  # seed 0 only: lora none seed 1 lacks it
    assert pd.isna(d.loc[("lora", "mnli"), "xtreme"])


def test_scores_parquet_is_long_with_languages_averages_and_task_scores(experiment):
    results, doc = experiment
    scores = pq.read_table(aggregate(results) / "scores.parquet").to_pandas()
    assert list(scores.columns) == ["backbone", "adaptation", "intermediate", "variant", "seed", "target",
                                    "split", "language", "metric", "value"]
    test = scores[scores.split == "test"]
    scored = len(doc["cells"]) - 2
    assert len(test) == scored * 4  # en, de, average accuracy, score
    one = test[(test.intermediate == "squad_v1") & (test.seed == 1) & (test.target == "udpos")]
    assert dict(zip(one.language + ":" + one.metric, one.value)) == {
        "en:accuracy": 54.0, "de:accuracy": 52.0, "average:accuracy": 53.0, "average:score": 53.0}
    dev = scores[scores.split == "dev"]
    assert set(dev.target) == set(TARGETS) - set(NO_DEV)
    one = dev[(dev.intermediate == "squad_v1") & (dev.seed == 1) & (dev.target == "udpos")]
    assert dict(zip(one.language + ":" + one.metric, one.value)) == {
        "en:accuracy": 63.0, "average:accuracy": 63.0, "average:score": 63.0}


def test_dev_split_gets_its_own_matrices_and_test_keeps_the_old_names(experiment):
    results, _ = experiment
    out = aggregate(results)
    test, dev = matrix(out / "transfer_matrix.csv"), matrix(out / "transfer_matrix_dev.csv")
    assert list(dev.columns) == list(test.columns)
    assert dev.loc[("full", "squad_v1"), "udpos"] == pytest.approx(test.loc[("full", "squad_v1"), "udpos"] + DEV_SHIFT)
    assert dev[list(NO_DEV)].isna().all().all() and dev["xtreme"].isna().all()  # no dev: no XTREME score
    delta = matrix(out / "transfer_delta_dev.csv")
    assert delta.loc[("full", "mnli [+mlm]"), "udpos"] == pytest.approx(GAIN["mnli"] + 0.5)
    for name in ("transfer_matrix_dev.md", "transfer_matrix_std_dev.csv", "transfer_delta_dev.md"):
        assert (out / name).is_file()


def test_efficiency_has_every_job_with_a_cost_and_row_totals(experiment):
    results, doc = experiment
    out = aggregate(results)
    eff = pd.read_csv(out / "efficiency.csv")
    jobs = eff[eff.phase != "row_total"]
    assert len(jobs) == len(doc["jobs"]) - 2
    totals = eff[eff.phase == "row_total"].set_index(["adaptation", "seed", "label"])
    assert len(totals) == len({(j["adaptation"], j["seed"], j["label"]) for j in doc["jobs"]})
    # mnli full seed 1: intermediate 1e15 + 6 finetune + 9 evaluations at 1e14 each.
    assert totals.loc[("full", 1, "mnli"), "useful_flops"] == pytest.approx(1e15 + 15 * 1e14)
    assert totals.loc[("full", 1, "mnli"), "device_s"] == pytest.approx(16 * 3600)
    text = (out / "efficiency.csv").read_text(encoding="utf-8")  # plain numbers: 2500000000000000, not 2.5e+15
    assert ",2500000000000000," in text and not re.search(r"\de[+-]?\d", text)
    inter = jobs[jobs.phase == "intermediate"]
    assert set(inter.task) == {"mnli", "squad_v1"} and inter.trainable_params.eq(100).all()


def test_plots_are_written(experiment):
    results, _ = experiment
    out = aggregate(results)
    for name in ("transfer_delta.png", "efficiency_vs_gain.png"):
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_finished_still_gives_a_summary(tmp_path):
    results = tmp_path / "results"
    doc = grid.cells(config())
    write_json(results / "cells.json", doc)
    out = aggregate(results)
    assert len(pd.read_csv(out / "missing.csv")) == len(doc["cells"])
    assert pd.read_csv(out / "transfer_matrix.csv")["xtreme"].isna().all()
    assert (out / "plots" / "efficiency_vs_gain.png").exists()


def test_unusable_metrics_file_is_a_missing_cell_not_a_crash(experiment):
    results, _ = experiment
    (results / "tiny/full/seed1/squad_v1/en/eval/pawsx/metrics.json").write_text("{\"score\": ", encoding="utf-8")
    write_json(results / "tiny/full/seed1/squad_v1/en/eval/mlqa/metrics.json", {"languages": {}})
    missing = pd.read_csv(aggregate(results) / "missing.csv").set_index("path").reason
    assert "not valid JSON" in missing["tiny/full/seed1/squad_v1/en/eval/pawsx"]
    assert "field score" in missing["tiny/full/seed1/squad_v1/en/eval/mlqa"]


def test_malformed_cell_list_names_the_file(tmp_path):
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps({"targets": [], "cells": []}), encoding="utf-8")
    with pytest.raises(DataError, match=r"file .*cells\.json, field jobs: expected a JSON object"):
        from xstilts.aggregate import main

        main(type("Args", (), {"results": str(tmp_path), "cells": str(cells), "out": str(tmp_path / "s")}))
    assert cli_main(["aggregate", "--results", str(tmp_path), "--cells", str(tmp_path / "nope.json"),
                     "--out", str(tmp_path / "s")]) == 2
