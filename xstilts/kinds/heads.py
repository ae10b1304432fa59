"""The head kinds a task kind trains (`TaskKind.head`): module, input (pooled or per token), loss, outputs.

The torch side of the kind layer, imported by the model code only. Task kinds that differ only in their
data share a head: classification and pair classification the classification head, both QA kinds the span
head. Parameter names (`heads.<task>.out.weight`) are part of saved models: keep the attribute names, and
the order modules are created in (it fixes which random numbers initialise which weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import nn

from xstilts.features import IGNORE


class ClassificationHead(nn.Module):
    """Sentence(-pair) classification on the pooled state (RoBERTa-style two-layer head)."""

    def __init__(self, hidden: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, pooled):
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


class ChoiceHead(nn.Module):
    """Multiple choice: one score per (context, choice) sequence."""

    def __init__(self, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, pooled):
        return self.out(self.dropout(pooled)).squeeze(-1)


class SpanHead(nn.Module):
    """Extractive QA: start and end logits per token; position 0 stands for "no answer"."""

    def __init__(self, hidden: int):
        super().__init__()
        self.out = nn.Linear(hidden, 2)

    def forward(self, states):
        start, end = self.out(states).unbind(-1)
        return start, end


class TaggingHead(nn.Module):
    """Token tagging: a label per token (trained and read on each word's first sub-word)."""

    def __init__(self, hidden: int, n_labels: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, states):
        return self.out(self.dropout(states))


class DualEncoderHead(nn.Module):
    """A retrieval encoding: dense + tanh over the pooled state (BERT's pooler), L2-normalised, with a learnt
    logit scale initialised to 100 (google-research/xtreme third_party/bert.py `BertForRetrieval`, 838c13b:19-23,
    48-50, 60-61). Returns (embeddings, scale)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.logit_scale = nn.Parameter(torch.tensor(100.0))

    def forward(self, pooled):
        return nnf.normalize(torch.tanh(self.dense(pooled)), dim=-1), self.logit_scale


class Head:
    """A head kind: a pooled one reads one vector per sequence (`TaskModel.pool`), a token-level one every
    token's state. `outputs` turns the module's output for a batch into one row per feature."""

    name: str
    pooled: bool

    def build(self, hidden: int, n_labels: int | None) -> nn.Module:
        raise NotImplementedError(self.name)

    def loss(self, out, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(self.name)

    def outputs(self, out, batch: dict[str, torch.Tensor], n: int) -> torch.Tensor:
        return out


class Classification(Head):
    name, pooled = "classification", True

    def build(self, hidden, n_labels):
        return ClassificationHead(hidden, n_labels)

    def loss(self, out, batch):
        return nnf.cross_entropy(out, batch["label"])


class MultipleChoice(Head):
    """A batch of n examples is n x choices sequences (`features.collate`): scores regroup per example."""

    name, pooled = "multiple_choice", True

    def build(self, hidden, n_labels):
        return ChoiceHead(hidden)

    def loss(self, out, batch):
        return nnf.cross_entropy(out.view(-1, int(batch["n_choices"])), batch["label"])

    def outputs(self, out, batch, n):
        return out.view(n, int(batch["n_choices"]))


class Span(Head):
    name, pooled = "span", False

    def build(self, hidden, n_labels):
        return SpanHead(hidden)

    def loss(self, out, batch):
        start, end = out
        return (nnf.cross_entropy(start, batch["start"]) + nnf.cross_entropy(end, batch["end"])) / 2

    def outputs(self, out, batch, n):
        return torch.stack(out, -1)  # (start, end) per token


class Tagging(Head):
    name, pooled = "tagging", False

    def build(self, hidden, n_labels):
        return TaggingHead(hidden, n_labels)

    def loss(self, out, batch):
        return nnf.cross_entropy(out.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORE)


class DualEncoder(Head):
    """Training batches are (question, answer) pairs flattened like multiple choice (`n_choices` 2); the loss is
    the in-batch softmax from questions to answers, the other answers of the batch the negatives (bert.py
    838c13b:62-66). At inference each sequence gets its embedding."""

    name, pooled = "dual_encoder", True

    def build(self, hidden, n_labels):
        return DualEncoderHead(hidden)

    def loss(self, out, batch):
        embeddings, scale = out
        pairs = embeddings.view(-1, int(batch["n_choices"]), embeddings.shape[-1])
        logits = scale * pairs[:, 0] @ pairs[:, 1].T
        return nnf.cross_entropy(logits, torch.arange(len(pairs), device=logits.device))

    def outputs(self, out, batch, n):
        return out[0]


HEADS: dict[str, Head] = {h.name: h for h in (Classification(), MultipleChoice(), Span(), Tagging(), DualEncoder())}


def get(name: str) -> Head:
    try:
        return HEADS[name]
    except KeyError:
        raise ValueError(f"no head kind {name!r}; known: {', '.join(HEADS)}") from None
