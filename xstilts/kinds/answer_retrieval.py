"""Language-agnostic answer retrieval (LAReQA, XTREME-R): a question retrieves the sentence that answers it
from one pool of sentences of every language.

Protocol as google-research/xtreme (838c13b) scores it, third_party/utils_lareqa.py and evaluate_retrieval.py
(the XTREME-R paper's mAP@20, commit e23cf42):
- the queries are every question of every language; the candidates ONE pool: every sentence of every
  paragraph of every language (`sentence_breaks` of the xquad-r files), each paragraph once, never merged by
  text; a candidate's text is its sentence followed by its paragraph with newlines removed and no separator
  (processors/lareqa.py:51, evaluate_retrieval.py:572-574);
- the relevant candidates of a question are its answer sentence in every language, its own included (11);
- AP@20 is divided by min(#relevant, 20); mAP@20 is the mean over the queries (utils_lareqa
  `average_precision_at_k` / `mean_avg_prec_at_k`, 348-383). Every language has the same questions, so the
  mean over all queries is the mean of the per-language means, which is how the task score is formed here.
The model is a dual encoder fine-tuned on English SQuAD v1.1 (question, answer sentence + paragraph) pairs with
in-batch negatives (the `dual_encoder` head), as XTREME-R's baseline (third_party/bert.py `BertForRetrieval`).
The official scorer defines no LAReQA file layout, so the submission files are this project's (below).
"""

from __future__ import annotations

import json
import re

from xstilts.kinds.base import TaskKind, parse_ranked_lists

QUERY_TOKENS = 96  # XTREME-R scripts/train_lareqa.sh:28 `max_query_length`; candidates use `max_length` (256)
TOP_K = 20
# A sentence ends at a run of these; the pool's sentences come from the files' own `sentence_breaks`, this
# splits SQuAD's training paragraphs (XTREME-R uses its own `infer_sentence_breaks`, processors/sb_sed.py,
# which handles abbreviations this rule does not).
_SENTENCE = re.compile(r"[^.!?。！？।؟]*(?:[.!?。！？।؟]+|$)")


def sentence_breaks(text: str) -> list[tuple[int, int]]:
    """[start, end) of each sentence of `text`, surrounding whitespace left out."""
    breaks = []
    for m in _SENTENCE.finditer(text):
        start, end = m.start(), m.end()
        while start < end and text[start].isspace():
            start += 1
        if start < end:
            breaks.append((start, end))
    return breaks


def candidate_text(sentence: str, context: str) -> str:
    return (sentence + context).replace("\n", "")


def average_precision_at_k(ranked: list, relevant: set, k: int = TOP_K) -> float:
    """AP@k with the divisor min(|relevant|, k): each relevant item among the first k adds (hits so far / rank)."""
    hits, total = 0, 0.0
    for rank, uid in enumerate(ranked[:k], 1):
        if uid in relevant:
            hits += 1
            total += hits / rank
    return total / min(len(relevant), k) if relevant else 0.0


def pool(rows: list[dict]) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """The candidates of `rows` (uids, texts) and each row's answer candidate: one entry per sentence of each
    distinct (language, paragraph), uid `<lang>_<paragraph>_<sentence>` as utils_lareqa numbers them."""
    uids, texts, answer_of = [], [], {}
    paragraph_of: dict[tuple[str, str], int] = {}
    counter: dict[str, int] = {}
    for r in rows:
        key = (r["lang"], r["context"])
        if key not in paragraph_of:
            paragraph_of[key] = counter.get(r["lang"], 0)
            counter[r["lang"]] = paragraph_of[key] + 1
            for i, sentence in enumerate(r["sentences"]):
                uids.append(f"{r['lang']}_{paragraph_of[key]}_{i}")
                texts.append(candidate_text(sentence, r["context"]))
        answer_of[r["lang"], r["id"]] = f"{r['lang']}_{paragraph_of[key]}_{int(r['answer_sentence'])}"
    return uids, texts, answer_of


class AnswerRetrieval(TaskKind):
    """Rows are questions (`id` shared by a question's translations, as xquad-r's), each with its paragraph's
    sentences and the index of the one holding the answer. Training features pair the question with its
    answer sentence + paragraph; evaluation features are the questions and the pool of `rows`, and a
    prediction is a question's top-20 candidate uids with its relevant ones."""

    name = "answer_retrieval"
    schema = {"id": "string", "lang": "string", "question": "string", "context": "string",
              "sentences": "list<string>", "answer_sentence": "int64"}
    head = "dual_encoder"
    submission_ext = "json"
    one_prediction_per_gold = False
    pools_languages = True  # one candidate pool over every language: `xstilts evaluate` predicts them at once

    def score_keys(self, task):
        return ("map@20",)

    def encode(self, rows, tok, hp, train, labels):
        query_len = min(QUERY_TOKENS, hp["max_length"])
        if train:
            answers = [candidate_text(r["sentences"][int(r["answer_sentence"])], r["context"]) for r in rows]
            q = tok([r["question"] for r in rows], truncation=True, max_length=query_len)["input_ids"]
            a = tok(answers, truncation=True, max_length=hp["max_length"])["input_ids"]
            return {"input_ids": [[x, y] for x, y in zip(q, a)], "example": list(range(len(rows)))}
        uids, texts, _ = pool(rows)
        q = tok([r["question"] for r in rows], truncation=True, max_length=query_len)["input_ids"]
        c = tok(texts, truncation=True, max_length=hp["max_length"])["input_ids"]
        return {"input_ids": q + c, "example": list(range(len(rows))) + [-1] * len(c)}

    def predict(self, outs, rows, feats, labels, hp):
        """Exact inner-product search of each question's embedding among the pool's (faiss)."""
        import numpy as np

        from xstilts import retrieval

        uids, _, answer_of = pool(rows)
        vectors = np.stack([o.numpy() for o in outs]).astype(np.float32)
        queries, base = vectors[:len(rows)], vectors[len(rows):]
        _, top = retrieval.knn(queries, base, min(TOP_K, len(uids)))
        by_id: dict[str, set] = {}
        for (lang, qid), uid in answer_of.items():
            by_id.setdefault(qid, set()).add(uid)
        return [{"ranked": [uids[j] for j in top[i]], "relevant": sorted(by_id[r["id"]])}
                for i, r in enumerate(rows)]

    def score(self, task, rows, preds, lang):
        from xstilts.errors import DataError

        if not preds:
            raise DataError("no questions to score; expected at least one")
        aps = [average_precision_at_k(p["ranked"], set(p["relevant"])) for p in preds]
        return {"map@20": 100.0 * sum(aps) / len(aps)}

    def submission_texts(self, task, split, lang, rows, preds, labels):
        """Predictions `{"<id>_<lang>": [top-20 candidate uids]}`, labels `{"<id>_<lang>": [relevant uids]}`
        (query uids as utils_lareqa:20 forms them)."""
        keys = [f"{r['id']}_{lang}" for r in rows]
        return (json.dumps({k: p["ranked"] for k, p in zip(keys, preds)}, ensure_ascii=False, indent=0),
                json.dumps({k: p["relevant"] for k, p in zip(keys, preds)}, ensure_ascii=False, indent=0))

    def parse_submission(self, paths, texts):
        pred, gold = parse_ranked_lists(paths, texts, "{query uid: [candidate uids]}")
        return pred, gold

    def units(self, task, lang, pred, gold):
        """Per query (the gold's): its AP@20; a query without predictions scores 0."""
        import numpy as np

        from xstilts.uncertainty import Units

        aps = np.array([average_precision_at_k(pred.get(q, []), set(rel)) for q, rel in gold.items()])
        return Units(tuple(gold), aps, np.ones_like(aps))


KIND = AnswerRetrieval()
