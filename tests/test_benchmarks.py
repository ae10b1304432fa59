"""Benchmarks are data: a named task set with its own score, so registering another target (XTREME-R's XCOPA,
LAReQA, Mewsli-X) changes neither an existing benchmark's score nor a config's default targets; XTREME-R is a
second benchmark with its own tasks, groups, languages and score."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import yaml

from xstilts import aggregate, grid, metrics, registry
from xstilts.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
# The official scorer's task groups, spelled out independently of the registry (google-research/xtreme
# evaluate.py GROUP2TASK), in the XTREME paper's task order.
XTREME_GROUPS = {"classification": ("xnli", "pawsx"), "tagging": ("udpos", "panx"), "qa": ("xquad", "mlqa", "tydiqa"),
                 "retrieval": ("bucc2018", "tatoeba")}
XTREME_TASKS = ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba")
SCORES = {name: 40.0 + 5 * i for i, name in enumerate(XTREME_TASKS)}  # mean 60.0
# XTREME-R as google-research/xtreme evaluate.py (838c13b) spells it: XTREME_R_TASK2LANGS's keys (160-176) and
# XTREME_R_GROUP2TASK (126-132), written out here independently of the registry.
XTREME_R_TASKS = ("xnli", "panx", "udpos", "tatoeba", "xcopa", "lareqa", "mewslix", "xquad", "mlqa", "tydiqa")
XTREME_R_GROUPS = {"classification": ("xnli", "xcopa"), "tagging": ("udpos", "panx"), "qa": ("xquad", "mlqa", "tydiqa"),
                   "retrieval": ("tatoeba", "mewslix"), "multi_choice": ("xcopa",)}
XTREME_R_ADDED = {"panx": "qu pl uk az lt pa gu ro", "udpos": "lt pl uk wo ro", "tatoeba": "az lt pl uk ro",
                  "xquad": "ro"}
NEW = "new_target"


@pytest.fixture
def new_target(monkeypatch):
    """A tenth registered target (a copy of PAWS-X under another name); monkeypatch removes it afterwards."""
    monkeypatch.setitem(registry.TASKS, NEW, dataclasses.replace(registry.get_task("pawsx"), name=NEW))
    assert NEW in registry.target_tasks()  # it is a target like any other, so the checks below mean something
    return NEW


def test_xtreme_is_the_official_task_set_groups_and_order():
    xtreme = registry.get_benchmark("xtreme")
    assert xtreme is registry.XTREME_BENCHMARK and set(registry.BENCHMARKS) == {"xtreme", "xtreme-r"}
    assert xtreme.groups == XTREME_GROUPS and xtreme.tasks == XTREME_TASKS
    assert xtreme.aggregate == "task_mean"
    assert all(registry.get_task(t).role == "target" for t in xtreme.tasks)


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(UserError, match=r"unknown benchmark 'xtreme-s'; known benchmarks: xtreme, xtreme-r$"):
        registry.get_benchmark("xtreme-s")


def test_xtreme_r_is_the_official_task_set_groups_languages_and_score():
    xr = registry.get_benchmark("xtreme-r")
    assert xr.tasks == XTREME_R_TASKS and xr.groups == XTREME_R_GROUPS and xr.aggregate == "task_mean"
    assert all(registry.get_task(t).role == "target" for t in xr.tasks)
    xtreme = registry.XTREME_BENCHMARK
    for task in XTREME_R_TASKS:  # XTREME's lists, four of them with XTREME-R's additions at the end
        added = tuple(XTREME_R_ADDED.get(task, "").split())
        assert xr.languages_of(task) == xtreme.languages_of(task) + added
    # PAN-X's and XQuAD's are registered (WikiANN, google/xquad); UD-POS's and Tatoeba's have no source
    assert {t: xr.unreadable_languages(t) for t in XTREME_R_TASKS if xr.unreadable_languages(t)} == {
        t: tuple(XTREME_R_ADDED[t].split()) for t in ("udpos", "tatoeba")}
    assert registry.get_task("panx").languages == xr.languages_of("panx")
    scores = {t: 10.0 * i for i, t in enumerate(XTREME_R_TASKS)}
    assert metrics.benchmark_score(scores, "xtreme-r") == 45.0  # all 10 tasks, LAReQA's mAP@20 among them
    assert metrics.benchmark_score({k: v for k, v in scores.items() if k != "lareqa"}, "xtreme-r") is None
    groups = metrics.group_scores(scores, "xtreme-r")
    assert groups == {"classification": 20.0, "tagging": 15.0, "qa": 80.0, "retrieval": 45.0, "multi_choice": 40.0}


def test_a_config_naming_xtreme_r_runs_its_ten_tasks_and_scores_them(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    checked = grid.check_config({**config, "benchmark": "xtreme-r", "targets": None}, SCHEMA, locked=False)
    assert grid.targets(checked) == list(XTREME_R_TASKS)
    cells = grid.cells(checked)
    assert cells["benchmark"] == "xtreme-r" and {c["target"] for c in cells["cells"]} == set(XTREME_R_TASKS)
    row = {"backbone": "b", "adaptation": "full", "intermediate": "none", "variant": "en", "seed": 0}
    doc = {"targets": list(XTREME_R_TASKS), "benchmark": "xtreme-r",
           "cells": [{**row, "label": "none", "target": t} for t in XTREME_R_TASKS]}
    scores = pd.DataFrame([{**row, "target": t, "split": "test", "language": aggregate.AVERAGE, "metric": "score",
                            "value": 10.0 * i} for i, t in enumerate(XTREME_R_TASKS)])
    table = aggregate._per_seed(doc, scores)
    assert table["xtreme-r"].tolist() == [45.0] and aggregate.XTREME not in table


def test_a_new_target_changes_no_xtreme_score(new_target):
    assert metrics.benchmark_score(SCORES) == 60.0
    # its score is not averaged in (today's 9-task mean stays), and its absence does not blank the score
    assert metrics.benchmark_score({**SCORES, new_target: 1000.0}) == 60.0
    assert metrics.group_scores({**SCORES, new_target: 1000.0}) == metrics.group_scores(SCORES) == {
        "classification": 42.5, "tagging": 52.5, "qa": 65.0, "retrieval": 77.5}
    assert registry.XTREME_BENCHMARK.tasks == XTREME_TASKS


def test_a_new_target_changes_no_default_targets(new_target):
    for name in ("config", "xtreme"):  # `targets: null`
        config = grid.load_config(ROOT / "config" / f"{name}.yaml", SCHEMA, locked=False)
        assert config["benchmark"] == "xtreme"  # the schema's default
        assert grid.targets(config) == list(XTREME_TASKS)


def test_a_new_target_is_not_part_of_the_transfer_matrix_xtreme_column(new_target):
    """aggregate's XTREME column over configured targets that include the new one: the 9-task mean."""
    targets = [*XTREME_TASKS, new_target]
    row = {"backbone": "b", "adaptation": "full", "intermediate": "none", "variant": "en", "seed": 0}
    cells = {"targets": targets, "cells": [{**row, "label": "none", "target": t} for t in targets]}
    scores = pd.DataFrame([{**row, "target": t, "split": "test", "language": aggregate.AVERAGE, "metric": "score",
                            "value": {**SCORES, new_target: 1000.0}[t]} for t in targets])
    table = aggregate._per_seed(cells, scores)
    assert table[aggregate.XTREME].tolist() == [60.0]


def test_config_benchmark_must_be_a_registry_benchmark():
    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    config["benchmark"] = "xtreme-s"
    with pytest.raises(UserError, match=r"^config key benchmark: 'xtreme-s' is not valid; expected a benchmark of "
                                        r"the registry.*: xtreme, xtreme-r$"):
        grid.check_config(config, SCHEMA, locked=False)


def test_findings_say_which_xtreme_r_languages_no_source_reads():
    """A score over fewer languages than the benchmark's is named as such, never passed off as the official one."""
    from xstilts import findings

    assert findings.coverage("xtreme") == {}
    gaps = findings.coverage("xtreme-r")
    assert gaps == {"udpos": (33, 38, tuple(XTREME_R_ADDED["udpos"].split())),
                    "tatoeba": (36, 41, tuple(XTREME_R_ADDED["tatoeba"].split()))}
    empty = pd.DataFrame(columns=["target", "n_seeds", "delta", "significant"])
    text = findings.paragraph(empty, pd.DataFrame(), pd.DataFrame(), None, "xtreme-r")
    assert "all 10 targets" in text and "udpos (33 of 38: no source for lt pl uk wo ro)" in text
    assert "no source" not in findings.paragraph(empty, pd.DataFrame(), pd.DataFrame())


def test_an_xtreme_run_keeps_xtreme_s_languages_and_reads_no_xtreme_r_repository():
    """PAN-X and XQuAD are registered with XTREME-R's languages too; the paper config (XTREME) still evaluates
    XTREME's 40 and 11 and never reads full WikiANN or google/xquad, while an XTREME-R config reads both."""
    config = grid.load_config(ROOT / "config" / "xtreme.yaml", SCHEMA)
    assert grid.languages(config, "panx") == list(registry.XTREME_LANGUAGES["panx"])
    assert grid.languages(config, "xquad") == list(registry.XTREME_LANGUAGES["xquad"])
    assert grid.languages(config, "xnli") is None  # the registered list is XTREME's: the verbs' default
    read = grid.hub_repos(config)["datasets"]
    assert "unimelb-nlp/wikiann" not in read and "google/xquad" not in read
    # the MLM corpus covers XTREME's languages, not every registered target's (XCOPA's ht, Mewsli-X's uk, ...)
    corpus = next(j for j in grid.prepare_jobs(config) if j.kind == "corpus")
    assert set(corpus.languages) == {x for t in XTREME_TASKS for x in registry.XTREME_LANGUAGES[t]}
    xtreme_r = grid.check_config({**yaml.safe_load((ROOT / "config" / "xtreme.yaml").read_text(encoding="utf-8")),
                                  "benchmark": "xtreme-r", "targets": None}, SCHEMA, locked=False)
    assert grid.languages(xtreme_r, "panx") is None and len(registry.get_task("panx").languages) == 48
    assert {"unimelb-nlp/wikiann", "google/xquad"} <= set(grid.hub_repos(xtreme_r)["datasets"])
