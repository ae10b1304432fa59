"""Multiple choice (HellaSwag, CommonsenseQA, Cosmos QA): a context and question, N choices, one right."""

from __future__ import annotations

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
    """Predictions, score and submission as classification (the label is the right choice's index); features
    are one sequence per choice, scored by the multiple-choice head."""

    name = "multiple_choice"
    schema = {"id": "string", "lang": "string", "context": "string", "question": "string",
              "choices": "list<string>", "label": "int64"}
    head = "multiple_choice"

    def encode(self, rows, tok, hp, train, labels):
        return encode(rows, tok, hp["max_length"])


KIND = MultipleChoice()
