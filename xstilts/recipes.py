"""Hyperparameter defaults: the authors' public recipe (jiant, X-STILTs) per phase and per task.

Config values override these per job (`--hparams`); an unknown key is an error, so a typo never silently
falls back to a default. docs/protocol.md sets every resolved value of config/xtreme.yaml beside the
authors' value and the file and line it comes from (tests/test_protocol.py keeps the two in step).
"""

from __future__ import annotations

from xstilts.errors import UserError

_TRAIN = {
    "lr": 1e-5,
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "max_grad_norm": 1.0,
    "epochs": 3,
    "max_steps": None,  # cap on optimizer steps (None: epochs decide)
    "batch_size": 4,  # micro-batch
    "grad_accum": 1,
    "max_length": 256,
    "doc_stride": 128,
    "max_train_examples": None,
    "eval_every": 1000,  # optimizer steps between English-dev evaluations (jiant e_run_models.sh:16)
    "eval_examples": 500,  # size of the English dev subset used for selection
    "patience": 30,  # evaluations without gain before early stopping
    "save_every": 500,  # optimizer steps between resumable-state saves
    "log_every": 50,  # optimizer steps between progress lines (loss, lr, grad norm, tokens/s, ETA) ...
    "log_seconds": 60,  # ... or seconds, whichever comes first; logging never changes what is trained
    "bf16": "auto",  # autocast to bf16 on CUDA
    "compile": False,  # torch.compile the encoder
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.1,
    "max_answer_length": 30,
    "eval_batch_size": 32,
    # Sequence vector for classification and multiple-choice heads: "first" token (the RoBERTa/BERT heads),
    # "mean" over non-pad tokens, or "auto" (first, except mean for T5 encoders). A tiny model pretrained
    # briefly by MLM has an untrained first token: mean pooling learns multiple choice where "first" stays
    # at chance (docs/synth.md).
    "pooling": "auto",
}

# Hyperparameters that only change what a job prints, never what it computes: left out of the resumable
# state's job key, so changing them keeps a job's saved state usable.
LOG_KEYS = ("log_every", "log_seconds")

PHASE_DEFAULTS: dict[str, dict] = {
    "pretrain": {
        **_TRAIN, "lr": 5e-4, "warmup_ratio": 0.05, "epochs": 2, "batch_size": 32, "max_length": 64,
        "mlm_probability": 0.15, "vocab_size": 4000, "hidden_size": 128, "num_hidden_layers": 4,
        "num_attention_heads": 4, "intermediate_size": 512, "save_every": 200,
    },
    "intermediate": {
        **_TRAIN, "task_sampling": "proportional", "sampling_temperature": 2.0, "mlm_ratio": 0.5,
        "mlm_probability": 0.15,
    },
    "finetune": {**_TRAIN, "epochs": 2, "grad_accum": 8},
    "evaluate": {"eval_batch_size": 32, "max_length": 256, "doc_stride": 128, "max_answer_length": 30,
                 "dev_max_examples": None},  # cap per language on the dev split scored beside test (None: all)
    "retrieval": {"eval_batch_size": 32, "max_length": 512, "layer": None, "bucc_k": 4},
}

# Target-phase recipe per English training task (jiant d_write_configs.sh; docs/protocol.md).
TASK_RECIPES: dict[str, dict] = {
    "mnli": {"epochs": 2, "grad_accum": 8},  # XNLI
    "pawsx": {"epochs": 5, "grad_accum": 8},
    "udpos": {"epochs": 10, "grad_accum": 8},
    "panx": {"epochs": 10, "grad_accum": 8},
    "squad_v1": {"epochs": 2, "grad_accum": 4, "max_length": 384},  # XQuAD, MLQA
    "tydiqa": {"epochs": 2, "grad_accum": 4, "max_length": 384},
    # XCOPA is XTREME-R's, not the X-STILTs authors': its baseline's COPA stage for XLM-R Large
    # (google-research/xtreme scripts/train_xcopa.sh, 838c13b:29-54: 5 epochs, lr 3e-5, per-GPU batch 2 x
    # accumulation 16, max_seq_length 128; docs/protocol.md "XCOPA")
    "xcopa": {"epochs": 5, "lr": 3e-5, "batch_size": 2, "grad_accum": 16, "max_length": 128},
}

# Evaluation windows per target: the QA test sets are tokenised at 384 like their training data
# (jiant c_tokenize_and_cache.sh:98, 110, 121); the others at the phase default 256.
EVAL_RECIPES: dict[str, dict] = {
    "xquad": {"max_length": 384},
    "mlqa": {"max_length": 384},
    "tydiqa": {"max_length": 384},
}


def resolve(phase: str, overrides: dict | None = None, task: str | None = None) -> dict:
    """Package defaults for `phase` (and `task`'s recipe: a training task when fine-tuning, a target when
    evaluating), then `overrides`."""
    if phase not in PHASE_DEFAULTS:
        raise UserError(f"unknown phase {phase!r}; expected one of {', '.join(PHASE_DEFAULTS)}")
    hp = dict(PHASE_DEFAULTS[phase])
    hp.update({"finetune": TASK_RECIPES, "evaluate": EVAL_RECIPES}.get(phase, {}).get(task, {}))
    for key, value in (overrides or {}).items():
        if key not in hp:
            raise UserError(f"unknown hyperparameter {key!r} for phase {phase!r}; known: {', '.join(sorted(hp))}")
        hp[key] = value
    for key in ("batch_size", "grad_accum", "max_length", "eval_every", "save_every", "eval_batch_size", "log_every"):
        if key in hp and (not isinstance(hp[key], int) or hp[key] <= 0):
            raise UserError(f"hyperparameter {key!r} must be a positive integer, got {hp[key]!r}")
    if hp.get("dev_max_examples") is not None and (not isinstance(hp["dev_max_examples"], int)
                                                   or hp["dev_max_examples"] <= 0):
        raise UserError(f"hyperparameter 'dev_max_examples' must be a positive integer or null, "
                        f"got {hp['dev_max_examples']!r}")
    if "pooling" in hp and hp["pooling"] not in ("auto", "first", "mean"):
        raise UserError(f"hyperparameter 'pooling' must be 'auto', 'first' or 'mean', got {hp['pooling']!r}")
    for key in ("lr", "sampling_temperature", "log_seconds"):
        if key in hp and not (isinstance(hp[key], (int, float)) and hp[key] > 0):
            raise UserError(f"hyperparameter {key!r} must be a positive number, got {hp[key]!r}")
    if "task_sampling" in hp and hp["task_sampling"] not in ("proportional", "temperature"):
        raise UserError(f"hyperparameter 'task_sampling' must be 'proportional' or 'temperature', "
                        f"got {hp['task_sampling']!r}")
    if "epochs" in hp and not (isinstance(hp["epochs"], (int, float)) and hp["epochs"] > 0):
        raise UserError(f"hyperparameter 'epochs' must be positive, got {hp['epochs']!r}")
    return hp
