"""Extractive QA (SQuAD v1.1 / v2.0, XQuAD, MLQA, TyDiQA-GoldP): the answer is a span of the context."""

from __future__ import annotations

import json
import math

from xstilts.kinds.base import TaskKind

MAX_QUESTION_TOKENS = 64  # jiant squad_style/core.py:375 `max_query_length`


def encode(rows: list[dict], tok, max_length: int, stride: int, train: bool) -> dict[str, list]:
    """Question + context windows. `stride` is jiant's and XTREME's `doc_stride`: the STEP between the first
    context tokens of consecutive windows (nyu-mll/jiant squad_style/core.py:161-185 hands the tokenizer an
    overlap of max_length - doc_stride - question - special tokens), so it is turned into that overlap per
    question length. Questions keep at most 64 tokens (jiant core.py:375), and never more than half the window.
    Training targets: answer token span, or 0/0 when the answer is not inside the window or the question is
    unanswerable. Inference keeps context offsets. Features come in example order."""
    questions = [r["question"].lstrip() for r in rows]
    contexts = [r["context"] for r in rows]
    q_budget = min(MAX_QUESTION_TOKENS, max_length // 2)
    q_ids = tok(questions, add_special_tokens=False)["input_ids"]
    questions = [tok.decode(ids[:q_budget]) if len(ids) > q_budget else q for q, ids in zip(questions, q_ids)]
    special = tok.num_special_tokens_to_add(pair=True)
    by_overlap: dict[int, list[int]] = {}
    for i, ids in enumerate(tok(questions, add_special_tokens=False)["input_ids"]):
        room = max_length - len(ids) - special  # context tokens per window
        by_overlap.setdefault(max(0, min(room - stride, room - 1)), []).append(i)
    per_example: list[list[tuple]] = [[] for _ in rows]
    for overlap, members in by_overlap.items():
        enc = tok([questions[i] for i in members], [contexts[i] for i in members], truncation="only_second",
                  max_length=max_length, stride=overlap, return_overflowing_tokens=True, return_offsets_mapping=True)
        for f, ids in enumerate(enc["input_ids"]):
            ex = members[enc["overflow_to_sample_mapping"][f]]
            seq = enc.sequence_ids(f)
            offsets = enc["offset_mapping"][f]
            ctx_tokens = [j for j, s in enumerate(seq) if s == 1]
            start_tok = end_tok = 0
            r = rows[ex]
            if r["answer_texts"]:
                a_start = int(r["answer_starts"][0])
                a_end = a_start + len(r["answer_texts"][0])
                if ctx_tokens and offsets[ctx_tokens[0]][0] <= a_start and offsets[ctx_tokens[-1]][1] >= a_end:
                    start_tok = next(j for j in ctx_tokens if offsets[j][1] > a_start)
                    end_tok = next(j for j in reversed(ctx_tokens) if offsets[j][0] < a_end)
            per_example[ex].append((ids, start_tok, end_tok,
                                    [list(offsets[j]) if seq[j] == 1 else [-1, -1] for j in range(len(ids))]))
    out: dict[str, list] = {"input_ids": [], "example": [], "start": [], "end": [], "offsets": []}
    for ex, windows in enumerate(per_example):
        for ids, start_tok, end_tok, offsets in windows:
            out["input_ids"].append(ids)
            out["example"].append(ex)
            out["start"].append(start_tok)
            out["end"].append(end_tok)
            out["offsets"].append(offsets)
    return out


def best_spans(rows, feats, outs, max_answer_length: int, allow_null: bool, n_best: int = 20) -> list[str]:
    """Highest start+end logit span inside the context over all windows of each example; with `allow_null`
    the empty answer when position 0's start+end beats it (SQuAD v2.0)."""
    import numpy as np

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


def squad_answers(dataset) -> dict[str, list[str]]:
    """{question id: gold answer texts} of a `squad_dataset` document, walked as the official question loop
    does (data -> paragraphs -> qas -> answers[i]['text']); ValueError when it is not that structure."""
    try:
        return {qa["id"]: [a["text"] for a in qa["answers"]]
                for article in dataset["data"] for paragraph in article["paragraphs"] for qa in paragraph["qas"]}
    except (KeyError, TypeError) as e:
        raise ValueError(f"not the SQuAD v1.1 dataset structure (data -> paragraphs -> qas -> answers): {e!r}") \
            from None


class ExtractiveQA(TaskKind):
    """Every question answerable (SQuAD v1.1 style): the prediction is an answer text."""

    name = "qa"
    schema = {"id": "string", "lang": "string", "context": "string", "question": "string",
              "answer_texts": "list<string>", "answer_starts": "list<int64>"}
    head = "span"
    submission_ext = "json"  # the QA group's files are JSON (evaluate.py 522434d:176-181)
    one_prediction_per_gold = False  # {id: answer}: the scorer walks the gold questions

    def score_keys(self, task):
        return ("exact_match", "f1")  # task score (avg EM + avg F1) / 2, as the official scorer

    def encode(self, rows, tok, hp, train, labels):
        return encode(rows, tok, hp["max_length"], hp.get("doc_stride", 128), train)

    def predict(self, outs, rows, feats, labels, hp):
        return best_spans(rows, feats, outs, hp["max_answer_length"], allow_null=self.allows_unanswerable)

    def score(self, task, rows, preds, lang):
        from xstilts import metrics

        pred_map = {r["id"]: p for r, p in zip(rows, preds)}
        refs = {r["id"]: list(r["answer_texts"]) for r in rows}
        if task.metric == "mlqa":
            return metrics.mlqa_scores(pred_map, refs, lang)
        return metrics.squad_scores(pred_map, refs)

    def submission_texts(self, task, split, lang, rows, preds, labels):
        return (json.dumps({r["id"]: p for r, p in zip(rows, preds)}, ensure_ascii=False, indent=0),
                json.dumps(squad_dataset(f"{task.name}-{split}-{lang}", rows), ensure_ascii=False, indent=0))

    def parse_submission(self, paths, texts):
        from xstilts.errors import DataError

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

    def units(self, task, lang, pred, gold):
        import numpy as np

        from xstilts import metrics
        from xstilts.uncertainty import Units

        per_question = np.array(metrics.qa_per_question(task.name, pred, gold, lang), dtype=float).reshape(-1, 2)
        return Units(tuple(gold), per_question.mean(axis=1), np.ones(len(per_question)))

    def windows(self, tokens, hp):
        """Windows stepped by doc_stride (`encode`)."""
        return max(1, math.ceil((tokens - hp["max_length"]) / hp.get("doc_stride", 128)) + 1)


class UnanswerableQA(ExtractiveQA):
    """With unanswerable questions (SQuAD v2.0 style): an empty answer is predicted when position 0 wins."""

    name = "qa_unanswerable"
    allows_unanswerable = True


ANSWERABLE = ExtractiveQA()
UNANSWERABLE = UnanswerableQA()
