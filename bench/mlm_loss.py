"""The masked-LM step with the vocabulary projection over every position (what `XLMRobertaForMaskedLM(...,
labels=)` computes) against the projection over the masked positions only (`models.masked_lm_loss`), side by
side on the demo's pretrained model and corpus.

Run after `make demo` (it reads resources/models/tiny and the prepared corpus, writes nothing):

    .venv/bin/python bench/mlm_loss.py [--model resources/models/tiny] [--repeats 7] [--steps 50]

Each repeat times `--steps` optimizer steps (forward, backward, AdamW) of each loss on the same masked batches
of the demo's batch size, in alternating order after one untimed warm-up of each; prints JSON with the medians
(seconds per step) and the ratio full / masked (above 1: masked-only is faster)."""

from __future__ import annotations

import argparse
import json
import statistics
import time

import pyarrow.parquet as pq
import torch

from xstilts import features as F
from xstilts.models import masked_lm_loss
from xstilts.train import mask_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resources/models/tiny")
    parser.add_argument("--corpus", default="resources/data/prepared/demo-local-v1/corpus/train.parquet")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from transformers import AutoTokenizer, XLMRobertaForMaskedLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = XLMRobertaForMaskedLM.from_pretrained(args.model)
    texts = pq.read_table(args.corpus).column("text").to_pylist()[:args.steps * args.batch_size]
    feats = {"input_ids": tok(texts, truncation=True, max_length=64)["input_ids"]}
    batches = []
    for start in range(0, len(texts), args.batch_size):
        batch = F.collate(feats, list(range(start, start + args.batch_size)), tok.pad_token_id)
        inputs, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], tok, 0.15)
        batches.append((inputs, batch["attention_mask"], labels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    losses = {"full_logits": lambda i, m, y: model(input_ids=i, attention_mask=m, labels=y).loss,
              "masked_only": lambda i, m, y: masked_lm_loss(model, i, m, y)}

    def run(name: str) -> float:
        start = time.perf_counter()
        for inputs, mask, labels in batches:
            optimizer.zero_grad(set_to_none=True)
            losses[name](inputs, mask, labels).backward()
            optimizer.step()
        return (time.perf_counter() - start) / len(batches)

    model.train()
    for name in losses:
        run(name)  # warm-up
    times = {name: [] for name in losses}
    for r in range(args.repeats):
        for name in (list(losses) if r % 2 == 0 else list(reversed(losses))):
            times[name].append(run(name))
    med = {name: statistics.median(t) for name, t in times.items()}
    print(json.dumps({"model": args.model, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                      "steps_per_repeat": len(batches), "repeats": args.repeats,
                      "median_s_per_step": med, "ratio_full_over_masked": med["full_logits"] / med["masked_only"]},
                     indent=1))


if __name__ == "__main__":
    main()
