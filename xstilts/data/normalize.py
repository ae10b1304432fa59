"""Map raw hub rows into the internal schema of a task's kind (`xstilts.kinds`, each kind's `schema`), validating as we go.

One normaliser per `Source.raw_schema`. Each knows its dataset's quirks (string labels, ClassLabel ids,
answer keys, trailing newlines) so later phases see one schema per kind. Every row gets `lang` and a
stable string `id`: the dataset's own id where it has one (QA predictions are keyed by it), otherwise
`<path>/<config>/<split>-<row>`. Bad data raises `DataError` naming file, split, row and field; rows are
0-based positions in the raw split (`dataset[row]` on the hub; line row+1 of a jsonl or BUCC file).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from xstilts import kinds
from xstilts.data.sources import RawSplit, source_tag
from xstilts.errors import DataError
from xstilts.registry import NLI_LABELS, PANX_TAGS, UPOS_TAGS, Task

# The label names behind the int labels of each classification raw schema (hub ClassLabel order).
RAW_LABEL_NAMES = {
    "anli": NLI_LABELS,
    "glue_mnli": NLI_LABELS,
    "snli": NLI_LABELS,
    "glue_qqp": ("not_duplicate", "duplicate"),
    "xnli_mt": NLI_LABELS,  # facebook/xnli's ClassLabel: entailment, neutral, contradiction
}


@dataclass
class Normalized:
    """Internal-schema rows; BUCC also its gold pairs; `dropped` counts rows left out, by reason."""

    rows: list[dict]
    gold: list[dict] | None = None
    dropped: Counter = field(default_factory=Counter)


@dataclass
class _Ctx:
    raw: RawSplit
    task: Task | None
    dropped: Counter = field(default_factory=Counter)

    @property
    def lang(self) -> str:
        return self.raw.lang

    def error(self, message: str, row: int | None = None, field: str | None = None, file: str | None = None):
        return DataError(message, file=file or self.raw.origin, split=self.raw.source.split, row=row, field=field)

    def get(self, row: dict, i: int, key: str):
        try:
            return row[key]
        except KeyError:
            raise self.error(f"missing column {key!r} (columns: {', '.join(sorted(row))})", i, key) from None

    def sub(self, row: dict, i: int, key: str, sub: str):
        """`row[key][sub]` of a struct column (SQuAD answers, CommonsenseQA choices)."""
        struct = self.get(row, i, key)
        if not isinstance(struct, dict) or sub not in struct:
            raise self.error(f"expected a struct with {sub!r}, got {struct!r}", i, f"{key}.{sub}")
        return struct[sub]

    def text(self, row: dict, i: int, key: str) -> str:
        return self.as_text(self.get(row, i, key), i, key)

    def as_text(self, v, i: int, field: str) -> str:
        """A string value; bytes that are not UTF-8, and non-strings, are errors."""
        if isinstance(v, bytes):
            try:
                return v.decode("utf-8")
            except UnicodeDecodeError as e:
                raise self.error(f"undecodable bytes (not UTF-8: {e.reason} at byte {e.start})", i, field) from None
        if not isinstance(v, str):
            raise self.error(f"expected a string, got {type(v).__name__} {v!r}", i, field)
        return v

    def as_texts(self, v, i: int, field: str) -> list[str]:
        if not isinstance(v, (list, tuple)):
            raise self.error(f"expected a list of strings, got {type(v).__name__}", i, field)
        return [self.as_text(x, i, field) for x in v]

    def label_index(self, value, i: int, key: str, names) -> int:
        """Index of `value` in `names`, compared with its type ("0" is not 0); else outside the label set."""
        names = list(names)
        for k, name in enumerate(names):
            if type(value) is type(name) and value == name:
                return k
        raise self.error(f"label {value!r} outside the label set {names!r}", i, key)

    def task_label(self, name: str, i: int, key: str) -> int:
        return self.label_index(name, i, key, self.task.labels)

    def class_label(self, value, i: int, key: str, names) -> str:
        """The name of a hub ClassLabel int id."""
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(names):
            raise self.error(f"label {value!r} outside the label set (expected an int id 0..{len(names) - 1} "
                             f"of {list(names)!r})", i, key)
        return names[value]

    def row_id(self, i: int, own=None) -> str:
        return str(own) if own is not None else f"{source_tag(self.raw.source)}-{i}"


# --------------------------------------------------------------------------------------------- classification
def _nli_like(text_a: str, text_b: str, id_of: Callable[[_Ctx, dict, int], str], drop_no_gold: bool):
    """Sentence pairs with hub ClassLabel int labels, mapped by name onto the task's label order."""
    def run(c: _Ctx) -> list[dict]:
        names = RAW_LABEL_NAMES[c.raw.source.raw_schema]
        out = []
        for i, r in enumerate(c.raw.rows):
            label = c.get(r, i, "label")
            if drop_no_gold and label == -1:
                c.dropped["no_gold_label"] += 1
                continue
            name = c.class_label(label, i, "label", names)
            out.append({"id": id_of(c, r, i), "lang": c.lang, "text_a": c.text(r, i, text_a),
                        "text_b": c.text(r, i, text_b), "label": c.task_label(name, i, "label")})
        return out

    return run


def _anli_id(c: _Ctx, r: dict, i: int) -> str:
    return c.text(r, i, "uid")


def _glue_id(c: _Ctx, r: dict, i: int) -> str:
    return f"{source_tag(c.raw.source)}-{c.get(r, i, 'idx')}"


def _row_id(c: _Ctx, r: dict, i: int) -> str:
    return c.row_id(i)


def _xnli(c: _Ctx) -> list[dict]:
    """The hub's XNLI config mixes all languages: keep this language's rows; labels are strings."""
    out = []
    for i, r in enumerate(c.raw.rows):
        if c.get(r, i, "language") != c.lang:
            continue
        out.append({"id": c.row_id(i), "lang": c.lang, "text_a": c.text(r, i, "sentence1"),
                    "text_b": c.text(r, i, "sentence2"), "label": c.task_label(c.get(r, i, "gold_label"), i,
                                                                                 "gold_label")})
    return out


def _pawsx(c: _Ctx) -> list[dict]:
    """PAWS-X labels are the strings "0"/"1" (the task's label names)."""
    return [{"id": c.row_id(i), "lang": c.lang, "text_a": c.text(r, i, "sentence1"),
             "text_b": c.text(r, i, "sentence2"), "label": c.task_label(c.get(r, i, "label"), i, "label")}
            for i, r in enumerate(c.raw.rows)]


# --------------------------------------------------------------------------------------------- QA
def _squad(c: _Ctx) -> list[dict]:
    """SQuAD-format QA. Keeps only ids with the source's `id_prefix` (TyDiQA mixes languages); every answer
    must sit at its `answer_start`; SQuAD v1-style kinds need at least one answer."""
    prefix = c.raw.source.id_prefix
    need_answer = c.task is None or not kinds.of(c.task).allows_unanswerable
    out = []
    for i, r in enumerate(c.raw.rows):
        qid = c.text(r, i, "id")
        if prefix and not qid.startswith(prefix):
            c.dropped["other_id_prefix"] += 1
            continue
        context = c.text(r, i, "context")
        texts = c.as_texts(c.sub(r, i, "answers", "text"), i, "answers.text")
        starts = c.sub(r, i, "answers", "answer_start")
        if not isinstance(starts, (list, tuple)) or len(starts) != len(texts):
            raise c.error(f"answers.answer_start {starts!r} does not match {len(texts)} answer texts", i,
                          "answers.answer_start")
        for text, start in zip(texts, starts):
            if isinstance(start, bool) or not isinstance(start, int):
                raise c.error(f"answer_start {start!r} is not an int", i, "answers.answer_start")
            found = context[start:start + len(text)]
            if found != text:
                raise c.error(f"answer text {text!r} not found at answer_start {start} in the context "
                              f"(found {found!r})", i, "answers")
        if need_answer and not texts:
            raise c.error(f"question {qid!r} has no answer; task kind 'qa' needs at least one", i, "answers")
        out.append({"id": qid, "lang": c.lang, "context": context, "question": c.text(r, i, "question"),
                    "answer_texts": texts, "answer_starts": [int(s) for s in starts]})
    return out


def _answer_sentence(breaks, start: int) -> int:
    """Index of the [start, end) sentence holding character `start`; -1 if it falls between sentences."""
    return next((k for k, (s, e) in enumerate(breaks) if s <= start < e), -1)


def _squad_sentences(c: _Ctx) -> list[dict]:
    """SQuAD rows (checked as `_squad`) as LAReQA's training pairs: the question, its paragraph's sentences and
    the one holding the first answer's start (XTREME-R's processors/lareqa.py:249-300 takes the first answer
    and skips an example whose answer is in no sentence: counted here as `answer_outside_sentences`). SQuAD has
    no sentence breaks: `kinds.answer_retrieval.sentence_breaks` splits it."""
    from xstilts.kinds.answer_retrieval import sentence_breaks

    out = []
    for row in _squad(c):
        breaks = sentence_breaks(row["context"])
        k = _answer_sentence(breaks, row["answer_starts"][0])
        if k < 0:
            c.dropped["answer_outside_sentences"] += 1
            continue
        out.append({"id": row["id"], "lang": row["lang"], "question": row["question"], "context": row["context"],
                    "sentences": [row["context"][s:e] for s, e in breaks], "answer_sentence": k})
    return out


def _lareqa(c: _Ctx) -> list[dict]:
    """xquad-r rows: the sentences are the file's own `sentence_breaks` slices of the context (utils_lareqa.py
    838c13b:281-282), the answer sentence the one holding the answer's start; answers checked as `_squad`."""
    out = []
    for i, (r, row) in enumerate(zip(c.raw.rows, _squad(c), strict=True)):
        breaks = c.get(r, i, "sentence_breaks")
        if not isinstance(breaks, list) or not all(
                isinstance(b, (list, tuple)) and len(b) == 2 and all(isinstance(x, int) for x in b) for b in breaks):
            raise c.error(f"expected a list of [start, end) int pairs, got {breaks!r:.80}", i, "sentence_breaks")
        k = _answer_sentence(breaks, row["answer_starts"][0])
        if k < 0:
            raise c.error(f"answer_start {row['answer_starts'][0]} is in no sentence of sentence_breaks", i,
                          "sentence_breaks")
        out.append({"id": row["id"], "lang": row["lang"], "question": row["question"], "context": row["context"],
                    "sentences": [row["context"][s:e] for s, e in breaks], "answer_sentence": k})
    return out


# --------------------------------------------------------------------------------------------- entity retrieval
def _spans(c: _Ctx, i: int, spans, field: str, text: str) -> list[tuple[int, int]]:
    """Mewsli-X `sentence_spans`: [{start, end}] with 0 <= start < end <= len(text)."""
    if not isinstance(spans, list) or not all(isinstance(x, dict) for x in spans):
        raise c.error(f"expected a list of {{start, end}} objects, got {spans!r:.80}", i, field)
    out = []
    for x in spans:
        start, end = x.get("start"), x.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise c.error(f"span {x!r} is not inside the {len(text)}-character text", i, field)
        out.append((start, end))
    return out


def _mention(c: _Ctx, i: int, r: dict) -> dict:
    """One Mewsli-X contextual mention as a query (`kinds.entity_retrieval.query_text`: XTREME-R's baseline)."""
    from xstilts.kinds.entity_retrieval import query_text

    mention = c.get(r, i, "mention")
    text = c.as_text(c.sub(r, i, "context", "text"), i, "context.text")
    span = c.as_text(c.sub(mention, i, "mention_span", "text"), i, "mention_span.text")
    start, end = c.sub(mention, i, "mention_span", "start"), c.sub(mention, i, "mention_span", "end")
    if not (isinstance(start, int) and isinstance(end, int) and text[start:end] == span):
        raise c.error(f"mention_span {start}-{end} does not hold {span!r} in the context text", i, "mention_span")
    query = query_text(text, span, start, end, _spans(c, i, c.sub(r, i, "context", "sentence_spans"),
                                                      "context.sentence_spans", text))
    if query is None:
        raise c.error(f"mention {span!r} at {start}-{end} is in no single sentence of sentence_spans (XTREME-R's "
                      "preprocess_mention asserts one)", i, "mention_span")
    return {"id": c.text(mention, i, "example_id"), "lang": c.lang, "query": query,
            "entity_id": c.text(mention, i, "entity_id").strip()}


def _entity_description(c: _Ctx, i: int, entity: dict) -> str:
    from xstilts.kinds.entity_retrieval import description_text

    text = c.text(entity, i, "description")
    return description_text(text, _spans(c, i, c.get(entity, i, "sentence_spans"), "sentence_spans", text))


def _mewslix_pairs(c: _Ctx) -> list[dict]:
    """Wikipedia (mention, entity) pairs, the English training data: the gold description rides along."""
    out = []
    for i, r in enumerate(c.raw.rows):
        row, entity = _mention(c, i, r), c.get(r, i, "entity")
        if c.as_text(c.sub(r, i, "entity", "entity_id"), i, "entity.entity_id") != row["entity_id"]:
            raise c.error(f"the mention's entity_id {row['entity_id']!r} is not its pair's entity "
                          f"{entity['entity_id']!r}", i, "entity.entity_id")
        out.append({**row, "entity_text": _entity_description(c, i, entity)})
    return out


def _mewslix_mentions(c: _Ctx) -> list[dict]:
    """WikiNews mentions of one language (evaluation): the gold QID only; its entity is in the candidate table."""
    return [{**_mention(c, i, r), "entity_text": ""} for i, r in enumerate(c.raw.rows)]


def _mewslix_entities(c: _Ctx) -> list[dict]:
    """The candidate table: every entity with its description and the description's language."""
    return [{"id": c.text(r, i, "entity_id"), "lang": c.text(r, i, "description_language"),
             "text": _entity_description(c, i, r)} for i, r in enumerate(c.raw.rows)]


# --------------------------------------------------------------------------------------------- multiple choice
def _hellaswag(c: _Ctx) -> list[dict]:
    """Context = ctx, choices = the 4 endings, label the STRING "0".."3"."""
    out = []
    for i, r in enumerate(c.raw.rows):
        endings = c.as_texts(c.get(r, i, "endings"), i, "endings")
        out.append({"id": c.row_id(i, c.get(r, i, "ind")), "lang": c.lang, "context": c.text(r, i, "ctx"),
                    "question": "", "choices": endings,
                    "label": c.label_index(c.get(r, i, "label"), i, "label", [str(k) for k in range(len(endings))])})
    return out


def _commonsense_qa(c: _Ctx) -> list[dict]:
    """The answerKey (A-E) is looked up in choices.label to give the choice index."""
    out = []
    for i, r in enumerate(c.raw.rows):
        keys = c.as_texts(c.sub(r, i, "choices", "label"), i, "choices.label")
        texts = c.as_texts(c.sub(r, i, "choices", "text"), i, "choices.text")
        if len(keys) != len(texts):
            raise c.error(f"{len(keys)} choice labels but {len(texts)} choice texts", i, "choices")
        out.append({"id": c.text(r, i, "id"), "lang": c.lang, "context": "", "question": c.text(r, i, "question"),
                    "choices": texts, "label": c.label_index(c.get(r, i, "answerKey"), i, "answerKey", keys)})
    return out


def _social_i_qa(c: _Ctx) -> list[dict]:
    """Social IQa: context, question, answerA-C, label the STRING "1".."3" (the hub's, 1-based; an int is an
    error), kept as the task's label index 0..2."""
    out = []
    for i, r in enumerate(c.raw.rows):
        out.append({"id": c.row_id(i), "lang": c.lang, "context": c.text(r, i, "context"),
                    "question": c.text(r, i, "question"), "choices": [c.text(r, i, f"answer{k}") for k in "ABC"],
                    "label": c.task_label(c.get(r, i, "label"), i, "label")})
    return out


def _cosmos_qa(c: _Ctx) -> list[dict]:
    out = []
    for i, r in enumerate(c.raw.rows):
        choices = [c.text(r, i, f"answer{k}") for k in range(4)]
        out.append({"id": c.text(r, i, "id"), "lang": c.lang, "context": c.text(r, i, "context"),
                    "question": c.text(r, i, "question"), "choices": choices,
                    "label": c.label_index(c.get(r, i, "label"), i, "label", range(4))})
    return out


def _copa(c: _Ctx) -> list[dict]:
    """COPA / XCOPA: premise, `question` "cause" or "effect", choice1/choice2, label 0/1. The question reads
    "{premise} What was the {cause|effect}?" against each choice, the pair XTREME-R's baseline feeds its model
    (google-research/xtreme third_party/run_xcopa.py, 838c13b:288-313); `question` stays the English word in
    every language, as there. Ids: the source's tag and row (COPA's train and validation both count idx from 0)."""
    out = []
    for i, r in enumerate(c.raw.rows):
        relation = c.text(r, i, "question")
        if relation not in ("cause", "effect"):
            raise c.error(f"question {relation!r}; expected 'cause' or 'effect'", i, "question")
        out.append({"id": c.row_id(i), "lang": c.lang, "context": "",
                    "question": f"{c.text(r, i, 'premise')} What was the {relation}?",
                    "choices": [c.text(r, i, "choice1"), c.text(r, i, "choice2")],
                    "label": c.label_index(c.get(r, i, "label"), i, "label", range(2))})
    return out


# --------------------------------------------------------------------------------------------- tagging
def _tagging(tag_key: str, names: tuple[str, ...] | None):
    """Tokens + tags of equal length; `names` maps hub ClassLabel ids to tag strings (None: already strings)."""
    def run(c: _Ctx) -> list[dict]:
        out = []
        for i, r in enumerate(c.raw.rows):
            tokens = c.as_texts(c.get(r, i, "tokens"), i, "tokens")
            raw_tags = c.get(r, i, tag_key)
            if not isinstance(raw_tags, (list, tuple)):
                raise c.error(f"expected a list, got {type(raw_tags).__name__}", i, tag_key)
            if len(raw_tags) != len(tokens):
                raise c.error(f"{len(tokens)} tokens but {len(raw_tags)} tags", i, tag_key)
            tags = (c.as_texts(raw_tags, i, tag_key) if names is None
                    else [c.class_label(t, i, tag_key, names) for t in raw_tags])
            out.append({"id": c.row_id(i), "lang": c.lang, "tokens": tokens, "tags": tags})
        return out

    return run


# --------------------------------------------------------------------------------------------- retrieval
def _tatoeba(c: _Ctx) -> list[dict]:
    """Sentences on the hub keep a trailing newline: strip it. Row order is the gold alignment."""
    return [{"id": c.row_id(i), "lang": c.lang, "source": c.text(r, i, "source_sentence").removesuffix("\n"),
             "target": c.text(r, i, "target_sentence").removesuffix("\n")} for i, r in enumerate(c.raw.rows)]


def _bucc(c: _Ctx) -> tuple[list[dict], list[dict]]:
    """Pools of both sides (side src|en) and gold pairs from the original files. (The hub's `bucc18.<lang>`
    configs hold only the gold pairs, with sentence ids in `source_lang`/`target_lang`: not usable for
    mining, which needs the pools with distractors.)"""
    rows, gold, seen = [], [], {"src": set(), "en": set()}
    for r in c.raw.rows:
        if r["part"] == "gold":
            for side, sid in (("src", r["id"]), ("en", r["value"])):
                if sid not in seen[side]:
                    raise c.error(f"line {r['line']}: gold pair names {side} sentence id {sid!r}, which is not "
                                  f"in the {side} pool", r["line"] - 1, "lang_id" if side == "src" else "en_id",
                                  r["file"])
            gold.append({"lang": c.lang, "src_id": r["id"], "en_id": r["value"]})
            continue
        if r["id"] in seen[r["part"]]:
            raise c.error(f"line {r['line']}: duplicate sentence id {r['id']!r}", r["line"] - 1, "id", r["file"])
        seen[r["part"]].add(r["id"])
        rows.append({"lang": c.lang, "side": r["part"], "sent_id": r["id"], "text": r["value"]})
    return rows, gold


def _bucc_mteb(c: _Ctx) -> tuple[list[dict], list[dict]]:
    """mteb/BUCC: one row per language pair holding both pools (`sentence1` the non-English side, `sentence2`
    English) and `gold`, 1-based [i, j] index pairs into them (mteb BUCCBitextMining.dataset_transform). Sentence
    ids are the 1-based positions, `<lang>-<i>` / `en-<j>`."""
    rows, gold = [], []
    for k, r in enumerate(c.raw.rows):
        src = c.as_texts(c.get(r, k, "sentence1"), k, "sentence1")
        en = c.as_texts(c.get(r, k, "sentence2"), k, "sentence2")
        rows += [{"lang": c.lang, "side": "src", "sent_id": f"{c.lang}-{i}", "text": t} for i, t in enumerate(src, 1)]
        rows += [{"lang": c.lang, "side": "en", "sent_id": f"en-{j}", "text": t} for j, t in enumerate(en, 1)]
        for pair in c.get(r, k, "gold"):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not (1 <= pair[0] <= len(src) and 1 <= pair[1] <= len(en))):
                raise c.error(f"gold pair {pair!r} is not a 1-based [i, j] into {len(src)} and {len(en)} sentences",
                              k, "gold")
            gold.append({"lang": c.lang, "src_id": f"{c.lang}-{pair[0]}", "en_id": f"en-{pair[1]}"})
    return rows, gold


def _text(c: _Ctx) -> list[dict]:
    """Unlabelled corpus lines (columns lang, text); blank lines are dropped."""
    out = []
    for i, r in enumerate(c.raw.rows):
        text = c.text(r, i, "text").strip()
        if text:
            out.append({"lang": c.lang, "text": text})
        else:
            c.dropped["blank_text"] += 1
    return out


NORMALIZERS: dict[str, Callable[[_Ctx], list[dict]]] = {
    "anli": _nli_like("premise", "hypothesis", _anli_id, False),
    "glue_mnli": _nli_like("premise", "hypothesis", _glue_id, False),
    "snli": _nli_like("premise", "hypothesis", _row_id, True),
    "glue_qqp": _nli_like("question1", "question2", _glue_id, False),
    "xnli_mt": _nli_like("premise", "hypothesis", _row_id, False),
    "squad": _squad,
    "squad_sentences": _squad_sentences,
    "lareqa_original": _lareqa,
    "mewslix_pairs": _mewslix_pairs,
    "mewslix_mentions": _mewslix_mentions,
    "mewslix_entities": _mewslix_entities,
    "hellaswag": _hellaswag,
    "commonsense_qa": _commonsense_qa,
    "cosmos_qa": _cosmos_qa,
    "social_i_qa": _social_i_qa,
    "copa": _copa,
    "xcopa": _copa,
    "ccg": _tagging("supertags", None),
    "xnli": _xnli,
    "pawsx": _pawsx,
    "udpos": _tagging("pos_tags", UPOS_TAGS),
    "panx": _tagging("ner_tags", PANX_TAGS),
    "tatoeba": _tatoeba,
    "bucc_original": _bucc,
    "bucc_mteb": _bucc_mteb,
    "text": _text,
}


def normalize(raw: RawSplit, task: Task | None) -> Normalized:
    """Normalise one raw source split (`task` None for the corpus). An empty result is a `DataError`."""
    c = _Ctx(raw, task)
    if not raw.rows:
        raise c.error("empty split: the source has no rows")
    result = NORMALIZERS[raw.source.raw_schema](c)
    rows, gold = result if isinstance(result, tuple) else (result, None)
    if not rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in c.dropped.items()) or "none"
        raise c.error(f"empty split: no rows left for language {raw.lang!r} (rows dropped: {reasons})")
    return Normalized(rows, gold, c.dropped)
