"""Benchmarks are data: a named task set with its own score, so registering another target (XTREME-R's will be
XCOPA, LAReQA, Mewsli-X) changes neither an existing benchmark's score nor a config's default targets."""

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
NEW = "new_target"


@pytest.fixture
def new_target(monkeypatch):
    """A tenth registered target (a copy of PAWS-X under another name); monkeypatch removes it afterwards."""
    monkeypatch.setitem(registry.TASKS, NEW, dataclasses.replace(registry.get_task("pawsx"), name=NEW))
    assert NEW in registry.target_tasks()  # it is a target like any other, so the checks below mean something
    return NEW


def test_xtreme_is_the_official_task_set_groups_and_order():
    xtreme = registry.get_benchmark("xtreme")
    assert xtreme is registry.XTREME_BENCHMARK and registry.BENCHMARKS == {"xtreme": xtreme}
    assert xtreme.groups == XTREME_GROUPS and xtreme.tasks == XTREME_TASKS
    assert xtreme.aggregate == "task_mean"
    assert all(registry.get_task(t).role == "target" for t in xtreme.tasks)


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(UserError, match=r"unknown benchmark 'xtreme-r'; known benchmarks: xtreme$"):
        registry.get_benchmark("xtreme-r")


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
    config["benchmark"] = "xtreme-r"
    with pytest.raises(UserError, match=r"^config key benchmark: 'xtreme-r' is not valid; expected a benchmark of "
                                        r"the registry.*: xtreme$"):
        grid.check_config(config, SCHEMA, locked=False)
