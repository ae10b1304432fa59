"""The kind layer (xstilts.kinds): every kind complete, no code outside it branching on a kind's name, and a
new kind reaching scoring, selection and submission files through its own object only."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from xstilts import evaluate, kinds, metrics, registry
from xstilts.kinds.base import TaskKind
from xstilts.kinds.classification import Classification
from xstilts.kinds.heads import HEADS

PACKAGE = Path(kinds.__file__).resolve().parents[1]
KIND_NAMES = set(kinds.KINDS) | set(HEADS)


def _string_constants(node) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_string_constants(e) for e in node.elts))
    return set()


def test_no_code_outside_the_kind_layer_branches_on_a_kind_name():
    """A comparison with a task or head kind's name (`kind == "tagging"`, `in ("qa", ...)`) anywhere in the
    package but xstilts/kinds/ is behaviour that belongs to a kind object. (Names as data are fine: XTREME's
    groups are called classification, tagging and qa too.)"""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "kinds" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            names = set().union(*map(_string_constants, [node.left, *node.comparators])) & KIND_NAMES
            if names:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {sorted(names)}")
    assert not found, "kind names branched on outside xstilts/kinds: " + "; ".join(found)


def test_the_checker_sees_a_branch_on_a_kind_name():
    tree = ast.parse('if task.kind in ("qa", "qa_unanswerable"):\n    pass\nelif kind == "tagging":\n    pass')
    first, second = (n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    assert _string_constants(first.comparators[0]) == {"qa", "qa_unanswerable"}
    assert _string_constants(second.comparators[0]) == {"tagging"}


@pytest.mark.parametrize("name", sorted(kinds.KINDS))
def test_every_kind_is_complete(name):
    kind = kinds.get(name)
    assert kind.name == name and kind.schema and all(isinstance(t, str) for t in kind.schema.values())
    if kind.head is None:  # scored straight from an encoder: a protocol per language, the texts it embeds
        assert name in kinds.RETRIEVAL_KINDS
        assert callable(getattr(kind, "retrieve_language", None)) and callable(getattr(kind, "texts", None))
    else:
        assert kind.head in HEADS
        for method in ("encode", "predict", "score"):
            assert getattr(type(kind), method) is not getattr(TaskKind, method), f"{name} lacks {method}"
    assert kind.submission_ext in ("tsv", "json", "jsonl")  # the suffixes the official scorer opens


def test_every_registry_task_names_a_known_kind_and_an_unknown_one_is_refused():
    assert {t.kind for t in registry.TASKS.values()} <= set(kinds.KINDS)
    with pytest.raises(ValueError, match="no task kind 'regression'"):
        registry._register(replace(registry.get_task("xnli"), name="stsb", kind="regression"))
    assert "stsb" not in registry.TASKS


class _MacroF1(Classification):
    """A toy kind: classification scored by macro F1, written as JSON."""

    name = "macro_f1_classification"
    submission_ext = "json"

    def score_keys(self, task):
        return ("macro_f1",)

    def score(self, task, rows, preds, lang):
        from sklearn.metrics import f1_score

        return {"macro_f1": 100 * f1_score([r["label"] for r in rows], preds, average="macro")}


def test_a_new_kind_reaches_scoring_selection_and_files_through_its_object(monkeypatch, tmp_path):
    kind = _MacroF1()
    monkeypatch.setitem(kinds.KINDS, kind.name, kind)
    task = replace(registry.get_task("pawsx"), name="toy", kind=kind.name)
    monkeypatch.setitem(registry.TASKS, task.name, task)
    rows = [{"id": str(i), "text_a": "a", "text_b": "b", "label": y} for i, y in enumerate([0, 0, 1, 1])]
    scores = evaluate.score_rows(task, rows, [0, 1, 1, 1], "en")
    assert scores == {"macro_f1": pytest.approx(100 * (2 / 3 + 0.8) / 2)}
    assert metrics.task_summary("toy", {"en": scores, "de": {"macro_f1": 50.0}})["score"] == pytest.approx(
        (scores["macro_f1"] + 50) / 2)
    assert kind.selection_metric(task) == "macro_f1"
    evaluate.write_submission(tmp_path, task, "en", rows, [0, 1, 1, 1], list(task.labels))
    assert (tmp_path / "predictions" / "toy" / "test-en.json").is_file()
    assert evaluate.read_submission(tmp_path, task, "en") == (["0", "1", "1", "1"], ["0", "0", "1", "1"])
