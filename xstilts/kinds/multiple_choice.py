"""Multiple choice (HellaSwag, CommonsenseQA, Cosmos QA, XCOPA): a context and question, N choices, one right."""

from __future__ import annotations

import json

from xstilts.kinds.classification import Classification


def encode(rows: list[dict], tok, max_length: int) -> dict[str, list]:
    """One (first, second) pair per choice: (context, question + choice) as jiant and HF's run_swag pair them,
    or (question, choice) without a context. Truncation then shortens the context, never the question."""
    firsts, seconds = [], []
    for r in rows:
        for choice in r["choices"]:
            if r["context"]:
                firsts.append(r["context"])
                seconds.append(f"{r['question']} {choice}".strip())
            else:
                firsts.append(r["question"])
                seconds.append(choice)
    enc = tok(firsts, seconds, truncation="longest_first", max_length=max_length)
    out: dict[str, list] = {"input_ids": [], "label": [], "example": []}
    i = 0
    for n, r in enumerate(rows):
        k = len(r["choices"])
        out["input_ids"].append(enc["input_ids"][i:i + k])
        out["label"].append(int(r["label"]))
        out["example"].append(n)
        i += k
    return out


class MultipleChoice(Classification):
    """Predictions and score as classification (the label is the right choice's index); features are one
    sequence per choice, scored by the multiple-choice head. Submission files are XTREME-R's `multi_choice`
    layout (XCOPA): `test-<lang>.jsonl`, one `{"label": <choice index>}` per example in test order, which its
    scorer reads with `read_xcopa` (google-research/xtreme evaluate.py, 838c13b:63-71; suffix 239-245)."""

    name = "multiple_choice"
    schema = {"id": "string", "lang": "string", "context": "string", "question": "string",
              "choices": "list<string>", "label": "int64"}
    head = "multiple_choice"
    submission_ext = "jsonl"

    def encode(self, rows, tok, hp, train, labels):
        return encode(rows, tok, hp["max_length"])

    def submission_texts(self, task, split, lang, rows, preds, labels):
        return ("".join(json.dumps({"label": int(p)}) + "\n" for p in preds),
                "".join(json.dumps({"label": int(r["label"])}) + "\n" for r in rows))

    def parse_submission(self, paths, texts):
        from xstilts.errors import DataError

        parsed = []
        for path, text in zip(paths, texts):
            labels = []
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    labels.append(int(json.loads(line)["label"]))
                except (ValueError, KeyError, TypeError) as e:
                    raise DataError(f"line {n}: expected a JSON object with an int 'label' ({e!r})",
                                    file=str(path)) from None
            parsed.append(labels)
        return parsed[0], parsed[1]


KIND = MultipleChoice()
