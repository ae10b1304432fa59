"""The training loop shared by every phase: one or several task streams (multi-task), optional MLM mixing,
gradient accumulation, English-dev checkpoint selection with early stopping, and resumable state.

Resumability: every `save_every` optimizer steps (and when SIGTERM/SIGUSR1 arrives) the full state —
weights, optimizer, scheduler, RNG, each stream's position in its epoch order, the best dev checkpoint,
the cost counters — is written atomically to `state_dir`, which is NOT a workflow output. A rerun of the
same job (same `job_key`) continues from it; on CPU the result equals an uninterrupted run's.
"""

from __future__ import annotations

import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from xstilts import features as F
from xstilts.errors import Diverged, Preempted
from xstilts.io import atomic_path, read_json, sha256_file, write_json
from xstilts.kinds import heads as head_kinds
from xstilts.models import autocast

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
CKPT_FILES = ("model.safetensors", "optim.pt")  # checksummed in progress.json, verified on resume
# The Trainer attributes progress.json saves and a resumed run restores (one list, so the two cannot drift).
RESUMED_FIELDS = ("step", "cursors", "best_score", "best_step", "evals_without_gain", "history", "stopped_early",
                  "progress_log", "progress_window")


@dataclass
class Stream:
    """One source of training batches: a task head's features, or the MLM corpus (`kind == "mlm"`)."""

    name: str  # unique per stream (the task name, or "mlm")
    head: str  # the head it trains (tasks sharing a head, e.g. MNLI and ANLI+, name the same one)
    kind: str  # head kind: classification, multiple_choice, span, tagging, or mlm
    feats: dict[str, list]
    batch_size: int

    def __len__(self) -> int:
        return len(self.feats["input_ids"])

    def n_batches(self) -> int:
        return math.ceil(len(self) / self.batch_size)


def compute_loss(model, stream: Stream, batch: dict[str, torch.Tensor], mlm_probability: float, tokenizer):
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if stream.kind == "mlm":
        inputs, labels = mask_tokens(ids, mask, tokenizer, mlm_probability)
        return model.mlm_loss(inputs, mask, labels)
    return head_kinds.get(stream.kind).loss(model(stream.head, ids, mask), batch)


def mask_tokens(ids: torch.Tensor, mask: torch.Tensor, tokenizer, probability: float):
    """BERT masking (80% [MASK], 10% random, 10% kept) over non-special, non-pad tokens."""
    labels = ids.clone()
    special = torch.zeros_like(ids, dtype=torch.bool)
    for sid in tokenizer.all_special_ids:
        special |= ids == sid
    chosen = (torch.rand(ids.shape) < probability) & ~special & mask.bool()
    labels[~chosen] = F.IGNORE
    inputs = ids.clone()
    replace = chosen & (torch.rand(ids.shape) < 0.8)
    inputs[replace] = tokenizer.mask_token_id
    randomise = chosen & ~replace & (torch.rand(ids.shape) < 0.5)
    inputs[randomise] = torch.randint(len(tokenizer), ids.shape)[randomise]
    return inputs, labels


def linear_warmup_decay(optimizer, warmup: int, total: int):
    """Linear warmup then linear decay to 0 (jiant's schedule). Written here rather than imported from
    transformers.optimization, whose import pulls in peft and costs ~4 s per job."""

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _SignalFlag:
    """Turns SIGTERM/SIGUSR1 (Slurm preemption / time limit) into a flag checked between steps."""

    def __init__(self):
        self.received: int | None = None
        self.previous = {}

    def __enter__(self):
        for sig in PREEMPT_SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class Trainer:
    """Runs optimizer steps over `streams` until the step budget or early stopping ends training."""

    def __init__(self, model, tokenizer, streams: list[Stream], hp: dict, seed: int, state_dir: str | Path,
                 meter, job_key: str, label: str = "", dev_eval: Callable[[], float] | None = None,
                 log: Callable[[str], None] = print, dev_monitor: Callable[[], dict] | None = None,
                 progress: Callable[[str], None] | None = None):
        self.model, self.tokenizer, self.streams, self.hp = model, tokenizer, streams, hp
        self.seed, self.meter, self.job_key, self.label = seed, meter, job_key, label
        self.state_dir = Path(state_dir)
        self.dev_eval = dev_eval
        # Dev scores by task every `eval_every` steps, only logged (phase ii has no checkpoint selection).
        self.dev_monitor = dev_monitor
        self.log = log
        self.progress = progress or log  # progress lines (phases: a bar when stderr is a terminal)
        self.device = next(model.parameters()).device
        self.task_streams = [s for s in streams if s.kind != "mlm"]
        self.mlm_stream = next((s for s in streams if s.kind == "mlm"), None)
        self.mlm_ratio = hp.get("mlm_ratio", 0.0) if self.mlm_stream and self.task_streams else (
            1.0 if self.mlm_stream else 0.0)
        self.task_probs = self._task_probabilities()
        task_batches = sum(s.n_batches() for s in self.task_streams) or self.mlm_stream.n_batches()
        micro_per_epoch = task_batches / (1 - self.mlm_ratio) if self.task_streams else task_batches
        steps = math.ceil(micro_per_epoch * hp["epochs"] / hp["grad_accum"])
        self.steps_per_epoch = micro_per_epoch / hp["grad_accum"]
        self.total_steps = min(steps, hp["max_steps"]) if hp.get("max_steps") else steps
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() > 1]
        no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() <= 1]
        assert len(decay) + len(no_decay) == len(params)
        # fused: one kernel per parameter group instead of ~10 ops per tensor (as the HF Trainer's default
        # since torch 2.8): 88 -> 15 ms per step for the bench's 5.4 M parameters on 2 cores
        # (docs/benchmarks.md); same math, results equal to the unfused step up to float rounding (~1e-8)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=hp["lr"], fused=self.device.type in ("cpu", "cuda"))
        self.scheduler = linear_warmup_decay(self.optimizer, int(hp["warmup_ratio"] * self.total_steps),
                                             self.total_steps)
        self.pad_id = tokenizer.pad_token_id
        # progress
        self.step = 0
        self.cursors = {s.name: [0, 0] for s in streams}  # epoch, position in that epoch's batch order
        self.best_score: float | None = None
        self.best_step = 0
        self.evals_without_gain = 0
        self.history: list[dict] = []
        self.stopped_early = False
        self.last_finite_loss: float | None = None
        self.progress_log: list[dict] = []  # the progress lines' numbers (train_log.json `progress`)
        self.progress_window: list[float] = []  # step losses since the last line (saved: a resumed run's next
        # line averages the same steps as an uninterrupted run's)
        self._orders: dict[tuple[str, int], list[np.ndarray]] = {}

    # --------------------------------------------------------------------------- sampling
    def _task_probabilities(self) -> np.ndarray:
        sizes = np.array([len(s) for s in self.task_streams], dtype=float)
        if not len(sizes):
            return sizes
        if self.hp.get("task_sampling") == "temperature":
            sizes = sizes ** (1.0 / self.hp["sampling_temperature"])
        return sizes / sizes.sum()

    def _pick_stream(self, micro_index: int) -> Stream:
        """Deterministic in (seed, micro-batch index): a resumed run draws the same sequence."""
        rng = np.random.default_rng([self.seed, 7, micro_index])
        if self.mlm_stream is not None and rng.random() < self.mlm_ratio:
            return self.mlm_stream
        if len(self.task_streams) == 1:
            return self.task_streams[0]
        return self.task_streams[int(rng.choice(len(self.task_streams), p=self.task_probs))]

    def _next_batch(self, stream: Stream) -> dict[str, torch.Tensor]:
        epoch, pos = self.cursors[stream.name]
        index = self.streams.index(stream)
        key = (stream.name, epoch)
        if key not in self._orders:
            self._orders = {k: v for k, v in self._orders.items() if k[0] != stream.name}
            self._orders[key] = F.length_grouped_batches(F.seq_lengths(stream.feats), stream.batch_size,
                                                         self.seed * 1000 + index, epoch)
        order = self._orders[key]
        idx = order[pos]
        pos += 1
        if pos >= len(order):
            epoch, pos = epoch + 1, 0
        self.cursors[stream.name] = [epoch, pos]
        return F.collate(stream.feats, idx, self.pad_id)

    # --------------------------------------------------------------------------- state
    @property
    def _ckpt(self) -> Path:
        return self.state_dir / "ckpt"

    def save_state(self) -> None:
        from safetensors.torch import save_model

        with atomic_path(self._ckpt) as tmp:
            tmp.mkdir()
            save_model(self.model, str(tmp / "model.safetensors"))
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                       tmp / "optim.pt")
            write_json(tmp / "progress.json", {
                "job_key": self.job_key, "sha256": {name: sha256_file(tmp / name) for name in CKPT_FILES},
                **{name: getattr(self, name) for name in RESUMED_FIELDS}, "meter": self.meter.state()})

    def _unusable_state(self, progress: dict) -> str | None:
        """Why the saved state cannot be resumed (None if it can): a checkpoint file whose sha256 differs from
        the one recorded when it was saved (truncated, bit-flipped, missing), or an unreadable best checkpoint."""
        from safetensors import safe_open

        missing = [name for name in RESUMED_FIELDS if name not in progress]
        if missing:
            return f"its progress.json lacks {', '.join(missing)} (saved by another version)"
        for name in CKPT_FILES:
            path = self._ckpt / name
            if not path.exists() or sha256_file(path) != progress.get("sha256", {}).get(name):
                return f"{path} is missing or its sha256 differs from the one saved with it"
        if progress["best_score"] is not None:
            with safe_open(self.state_dir / "best.safetensors", "pt"):  # validates header and length
                pass
        return None

    def try_resume(self) -> bool:
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        progress_file = self._ckpt / "progress.json"
        if not progress_file.exists():
            return False
        try:
            progress = read_json(progress_file)
            problem = ("it belongs to another job configuration" if progress.get("job_key") != self.job_key
                       else self._unusable_state(progress))
        except (OSError, ValueError, KeyError, SafetensorError) as e:
            problem = f"it is unreadable ({type(e).__name__}: {e})"
        if problem:
            # Never resume from state that is not exactly what was saved; a fresh start costs only time.
            self.log(f"{self.label}: state in {self.state_dir} not used, {problem}; starting fresh")
            shutil.rmtree(self.state_dir, ignore_errors=True)
            return False
        load_model(self.model, str(self._ckpt / "model.safetensors"), device=str(self.device))
        blob = torch.load(self._ckpt / "optim.pt", weights_only=True, map_location=self.device)
        self.optimizer.load_state_dict(blob["optimizer"])
        self.scheduler.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["torch_rng"].cpu())
        if blob["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(blob["cuda_rng"])
        for name in RESUMED_FIELDS:
            setattr(self, name, progress[name])
        self.meter.load_state(progress["meter"])
        self.log(f"{self.label}: resumed from step {self.step} of {self.total_steps} ({self._ckpt})")
        return True

    def _save_best(self) -> None:
        from safetensors.torch import save_model

        with atomic_path(self.state_dir / "best.safetensors") as tmp:
            save_model(self.model, str(tmp))

    def _load_best(self) -> None:
        from safetensors.torch import load_model

        load_model(self.model, str(self.state_dir / "best.safetensors"), device=str(self.device))

    # --------------------------------------------------------------------------- loop
    def _evaluate(self) -> None:
        score = self.dev_eval()
        self.model.train()
        self.history.append({"step": self.step, "dev": score})
        self.log(f"{self.label}: step {self.step}/{self.total_steps} English dev {score:.2f}")
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_step, self.evals_without_gain = score, self.step, 0
            self._save_best()
        else:
            self.evals_without_gain += 1
            if self.evals_without_gain >= self.hp["patience"]:
                self.stopped_early = True

    def _monitor(self) -> None:
        scores = self.dev_monitor()
        self.model.train()
        self.history.append({"step": self.step, "dev": scores})
        self.log(f"{self.label}: step {self.step}/{self.total_steps} English dev "
                 + ", ".join(f"{task} {score:.2f}" for task, score in scores.items()))

    def _micro_step(self, micro_index: int) -> float:
        stream = self._pick_stream(micro_index)
        batch = {k: v.to(self.device) for k, v in self._next_batch(stream).items()}
        mask = batch["attention_mask"]
        n_examples = len(batch["label"]) if "label" in batch else (  # sequences per example: n_choices
            len(batch["start"]) if "start" in batch else mask.shape[0] // int(batch.get("n_choices", 1)))
        self.meter.add_tokens(int(mask.sum()), mask.numel(), n_examples)
        holder = {}

        def forward_backward():
            with autocast(self.device, self.hp.get("bf16", "auto")):
                loss = compute_loss(self.model, stream, batch, self.hp.get("mlm_probability", 0.15), self.tokenizer)
            holder["loss"] = loss.detach()
            (loss.float() / self.hp["grad_accum"]).backward()

        if self.meter.flop_check is None:
            self.meter.spot_check(forward_backward, mask.numel())
        else:
            forward_backward()
        loss = float(holder["loss"])
        if not math.isfinite(loss):
            raise Diverged(f"{self.label}: non-finite loss ({loss}) on stream {stream.name} at step {self.step}; "
                           f"last finite loss {self.last_finite_loss}")
        self.last_finite_loss = loss
        return loss

    def fit(self) -> dict:
        """Train to the end (or early stop), then restore the best dev checkpoint if there was selection."""
        self.model.train()
        resumed_from = self.step if self.try_resume() else None
        eval_every = self.hp["eval_every"]
        progress = _ProgressMeter(self)
        with _SignalFlag() as flag:
            while self.step < self.total_steps and not self.stopped_early:
                losses = [self._micro_step(self.step * self.hp["grad_accum"] + a)
                          for a in range(self.hp["grad_accum"])]
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad], self.hp["max_grad_norm"])
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                self.meter.steps = self.step
                if self.step % 10 == 0 or self.step == self.total_steps:
                    self.history.append({"step": self.step, "loss": round(float(np.mean(losses)), 5)})
                progress.after_step(losses, grad_norm)
                if self.dev_monitor and self.step % eval_every == 0 and self.step < self.total_steps:
                    self._monitor()
                if self.dev_eval and (self.step % eval_every == 0 or self.step == self.total_steps):
                    self._evaluate()
                if flag.received is not None:
                    self.save_state()
                    raise Preempted(f"{self.label}: signal {signal.Signals(flag.received).name} at step "
                                    f"{self.step}/{self.total_steps}; state saved to {self._ckpt}, rerun to resume")
                if self.step % self.hp["save_every"] == 0 and self.step < self.total_steps:
                    self.save_state()
        if self.dev_eval and self.best_score is not None:
            self._load_best()
        return {"total_steps": self.total_steps, "steps": self.step, "resumed_from_step": resumed_from,
                "best_dev": self.best_score, "best_step": self.best_step, "stopped_early": self.stopped_early,
                "history": self.history, "progress": self.progress_log}

    def cleanup(self) -> None:
        """Drop the resumable state once the final artifacts are written."""
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _ProgressMeter:
    """The progress line every `log_every` optimizer steps or `log_seconds` seconds (whichever comes first),
    and at the last step. It only reads what training computed anyway (losses, the clipped gradient norm,
    the learning rate, token counts): no RNG, no extra device work except reading the norm when it logs."""

    def __init__(self, trainer: Trainer):
        self.t = trainer
        self.started = self.last = time.perf_counter()
        self.first_step = trainer.step
        self.last_tokens = trainer.meter.useful_tokens

    def after_step(self, losses: list[float], grad_norm) -> None:
        t, now = self.t, time.perf_counter()
        t.progress_window.append(float(np.mean(losses)))
        if not (t.step % t.hp["log_every"] == 0 or now - self.last >= t.hp["log_seconds"]
                or t.step == t.total_steps):
            return
        done = t.step - self.first_step
        record = {
            "step": t.step, "total_steps": t.total_steps, "epoch": round(t.step / t.steps_per_epoch, 3),
            "loss": round(float(np.mean(t.progress_window)), 5),  # mean over the steps since the last line
            "lr": float(t.scheduler.get_last_lr()[0]), "grad_norm": round(float(grad_norm), 5),
            "tokens_per_s": round((t.meter.useful_tokens - self.last_tokens) / max(now - self.last, 1e-9), 1),
            "elapsed_s": round(t.meter.prior_wall_s + now - t.meter.started, 1),
            "eta_s": round((now - self.started) / done * (t.total_steps - t.step), 1),
        }
        t.progress_log.append(record)
        t.progress(f"{t.label}: step {t.step}/{t.total_steps} ({100 * t.step / t.total_steps:.0f}%) epoch "
                   f"{record['epoch']:.2f} loss {record['loss']:.4f} lr {record['lr']:.2e} grad_norm "
                   f"{record['grad_norm']:.3f} tokens/s {record['tokens_per_s']:,.0f} elapsed "
                   f"{_clock(record['elapsed_s'])} ETA {_clock(record['eta_s'])}")
        self.last, self.last_tokens, t.progress_window = now, t.meter.useful_tokens, []
