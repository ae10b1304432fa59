"""Where xstilts' Trainer stands against the HF Trainer (best settings), the measurements behind the
"xstilts' Trainer against the HF Trainer" section of docs/benchmarks.md:

- interleaved repeats of one epoch (`--steps` optimizer steps, micro-batch 4 x accumulation 8, the bench's
  model and length distribution) of xstilts' Trainer (fused AdamW, as shipped), the same Trainer with the
  former unfused AdamW, the HF Trainer with group_by_length + DataCollatorWithPadding, and xstilts with one
  checkpoint in the run;
- a cProfile of one epoch of each engine (cumulative seconds of the bookkeeping functions);
- the price of one `Trainer.save_state()` against one optimizer step.

    python bench/vs_hf.py --repeats 5 --steps 20 --threads 1
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from xstilts import bench, recipes
from xstilts.accounting import CostMeter
from xstilts.models import count_parameters
from xstilts.train import Stream, Trainer

PROFILED = ("run_backward", "_wrapped_call_impl", "_fused_adamw", "clip_grad_norm_", "_pick_stream", "_next_batch",
            "collate", "add_tokens", "after_step", "try_resume", "__next__", "data_collator.py:__call__",
            "trainer.py:__init__", "gc.collect")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    cfg, steps, cpu = bench.SIZES["full"], args.steps, torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok, model = bench.build_model(cfg, tmp / "model")
        feats = bench.synthetic_pairs(steps * 8 * 4, tok, np.random.default_rng(1))  # one epoch
        stream = Stream("mnli", bench.HEAD, "classification", feats, 4)
        hp = recipes.resolve("finetune", {"batch_size": 4, "grad_accum": 8, "max_steps": steps,
                                          "save_every": 10**9, "bf16": False}, task="mnli")
        meter = CostMeter("finetune", cpu, count_parameters(model), training=True)
        wrapper, rows = bench.HFModel(model), bench.hf_rows(feats, tok.pad_token_id, "best")
        fused_adamw = torch.optim.AdamW

        class UnfusedAdamW(fused_adamw):  # the optimizer xstilts' Trainer built before
            def __init__(self, *a, fused=None, **kw):
                super().__init__(*a, **kw)

        def xstilts(seed: int, unfused: bool = False, save_every: int = 10**9) -> float:
            torch.optim.AdamW = UnfusedAdamW if unfused else fused_adamw
            try:
                trainer = Trainer(model, tok, [stream], {**hp, "save_every": save_every}, seed,
                                  tmp / f"x-{seed}-{unfused}-{save_every}", meter, "b", label="b", log=lambda m: None)
            finally:
                torch.optim.AdamW = fused_adamw
            before, start = meter.useful_tokens, time.perf_counter()
            trainer.fit()
            return (meter.useful_tokens - before) / (time.perf_counter() - start)

        def hf(seed: int) -> float:
            return bench.hf_fit(wrapper, tok, rows, "best", tmp / "hf", hp, cpu, batch_size=4, grad_accum=8,
                                steps=steps, seed=seed)

        xstilts(99), xstilts(99, unfused=True), hf(99)  # warm-up (and the meter's one-off FLOP count)
        runs: dict[str, list[float]] = {"xstilts": [], "xstilts_unfused": [], "hf_best": [], "xstilts_1_ckpt": []}
        for r in range(args.repeats):
            runs["xstilts"].append(xstilts(r))
            runs["hf_best"].append(hf(r))
            runs["xstilts_unfused"].append(xstilts(r, unfused=True))
            runs["xstilts_1_ckpt"].append(xstilts(r, save_every=max(1, steps // 2)))
            print(r, {k: round(v[-1]) for k, v in runs.items()}, flush=True)
        med = {k: statistics.median(v) for k, v in runs.items()}
        paired = lambda a, b: statistics.median(x / y for x, y in zip(runs[a], runs[b]))  # noqa: E731
        print("medians (useful tok/s)", {k: round(v, 1) for k, v in med.items()})
        for name in ("xstilts", "xstilts_unfused"):
            print(f"{name} / hf_best: {med[name] / med['hf_best']:.3f} (paired {paired(name, 'hf_best'):.3f})")
        print(f"xstilts_1_ckpt / xstilts: paired {paired('xstilts_1_ckpt', 'xstilts'):.3f}")

        for name, fn in (("xstilts", lambda: xstilts(7)), ("hf_best", lambda: hf(7))):
            profile = cProfile.Profile()
            start = time.perf_counter()
            profile.enable()
            fn()
            profile.disable()
            stats = pstats.Stats(profile).stats
            print(f"profile {name}: {time.perf_counter() - start:.2f} s")
            for key in PROFILED:
                cum = sum(v[3] for k, v in stats.items() if key in f"{k[0]}:{k[2]}")
                if cum:
                    print(f"   {key:30s} {cum:7.3f} s")

        trainer = Trainer(model, tok, [stream], hp, 0, tmp / "ckpt", meter, "b", label="b", log=lambda m: None)
        start = time.perf_counter()
        trainer.fit()
        step = (time.perf_counter() - start) / steps
        saves = []
        for _ in range(5):
            start = time.perf_counter()
            trainer.save_state()
            saves.append(time.perf_counter() - start)
        size = sum(f.stat().st_size for f in (tmp / "ckpt" / "ckpt").iterdir())
        print(f"save_state {statistics.median(saves):.3f} s ({size / 2**20:.1f} MiB), one optimizer step {step:.3f} s")


if __name__ == "__main__":
    main()
