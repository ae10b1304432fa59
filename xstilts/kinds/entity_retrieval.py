"""Entity retrieval (Mewsli-X, XTREME-R): a mention in context retrieves its Wikidata entity from one table of
entity descriptions in many languages (about 1M in the release), shared by every query language.

Protocol as google-research/xtreme (838c13b) runs and scores it:
- query text: the sentence holding the mention, the mention marked ` { mention } ` (existing `{...}` become
  `(...)`) and repeated in front, `"<mention>: <marked sentence>"`, newlines and double spaces collapsed
  (third_party/utils_mewslix.py `preprocess_mention`, 562-610, with `truncate(window_size=0)`, 448-485);
- candidate text: the description's sentences joined by a space, likewise collapsed (`preprocess_entity_description`,
  613-617); the candidates are the whole entity table (`candidate_set_entities.jsonl`), never one per language;
- retrieval: exact inner-product search of the L2-normalised encodings, top 20 (evaluate_retrieval.py 619-651,
  710-711);
- metric: for each gold example, 1/rank of its gold QID among the first 20 predictions, 0 when absent or
  unpredicted; the mean over the language's gold examples (utils_mewslix `evaluate` / `mean_reciprocal_rank`,
  623-695). evaluate.py calls it `map@20` (one relevant item each: MRR@20 and mAP@20 coincide).
The model is the LAReQA dual encoder (`dual_encoder` head), trained on English Wikipedia (mention, entity)
pairs with in-batch negatives, as XTREME-R's baseline (scripts/train_mewslix.sh, third_party/run_retrieval_el.py).
"""

from __future__ import annotations

import json
import re

from xstilts.kinds.base import TaskKind, parse_ranked_lists

TOP_K = 20  # utils_mewslix.TOP_K
_MARKED = re.compile(r"\{(.*?)\}")  # utils_mewslix `_REGEX`, replaced by `(\1)`


def _collapse(text: str) -> str:
    """utils_mewslix's normalisation: lines joined by a space, one pass of "  " -> " ", stripped."""
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def query_text(text: str, mention: str, start: int, end: int, sentences: list[tuple[int, int]]) -> str | None:
    """The query of a mention at [start, end) of `text`, or None when no sentence of `sentences` holds it whole
    (`Span.locate_in`: XTREME-R asserts there, utils_mewslix.py 583)."""
    sentence = next(((s, e) for s, e in sentences if s <= start < e and s < end <= e), None)
    if sentence is None:
        return None
    s, e = sentence
    left, right = _MARKED.sub(r"(\1)", text[s:start]), _MARKED.sub(r"(\1)", text[end:e])
    return _collapse(f"{mention}: {left} {{ {mention} }} {right}")


def description_text(description: str, sentences: list[tuple[int, int]]) -> str:
    return _collapse(" ".join(description[s:e] for s, e in sentences))


def reciprocal_rank(ranked: list, gold: str, k: int = TOP_K) -> float:
    return next((1.0 / rank for rank, x in enumerate(ranked[:k], 1) if x == gold), 0.0)


class EntityRetrieval(TaskKind):
    """Rows are mentions (`id` = the release's example_id) with their query text, gold QID and, where the data
    carries it (the Wikipedia training pairs), the gold entity's description. The candidate table is split
    `candidates` of the prepared data (`candidate_schema`), read by `xstilts evaluate` once per target; English
    dev selection, which has no table at hand, retrieves among the dev rows' own gold entities."""

    name = "entity_retrieval"
    schema = {"id": "string", "lang": "string", "query": "string", "entity_id": "string", "entity_text": "string"}
    candidate_schema = {"id": "string", "lang": "string", "text": "string"}
    head = "dual_encoder"
    submission_ext = "json"
    one_prediction_per_gold = False
    pools_languages = True  # one candidate table for every language: encoded once, every language queried

    def score_keys(self, task):
        return ("map@20",)

    def encode(self, rows, tok, hp, train, labels):
        q = tok([r["query"] for r in rows], truncation=True, max_length=hp["max_length"])["input_ids"]
        if not train:
            return {"input_ids": q, "example": list(range(len(rows)))}
        e = tok([r["entity_text"] for r in rows], truncation=True, max_length=hp["max_length"])["input_ids"]
        return {"input_ids": [[x, y] for x, y in zip(q, e)], "example": list(range(len(rows)))}

    def encode_candidates(self, candidates, tok, hp):
        from xstilts.features import encode_text

        return encode_text(candidates, tok, hp["max_length"])

    def own_candidates(self, rows):
        """The distinct gold entities of `rows` with their descriptions (dev selection's table)."""
        seen = {r["entity_id"]: r for r in rows if r["entity_text"]}
        return [{"id": qid, "lang": r["lang"], "text": r["entity_text"]} for qid, r in seen.items()]

    def predict(self, outs, rows, feats, labels, hp, candidates=None):
        """Each query's top-20 QIDs by exact inner product with the candidates' encodings (faiss)."""
        import numpy as np

        from xstilts import retrieval

        table, vectors = candidates
        queries = np.stack([o.numpy() for o in outs]).astype(np.float32)
        _, top = retrieval.knn(queries, vectors, min(TOP_K, len(table)))
        return [[table[j]["id"] for j in top[i]] for i in range(len(rows))]

    def score(self, task, rows, preds, lang):
        from xstilts.errors import DataError

        if not preds:
            raise DataError("no mentions to score; expected at least one")
        return {"map@20": 100.0 * sum(reciprocal_rank(p, r["entity_id"]) for r, p in zip(rows, preds)) / len(preds)}

    def submission_texts(self, task, split, lang, rows, preds, labels):
        """XTREME-R's Mewsli-X files: predictions `{example_id: [QIDs, best first]}`, labels `{example_id: [gold
        QID]}` (evaluate_retrieval.py 749-758; the labels as utils_preprocess.mewslix_preprocess writes them)."""
        return (json.dumps({r["id"]: p for r, p in zip(rows, preds)}, ensure_ascii=False),
                json.dumps({r["id"]: [r["entity_id"]] for r in rows}, ensure_ascii=False))

    def parse_submission(self, paths, texts):
        from xstilts.errors import DataError

        parsed = parse_ranked_lists(paths, texts, "{example_id: [QIDs]}")
        empty = next((k for k, v in parsed[1].items() if not v), None)
        if empty is not None:
            raise DataError(f"example {empty!r} has no gold QID; expected a one-element list", file=str(paths[1]))
        return parsed[0], parsed[1]

    def units(self, task, lang, pred, gold):
        """Per gold example: its reciprocal rank in the first 20 predictions (0 when it has none); the gold is
        the first element, stripped, as utils_mewslix.evaluate reads it."""
        import numpy as np

        from xstilts.uncertainty import Units

        rr = np.array([reciprocal_rank(pred.get(ex, []), labels[0].strip()) for ex, labels in gold.items()])
        return Units(tuple(gold), rr, np.ones_like(rr))


KIND = EntityRetrieval()
