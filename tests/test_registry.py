"""The task registry is complete and consistent, and `xstilts tasks` prints it."""

from __future__ import annotations

import json

from xstilts import kinds, registry
from xstilts.cli import main
from xstilts.data.normalize import NORMALIZERS

INTERMEDIATE = {"anli_plus", "mnli", "qqp", "squad_v1", "squad_v2", "hellaswag", "commonsenseqa", "cosmosqa", "ccg"}
TARGETS = {"xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba"}
XTREME_R_TARGETS = {"xcopa", "lareqa", "mewslix"}  # XTREME-R's new targets (issue 16)
XTREME_R_INTERMEDIATE = {"siqa"}  # XTREME-R's XCOPA baseline trains on SIQA before COPA
# A few official lists spelled out independently of the registry constant (XTREME's scorer order).
OFFICIAL = {"pawsx": "de en es fr ja ko zh", "mlqa": "en es de ar hi vi zh", "bucc2018": "de fr ru zh",
            "tydiqa": "en ar bn fi id ko ru sw te", "xquad": "en es de el ru tr ar vi th zh hi"}


def test_the_paper_s_tasks_and_xtreme_r_s_with_their_roles():
    assert set(registry.intermediate_tasks()) == INTERMEDIATE | XTREME_R_INTERMEDIATE
    assert set(registry.target_tasks()) == TARGETS | XTREME_R_TARGETS
    assert set(registry.XTREME_BENCHMARK.tasks) == TARGETS


def test_every_task_has_loader_schema_metric_and_languages():
    for task in registry.TASKS.values():
        assert task.sources, task.name
        for sources in task.sources.values():
            for source in sources:
                assert source.raw_schema in NORMALIZERS, (task.name, source.raw_schema)
        assert task.schema == kinds.get(task.kind).schema
        assert task.metric in {"accuracy", "seqeval_f1", "squad", "mlqa", "bucc_f1", "token_accuracy", "map@20"}
        if task.role == "target":
            official = registry.XTREME_LANGUAGES if task.name in TARGETS else registry.XTREME_R_LANGUAGES
            added = registry.XTREME_R_ADDED_LANGUAGES.get(task.name, ())  # XTREME-R's, after XTREME's own
            assert task.languages == official[task.name] + added
            assert "test" in task.sources
        else:
            assert task.languages == ("en",) and "train" in task.sources and "dev" in task.sources


def test_official_language_lists():
    """XTREME's lists, as the XTREME benchmark keeps them (PAN-X and XQuAD also have XTREME-R's languages)."""
    xtreme = registry.XTREME_BENCHMARK
    for name, langs in OFFICIAL.items():
        assert xtreme.languages_of(name) == tuple(langs.split())
    assert registry.get_task("xquad").languages == tuple(OFFICIAL["xquad"].split()) + ("ro",)
    assert len(xtreme.languages_of("panx")) == 40 and len(registry.get_task("panx").languages) == 48
    assert len(registry.get_task("udpos").languages) == 33
    assert len(registry.get_task("tatoeba").languages) == 36
    assert len(registry.get_task("xnli").languages) == 15


def test_training_tasks_share_work():
    assert registry.training_tasks_for(["xquad", "mlqa", "tatoeba"]) == ["squad_v1"]
    assert registry.get_task("xnli").train_on == "mnli"
    assert sorted(registry.targets_trained_on("squad_v1", list(TARGETS))) == ["mlqa", "xquad"]
    for name in TARGETS:
        train_on = registry.get_task(name).train_on
        if train_on:
            assert "train" in registry.get_task(train_on).sources


def test_tasks_cli_json_and_table(capsys):
    assert main(["tasks", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in records} == INTERMEDIATE | XTREME_R_INTERMEDIATE | TARGETS | XTREME_R_TARGETS
    for r in records:
        assert {"name", "role", "kind", "metric", "languages"} <= set(r)
    assert main(["tasks"]) == 0
    table = capsys.readouterr().out
    assert "bucc2018" in table and "bitext_mining" in table


def test_unknown_task_is_a_clear_error(capsys):
    assert main(["finetune", "--encoder", "x", "--train-task", "nope", "--data", "x", "--state-dir", "s",
                 "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'nope'" in err and "Traceback" not in err
