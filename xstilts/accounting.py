"""Cost records for every training and evaluation job, by the field's conventions
(`shared/reference/efficiency.md`): FLOPs = 6·N per token trained (weights with gradients), 4·N per token
through frozen weights (activation gradients only), 2·N per token of inference; N = non-embedding
parameters. Tokens are counted twice: useful (non-pad) and executed (incl. pad)."""

from __future__ import annotations

import contextlib
import functools
import platform
import resource
import time
from pathlib import Path

import torch

from xstilts.provenance import provenance


@functools.cache
def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("Intel(R) Xeon(R) ..."), so cost records say what ran them;
    the architecture (`x86_64`) only where the system has no such line (macOS, most ARM boards)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name") and line.partition(":")[2].strip():
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: torch.device) -> dict:
    """The device's name (GPU model from torch, CPU model otherwise), kind and count for a cost record."""
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device), "device_kind": "cuda", "device_count": 1}
    return {"device": cpu_model(), "device_kind": "cpu", "device_count": 1}


class _Energy:
    """NVML total-energy counter (mJ) on NVIDIA GPUs; None elsewhere — never estimated."""

    def __init__(self, device: torch.device):
        self.handle = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            self.nvml = pynvml
            self.start = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception:  # no NVML library or counter unsupported: report null
            self.handle = None

    def joules(self) -> float | None:
        if self.handle is None:
            return None
        return (self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.start) / 1000.0


class DevEvalCounter:
    """The English dev evaluations inside a training job (checkpoint selection, monitoring): their own tokens,
    FLOPs (2N per token, inference) and seconds, which are part of the job's wall_s but not of its training
    tokens or FLOPs. `phases._dev_scorer` passes it to `evaluate.predict` and times each run with `timed()`."""

    FIELDS = ("useful_tokens", "executed_tokens", "seconds", "runs")

    def __init__(self, flops_per_token: int):
        self.flops_per_token = flops_per_token
        self.useful_tokens = self.executed_tokens = self.runs = 0
        self.seconds = 0.0

    def add_tokens(self, useful: int, executed: int, examples: int = 0) -> None:
        self.useful_tokens += useful
        self.executed_tokens += executed

    @contextlib.contextmanager
    def timed(self):
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start
            self.runs += 1

    def state(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELDS}

    def load_state(self, state: dict) -> None:
        for k in self.FIELDS:
            setattr(self, k, state.get(k, 0))

    def record(self) -> dict:
        return {"dev_eval_useful_tokens": self.useful_tokens, "dev_eval_executed_tokens": self.executed_tokens,
                "dev_eval_useful_flops": self.flops_per_token * self.useful_tokens,
                "dev_eval_executed_flops": self.flops_per_token * self.executed_tokens,
                "dev_eval_s": round(self.seconds, 3), "dev_eval_runs": self.runs}


def flops_per_token(params: dict[str, int], training: bool) -> tuple[int, str]:
    """The convention's FLOPs per token and its name: 6N trained (4N through frozen weights), 2N inference;
    `params` as models.count_parameters gives them. CostMeter and the estimate (xstilts.estimate) both use it."""
    if not training:
        return 2 * params["non_embedding"], "2N"
    frozen = params["non_embedding"] - params["trainable_non_embedding"]
    return (6 * params["trainable_non_embedding"] + 4 * frozen,
            "6N" if frozen == 0 else "4N_frozen+6N_trainable")


class CostMeter:
    """Accumulates tokens, steps and examples; `record()` gives the cost.json content.

    `flops_per_token` is the convention's multiplier times parameters, fixed when the meter is created
    from the model's parameter counts; resumed jobs restore the counters with `load_state`."""

    def __init__(self, phase: str, device: torch.device, params: dict[str, int], training: bool):
        self.phase = phase
        self.device = device
        self.params = params
        self.training = training
        self.flops_per_token, self.convention = flops_per_token(params, training)
        self.useful_tokens = 0
        self.executed_tokens = 0
        self.examples = 0
        self.steps = 0
        self.prior_wall_s = 0.0
        self.flop_check: dict | None = None
        self.dev_eval = DevEvalCounter(2 * params["non_embedding"])
        self.started = time.perf_counter()
        self.energy = _Energy(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def add_tokens(self, useful: int, executed: int, examples: int = 0) -> None:
        self.useful_tokens += useful
        self.executed_tokens += executed
        self.examples += examples

    def spot_check(self, step_fn, executed_tokens: int) -> None:
        """Count one step's FLOPs with torch's FlopCounterMode next to the convention's estimate."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            step_fn()
        self.flop_check = {"counted": int(counter.get_total_flops()),
                           "estimated": int(self.flops_per_token * executed_tokens),
                           "note": "FlopCounterMode counts matmuls incl. attention; 0 for ops without a formula"}

    def state(self) -> dict:
        return {"useful_tokens": self.useful_tokens, "executed_tokens": self.executed_tokens,
                "examples": self.examples, "steps": self.steps, "flop_check": self.flop_check,
                "prior_wall_s": self.prior_wall_s + time.perf_counter() - self.started,
                "dev_eval": self.dev_eval.state()}

    def load_state(self, state: dict) -> None:
        self.useful_tokens = state["useful_tokens"]
        self.executed_tokens = state["executed_tokens"]
        self.examples = state["examples"]
        self.steps = state["steps"]
        self.flop_check = state["flop_check"]
        self.prior_wall_s = state["prior_wall_s"]
        self.dev_eval.load_state(state.get("dev_eval") or {})  # absent in states saved before issue 13

    def record(self, **extra) -> dict:
        wall = self.prior_wall_s + time.perf_counter() - self.started
        if self.device.type == "cuda":
            peak, peak_kind = torch.cuda.max_memory_allocated(self.device), "cuda_max_allocated"
        else:  # ru_maxrss is in KiB on Linux
            peak, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "cpu_peak_rss"
        return {
            "phase": self.phase, "wall_s": round(wall, 3), **device_info(self.device),
            "device_s": round(wall * device_info(self.device)["device_count"], 3),
            "useful_tokens": self.useful_tokens, "executed_tokens": self.executed_tokens,
            "useful_flops": self.flops_per_token * self.useful_tokens,
            "executed_flops": self.flops_per_token * self.executed_tokens,
            "flops_convention": self.convention, "flop_counter_step": self.flop_check,
            "n_params_non_embedding": self.params["non_embedding"], "trainable_params": self.params["trainable"],
            "total_params": self.params["total"], "peak_memory_bytes": int(peak), "peak_memory_kind": peak_kind,
            "energy_j": self.energy.joules(), "examples": self.examples, "steps": self.steps,
            **self.dev_eval.record(),
            "provenance": provenance(), **extra,
        }
