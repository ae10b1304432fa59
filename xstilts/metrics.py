"""Official XTREME scoring: per-language metrics, task scores and benchmark scores (registry.BENCHMARKS).

Every definition follows the official XTREME scorer (google-research/xtreme `evaluate.py` and the SQuAD v1.1
and MLQA evaluation scripts it calls), so numbers are comparable with the leaderboard. Scores are percent.
See docs/metrics.md for where each definition comes from.
"""

from __future__ import annotations

import functools
import math
import re
import string
import sys
import unicodedata
import warnings
from collections import Counter
from typing import Callable, Hashable, Iterable, Mapping, Sequence

from xstilts import kinds
from xstilts.errors import DataError, UserError
from xstilts.registry import get_benchmark, get_task, target_tasks


def _percent(numerator: float, denominator: float) -> float:
    return 100.0 * numerator / denominator


def accuracy(preds: Sequence, golds: Sequence) -> float:
    """Share of predictions equal to their gold label, in percent."""
    if len(preds) != len(golds):
        raise DataError(f"{len(preds)} predictions for {len(golds)} gold labels; expected one per example")
    if not golds:
        raise DataError("no examples to score; expected at least one gold label")
    return _percent(sum(p == g for p, g in zip(preds, golds)), len(golds))


def seqeval_f1(pred_seqs: Sequence[Sequence[str]], gold_seqs: Sequence[Sequence[str]]) -> float:
    """seqeval's (conlleval-style) chunk F1 over the label strings exactly as given, in percent.

    The official scorer passes UD-POS tags without BIO prefixes, so seqeval reads the first letter of a
    tag as its chunk prefix and merges runs of equal tags into one chunk: this is NOT token accuracy,
    and it is reproduced on purpose. The "seems not to be NE tag" warnings this causes are silenced.
    """
    from seqeval.metrics import f1_score

    if len(pred_seqs) != len(gold_seqs):
        raise DataError(f"{len(pred_seqs)} predicted sequences for {len(gold_seqs)} gold sequences; "
                        f"expected one per sentence")
    for i, (p, g) in enumerate(zip(pred_seqs, gold_seqs)):
        if len(p) != len(g):
            raise DataError(f"{len(p)} predicted tags for {len(g)} gold tags; expected one tag per word",
                            row=i, field="tags")
    # seqeval only recognises a list of lists (tuples or arrays make it raise TypeError).
    gold = [[str(t) for t in g] for g in gold_seqs]
    pred = [[str(t) for t in p] for p in pred_seqs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return 100.0 * float(f1_score(gold, pred))


def seqeval_counts(pred_seqs: Sequence[Sequence[str]],
                   gold_seqs: Sequence[Sequence[str]]) -> list[tuple[int, int, int]]:
    """Per sentence (correct, predicted, gold) chunk counts, by seqeval's own chunker: seqeval's micro F1 over
    any multiset of sentences is 2 * sum(correct) / (sum(predicted) + sum(gold)), since it chunks the
    sentences joined with an `O` between them (so no chunk crosses a sentence). This lets the bootstrap
    (xstilts.uncertainty) resample sentences and recompute F1 exactly without calling seqeval per resample."""
    from seqeval.metrics.sequence_labeling import get_entities

    if len(pred_seqs) != len(gold_seqs):
        raise DataError(f"{len(pred_seqs)} predicted sequences for {len(gold_seqs)} gold sequences; "
                        f"expected one per sentence")
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (p, g) in enumerate(zip(pred_seqs, gold_seqs)):
            if len(p) != len(g):
                raise DataError(f"{len(p)} predicted tags for {len(g)} gold tags; expected one tag per word",
                                row=i, field="tags")
            pred, gold = set(get_entities([str(t) for t in p])), set(get_entities([str(t) for t in g]))
            out.append((len(pred & gold), len(pred), len(gold)))
    return out


# ------------------------------------------------------------------------------------------------ QA
# The SQuAD v1.1 and MLQA normalisers are written out here rather than imported: they ARE the official
# definitions (a few lines each), no maintained package ships the MLQA one, and the scores must not move
# with a third-party library's idea of "SQuAD-like" normalisation.

_SQUAD_PUNCT = frozenset(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


@functools.cache
def _mlqa_punct() -> frozenset[str]:
    """MLQA's punctuation: ASCII punctuation plus every Unicode character of a P* category (built once)."""
    return frozenset(string.punctuation) | frozenset(
        ch for ch in map(chr, range(sys.maxunicode)) if unicodedata.category(ch).startswith("P"))


# Per-language article patterns of mlqa_evaluation_v1.py. The Arabic pattern is the script's own: its
# first branch can never match (`^` after a character), so in effect every "ال" anywhere is replaced.
_MLQA_ARTICLES: dict[str, str | None] = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "hi": None,
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",
    "zh": None,
}
_MLQA_MIXED_SEGMENTATION = frozenset({"zh"})
_CJK = re.compile(r"([\u4e00-\u9fa5])")  # the MLQA script's CJK range


def _mixed_segmentation(text: str) -> list[str]:
    """Each CJK character is a token; runs of other characters are whitespace-tokenised."""
    return [tok for part in _CJK.split(text) for tok in part.split()]


def mlqa_normalize(text: str, lang: str) -> str:
    """MLQA's language-aware normaliser: lowercase, Unicode punctuation, per-language articles, tokens.

    MLQA's seven languages use the script's own tables. Any other language (the synthetic demo's ru, sw),
    for which the script would raise, gets no article removal and whitespace tokens; no official MLQA
    number involves such a language.
    """
    punct = _mlqa_punct()
    text = "".join(ch for ch in text.lower() if ch not in punct)
    if _MLQA_ARTICLES.get(lang):
        text = re.sub(_MLQA_ARTICLES[lang], " ", text)
    tokens = _mixed_segmentation(text) if lang in _MLQA_MIXED_SEGMENTATION else text.split()
    return " ".join(tokens)


def _token_f1(pred: str, gold: str) -> float:
    """Bag-of-tokens F1 of two normalised answers (0 when nothing is shared, as in the official script)."""
    pred_tokens, gold_tokens = pred.split(), gold.split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _qa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
               normalize: Callable[[str], str]) -> dict[str, float]:
    """EM and F1 (max over gold answers), averaged over every reference question.

    As in the official scripts a question without a prediction scores 0 and predictions for unknown ids
    are ignored. A question with no gold answer (SQuAD v2.0 "unanswerable", intermediate dev only) is
    scored as SQuAD v2.0 does: correct iff the prediction normalises to the empty answer.
    """
    per_question = _qa_per_question(predictions, references, normalize)
    return {"exact_match": _percent(sum(em for em, _ in per_question), len(references)),
            "f1": _percent(sum(f1 for _, f1 in per_question), len(references))}


def _qa_per_question(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                     normalize: Callable[[str], str]) -> list[tuple[float, float]]:
    """(EM, F1) in [0, 1] of every reference question, in the references' order (see `_qa_scores`)."""
    if not references:
        raise DataError("no questions to score; expected at least one reference")
    out = []
    for qid, golds in references.items():
        if qid not in predictions:
            out.append((0.0, 0.0))
            continue
        pred = normalize(predictions[qid])
        if not golds:
            out.append((float(pred == ""), float(pred == "")))
            continue
        normalized = [normalize(g) for g in golds]
        out.append((float(max(pred == g for g in normalized)), max(_token_f1(pred, g) for g in normalized)))
    return out


def qa_per_question(task_name: str, predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                    lang: str) -> list[tuple[float, float]]:
    """Per-question (EM, F1) in [0, 1] with the task's official normaliser (MLQA's for mlqa, else SQuAD's):
    their means are `mlqa_scores` / `squad_scores` / 100, so the bootstrap can resample questions."""
    normalize = (lambda text: mlqa_normalize(text, lang)) if get_task(task_name).metric == "mlqa" \
        else squad_normalize
    return _qa_per_question(predictions, references, normalize)


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 (XQuAD, TyDiQA-GoldP, SQuAD dev), in percent."""
    return _qa_scores(predictions, references, squad_normalize)


def mlqa_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                lang: str) -> dict[str, float]:
    """MLQA exact match and F1 with the answer language's normaliser, in percent."""
    return _qa_scores(predictions, references, lambda text: mlqa_normalize(text, lang))


# ------------------------------------------------------------------------------------------------ BUCC
def bucc_scores(pred_pairs: Iterable[tuple[Hashable, Hashable]],
                gold_pairs: Iterable[tuple[Hashable, Hashable]]) -> dict[str, float]:
    """Precision, recall and F1 of mined (src_id, en_id) pairs against the gold pairs, in percent."""
    pred, gold = set(pred_pairs), set(gold_pairs)
    correct = len(pred & gold)
    if correct == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision, recall = correct / len(pred), correct / len(gold)
    return {"precision": 100.0 * precision, "recall": 100.0 * recall,
            "f1": 100.0 * 2 * precision * recall / (precision + recall)}


# ------------------------------------------------------------------------------------------------ aggregation
def task_summary(task_name: str, per_language: Mapping[str, Mapping[str, float]]) -> dict:
    """Per-language scores, their unweighted mean per key, and the task score.

    Task score as the official scorer: QA = (avg EM + avg F1) / 2, tagging and BUCC = avg F1,
    classification and Tatoeba = avg accuracy.
    """
    task = get_task(task_name)
    if not per_language:
        raise DataError(f"task {task_name!r}: no per-language scores; expected at least one language")
    langs = list(per_language)
    keys = list(per_language[langs[0]])
    for lang in langs:
        if sorted(per_language[lang]) != sorted(keys):
            raise DataError(f"task {task_name!r}, language {lang!r}: score keys {sorted(per_language[lang])}; "
                            f"expected the same keys as {langs[0]!r}: {sorted(keys)}")
    average = {k: sum(float(per_language[lang][k]) for lang in langs) / len(langs) for k in keys}
    needed = kinds.of(task).score_keys(task)
    missing = [k for k in needed if k not in average]
    if missing:
        raise DataError(f"task {task_name!r} (metric {task.metric!r}): scores lack {missing}; got keys {keys}")
    score = sum(average[k] for k in needed) / len(needed)
    return {"languages": {lang: dict(per_language[lang]) for lang in langs}, "average": average, "score": score}


def _target_score(task_scores: Mapping[str, float | None], name: str) -> float | None:
    value = task_scores.get(name)
    return None if value is None or math.isnan(value) else float(value)


def _check_names(task_scores: Mapping[str, float | None]) -> None:
    """Every name is a target task (of any benchmark): a score under any other name is a caller's mistake."""
    targets = set(target_tasks())
    for name in task_scores:
        if name not in targets:
            get_task(name)  # unknown name: UserError listing the known tasks
            raise UserError(f"task {name!r} is not a target task; expected one of {sorted(targets)}")


def _mean_if_complete(task_scores: Mapping[str, float | None], names: Sequence[str]) -> float | None:
    """Unweighted mean of the scores of `names`; None unless every one is present (never a partial mean)."""
    values = [_target_score(task_scores, name) for name in names]
    if any(v is None for v in values):
        return None
    return sum(values) / len(values)


def benchmark_score(task_scores: Mapping[str, float | None], benchmark: str = "xtreme") -> float | None:
    """The benchmark's score (its `aggregate`, XTREME's: the unweighted mean of its 9 task scores), from its own
    tasks only: scores of other targets are not part of it, so registering a target never changes it."""
    tasks = get_benchmark(benchmark).tasks
    _check_names(task_scores)
    return _mean_if_complete(task_scores, tasks)


def group_scores(task_scores: Mapping[str, float | None], benchmark: str = "xtreme") -> dict[str, float | None]:
    """Mean task score per group of the benchmark (XTREME: classification, tagging, qa, retrieval); each None
    unless all of its tasks are present."""
    groups = get_benchmark(benchmark).groups
    _check_names(task_scores)
    return {group: _mean_if_complete(task_scores, names) for group, names in groups.items()}
