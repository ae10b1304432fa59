"""Inference per head kind (length-sorted, dynamically padded) and scoring with the official metrics.

`predict` returns one prediction per input row, in input order; `score_rows` turns predictions into the
task's metric for one language; `write_submission` writes the official XTREME submission layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from xstilts import features as F
from xstilts.io import write_text
from xstilts.registry import Task


def encode_rows(task: Task, rows: list[dict], tok, hp: dict, train: bool, data_key: dict,
                labels: list[str] | None = None) -> dict[str, list]:
    """Features for `rows` of `task`, through the feature cache when `data_key` identifies the rows.
    `labels` (tagging) maps tag strings to head indices."""
    kind, max_len = task.kind, hp["max_length"]
    stride = hp.get("doc_stride", 128)

    def build():
        if kind in ("classification", "pair_classification"):
            return F.encode_classification(rows, tok, max_len)
        if kind == "multiple_choice":
            return F.encode_multiple_choice(rows, tok, max_len)
        if kind in ("qa", "qa_unanswerable"):
            return F.encode_qa(rows, tok, max_len, stride, train)
        if kind == "tagging":
            return F.encode_tagging(rows, tok, max_len, {t: i for i, t in enumerate(labels)})
        raise ValueError(kind)

    if not data_key:
        return build()
    key = {**data_key, "labels": labels, "kind": kind, "max_length": max_len, "stride": stride, "train": train,
           "tokenizer": F.tokenizer_fingerprint(tok)}
    return F.cached_features(key, build)


def autocast(device: torch.device, bf16):
    enabled = device.type == "cuda" and bf16 in (True, "auto")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.no_grad()
def run_head(model, head: str, feats: dict[str, list], batch_size: int, pad_id: int, device, bf16="auto",
             meter=None):
    """Raw head outputs per feature, in feature order (inference batches sorted by length)."""
    model.eval()
    token_level = model.head_specs[head]["kind"] in ("span", "tagging")
    outputs: list = [None] * len(feats["input_ids"])
    for idx in F.sorted_batches(F.seq_lengths(feats), batch_size):
        batch = F.collate(feats, idx, pad_id)
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        if meter is not None:
            meter.add_tokens(int(mask.sum()), ids.numel())
        with autocast(device, bf16):
            out = model(head, ids, mask)
        if isinstance(out, tuple):  # span head: (start, end)
            out = torch.stack(out, -1)
        out = out.float().cpu()
        if "n_choices" in batch:
            out = out.view(len(idx), int(batch["n_choices"]))
        for j, i in enumerate(idx):
            # token-level outputs are cut back to the feature's own length (drop the batch padding)
            outputs[i] = out[j, : len(feats["input_ids"][i])] if token_level else out[j]
    return outputs


def predict(model, head: str, task: Task, rows: list[dict], feats: dict[str, list], labels, hp: dict,
            pad_id: int, device, meter=None) -> list:
    """One prediction per row: label index (classification, multiple choice), tag strings (tagging),
    answer text (QA)."""
    outs = run_head(model, head, feats, hp["eval_batch_size"], pad_id, device, hp.get("bf16", "auto"), meter)
    kind = task.kind
    if kind in ("classification", "pair_classification", "multiple_choice"):
        return [int(o.argmax()) for o in outs]
    if kind == "tagging":
        fallback = "O" if "O" in labels else labels[0]
        preds = []
        for o, firsts in zip(outs, feats["word_first"]):
            best = o.argmax(-1).tolist()
            preds.append([labels[best[j]] if j >= 0 else fallback for j in firsts])
        return preds
    return _best_spans(rows, feats, outs, hp["max_answer_length"], allow_null=kind == "qa_unanswerable")


def _best_spans(rows, feats, outs, max_answer_length: int, allow_null: bool, n_best: int = 20) -> list[str]:
    """Highest start+end logit span inside the context over all windows of each example."""
    best: list[tuple[float, str]] = [(-np.inf, "") for _ in rows]
    null: list[float] = [-np.inf for _ in rows]
    for out, ex, offsets in zip(outs, feats["example"], feats["offsets"]):
        start, end = out[:, 0].numpy(), out[:, 1].numpy()
        null[ex] = max(null[ex], float(start[0] + end[0]))
        starts = np.argsort(-start)[:n_best]
        ends = np.argsort(-end)[:n_best]
        ctx = rows[ex]["context"]
        for s in starts:
            if offsets[s][0] < 0:
                continue
            for e in ends:
                if e < s or e - s + 1 > max_answer_length or offsets[e][0] < 0:
                    continue
                score = float(start[s] + end[e])
                if score > best[ex][0]:
                    best[ex] = (score, ctx[offsets[s][0]:offsets[e][1]])
    return ["" if allow_null and null[i] > best[i][0] else best[i][1] for i in range(len(rows))]


def score_rows(task: Task, rows: list[dict], preds: list, lang: str) -> dict[str, float]:
    """The task's metric for one language, by the official definitions in xstilts.metrics."""
    from xstilts import metrics

    kind = task.kind
    if kind in ("classification", "pair_classification", "multiple_choice"):
        return {"accuracy": metrics.accuracy(preds, [int(r["label"]) for r in rows])}
    if kind == "tagging":
        gold = [list(r["tags"]) for r in rows]
        if task.metric == "token_accuracy":  # CCG supertagging (intermediate dev only)
            flat_p = [t for p in preds for t in p]
            flat_g = [t for g in gold for t in g]
            return {"accuracy": metrics.accuracy(flat_p, flat_g)}
        return {"f1": metrics.seqeval_f1(preds, gold)}
    pred_map = {r["id"]: p for r, p in zip(rows, preds)}
    refs = {r["id"]: list(r["answer_texts"]) for r in rows}
    if task.metric == "mlqa":
        return metrics.mlqa_scores(pred_map, refs, lang)
    return metrics.squad_scores(pred_map, refs)


def selection_metric(task: Task) -> str:
    """What checkpoint selection maximises on English dev: jiant's `major` metric of the task
    (nyu-mll/jiant jiant/tasks/evaluate/core.py: QA (F1+EM)/2 at 762 and 803, seqeval F1 at 723, CCG token
    accuracy at 660-664, accuracy at 270). Named in dev.json."""
    if task.kind in ("qa", "qa_unanswerable"):
        return "mean(exact_match,f1)"
    return "f1" if task.kind == "tagging" and task.metric != "token_accuracy" else "accuracy"


def selection_score(task: Task, scores: dict[str, float]) -> float:
    """The value of `selection_metric(task)` in `score_rows`' scores (a missing key is a bug: KeyError)."""
    metric = selection_metric(task)
    if metric == "mean(exact_match,f1)":
        return (scores["exact_match"] + scores["f1"]) / 2
    return scores[metric]


def squad_dataset(title: str, rows: list[dict]) -> dict:
    """QA gold in the SQuAD v1.1 dataset structure (`data -> paragraphs -> qas -> answers`), the only shape
    the official readers parse: google-research/xtreme evaluate.py `read_squad` (522434d:46-57) returns
    `data`, and third_party/evaluate_squad.py:71-80 / evaluate_mlqa.py:116-125 walk article['paragraphs'],
    paragraph['qas'], qa['answers'][i]['text']. Consecutive rows with the same context share a paragraph."""
    paragraphs: list[dict] = []
    for r in rows:
        if not paragraphs or paragraphs[-1]["context"] != r["context"]:
            paragraphs.append({"context": r["context"], "qas": []})
        answers = [{"text": t, "answer_start": int(a)} for t, a in zip(r["answer_texts"], r["answer_starts"])]
        paragraphs[-1]["qas"].append({"id": r["id"], "question": r["question"], "answers": answers})
    return {"version": "1.1", "data": [{"title": title, "paragraphs": paragraphs}]}


def tag_file(sentences) -> str:
    """One tag per line, every sentence FOLLOWED by a blank line: the 2020 scorer's `read_tag`
    (evaluate.py 522434d:27-38) keeps a sentence only when it meets a blank line, so without the final one
    it drops the last sentence; the later fix (a0ffd24:38-39) reads both forms alike."""
    return "".join("".join(f"{t}\n" for t in s) + "\n" for s in sentences)


def submission_name(split: str, lang: str, task: Task) -> str:
    """`test-<lang>.tsv|json` as the official folder scorer opens them (evaluate.py 522434d:176-181: json for
    the QA group, tsv otherwise); the dev split is written beside it as `dev-<lang>`, which it ignores."""
    return f"{split}-{lang}.{'json' if task.kind in ('qa', 'qa_unanswerable') else 'tsv'}"


def write_submission(root: Path, task: Task, lang: str, rows: list[dict], preds: list, labels,
                     split: str = "test") -> None:
    """Predictions (and, when known, gold labels) of one split in the official XTREME submission layout."""
    kind, name = task.kind, submission_name(split, lang, task)
    if kind in ("qa", "qa_unanswerable"):
        pred_text = json.dumps({r["id"]: p for r, p in zip(rows, preds)}, ensure_ascii=False, indent=0)
        gold_text = json.dumps(squad_dataset(f"{task.name}-{split}-{lang}", rows), ensure_ascii=False, indent=0)
    elif kind == "tagging":
        pred_text = tag_file(preds)
        gold_text = tag_file(r["tags"] for r in rows)
    else:
        pred_text = "".join(f"{labels[p]}\n" for p in preds)
        gold_text = "".join(f"{labels[int(r['label'])]}\n" for r in rows)
    write_text(root / "predictions" / task.name / name, pred_text)
    write_text(root / "labels" / task.name / name, gold_text)


def read_tag_file(text: str) -> list[list[str]]:
    """The inverse of `tag_file`: a sentence ends at a blank line; a last one without it (files from before
    issue 12) is kept, as the fixed official `read_tag` (a0ffd24:38-39) keeps it."""
    sentences, current = [], []
    for line in text.splitlines():
        if line.strip():
            current.append(line.strip())
        else:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


def squad_answers(dataset) -> dict[str, list[str]]:
    """{question id: gold answer texts} of a `squad_dataset` document, walked as the official question loop
    does (data -> paragraphs -> qas -> answers[i]['text']); ValueError when it is not that structure."""
    try:
        return {qa["id"]: [a["text"] for a in qa["answers"]]
                for article in dataset["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    except (KeyError, TypeError) as e:
        raise ValueError(f"not the SQuAD v1.1 dataset structure (data -> paragraphs -> qas -> answers): {e!r}") \
            from None


def read_submission(root: Path, task: Task, lang: str, split: str = "test") -> tuple:
    """(predictions, gold) of one language as `write_submission` and `phases.run_retrieve` wrote them under
    `root`: label strings (classification; Tatoeba: one index per line), tag sentences (tagging), {id: answer}
    and {id: [gold answers]} (QA), sets of (src_id, en_id) (BUCC). DataError names the file that is missing or
    not in that layout."""
    from xstilts.errors import DataError

    name = submission_name(split, lang, task)
    paths = [Path(root) / kind / task.name / name for kind in ("predictions", "labels")]
    try:
        texts = [p.read_text(encoding="utf-8") for p in paths]
    except OSError as e:
        raise DataError(f"cannot read ({e.strerror}); expected one file per scored language",
                        file=str(e.filename)) from None
    if task.kind in ("qa", "qa_unanswerable"):
        parsed = []
        for path, text, parse in zip(paths, texts, (json.loads, lambda t: squad_answers(json.loads(t)))):
            try:
                parsed.append(parse(text))
            except ValueError as e:
                raise DataError(str(e), file=str(path)) from None
        pred, gold = parsed
        if not isinstance(pred, dict):
            raise DataError("expected a JSON object {question id: answer text}", file=str(paths[0]))
        return pred, gold
    if task.kind == "tagging":
        return read_tag_file(texts[0]), read_tag_file(texts[1])
    lines = [[x.strip() for x in t.splitlines() if x.strip()] for t in texts]
    if task.kind == "bitext_mining":
        return tuple({tuple(x.split("\t")) for x in group} for group in lines)
    return lines[0], lines[1]
