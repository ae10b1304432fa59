"""`xstilts bench`: the engine's speed against the reference recipes and this machine's limit, in one process.

Every comparison runs on the same model, data and machine, and reports the median of several repeats:
- training: the real `Trainer` loop (length-grouped batches, dynamic padding) vs the reference recipe (every
  example padded to 128, unsorted batches) vs a bare forward/backward/optimizer loop over the Trainer's own
  batches pre-built as tensors (the ceiling), all in USEFUL (non-pad) tokens per second;
- inference: `evaluate.run_head` (length-sorted, dynamically padded) vs unsorted pad-to-128, same predictions;
- BUCC mining: faiss vs the numpy brute-force backend of `xstilts.retrieval` on planted parallel pairs;
- the workflow: job count and time of `snakemake -n --configfile config/xtreme.yaml`;
- on a GPU: the XLM-R Large architecture in bf16, full fine-tuning and LoRA (tokens/s, MFU, peak memory).
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
        "vocab_size": 300, "batch_size": 4, "grad_accum": 2, "steps": 1, "train_examples": 64,
        "eval_examples": 96, "eval_batch_size": 32, "repeats": 2, "eval_repeats": 2,
        "bucc": {"n": 1000, "dim": 768, "sample": 256, "check_n": 1000, "k": 4, "repeats": 2},
        "dag_repeats": 1,
        # exercises the large-model code path on any device, at a toy size
        "large": {"arch": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                           "intermediate_size": 64, "vocab_size": 1000},
                  "batch_size": 4, "examples": 32, "warmup_steps": 1, "steps": 2, "require_cuda": False},
    },
    "full": {
        # A small XLM-R-architecture encoder: big enough that matmuls dominate the step on 2 CPU cores.
        "model": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
        # The XNLI recipe's micro-batch 4 x accumulation 8 (xtreme.md section 1).
        "vocab_size": 8000, "batch_size": 4, "grad_accum": 8, "steps": 1, "train_examples": 4096,
        "eval_examples": 512, "eval_batch_size": 32, "repeats": 7, "eval_repeats": 3,
        "bucc": {"n": 100_000, "dim": 768, "sample": 4096, "check_n": 10_000, "k": 4, "repeats": 3},
        "dag_repeats": 3,
        # XLM-R Large's architecture (random init from its config; no weights needed), bf16, GPU only
        "large": {"arch": XLMR_LARGE, "batch_size": 32, "examples": 4096, "warmup_steps": 5, "steps": 30,
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
    """Features in `features.encode_classification`'s layout: `<s> ... </s>` with random ids, random labels."""
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
    """xstilts' Trainer vs pad-to-128 unsorted batches vs the bare loop over the Trainer's exact batches.

    Repeat r runs `steps` optimizer steps of each method back to back (Trainer seed r, so every repeat sees
    other batches): short interleaved blocks, so load from other processes hits all three alike."""
    from xstilts import recipes
    from xstilts.accounting import CostMeter
    from xstilts.models import count_parameters
    from xstilts.train import Stream, Trainer

    rng = np.random.default_rng(1)
    feats = synthetic_pairs(cfg["train_examples"], tok, rng)
    stream = Stream("mnli", HEAD, "classification", feats, cfg["batch_size"])
    bs, accum, n_micro = cfg["batch_size"], cfg["grad_accum"], cfg["steps"] * cfg["grad_accum"]
    # One meter for every run: its one-off FLOP-counter step (amortised over a whole job) happens in warmup.
    meter = CostMeter("finetune", torch.device("cpu"), count_parameters(model), training=True)

    def trainer(name: str, seed: int) -> Trainer:
        hp = recipes.resolve("finetune", {"batch_size": bs, "grad_accum": accum, "max_steps": cfg["steps"],
                                          "save_every": 10**9, "bf16": False}, task="mnli")
        return Trainer(model, tok, [stream], hp, seed, workdir / name, meter, "bench", label="bench",
                       log=lambda m: None)

    trainer("warmup", repeats).fit()
    runs: dict[str, list[float]] = {"xstilts": [], "pad128_baseline": [], "raw_step_limit": []}
    executed = {"xstilts": [0, 0], "pad128_baseline": [0, 0]}  # useful, executed tokens
    for r in range(repeats):
        # The Trainer's own batches for the same steps, pre-built (the bare loop's input), and as many
        # unsorted random batches padded to 128.
        probe = trainer(f"probe{r}", r)
        exact = [probe._next_batch(stream) for _ in range(n_micro)]
        order = rng.permutation(len(stream))
        padded = [pad_to(F.collate(feats, order[i * bs:(i + 1) * bs], tok.pad_token_id), PAD_TO, tok.pad_token_id)
                  for i in range(n_micro)]
        for name, batches in (("xstilts", exact), ("pad128_baseline", padded)):
            executed[name][0] += sum(int(b["attention_mask"].sum()) for b in batches)
            executed[name][1] += sum(b["attention_mask"].numel() for b in batches)
        before = meter.useful_tokens
        start = time.perf_counter()
        trainer(f"run{r}", r).fit()
        runs["xstilts"].append((meter.useful_tokens - before) / (time.perf_counter() - start))
        runs["raw_step_limit"].append(_bare_loop(model, stream, exact, probe.optimizer, accum,
                                                 probe.hp["max_grad_norm"], tok))
        runs["pad128_baseline"].append(_bare_loop(model, stream, padded, probe.optimizer, accum,
                                                  probe.hp["max_grad_norm"], tok))
        log(f"train repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.0f} tok/s" for k, v in runs.items()))
    med = {k: _median(v) for k, v in runs.items()}
    paired = lambda a, b: round(_median([x / y for x, y in zip(runs[a], runs[b])]), 3)  # noqa: E731
    return {
        "train_tokens_per_s": {k: round(v, 1) for k, v in med.items()},
        "train_speedup_vs_pad128": round(med["xstilts"] / med["pad128_baseline"], 3),
        "train_fraction_of_limit": round(med["xstilts"] / med["raw_step_limit"], 3),
        "train_runs": {k: [round(x, 1) for x in v] for k, v in runs.items()},
        "train_setup": {
            "optimizer_steps_per_repeat": cfg["steps"], "repeats": repeats, "micro_batch": bs,
            "grad_accum": accum, "examples": len(stream),
            "xstilts_padding_efficiency": round(executed["xstilts"][0] / executed["xstilts"][1], 4),
            "pad128_padding_efficiency": round(executed["pad128_baseline"][0] / executed["pad128_baseline"][1], 4),
            "paired_median_speedup_vs_pad128": paired("xstilts", "pad128_baseline"),
            "paired_median_fraction_of_limit": paired("xstilts", "raw_step_limit"),
            "note": "all three: same model, micro-batch, grad accumulation, clip-1.0 AdamW step; the pad128 "
                    "baseline and the limit run a bare loop (no Trainer bookkeeping)"},
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
    from xstilts.models import TaskModel, apply_lora, count_parameters, make_head
    from xstilts.pretrain import xlmr_config
    from xstilts.train import Stream, Trainer

    arch, bs = cfg["arch"], cfg["batch_size"]
    feats = synthetic_pairs(cfg["examples"], tok, np.random.default_rng(6))
    stream = Stream("mnli", HEAD, "classification", feats, bs)
    peak = peak_bf16_flops(device)
    out: dict = {"architecture": "xlm-roberta", **arch, **device_info(device), "micro_batch": bs,
                 "timed_steps": cfg["steps"], "peak_bf16_tflops": peak and peak / 1e12}
    for mode in ("full", "lora"):
        torch.manual_seed(0)
        config = xlmr_config(tok, arch, vocab_size=arch["vocab_size"])
        spec = {HEAD: {"kind": "classification", "n_labels": N_LABELS}}
        model = TaskModel(XLMRobertaModel(config, add_pooling_layer=False),
                          {HEAD: make_head("classification", arch["hidden_size"], N_LABELS)}, spec).to(device)
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


def bench_eval(model, tok, cfg: dict, repeats: int) -> dict:
    """`evaluate.run_head` (sorted, dynamic padding) vs unsorted pad-to-128 inference; same argmax required."""
    from xstilts.evaluate import run_head

    feats = synthetic_pairs(cfg["eval_examples"], tok, np.random.default_rng(2))
    bs, pad_id, device = cfg["eval_batch_size"], tok.pad_token_id, torch.device("cpu")
    times: dict[str, list[float]] = {"sorted": [], "pad128": []}
    for _ in range(repeats):
        start = time.perf_counter()
        fast = torch.stack(run_head(model, HEAD, feats, bs, pad_id, device, bf16=False))
        times["sorted"].append(time.perf_counter() - start)
        start = time.perf_counter()
        slow = _pad128_logits(model, feats, bs, pad_id)
        times["pad128"].append(time.perf_counter() - start)
    mismatches = int((fast.argmax(-1) != slow.argmax(-1)).sum())
    med = {k: _median(v) for k, v in times.items()}
    return {
        "eval_speedup_sorted": round(med["pad128"] / med["sorted"], 3),
        "eval": {"examples": len(feats["input_ids"]), "batch_size": bs, "sorted_s": round(med["sorted"], 3),
                 "pad128_s": round(med["pad128"], 3), "same_predictions": mismatches == 0,
                 "mismatches": mismatches, "max_abs_logit_diff": float((fast - slow).abs().max())},
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


def run(size: str) -> dict:
    """Every comparison at `size` ("smoke" or "full"); returns the JSON-ready result."""
    if size not in SIZES:
        raise UserError(f"bench size {size!r}; expected one of {', '.join(SIZES)}")
    cfg = SIZES[size]
    started = time.perf_counter()
    result: dict = {"size": size, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "length_distribution": LENGTHS}
    with tempfile.TemporaryDirectory(prefix="xstilts-bench-") as tmp:
        tok, model = build_model(cfg, Path(tmp) / "model")
        from xstilts.models import count_parameters

        result["model"] = {"architecture": "xlm-roberta", **cfg["model"], "vocab_size": len(tok),
                           "params": count_parameters(model)}
        log(f"model {result['model']}")
        result.update(bench_train(model, tok, cfg, cfg["repeats"], Path(tmp)))
        result.update(bench_eval(model, tok, cfg, cfg["eval_repeats"]))
        large = cfg["large"]
        if torch.cuda.is_available():
            result["large_model"] = bench_large(large, tok, Path(tmp), torch.device("cuda"))
        elif large["require_cuda"]:
            result["large_model"] = {"skipped": "no CUDA device: the XLM-R Large bf16 comparison runs on a GPU"}
        else:
            result["large_model"] = bench_large(large, tok, Path(tmp), torch.device("cpu"))
    result["bucc_mining"] = bench_bucc(cfg["bucc"])
    result["dag"] = bench_dag(cfg["dag_repeats"])
    result["total_s"] = round(time.perf_counter() - started, 1)
    # Other processes share the cores: the 1-minute load average says how quiet the machine was.
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def main(args) -> int:
    result = run(args.size)
    print(json.dumps(result, indent=None if args.json else 2, sort_keys=True))
    return 0
