"""Inference (length-sorted, dynamically padded) and scoring with the official metrics, through each task's
kind (xstilts.kinds).

`predict` returns one prediction per input row, in input order; `score_rows` turns predictions into the
task's metric for one language; `write_submission` writes the official XTREME submission layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from xstilts import features as F
from xstilts import kinds
from xstilts.io import write_text
from xstilts.models import autocast
from xstilts.registry import Task


@torch.no_grad()
def run_head(model, head: str, feats: dict[str, list], batch_size: int, pad_id: int, device, bf16="auto",
             meter=None):
    """Raw head outputs per feature, in feature order (inference batches sorted by length)."""
    from xstilts.kinds.heads import get as head_kind

    model.eval()
    kind = head_kind(model.head_specs[head]["kind"])
    outputs: list = [None] * len(feats["input_ids"])
    for idx in F.sorted_batches(F.seq_lengths(feats), batch_size):
        batch = F.collate(feats, idx, pad_id)
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        if meter is not None:
            meter.add_tokens(int(mask.sum()), ids.numel())
        with autocast(device, bf16):
            out = model(head, ids, mask)
        out = kind.outputs(out, batch, len(idx)).float().cpu()
        for j, i in enumerate(idx):
            # token-level outputs are cut back to the feature's own length (drop the batch padding)
            outputs[i] = out[j] if kind.pooled else out[j, : len(feats["input_ids"][i])]
    return outputs


def predict(model, head: str, task: Task, rows: list[dict], feats: dict[str, list], labels, hp: dict,
            pad_id: int, device, meter=None, candidates=None) -> list:
    """One prediction per row, by the task's kind: label index (classification, multiple choice), tag strings
    (tagging), answer text (QA), ranked candidate ids (retrieval; `candidates` from `candidate_vectors` when
    the kind has a candidate table)."""
    outs = run_head(model, head, feats, hp["eval_batch_size"], pad_id, device, hp.get("bf16", "auto"), meter)
    extra = {} if candidates is None else {"candidates": candidates}
    return kinds.of(task).predict(outs, rows, feats, labels, hp, **extra)


def candidate_vectors(model, head: str, candidates: list[dict], feats: dict[str, list], hp: dict, pad_id: int,
                      device, meter=None) -> tuple[list[dict], np.ndarray]:
    """(candidates, their float32 encodings) for `predict`, from the table's features
    (`features.encode(..., candidates=True)`, made once): a table is embedded once per model state and shared
    by every language and split it serves."""
    outs = run_head(model, head, feats, hp["eval_batch_size"], pad_id, device, hp.get("bf16", "auto"), meter)
    return candidates, np.stack([o.numpy() for o in outs]).astype(np.float32)


def score_rows(task: Task, rows: list[dict], preds: list, lang: str) -> dict[str, float]:
    """The task's metric for one language, by the official definitions in xstilts.metrics."""
    return kinds.of(task).score(task, rows, preds, lang)


def submission_name(split: str, lang: str, task: Task) -> str:
    """`test-<lang>.tsv|json` as the official folder scorer opens them (evaluate.py 522434d:176-181: json for
    the QA group, tsv otherwise); the dev split is written beside it as `dev-<lang>`, which it ignores."""
    return f"{split}-{lang}.{kinds.of(task).submission_ext}"


def write_submission(root: Path, task: Task, lang: str, rows: list[dict], preds: list, labels,
                     split: str = "test") -> None:
    """Predictions (and, when known, gold labels) of one split in the official XTREME submission layout."""
    name = submission_name(split, lang, task)
    pred_text, gold_text = kinds.of(task).submission_texts(task, split, lang, rows, preds, labels)
    write_text(root / "predictions" / task.name / name, pred_text)
    write_text(root / "labels" / task.name / name, gold_text)


def read_submission_files(root: Path, task: Task, lang: str, split: str = "test") -> tuple[list[Path], list[str]]:
    """The paths and texts of one language's predictions and labels file under `root`; DataError names a file
    that cannot be read."""
    from xstilts.errors import DataError

    name = submission_name(split, lang, task)
    paths = [Path(root) / kind / task.name / name for kind in ("predictions", "labels")]
    try:
        return paths, [p.read_text(encoding="utf-8") for p in paths]
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror}); expected one file per scored language",
                        file=str(e.filename)) from None


def read_submission(root: Path, task: Task, lang: str, split: str = "test") -> tuple:
    """(predictions, gold) of one language as `write_submission` and `phases.run_retrieve` wrote them under
    `root`: label strings (classification; Tatoeba: one index per line), tag sentences (tagging), {id: answer}
    and {id: [gold answers]} (QA), sets of (src_id, en_id) (BUCC). DataError names the file that is missing or
    not in that layout."""
    return kinds.of(task).parse_submission(*read_submission_files(root, task, lang, split))
