"""Hyperparameter defaults: the authors' public recipe (jiant, X-STILTs) per phase and per task.

Config values override these per job (`--hparams`); an unknown key is an error, so a typo never silently
falls back to a default. docs/protocol.md sets every resolved value of config/xtreme.yaml beside the
authors' value and the file and line it comes from (tests/test_protocol.py keeps the two in step).
"""

from __future__ import annotations

import functools

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
    # LAReQA (XTREME-R): its baseline's dual encoder on SQuAD v1.1 pairs (scripts/train_lareqa.sh, 838c13b:27-33,
    # 49-73: 3 epochs, lr 2e-5, per-GPU batch 4 x accumulation 4, no warmup or decay, answers at 256 tokens;
    # the batch of 4 pairs is also the in-batch negative pool; docs/protocol.md "LAReQA")
    "lareqa": {"epochs": 3, "lr": 2e-5, "batch_size": 4, "grad_accum": 4, "warmup_ratio": 0.0,
               "weight_decay": 0.0, "max_length": 256},
    # Mewsli-X (XTREME-R): its baseline's dual encoder on English Wikipedia (mention, entity) pairs, XLM-R Large's
    # settings (scripts/train_mewslix.sh, 838c13b:27-45, 67-80: 2 epochs, lr 1e-5, per-GPU batch 8 x accumulation
    # 4, no warmup or decay, 64 tokens for mentions and descriptions alike; docs/protocol.md "Mewsli-X")
    "mewslix": {"epochs": 2, "lr": 1e-5, "batch_size": 8, "grad_accum": 4, "warmup_ratio": 0.0,
                "weight_decay": 0.0, "max_length": 64},
}

# Evaluation windows per target: the QA test sets are tokenised at 384 like their training data
# (jiant c_tokenize_and_cache.sh:98, 110, 121); the others at the phase default 256.
EVAL_RECIPES: dict[str, dict] = {
    "xquad": {"max_length": 384},
    "mlqa": {"max_length": 384},
    "tydiqa": {"max_length": 384},
    "mewslix": {"max_length": 64},  # scripts/run_eval_mewslix.sh: MAX_SEQ_LEN=64, as in training
}


# What value each hyperparameter may take, as JSON Schema, stated once: `resolve` checks every resolved set
# (a job's `--hparams` over the defaults) against it, and `xstilts.grid.check_config` puts it into the config
# schema's `hparams` definition, so a config file and a command line are held to the same rules.
_POSITIVE_INT = {"type": "integer", "minimum": 1}
HPARAM_RULES: dict[str, dict] = {
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "weight_decay": {"type": "number", "minimum": 0},
    "warmup_ratio": {"type": "number", "minimum": 0, "maximum": 1},
    "max_grad_norm": {"type": ["number", "null"], "exclusiveMinimum": 0},
    "epochs": {"type": "number", "exclusiveMinimum": 0},
    "max_steps": {"type": ["integer", "null"], "minimum": 1},
    **{key: _POSITIVE_INT for key in ("batch_size", "eval_batch_size", "grad_accum", "max_length", "doc_stride",
                                      "eval_every", "eval_examples", "patience", "save_every", "log_every",
                                      "lora_r", "max_answer_length", "bucc_k", "vocab_size", "hidden_size",
                                      "num_hidden_layers", "num_attention_heads", "intermediate_size")},
    "log_seconds": {"type": "number", "exclusiveMinimum": 0},
    "bf16": {"enum": ["auto", True, False]},
    "compile": {"type": "boolean"},
    "lora_alpha": {"type": "number", "exclusiveMinimum": 0},
    "lora_dropout": {"type": "number", "minimum": 0, "maximum": 1},
    "max_train_examples": {"type": ["integer", "null"], "minimum": 1},
    "dev_max_examples": {"type": ["integer", "null"], "minimum": 1},
    "task_sampling": {"enum": ["proportional", "temperature"]},
    "sampling_temperature": {"type": "number", "exclusiveMinimum": 0},
    "mlm_ratio": {"type": "number", "minimum": 0},
    "mlm_probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "layer": {"type": ["integer", "null"], "minimum": 0},
    "pooling": {"enum": ["auto", "first", "mean"]},
}


@functools.cache
def _validator():
    """JSON Schema's validator with `integer` meaning an int (the standard also counts 2.0, and a float batch size
    would pass here and fail inside the job)."""
    from jsonschema import Draft202012Validator, validators

    types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    return validators.extend(Draft202012Validator, type_checker=types)


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
    for key, value in hp.items():
        problem = next(_validator()(HPARAM_RULES[key]).iter_errors(value), None)
        if problem is not None:
            raise UserError(f"hyperparameter {key!r}: {problem.message}")
    return hp
