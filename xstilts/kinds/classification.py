"""Sentence and sentence-pair classification (XNLI, PAWS-X, MNLI, ANLI+, QQP): one label per row."""

from __future__ import annotations

from xstilts.kinds.base import TaskKind


def encode(rows: list[dict], tok, max_length: int) -> dict[str, list]:
    """(text_a, text_b) through the tokenizer's pair template, or text_a alone when no row has a text_b."""
    a = [r["text_a"] for r in rows]
    b = [r["text_b"] for r in rows]
    enc = tok(a, b if any(x is not None for x in b) else None, truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "label": [int(r["label"]) for r in rows],
            "example": list(range(len(rows)))}


class Classification(TaskKind):
    """A single sentence -> one of the task's labels (text_b may be null)."""

    name = "classification"
    schema = {"id": "string", "lang": "string", "text_a": "string", "text_b": "string?", "label": "int64"}
    head = "classification"

    def encode(self, rows, tok, hp, train, labels):
        return encode(rows, tok, hp["max_length"])

    def predict(self, outs, rows, feats, labels, hp):
        return [int(o.argmax()) for o in outs]

    def score(self, task, rows, preds, lang):
        from xstilts import metrics

        return {"accuracy": metrics.accuracy(preds, [int(r["label"]) for r in rows])}


class PairClassification(Classification):
    """A sentence pair -> one of the task's labels."""

    name = "pair_classification"
    schema = {"id": "string", "lang": "string", "text_a": "string", "text_b": "string", "label": "int64"}


SENTENCE = Classification()
PAIR = PairClassification()
