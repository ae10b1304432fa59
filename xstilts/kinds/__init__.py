"""The kind layer: what each kind of task is, in one module per kind.

A task in the registry names its kind (`Task.kind`, data only); the kind object says everything that differs
between kinds: the internal schema `prepare` writes, how rows become features, the head it trains
(`xstilts.kinds.heads`), how head outputs become predictions, the metric's keys and the selection key, the
submission files, the per-example statistics the bootstrap resamples, and, for the retrieval kinds, the
protocol of one language. `evaluate`, `train`, `models`, `phases`, `metrics`, `prepare` and the rest call
through these objects and never branch on a kind's name (tests/test_kinds.py greps for it).

Adding a kind: docs/design.md, "Adding a task kind".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xstilts.kinds import answer_retrieval, classification, entity_retrieval, multiple_choice, qa, retrieval, tagging
from xstilts.kinds.base import TaskKind

if TYPE_CHECKING:
    from xstilts.registry import Task

# Bump when the internal (normalised) schema of any kind changes: it is part of the prepare cache key.
SCHEMA_VERSION = 1

KINDS: dict[str, TaskKind] = {k.name: k for k in (
    classification.SENTENCE, classification.PAIR, multiple_choice.KIND, qa.ANSWERABLE, qa.UNANSWERABLE,
    tagging.KIND, retrieval.TATOEBA, retrieval.BUCC, answer_retrieval.KIND, entity_retrieval.KIND)}

# The kinds scored straight from an encoder (`xstilts retrieve`), with no head and no fine-tuning.
RETRIEVAL_KINDS = tuple(name for name, kind in KINDS.items() if kind.head is None)


def get(name: str) -> TaskKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"no task kind {name!r}; known: {', '.join(KINDS)}") from None


def of(task: Task) -> TaskKind:
    """The kind object of a registry task."""
    return get(task.kind)
