"""What every task kind declares, and the defaults most kinds share.

A kind object is stateless and importable without torch (the registry, the DAG and the CLI import it):
anything heavy (tokenisers, torch, faiss, metrics) is imported inside the method that needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xstilts.registry import Task
    from xstilts.uncertainty import Units


# The prepared split holding a kind's candidate table (`TaskKind.candidate_schema`).
CANDIDATES = "candidates"


def parse_ranked_lists(paths: list[Path], texts: list[str], layout: str) -> list[dict]:
    """Each file's JSON object `{id: [ranked ids]}` (the retrieval kinds' files); DataError names the file and,
    where one is to blame, the id whose value is not a list. `layout` describes the object in the message."""
    import json

    from xstilts.errors import DataError

    parsed = []
    for path, text in zip(paths, texts):
        try:
            doc = json.loads(text)
        except ValueError as e:
            raise DataError(f"not JSON ({e})", file=str(path)) from None
        bad = next((k for k, v in doc.items() if not isinstance(v, list)), None) if isinstance(doc, dict) else ""
        if bad is not None:
            raise DataError(f"expected a JSON object {layout}" + (f"; the value of {bad!r} is not a list" if bad else ""),
                            file=str(path))
        parsed.append(doc)
    return parsed


class TaskKind:
    """One kind of task: the internal schema `prepare` writes, how rows become model features, which head
    trains it, how head outputs become predictions, the metric and the selection key, the submission files.

    Subclasses set the class attributes and override what differs; a kind without a head (`head is None`)
    is scored straight from an encoder by `retrieve_language` (`xstilts retrieve`).
    """

    name: str
    schema: dict[str, str]  # internal column -> type, in column order (the prepare cache key covers it)
    head: str | None = None  # head kind in `xstilts.kinds.heads.HEADS`; None: a retrieval kind
    submission_ext = "tsv"  # test-<lang>.<ext> as the official folder scorer opens it
    # prepare: the label set is read from the training data when the registry gives none (CCG supertags)
    labels_from_data = False
    # prepare: evaluation gold is a separate table of (lang, src_id, en_id) pairs (BUCC), not a column
    gold_pairs = False
    # the official scorer asserts one prediction line per gold line (evaluate.py 522434d:155)
    one_prediction_per_gold = True
    # normalize / synth: a question may have no answer (SQuAD v2.0 style)
    allows_unanswerable = False
    # `xstilts evaluate` predicts every language in one call (a pool shared by the languages: LAReQA)
    pools_languages = False
    # A table of candidates the queries retrieve from, shared by every language and split (Mewsli-X's entities):
    # its schema, prepared as split `CANDIDATES` from every row of its source (never capped), encoded once per
    # target by `encode_candidates` and handed to `predict` as (rows, vectors). None: no such table.
    candidate_schema: dict[str, str] | None = None

    # -------------------------------------------------------------------------------------- scoring
    def score_keys(self, task: Task) -> tuple[str, ...]:
        """The per-language keys whose unweighted mean is the task score (and the selection metric)."""
        return ("accuracy",)

    def selection_metric(self, task: Task) -> str:
        """What checkpoint selection maximises on English dev (named in dev.json): the mean of the score
        keys, jiant's `major` metric (nyu-mll/jiant jiant/tasks/evaluate/core.py: QA (F1+EM)/2 at 762 and
        803, seqeval F1 at 723, CCG token accuracy at 660-664, accuracy at 270)."""
        keys = self.score_keys(task)
        return keys[0] if len(keys) == 1 else f"mean({','.join(keys)})"

    def selection_score(self, task: Task, scores: dict[str, float]) -> float:
        """The value of `selection_metric` in `score`'s output (a missing key is a bug: KeyError)."""
        keys = self.score_keys(task)
        return sum(scores[k] for k in keys) / len(keys)

    def score(self, task: Task, rows: list[dict], preds: list, lang: str) -> dict[str, float]:
        raise NotImplementedError(self.name)

    # -------------------------------------------------------------------------------------- head kinds
    def encode(self, rows: list[dict], tok, hp: dict, train: bool, labels: list[str] | None) -> dict[str, list]:
        """Model features of `rows` (dicts of plain lists, one entry per feature; `example` maps each back)."""
        raise NotImplementedError(f"kind {self.name!r} has no head: it is not encoded into features")

    def predict(self, outs: list, rows: list[dict], feats: dict[str, list], labels, hp: dict) -> list:
        """One prediction per row from the head's raw outputs per feature (`evaluate.run_head`); a kind with a
        candidate table also takes `candidates=(candidate rows, their float32 vectors)`."""
        raise NotImplementedError(self.name)

    def encode_candidates(self, candidates: list[dict], tok, hp: dict) -> dict[str, list]:
        """Features of the candidate table's rows (kinds with `candidate_schema`)."""
        raise NotImplementedError(f"kind {self.name!r} has no candidate table")

    def own_candidates(self, rows: list[dict]) -> list[dict]:
        """A candidate table made of `rows`' own gold items, for English dev selection during training."""
        raise NotImplementedError(f"kind {self.name!r} has no candidate table")

    # -------------------------------------------------------------------------------------- submission
    def submission_texts(self, task: Task, split: str, lang: str, rows: list[dict], preds: list,
                         labels) -> tuple[str, str]:
        """(predictions file text, gold file text) in the official layout; default: one label per line."""
        return ("".join(f"{labels[p]}\n" for p in preds),
                "".join(f"{labels[int(r['label'])]}\n" for r in rows))

    def parse_submission(self, paths: list[Path], texts: list[str]) -> tuple:
        """(predictions, gold) back from the two files' texts; default: their non-empty lines."""
        lines = [[x.strip() for x in t.splitlines() if x.strip()] for t in texts]
        return lines[0], lines[1]

    def check_submission_file(self, path: Path, text: str) -> str | None:
        """Why the official scorer would misread this file (None: it reads it as written)."""
        return None

    def units(self, task: Task, lang: str, pred, gold) -> Units:
        """Per-example sufficient statistics of one language (xstilts.uncertainty): default, a hit per row."""
        import numpy as np

        from xstilts.errors import DataError
        from xstilts.uncertainty import Units

        if len(pred) != len(gold):
            raise DataError(f"{len(pred)} predictions for {len(gold)} gold labels; expected one per example")
        hits = np.array([p == g for p, g in zip(pred, gold)], dtype=float)
        return Units(tuple(range(len(gold))), hits, np.ones_like(hits))

    # -------------------------------------------------------------------------------------- sizes
    def windows(self, tokens: int, hp: dict) -> int:
        """Features per example of `tokens` tokens (xstilts.estimate's projection from size facts)."""
        return 1

    def __repr__(self) -> str:
        return f"<task kind {self.name}>"
