"""Tagging (UD-POS, PAN-X, CCG supertagging): one label per word, trained and read on its first sub-word."""

from __future__ import annotations

from xstilts.kinds.base import TaskKind


def encode(rows: list[dict], tok, max_length: int, label_index: dict[str, int]) -> dict[str, list]:
    """Each word's label goes on its first sub-word; `word_first` maps words to token positions."""
    from xstilts.features import IGNORE

    enc = tok([list(r["tokens"]) for r in rows], is_split_into_words=True, truncation=True, max_length=max_length)
    out: dict[str, list] = {"input_ids": enc["input_ids"], "tags": [], "word_first": [], "example": []}
    for i, r in enumerate(rows):
        labels = [IGNORE] * len(enc["input_ids"][i])
        firsts = [-1] * len(r["tokens"])  # -1: word cut off by max_length
        prev = None
        for j, w in enumerate(enc.word_ids(i)):
            if w is not None and w != prev:
                firsts[w] = j
                labels[j] = label_index.get(r["tags"][w], IGNORE)
            prev = w
        out["tags"].append(labels)
        out["word_first"].append(firsts)
        out["example"].append(i)
    return out


def tag_file(sentences) -> str:
    """One tag per line, every sentence FOLLOWED by a blank line: the 2020 scorer's `read_tag`
    (evaluate.py 522434d:27-38) keeps a sentence only when it meets a blank line, so without the final one
    it drops the last sentence; the later fix (a0ffd24:38-39) reads both forms alike."""
    return "".join("".join(f"{t}\n" for t in s) + "\n" for s in sentences)


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


class Tagging(TaskKind):
    name = "tagging"
    schema = {"id": "string", "lang": "string", "tokens": "list<string>", "tags": "list<string>"}
    head = "tagging"
    labels_from_data = True

    def score_keys(self, task):
        # CCG supertagging (intermediate dev only) is token accuracy; UD-POS and PAN-X seqeval F1
        return ("accuracy",) if task.metric == "token_accuracy" else ("f1",)

    def encode(self, rows, tok, hp, train, labels):
        return encode(rows, tok, hp["max_length"], {t: i for i, t in enumerate(labels)})

    def predict(self, outs, rows, feats, labels, hp):
        fallback = "O" if "O" in labels else labels[0]  # a word cut off by max_length
        preds = []
        for o, firsts in zip(outs, feats["word_first"]):
            best = o.argmax(-1).tolist()
            preds.append([labels[best[j]] if j >= 0 else fallback for j in firsts])
        return preds

    def score(self, task, rows, preds, lang):
        from xstilts import metrics

        gold = [list(r["tags"]) for r in rows]
        if task.metric == "token_accuracy":
            return {"accuracy": metrics.accuracy([t for p in preds for t in p], [t for g in gold for t in g])}
        return {"f1": metrics.seqeval_f1(preds, gold)}

    def submission_texts(self, task, split, lang, rows, preds, labels):
        return tag_file(preds), tag_file(r["tags"] for r in rows)

    def parse_submission(self, paths, texts):
        return read_tag_file(texts[0]), read_tag_file(texts[1])

    def check_submission_file(self, path, text):
        if text and not text.endswith("\n\n"):
            return ("tag file does not end with a blank line, so the 2020 official `read_tag` drops its last "
                    "sentence; rerun this cell (files from before issue 12)")
        return None

    def units(self, task, lang, pred, gold):
        import numpy as np

        from xstilts import metrics
        from xstilts.uncertainty import Units

        counts = np.array(metrics.seqeval_counts(pred, gold), dtype=float).reshape(-1, 3)
        return Units(tuple(range(len(gold))), 2 * counts[:, 0], counts[:, 1] + counts[:, 2])


KIND = Tagging()
