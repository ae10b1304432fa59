"""`xstilts bench`: the engine's speed against the reference recipes and this machine's limit, in one process.

Every comparison runs on the same model, data and machine, and reports the median of several repeats:
- training: the real `Trainer` loop (length-grouped batches, dynamic padding) vs the Hugging Face `Trainer`
  (as run_xnli.py sets it up, and with its best settings: `peers.hf_trainer_*`) vs the reference recipe
  (every example padded to 128, unsorted batches) vs a bare forward/backward/optimizer loop over the
  Trainer's own batches pre-built as tensors (the ceiling), all in USEFUL (non-pad) tokens per second;
- inference: `evaluate.run_head` (length-sorted, dynamically padded) vs unsorted pad-to-128 vs
  `Trainer.predict` (`peers.hf_predict_*`), same predictions; retrieval embeddings: `phases.embed` vs a plain
  batched forward (`peers.hf_forward_embed_*`), same vectors;
- BUCC mining: faiss vs the numpy brute-force backend of `xstilts.retrieval` on planted parallel pairs;
- the workflow: job count and time of `snakemake -n --configfile config/xtreme.yaml`;
- on a GPU: the XLM-R Large architecture in bf16, full fine-tuning and LoRA, and the HF Trainer on the same
  model (tokens/s, MFU, peak memory); `bench/gpu.sh` runs that section alone.
Sequence lengths follow a log-normal shaped like MNLI premise+hypothesis lengths (`LENGTHS`); token ids are
random, which does not change the cost of a dense model. See docs/benchmarks.md for results and method.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xstilts import features as F
from xstilts.errors import UserError

# Length of premise + hypothesis in XLM-R tokens incl. the 4 special tokens: log-normal with median 38 and
# sigma 0.5 (mean ~43, ~0.7% beyond 128), clipped to [8, 128]. The parameters are chosen to match MNLI's
# shape (median ~38, long tail past 128); no MNLI copy is available offline to fit them here.
LENGTHS = {"distribution": "lognormal", "median": 38, "sigma": 0.5, "min": 8, "max": 128}
PAD_TO = 128  # the reference recipe's max_length: every example padded to it
HEAD = "xnli"
N_LABELS = 3
XLMR_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
              "vocab_size": 250_002}
# Dense (no sparsity) bf16 tensor-core peak in TFLOP/s from the vendors' datasheets, for MFU; the first name
# contained in torch's device name wins, so the PCIe parts come before their SXM namesakes.
BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H200", 989.4), ("H100", 989.4), ("A100", 312.0), ("L40S", 362.1),
                    ("L4", 121.0), ("A10", 125.0))

SIZES: dict[str, dict] = {
    "smoke": {
        "model": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
        "vocab_size": 300, "batch_size": 4, "grad_accum": 2, "steps": 1, "baseline_steps": 1,
        "eval_examples": 96, "eval_batch_size": 32, "repeats": 2, "eval_repeats": 2,
        "bucc": {"n": 1000, "dim": 768, "sample": 256, "check_n": 1000, "k": 4, "repeats": 2},
        "dag_repeats": 1,
        # exercises the large-model code path on any device, at a toy size
        "large": {"arch": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                           "intermediate_size": 64, "vocab_size": 1000},
                  "batch_size": 4, "warmup_steps": 1, "steps": 2, "require_cuda": False},
    },
    "full": {
        # A small XLM-R-architecture encoder: big enough that matmuls dominate the step on 2 CPU cores.
        "model": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
        # The XNLI recipe's micro-batch 4 x accumulation 8 (xtreme.md section 1). 20 optimizer steps per run of
        # xstilts, the HF Trainer (best settings) and the limit, so each engine's per-run set-up weighs what it
        # weighs in a short job; the pad-to-128 runs (baseline, HF run_xnli set-up) are 3x slower per useful
        # token and have no or amortised set-up, so 4 steps measure them.
        "vocab_size": 8000, "batch_size": 4, "grad_accum": 8, "steps": 20, "baseline_steps": 4,
        "eval_examples": 512, "eval_batch_size": 32, "repeats": 7, "eval_repeats": 3,
        "bucc": {"n": 100_000, "dim": 768, "sample": 4096, "check_n": 10_000, "k": 4, "repeats": 3},
        "dag_repeats": 3,
        # XLM-R Large's architecture (random init from its config; no weights needed), bf16, GPU only
        "large": {"arch": XLMR_LARGE, "batch_size": 32, "warmup_steps": 5, "steps": 30,
                  "require_cuda": True},
    },
}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


# ------------------------------------------------------------------------------------------------ data
def sample_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    """Token lengths drawn from `LENGTHS`."""
    raw = rng.lognormal(np.log(LENGTHS["median"]), LENGTHS["sigma"], n)
    return np.clip(np.rint(raw), LENGTHS["min"], LENGTHS["max"]).astype(int)


def synthetic_pairs(n: int, tok, rng: np.random.Generator) -> dict[str, list]:
    """Features in the classification kind's layout (`kinds.classification.encode`): `<s> ... </s>` with random ids, random labels."""
    low = max(tok.all_special_ids) + 1
    ids = [[tok.bos_token_id, *rng.integers(low, len(tok), length - 2).tolist(), tok.eos_token_id]
           for length in sample_lengths(n, rng)]
    return {"input_ids": ids, "label": rng.integers(0, N_LABELS, n).tolist(), "example": list(range(n))}


def build_model(cfg: dict, workdir: Path):
    """Tokenizer + task model through the engine's own code paths (pretrain -> save_pretrained -> TaskModel)."""
    from xstilts.models import build_task_model, load_tokenizer
    from xstilts.pretrain import build_mlm, train_tokenizer

    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = np.array(["".join(rng.choice(letters, rng.integers(2, 9))) for _ in range(2 * cfg["vocab_size"])])
    texts = [" ".join(row) for row in words[rng.integers(0, len(words), (2 * cfg["vocab_size"], 12))]]
    tok = train_tokenizer(texts, cfg["vocab_size"])
    torch.manual_seed(0)
    build_mlm(tok, cfg["model"]).save_pretrained(workdir)
    tok.save_pretrained(workdir)
    spec = {HEAD: {"kind": "classification", "n_labels": N_LABELS, "labels": ["entailment", "neutral",
                                                                             "contradiction"]}}
    return load_tokenizer(workdir), build_task_model(workdir, spec)


def pad_to(batch: dict[str, torch.Tensor], width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """The batch right-padded to `width` tokens (the reference recipe's pad-to-max_length)."""
    extra = width - batch["input_ids"].shape[1]
    out = dict(batch)
    out["input_ids"] = torch.nn.functional.pad(batch["input_ids"], (0, extra), value=pad_id)
    out["attention_mask"] = torch.nn.functional.pad(batch["attention_mask"], (0, extra), value=0)
    return out


# ------------------------------------------------------------------------------------------------ HF peers
# The Hugging Face `Trainer` set up two ways, on the bench's own model, data and optimizer settings.
HF_SETTINGS = {
    "default": "run_xnli.py's set-up: every example padded to max_length 128 (default_data_collator), "
               "random sampling",
    "best": "train_sampling_strategy='group_by_length' (LengthGroupedSampler; in transformers 5 it orders "
            "predict() batches too) + DataCollatorWithPadding (dynamic padding)",
}


class HFModel(torch.nn.Module):
    """The bench's `TaskModel` behind the interface `transformers.Trainer` expects (keyword tensors in, a dict
    out), so both engines run the very same weights. It counts the useful and executed tokens it trains on, as
    the engine's meter does, and hands `example` back so predictions can be put back in input order."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.useful = self.executed = 0

    def forward(self, input_ids, attention_mask, labels=None, example=None):
        if self.training:
            self.useful += int(attention_mask.sum())
            self.executed += attention_mask.numel()
        out = {"logits": self.model(HEAD, input_ids, attention_mask)}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(out["logits"], labels)
        if example is not None:
            out["example"] = example
        return out


def hf_rows(feats: dict[str, list], pad_id: int, setting: str, labels: bool = True) -> list[dict]:
    """The features as rows of an HF dataset: padded to 128 with their attention mask (`default`) or bare ids
    for `DataCollatorWithPadding` (`best`); with `labels`, or with the example index (for predict)."""
    rows = []
    for i, ids in enumerate(feats["input_ids"]):
        extra = PAD_TO - len(ids)
        row = {"input_ids": ids} if setting == "best" else {"input_ids": ids + [pad_id] * extra,
                                                           "attention_mask": [1] * len(ids) + [0] * extra}
        row.update({"labels": feats["label"][i]} if labels else {"example": i})
        rows.append(row)
    return rows


def hf_trainer(wrapper: HFModel, tok, setting: str, workdir: Path, hp: dict, device: torch.device, *,
               batch_size: int, grad_accum: int = 1, steps: int = 1, seed: int = 0, eval_batch_size: int = 32,
               train_rows: list[dict] | None = None):
    """`transformers.Trainer` with the engine's recipe (`hp`: lr, weight decay, clip, warmup ratio, bf16 on
    CUDA) and `setting`'s sampling and padding; no logging, saving or evaluation during training."""
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator

    args = TrainingArguments(
        output_dir=str(workdir), per_device_train_batch_size=batch_size, per_device_eval_batch_size=eval_batch_size,
        gradient_accumulation_steps=grad_accum, learning_rate=hp["lr"], weight_decay=hp["weight_decay"],
        max_grad_norm=hp["max_grad_norm"], max_steps=steps, warmup_steps=int(hp["warmup_ratio"] * steps),
        lr_scheduler_type="linear", seed=seed, use_cpu=device.type == "cpu",
        bf16=device.type == "cuda" and hp.get("bf16", "auto") in (True, "auto"),
        train_sampling_strategy="group_by_length" if setting == "best" else "random",
        save_strategy="no", eval_strategy="no", logging_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, remove_unused_columns=False)
    from transformers.trainer_callback import PrinterCallback

    collator = DataCollatorWithPadding(tok) if setting == "best" else default_data_collator
    trainer = Trainer(model=wrapper, args=args, train_dataset=train_rows, data_collator=collator,
                      processing_class=tok)
    trainer.remove_callback(PrinterCallback)  # it prints train()'s metrics on stdout, which carries the JSON
    return trainer


def hf_fit(wrapper: HFModel, tok, rows: list[dict], setting: str, workdir: Path, hp: dict, device, **kw) -> float:
    """Useful tokens/s of one `Trainer(...).train()` (construction included, as for the engine's `Trainer`)."""
    before = wrapper.useful
    start = time.perf_counter()
    hf_trainer(wrapper, tok, setting, workdir, hp, device, train_rows=rows, **kw).train()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (wrapper.useful - before) / (time.perf_counter() - start)


def hf_predict(wrapper: HFModel, tok, rows: list[dict], setting: str, workdir: Path, hp: dict, device,
               batch_size: int) -> tuple[torch.Tensor, float, bool]:
    """`Trainer.predict` logits put back in input order, its seconds, and whether it returned them shuffled."""
    trainer = hf_trainer(wrapper, tok, setting, workdir, hp, device, batch_size=batch_size,
                         eval_batch_size=batch_size)
    start = time.perf_counter()
    logits, example = trainer.predict(rows).predictions
    seconds = time.perf_counter() - start
    example = np.asarray(example)
    return torch.from_numpy(logits[np.argsort(example)]).float(), seconds, bool((np.diff(example) < 0).any())


def _peer(xstilts: float, peer: float, **extra) -> dict:
    """A peer row: its useful tokens/s and `ratio` = xstilts / peer (> 1: xstilts is faster)."""
    return {"useful_tokens_per_s": round(peer, 1), "ratio": round(xstilts / peer, 3), **extra}


# ------------------------------------------------------------------------------------------------ training
def _bare_loop(model, stream, batches: list[dict], optimizer, grad_accum: int, max_grad_norm: float,
               tok) -> float:
    """Useful tokens/s of forward/backward per micro-batch and one clipped AdamW step per `grad_accum`."""
    from xstilts.train import compute_loss

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    useful = sum(int(b["attention_mask"].sum()) for b in batches)
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        loss = compute_loss(model, stream, batch, 0.0, tok)
        (loss / grad_accum).backward()
        if (i + 1) % grad_accum == 0:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return useful / (time.perf_counter() - start)


def bench_train(model, tok, cfg: dict, repeats: int, workdir: Path) -> dict:
    """xstilts' Trainer vs the HF Trainer (run_xnli's set-up, and its best settings) vs pad-to-128 unsorted
    batches vs the bare loop over the Trainer's exact batches.

    Repeat r runs `steps` optimizer steps of each method back to back (Trainer seed r, so every repeat sees
    other batches): short interleaved blocks, so load from other processes hits every method alike."""
    from xstilts import recipes
    from xstilts.accounting import CostMeter
    from xstilts.models import count_parameters
    from xstilts.train import Stream, Trainer

    rng = np.random.default_rng(1)
    # Exactly one epoch per run: every engine trains on the very same examples (a run over part of an epoch
    # would favour the HF sampler, whose epoch starts with its longest batches, which run faster per token).
    feats = synthetic_pairs(cfg["steps"] * cfg["grad_accum"] * cfg["batch_size"], tok, rng)
    stream = Stream("mnli", HEAD, "classification", feats, cfg["batch_size"])
    bs, accum, n_micro = cfg["batch_size"], cfg["grad_accum"], cfg["steps"] * cfg["grad_accum"]
    hp = recipes.resolve("finetune", {"batch_size": bs, "grad_accum": accum, "max_steps": cfg["steps"],
                                      "save_every": 10**9, "bf16": False}, task="mnli")
    # One meter for every run: its one-off FLOP-counter step (amortised over a whole job) happens in warmup.
    meter = CostMeter("finetune", torch.device("cpu"), count_parameters(model), training=True)
    cpu = torch.device("cpu")
    wrapper = HFModel(model)
    rows = {setting: hf_rows(feats, tok.pad_token_id, setting) for setting in HF_SETTINGS}

    def trainer(name: str, seed: int) -> Trainer:
        return Trainer(model, tok, [stream], hp, seed, workdir / name, meter, "bench", label="bench",
                       log=lambda m: None)

    def hf(setting: str, seed: int, steps: int) -> float:
        return hf_fit(wrapper, tok, rows[setting], setting, workdir / f"hf-{setting}", hp, cpu, batch_size=bs,
                      grad_accum=accum, steps=steps, seed=seed)

    trainer("warmup", repeats).fit()
    for setting in HF_SETTINGS:
        hf(setting, repeats, 1)
    names = ("xstilts", "hf_trainer_best", "hf_trainer_default", "pad128_baseline", "raw_step_limit")
    runs: dict[str, list[float]] = {k: [] for k in names}
    executed = {k: [0, 0] for k in names[:4]}  # useful, executed tokens
    for r in range(repeats):
        # The Trainer's own batches for the same steps, pre-built (the bare loop's input), and as many
        # unsorted random batches padded to 128.
        probe = trainer(f"probe{r}", r)
        exact = [probe._next_batch(stream) for _ in range(n_micro)]
        order = rng.permutation(len(stream))
        padded = [pad_to(F.collate(feats, order[i * bs:(i + 1) * bs], tok.pad_token_id), PAD_TO, tok.pad_token_id)
                  for i in range(cfg["baseline_steps"] * accum)]
        for name, batches in (("xstilts", exact), ("pad128_baseline", padded)):
            executed[name][0] += sum(int(b["attention_mask"].sum()) for b in batches)
            executed[name][1] += sum(b["attention_mask"].numel() for b in batches)
        before = meter.useful_tokens
        start = time.perf_counter()
        trainer(f"run{r}", r).fit()
        runs["xstilts"].append((meter.useful_tokens - before) / (time.perf_counter() - start))
        for setting, steps in (("best", cfg["steps"]), ("default", cfg["baseline_steps"])):
            useful, done = wrapper.useful, wrapper.executed
            runs[f"hf_trainer_{setting}"].append(hf(setting, r, steps))
            executed[f"hf_trainer_{setting}"][0] += wrapper.useful - useful
            executed[f"hf_trainer_{setting}"][1] += wrapper.executed - done
        runs["raw_step_limit"].append(_bare_loop(model, stream, exact, probe.optimizer, accum,
                                                 probe.hp["max_grad_norm"], tok))
        runs["pad128_baseline"].append(_bare_loop(model, stream, padded, probe.optimizer, accum,
                                                  probe.hp["max_grad_norm"], tok))
        log(f"train repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.0f} tok/s" for k, v in runs.items()))
    med = {k: _median(v) for k, v in runs.items()}
    paired = lambda a, b: round(_median([x / y for x, y in zip(runs[a], runs[b])]), 3)  # noqa: E731
    efficiency = {k: round(u / e, 4) for k, (u, e) in executed.items()}
    return {
        "train_tokens_per_s": {k: round(med[k], 1) for k in ("xstilts", "pad128_baseline", "raw_step_limit")},
        "train_speedup_vs_pad128": round(med["xstilts"] / med["pad128_baseline"], 3),
        "train_fraction_of_limit": round(med["xstilts"] / med["raw_step_limit"], 3),
        "peers": {f"hf_trainer_{setting}": _peer(
            med["xstilts"], med[f"hf_trainer_{setting}"], setting=HF_SETTINGS[setting],
            paired_median_ratio=paired("xstilts", f"hf_trainer_{setting}"),
            padding_efficiency=efficiency[f"hf_trainer_{setting}"]) for setting in ("default", "best")},
        "train_runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        "train_setup": {
            "optimizer_steps_per_repeat": cfg["steps"], "pad128_optimizer_steps_per_repeat": cfg["baseline_steps"],
            "repeats": repeats, "micro_batch": bs,
            "grad_accum": accum, "examples": len(stream),
            "xstilts_padding_efficiency": efficiency["xstilts"],
            "pad128_padding_efficiency": efficiency["pad128_baseline"],
            "paired_median_speedup_vs_pad128": paired("xstilts", "pad128_baseline"),
            "paired_median_fraction_of_limit": paired("xstilts", "raw_step_limit"),
            "note": "all: same model, micro-batch, grad accumulation, clip-1.0 AdamW step, lr schedule; the "
                    "pad128 baseline and the limit run a bare loop (no Trainer bookkeeping); the HF Trainer "
                    "runs the same TaskModel through HFModel, its time includes Trainer construction like "
                    "xstilts'"},
    }


# ------------------------------------------------------------------------------------------------ large model
def peak_bf16_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in FLOP/s, or None (CPU, or a GPU missing from `BF16_PEAK_TFLOPS`)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in BF16_PEAK_TFLOPS if key in name), None)


def bench_large(cfg: dict, tok, workdir: Path, device: torch.device) -> dict:
    """Training throughput of a big architecture (XLM-R Large at full size) through the real `Trainer`, bf16
    autocast on CUDA: useful tokens/s, model FLOPs utilisation (useful FLOPs/s over the device's bf16 peak, by
    the cost records' convention) and peak memory, for full fine-tuning and for LoRA."""
    from transformers import XLMRobertaModel

    from xstilts import recipes
    from xstilts.accounting import CostMeter, device_info
    from xstilts.kinds.heads import get as head_kind
    from xstilts.models import TaskModel, apply_lora, count_parameters
    from xstilts.pretrain import xlmr_config
    from xstilts.train import Stream, Trainer

    arch, bs = cfg["arch"], cfg["batch_size"]
    # one epoch per timed run, as in `bench_train`: xstilts and the HF peers time the very same examples
    feats = synthetic_pairs(cfg["steps"] * bs, tok, np.random.default_rng(6))
    stream = Stream("mnli", HEAD, "classification", feats, bs)
    peak = peak_bf16_flops(device)
    out: dict = {"architecture": "xlm-roberta", **arch, **device_info(device), "micro_batch": bs,
                 "timed_steps": cfg["steps"], "peak_bf16_tflops": peak and peak / 1e12}
    for mode in ("full", "lora"):
        torch.manual_seed(0)
        config = xlmr_config(tok, arch, vocab_size=arch["vocab_size"])
        spec = {HEAD: {"kind": "classification", "n_labels": N_LABELS}}
        model = TaskModel(XLMRobertaModel(config, add_pooling_layer=False),
                          {HEAD: head_kind("classification").build(arch["hidden_size"], N_LABELS)}, spec).to(device)
        hp = recipes.resolve("finetune", {"batch_size": bs, "grad_accum": 1, "save_every": 10**9, "bf16": "auto"},
                             task="mnli")
        if mode == "lora":
            apply_lora(model, hp["lora_r"], hp["lora_alpha"], hp["lora_dropout"])
        params = count_parameters(model)
        meter = CostMeter("finetune", device, params, training=True)  # its one-off FLOP count lands in warmup

        def fit(name: str, steps: int) -> None:
            Trainer(model, tok, [stream], {**hp, "max_steps": steps}, 0, workdir / f"large-{mode}-{name}", meter,
                    "bench", label="bench", log=lambda m: None).fit()

        fit("warmup", cfg["warmup_steps"])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        before, start = meter.useful_tokens, time.perf_counter()
        fit("timed", cfg["steps"])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tok_s = (meter.useful_tokens - before) / (time.perf_counter() - start)
        record = meter.record()
        out[mode] = {
            "useful_tokens_per_s": round(tok_s, 1), "flops_per_token": meter.flops_per_token,
            "flops_convention": meter.convention,
            "mfu": round(tok_s * meter.flops_per_token / peak, 4) if peak else None,
            "peak_memory_gib": round(record["peak_memory_bytes"] / 2**30, 2),
            "peak_memory_kind": record["peak_memory_kind"],
            "trainable_params": params["trainable"], "total_params": params["total"],
        }
        if mode == "full":
            # The HF Trainer on the same weights, recipe and bf16 autocast: warm-up run, then the timed run.
            wrapper, out["peers"] = HFModel(model), {}
            for setting in HF_SETTINGS:
                rows = hf_rows(feats, tok.pad_token_id, setting)
                kw = {"batch_size": bs, "hp": hp, "device": device, "setting": setting, "rows": rows, "tok": tok,
                      "workdir": workdir / f"large-hf-{setting}"}
                hf_fit(wrapper, steps=cfg["warmup_steps"], **kw)
                peer = hf_fit(wrapper, steps=cfg["steps"], **kw)
                out["peers"][f"hf_trainer_{setting}"] = _peer(
                    tok_s, peer, setting=HF_SETTINGS[setting],
                    mfu=round(peer * meter.flops_per_token / peak, 4) if peak else None)
        log(f"large {mode}: {out[mode]}")
        del model, meter
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


# ------------------------------------------------------------------------------------------------ inference
@torch.no_grad()
def _pad128_logits(model, feats: dict[str, list], batch_size: int, pad_id: int) -> torch.Tensor:
    """The reference inference: batches in input order, each padded to 128 tokens."""
    model.eval()
    out = []
    for s in range(0, len(feats["input_ids"]), batch_size):
        batch = pad_to(F.collate(feats, range(s, min(s + batch_size, len(feats["input_ids"]))), pad_id),
                       PAD_TO, pad_id)
        out.append(model(HEAD, batch["input_ids"], batch["attention_mask"]).float())
    return torch.cat(out)


def bench_eval(model, tok, cfg: dict, repeats: int, workdir: Path) -> dict:
    """`evaluate.run_head` (sorted, dynamic padding) vs unsorted pad-to-128 inference vs `Trainer.predict`
    (run_xnli's set-up, and its best settings); the same argmax required of every one."""
    from xstilts.evaluate import run_head

    feats = synthetic_pairs(cfg["eval_examples"], tok, np.random.default_rng(2))
    bs, pad_id, device = cfg["eval_batch_size"], tok.pad_token_id, torch.device("cpu")
    hp = {"lr": 1e-5, "weight_decay": 0.0, "max_grad_norm": 1.0, "warmup_ratio": 0.0, "bf16": False}
    wrapper = HFModel(model)
    rows = {setting: hf_rows(feats, pad_id, setting, labels=False) for setting in HF_SETTINGS}
    times: dict[str, list[float]] = {"sorted": [], "pad128": [], "hf_predict_default": [], "hf_predict_best": []}
    logits: dict[str, torch.Tensor] = {}
    shuffled = {}
    for _ in range(repeats):
        start = time.perf_counter()
        logits["sorted"] = torch.stack(run_head(model, HEAD, feats, bs, pad_id, device, bf16=False))
        times["sorted"].append(time.perf_counter() - start)
        start = time.perf_counter()
        logits["pad128"] = _pad128_logits(model, feats, bs, pad_id)
        times["pad128"].append(time.perf_counter() - start)
        for setting in HF_SETTINGS:
            logits[f"hf_predict_{setting}"], seconds, shuffled[setting] = hf_predict(
                wrapper, tok, rows[setting], setting, workdir / f"hf-predict-{setting}", hp, device, bs)
            times[f"hf_predict_{setting}"].append(seconds)
    mismatches = {k: int((logits["sorted"].argmax(-1) != v.argmax(-1)).sum()) for k, v in logits.items()}
    diff = {k: float((logits["sorted"] - v).abs().max()) for k, v in logits.items()}
    med = {k: _median(v) for k, v in times.items()}
    useful = sum(len(ids) for ids in feats["input_ids"])
    return {
        "eval_speedup_sorted": round(med["pad128"] / med["sorted"], 3),
        "eval": {"examples": len(feats["input_ids"]), "batch_size": bs, "sorted_s": round(med["sorted"], 3),
                 "pad128_s": round(med["pad128"], 3), "same_predictions": mismatches["pad128"] == 0,
                 "mismatches": mismatches["pad128"], "max_abs_logit_diff": diff["pad128"],
                 "useful_tokens_per_s": round(useful / med["sorted"], 1)},
        "peers": {f"hf_predict_{setting}": _peer(
            useful / med["sorted"], useful / med[f"hf_predict_{setting}"], seconds=round(med[f"hf_predict_{setting}"], 3),
            setting=HF_SETTINGS[setting], same_predictions=mismatches[f"hf_predict_{setting}"] == 0,
            mismatches=mismatches[f"hf_predict_{setting}"], max_abs_logit_diff=diff[f"hf_predict_{setting}"],
            returned_shuffled=shuffled[setting]) for setting in HF_SETTINGS},
    }


def bench_embed(model, tok, cfg: dict, repeats: int) -> dict:
    """Retrieval embeddings: `phases.embed` (length-sorted, dynamic padding) vs the plain batched forward of the
    HF examples (the tokenizer pads each input-order batch: to 128 by default, to its longest with
    padding=True), mean over non-pad tokens of the same hidden layer; the same vectors required."""
    from xstilts.models import default_retrieval_layer, num_layers
    from xstilts.phases import embed

    encoder, bs = model.encoder, cfg["eval_batch_size"]
    feats = synthetic_pairs(cfg["eval_examples"], tok, np.random.default_rng(3))
    texts = [tok.decode(ids, skip_special_tokens=True) for ids in feats["input_ids"]]
    layer = default_retrieval_layer(num_layers(encoder))
    hp = {"max_length": PAD_TO, "eval_batch_size": bs, "bf16": False}
    padding = {"default": "max_length", "best": True}

    @torch.no_grad()
    def plain(setting: str) -> np.ndarray:
        encoder.eval()
        out = []
        for s in range(0, len(texts), bs):
            enc = tok(texts[s:s + bs], padding=padding[setting], truncation=True, max_length=PAD_TO,
                      return_tensors="pt")
            states = encoder(**enc, output_hidden_states=True).hidden_states[layer]
            m = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            out.append(((states * m).sum(1) / m.sum(1)).numpy())
        return np.concatenate(out)

    times: dict[str, list[float]] = {"embed": [], "default": [], "best": []}
    vectors = {}
    for _ in range(repeats):
        for name in times:
            start = time.perf_counter()
            vectors[name] = embed(encoder, tok, texts, layer, hp, torch.device("cpu")) if name == "embed" \
                else plain(name)
            times[name].append(time.perf_counter() - start)
    useful = sum(len(ids) for ids in tok(texts, truncation=True, max_length=PAD_TO)["input_ids"])
    med = {k: _median(v) for k, v in times.items()}
    return {
        "embed": {"texts": len(texts), "batch_size": bs, "layer": layer, "seconds": round(med["embed"], 3),
                  "useful_tokens_per_s": round(useful / med["embed"], 1)},
        "peers": {f"hf_forward_embed_{setting}": _peer(
            useful / med["embed"], useful / med[setting], seconds=round(med[setting], 3),
            setting=f"input-order batches, tokenizer padding={padding[setting]!r}",
            max_abs_diff=float(np.abs(vectors[setting] - vectors["embed"]).max()),
            same_vectors=bool(np.allclose(vectors[setting], vectors["embed"], atol=1e-4))) for setting in padding},
    }


# ------------------------------------------------------------------------------------------------ BUCC
def _rss_mb(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so VmHWM measures one section alone."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def planted_pools(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Two pools of `n` random embeddings; n/10 English rows are noisy copies of source rows (cosine ~0.9),
    the rest are distractors (cosine ~0 +- 1/sqrt(dim))."""
    rng = np.random.default_rng(seed)
    src = rng.standard_normal((n, dim), dtype=np.float32)
    en = rng.standard_normal((n, dim), dtype=np.float32)
    n_gold = max(1, n // 10)
    s_idx, e_idx = rng.permutation(n)[:n_gold], rng.permutation(n)[:n_gold]
    en[e_idx] = src[s_idx] + 0.5 * rng.standard_normal((n_gold, dim), dtype=np.float32)
    return src, en, list(zip(s_idx.tolist(), e_idx.tolist()))


def _time_knn(x: np.ndarray, y: np.ndarray, rows: np.ndarray, k: int, backend: str) -> float:
    """Seconds of exact k-NN of `x[rows]` in `y` and of `y[rows]` in `x` (both BUCC directions)."""
    from xstilts.retrieval import knn

    start = time.perf_counter()
    knn(x[rows], y, k, backend=backend)
    knn(y[rows], x, k, backend=backend)
    return time.perf_counter() - start


def bench_bucc(cfg: dict) -> dict:
    """faiss vs numpy brute force. Equality of mined pairs: full `bucc_candidates` + threshold + `bucc_mine` at
    `check_n`. Timing at `n`: both k-NN directions for `sample` queries against the whole other pool, scaled
    to all n queries (the search is chunked, so its cost is linear in queries) plus the per-call fixed cost."""
    from xstilts.retrieval import DEFAULT_CHUNK_SIZE, bucc_best_threshold, bucc_candidates, bucc_mine, l2_normalize

    k, dim, repeats = cfg["k"], cfg["dim"], cfg["repeats"]
    src, en, gold = planted_pools(cfg["check_n"], dim, seed=3)
    ids = list(range(cfg["check_n"]))
    check: dict[str, float] = {}
    candidates = {}
    for backend in ("faiss", "numpy"):
        start = time.perf_counter()
        candidates[backend] = bucc_candidates(src, ids, en, ids, k=k, backend=backend)
        check[f"{backend}_s"] = round(time.perf_counter() - start, 3)
    threshold, f1 = bucc_best_threshold(candidates["faiss"], gold)
    mined = {b: bucc_mine(c, threshold) for b, c in candidates.items()}
    log(f"bucc check n={cfg['check_n']}: {check}, F1 {f1:.1f}")
    del src, en, candidates

    n = cfg["n"]
    _reset_peak_rss()
    rss_before = _rss_mb("VmRSS")
    src, en, _ = planted_pools(n, dim, seed=4)
    x, y = l2_normalize(src), l2_normalize(en)  # the copies bucc_candidates makes
    rows = np.random.default_rng(5).permutation(n)[:min(cfg["sample"], n)]
    times: dict[str, list[float]] = {"faiss": [], "numpy": []}
    for r in range(repeats):
        for backend in times:
            fixed = _time_knn(x, y, rows[:1], k, backend)
            sampled = _time_knn(x, y, rows, k, backend)
            times[backend].append(fixed + (sampled - fixed) * n / len(rows))
        log(f"bucc repeat {r + 1}/{repeats} (n={n}, extrapolated): "
            + ", ".join(f"{b} {v[-1]:.1f} s" for b, v in times.items()))
    peak = _rss_mb("VmHWM")
    med = {b: _median(v) for b, v in times.items()}
    embeddings_mb = 4 * n * dim * 4 / 2**20  # two pools + their normalised copies
    faiss_index_mb = n * dim * 4 / 2**20  # IndexFlatIP stores its own copy of the base
    chunk_mb = DEFAULT_CHUNK_SIZE["numpy"] * n * 12 / 2**20  # numpy: float32 similarities + int64 argpartition
    return {
        "n": n, "dim": dim, "k": k, "gold_pairs": n // 10, "chunk_size": DEFAULT_CHUNK_SIZE,  # per backend
        "faiss_s": round(med["faiss"], 2), "bruteforce_s": round(med["numpy"], 2),
        "speedup": round(med["numpy"] / med["faiss"], 3),
        "timing": f"both directions, {len(rows)} queries each against the full other pool, scaled to {n}",
        "same_pairs": mined["faiss"] == mined["numpy"],
        "same_pairs_check": {"n": cfg["check_n"], "mined_pairs": len(mined["faiss"]), "f1": round(f1, 2),
                             "threshold": round(threshold, 4), "end_to_end": check},
        "peak_rss_mb": round(peak, 1), "rss_before_mb": round(rss_before, 1),
        "memory_model_mb": {"embeddings": round(embeddings_mb, 1), "faiss_index": round(faiss_index_mb, 1),
                            "search_chunk": round(chunk_mb, 1)},
    }


# ------------------------------------------------------------------------------------------------ workflow
def bench_dag(repeats: int) -> dict:
    """Job count and wall time of the paper-scale workflow's dry run."""
    root = Path(__file__).resolve().parents[1]
    exe = Path(sys.executable).with_name("snakemake")
    exe = str(exe) if exe.exists() else shutil.which("snakemake")
    if exe is None or not (root / "Snakefile").exists() or not (root / "config" / "xtreme.yaml").exists():
        raise UserError(f"bench dag: needs snakemake next to {sys.executable} or on PATH, and {root}/Snakefile "
                        f"+ {root}/config/xtreme.yaml (a source checkout)")
    cmd = [exe, "-n", "--configfile", "config/xtreme.yaml"]
    times, jobs = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        found = re.search(r"^total\s+(\d+)\s*$", proc.stdout, re.MULTILINE)
        if proc.returncode != 0 or found is None:
            raise UserError(f"bench dag: `{' '.join(cmd)}` in {root} exited {proc.returncode} without a job "
                            f"count; stderr tail: {proc.stderr[-800:]}")
        jobs = int(found.group(1))
    return {"jobs": jobs, "dry_run_s": round(_median(times), 3), "command": "snakemake -n --configfile "
            "config/xtreme.yaml"}


# ------------------------------------------------------------------------------------------------ entry
def machine() -> dict:
    import faiss

    from xstilts.accounting import cpu_model, device_info

    return {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()], "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "numpy": np.__version__, "faiss": faiss.__version__,
            **device_info(torch.device("cpu"))}


PARTS = ("train", "eval", "embed", "large", "bucc", "dag")


def run(size: str, parts: tuple[str, ...] = PARTS) -> dict:
    """The comparisons in `parts` at `size` ("smoke" or "full"); returns the JSON-ready result. The peer rows
    of every part are merged into one `peers` object."""
    if size not in SIZES:
        raise UserError(f"bench size {size!r}; expected one of {', '.join(SIZES)}")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise UserError(f"bench part(s) {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    cfg = SIZES[size]
    started = time.perf_counter()
    result: dict = {"size": size, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "length_distribution": LENGTHS, "parts": list(parts), "peers": {}}

    def add(section: dict) -> None:
        result["peers"].update(section.pop("peers", {}))
        result.update(section)

    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the HF peers' notes on a non-PreTrainedModel model, per Trainer
    try:
        with tempfile.TemporaryDirectory(prefix="xstilts-bench-") as tmp:
            tok, model = build_model(cfg, Path(tmp) / "model")
            from xstilts.models import count_parameters

            result["model"] = {"architecture": "xlm-roberta", **cfg["model"], "vocab_size": len(tok),
                               "params": count_parameters(model)}
            log(f"model {result['model']}")
            if "train" in parts:
                add(bench_train(model, tok, cfg, cfg["repeats"], Path(tmp)))
            if "eval" in parts:
                add(bench_eval(model, tok, cfg, cfg["eval_repeats"], Path(tmp)))
            if "embed" in parts:
                add(bench_embed(model, tok, cfg, cfg["eval_repeats"]))
            large = cfg["large"]
            if "large" not in parts:
                pass
            elif torch.cuda.is_available():
                result["large_model"] = bench_large(large, tok, Path(tmp), torch.device("cuda"))
            elif large["require_cuda"]:
                result["large_model"] = {"skipped": "no CUDA device: the XLM-R Large bf16 comparison runs on a GPU"}
            else:
                result["large_model"] = bench_large(large, tok, Path(tmp), torch.device("cpu"))
    finally:
        hf_logging.set_verbosity(verbosity)
    if "bucc" in parts:
        result["bucc_mining"] = bench_bucc(cfg["bucc"])
    if "dag" in parts:
        result["dag"] = bench_dag(cfg["dag_repeats"])
    result["total_s"] = round(time.perf_counter() - started, 1)
    # Other processes share the cores: the 1-minute load average says how quiet the machine was.
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(args) -> int:
    result = run(args.size, tuple(getattr(args, "parts", None) or PARTS))
    text = json.dumps(result, indent=None if args.json else 2, sort_keys=True)
    if getattr(args, "out", None):
        from xstilts.io import write_json

        write_json(args.out, result)
    print(text)
    return 0


if __name__ == "__main__":
    # `python -m xstilts.bench --parts large --out F`: one section alone (bench/gpu.sh), the JSON also in F.
    import argparse

    parser = argparse.ArgumentParser(prog="python -m xstilts.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=list(SIZES))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="sections to run")
    parser.add_argument("--out", default=None, help="also write the JSON here (atomically)")
    parser.add_argument("--json", action="store_true", help="one-line JSON on stdout")
    sys.exit(main(parser.parse_args()))
