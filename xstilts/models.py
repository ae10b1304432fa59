"""Backbones, task heads, LoRA, and model directories (safetensors only).

A model directory holds `encoder/` (Hugging Face `save_pretrained` of the encoder + tokenizer) and, once
fine-tuned, `heads.safetensors` + `heads.json`. Heads are plain modules outside the encoder, so they are
always fully trained and saved, with LoRA too (what peft's `modules_to_save` would do for a task model).

LoRA handoff between phases: an intermediate-phase adapter is MERGED into the encoder weights when the
phase ends (`merge_and_unload`), the merged encoder is saved as a plain checkpoint, and the target phase
trains a fresh adapter on top of it; the target adapter is merged again before its model is saved.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from xstilts.errors import DataError, UserError
from xstilts.features import IGNORE
from xstilts.io import atomic_path, write_json
from xstilts.kinds import heads as head_kinds

# LoRA target modules per architecture (peft's names for the attention and feed-forward projections).
LORA_TARGETS = {
    "xlm-roberta": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "bert": ["query", "key", "value", "dense"],
    "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
    "t5": ["q", "k", "v", "o", "wi", "wo"],
    "umt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
}
# Encoder-decoder families whose encoder alone is the backbone (AutoModelForTextEncoding maps them to
# T5EncoderModel / MT5EncoderModel / UMT5EncoderModel: transformers models/auto/modeling_auto.py,
# MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES).
T5_LIKE = ("t5", "mt5", "umt5")


def _model_type(path: str | Path) -> str:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type


def encoder_dir(model_dir: str | Path) -> Path:
    """Accept a model directory (with `encoder/`) or a bare save_pretrained directory."""
    model_dir = Path(model_dir)
    if (model_dir / "encoder" / "config.json").exists():
        return model_dir / "encoder"
    if (model_dir / "config.json").exists():
        return model_dir
    raise UserError(f"{model_dir}: not a model directory (expected config.json or encoder/config.json)")


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_dir(model_dir))


def load_encoder(model_dir: str | Path, with_mlm_head: bool = False):
    """The bare encoder (no pooler), or with `with_mlm_head` the masked-LM model whose base is the encoder."""
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForTextEncoding

    path = encoder_dir(model_dir)
    model_type = _model_type(path)
    if with_mlm_head:
        if model_type in T5_LIKE:
            raise UserError(f"{path}: multilingual MLM mixing needs a masked-LM backbone; {model_type} has none")
        return AutoModelForMaskedLM.from_pretrained(path)
    if model_type in T5_LIKE:  # the encoder only, also from a full encoder-decoder checkpoint
        return AutoModelForTextEncoding.from_pretrained(path)
    kwargs = {"add_pooling_layer": False} if model_type in ("bert", "roberta", "xlm-roberta") else {}
    return AutoModel.from_pretrained(path, **kwargs)


def hidden_size(encoder) -> int:
    cfg = encoder.config
    return getattr(cfg, "hidden_size", None) or cfg.d_model


def num_layers(encoder) -> int:
    cfg = encoder.config
    return getattr(cfg, "num_hidden_layers", None) or cfg.num_layers


def autocast(device: torch.device, bf16):
    """bf16 autocast on CUDA when `bf16` is True or "auto"; a no-op context on CPU."""
    enabled = device.type == "cuda" and bf16 in (True, "auto")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def mean_pool(states, attention_mask):
    """The mean of each sequence's non-pad token states: pooled heads (`pooling: mean`) and retrieval
    embeddings (`phases.embed`) both use it."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


class TaskModel(nn.Module):
    """An encoder shared by any number of task heads (multi-task training uses several)."""

    def __init__(self, encoder, heads: dict[str, nn.Module], head_specs: dict[str, dict], mlm_model=None):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.head_specs = head_specs
        # For MLM mixing: the masked-LM model whose base module IS `encoder` (parameters shared).
        self.mlm_model = mlm_model
        # "auto" pooling: the first token (<s>/[CLS], as the BERT/RoBERTa heads do); T5 has no such token
        self.default_pooling = "mean" if encoder.config.model_type in T5_LIKE else "first"

    def encode(self, input_ids, attention_mask, output_hidden_states: bool = False):
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                            output_hidden_states=output_hidden_states)

    def pool(self, states, attention_mask, pooling: str = "auto"):
        """One vector per sequence: the first token's state, or the mean over non-pad tokens."""
        if (self.default_pooling if pooling == "auto" else pooling) == "first":
            return states[:, 0]
        return mean_pool(states, attention_mask)

    def forward(self, head: str, input_ids, attention_mask):
        states = self.encode(input_ids, attention_mask).last_hidden_state
        if head_kinds.get(self.head_specs[head]["kind"]).pooled:
            return self.heads[head](self.pool(states, attention_mask, self.head_specs[head].get("pooling", "auto")))
        return self.heads[head](states)

    def mlm_loss(self, input_ids, attention_mask, labels):
        return masked_lm_loss(self.mlm_model, input_ids, attention_mask, labels)


def masked_lm_loss(mlm_model, input_ids, attention_mask, labels, reduction: str = "mean"):
    """MLM cross-entropy with the vocabulary projection applied to the masked positions only (as fairseq's
    `masked_tokens`): the same loss as `mlm_model(..., labels=labels).loss`, but a tiny model's logits over
    every position cost more than its layers (demo pretraining: bench/mlm_loss.py)."""
    hidden = mlm_model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    selected = labels != IGNORE
    logits = mlm_model.lm_head(hidden[selected])
    return nn.functional.cross_entropy(logits.float(), labels[selected], reduction=reduction)


class MLMOnly(nn.Module):
    """A bare masked-LM model with the `mlm_loss` interface the Trainer uses (demo pretraining)."""

    def __init__(self, mlm_model):
        super().__init__()
        self.mlm_model = mlm_model

    def mlm_loss(self, input_ids, attention_mask, labels):
        return masked_lm_loss(self.mlm_model, input_ids, attention_mask, labels)


def build_task_model(model_dir, head_specs: dict[str, dict], with_mlm_head: bool = False) -> TaskModel:
    """Encoder from `model_dir` plus fresh heads: `head_specs[name] = {"kind", "n_labels", "labels"}`."""
    mlm_model = None
    if with_mlm_head:
        mlm_model = load_encoder(model_dir, with_mlm_head=True)
        encoder = mlm_model.base_model
    else:
        encoder = load_encoder(model_dir)
    hidden = hidden_size(encoder)
    modules = {name: head_kinds.get(spec["kind"]).build(hidden, spec.get("n_labels"))
               for name, spec in head_specs.items()}
    return TaskModel(encoder, modules, head_specs, mlm_model)


def apply_lora(model: TaskModel, r: int, alpha: int, dropout: float) -> None:
    """Wrap the encoder's projections with LoRA adapters; the encoder's own weights are frozen."""
    from peft import LoraConfig, get_peft_model

    model_type = model.encoder.config.model_type
    if model_type not in LORA_TARGETS:
        raise UserError(f"LoRA target modules unknown for model type {model_type!r}; known: {', '.join(LORA_TARGETS)}")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=LORA_TARGETS[model_type])
    # peft injects the adapters in place, so an MLM model sharing this encoder sees them too.
    model.encoder = get_peft_model(model.encoder, config)
    if model.mlm_model is not None:
        for p in model.mlm_model.parameters():
            if not any(p is q for q in model.encoder.parameters()):
                p.requires_grad_(False)


def merge_lora(model: TaskModel) -> None:
    """Fold LoRA adapters into the encoder weights (the handoff between phases)."""
    # duck-typed so full fine-tuning never pays peft's multi-second import
    if hasattr(model.encoder, "merge_and_unload"):
        model.encoder = model.encoder.merge_and_unload()


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total, trainable and non-embedding parameter counts (embedding lookups are gathers, not matmuls)."""
    seen: set[int] = set()
    total = trainable = embedding = trainable_embedding = 0
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
            if isinstance(module, nn.Embedding):
                embedding += p.numel()
                trainable_embedding += p.numel() if p.requires_grad else 0
    # A tied MLM decoder shares the embedding matrix and is already skipped by identity.
    return {"total": total, "trainable": trainable, "non_embedding": total - embedding,
            "trainable_non_embedding": trainable - trainable_embedding}


def save_tokenizer(tokenizer, out_dir) -> None:
    """`save_pretrained` without the truncation and padding of the tokenizer's last call, which a fast tokenizer
    keeps in its backend and writes into tokenizer.json: they are per-call settings (every encoder passes its
    own), and which call came last depends on which features a job found in the shared cache, so the saved
    file would differ between two runs of the same job."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    tokenizer.save_pretrained(out_dir)


def save_encoder(model: TaskModel, tokenizer, out_dir: Path) -> None:
    """Save the (merged) encoder and tokenizer in save_pretrained layout."""
    merge_lora(model)
    model.encoder.save_pretrained(out_dir, safe_serialization=True)
    save_tokenizer(tokenizer, out_dir)


def save_model_dir(model: TaskModel, tokenizer, out: str | Path) -> None:
    """Atomically write a model directory: encoder/ + heads.safetensors + heads.json."""
    from safetensors.torch import save_file

    with atomic_path(out) as tmp:
        tmp.mkdir()
        save_encoder(model, tokenizer, tmp / "encoder")
        if len(model.heads):
            state = {k: v.detach().contiguous() for k, v in model.heads.state_dict().items()}
            save_file(state, tmp / "heads.safetensors")
            write_json(tmp / "heads.json", model.head_specs)


def load_model_dir(model_dir: str | Path) -> TaskModel:
    """A fine-tuned model directory back into a TaskModel (weights from safetensors only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    specs_file = model_dir / "heads.json"
    if not specs_file.exists():
        raise UserError(f"{model_dir}: no heads.json; not a fine-tuned model directory")
    specs = json.loads(specs_file.read_text())
    model = build_task_model(model_dir, specs)
    heads = model_dir / "heads.safetensors"
    try:
        state = load_file(heads)
    except (OSError, SafetensorError) as e:  # safetensors' own message does not name the file
        raise DataError(f"unreadable ({e}); the fine-tuned model is incomplete or corrupt, rerun the job that "
                        "wrote it", file=str(heads)) from None
    model.heads.load_state_dict(state)
    return model


def default_retrieval_layer(n_layers: int) -> int:
    """hidden_states index for retrieval embeddings: 14 of 24 for XLM-R Large, the same depth ratio otherwise."""
    return max(1, round(14 * n_layers / 24))
