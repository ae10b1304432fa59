"""The CLI verbs of phases (i)-(iii): each reads explicit input paths, writes its outputs atomically, and
leaves resumable state only in `--state-dir`."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from xstilts.errors import UserError
from xstilts.io import atomic_path, write_json
from xstilts.registry import get_task


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no progress-bar noise in job logs


def _quiet_transformers() -> None:
    """Loading an encoder from a masked-LM checkpoint reports the unused LM head as a table; expected here."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()  # "Loading weights" bars would clutter every job log and error message


_bar_open = False  # a progress bar line is on the terminal, not yet ended by a newline


def _log(msg: str) -> None:
    global _bar_open
    print(("\n" if _bar_open else "") + msg, file=sys.stderr, flush=True)
    _bar_open = False


def _progress(msg: str) -> None:
    """A progress line: rewritten in place when stderr is a terminal, a plain line in job logs."""
    global _bar_open
    if not sys.stderr.isatty():
        return _log(msg)
    sys.stderr.write("\r\x1b[K" + msg)
    sys.stderr.flush()
    _bar_open = True


_quiet_transformers()


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _each_language(label: str, languages: list[str], meter, unit: str = "examples"):
    """Yields each language; once its work is done, logs a progress line with its count of `unit`
    (examples; sentences embedded for retrieval) and the time so far and left."""
    import time

    started = time.perf_counter()
    for i, lang in enumerate(languages, 1):
        before = meter.examples
        yield lang
        elapsed = time.perf_counter() - started
        _progress(f"{label}: language {i}/{len(languages)} {lang}: {meter.examples - before:,} {unit}, "
                  f"{meter.examples:,} in all, elapsed {elapsed:.1f} s, ETA {elapsed / i * (len(languages) - i):.1f} s")


def _job_key(**parts) -> str:
    """Identifies a training job's resumable state; logging settings (recipes.LOG_KEYS) are not part of it."""
    from xstilts.recipes import LOG_KEYS

    if "hp" in parts:
        parts["hp"] = {k: v for k, v in parts["hp"].items() if k not in LOG_KEYS}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _rows(data_dir: str, split: str, languages=None, limit: int | None = None) -> list[dict]:
    """Rows of a prepared split; `limit` keeps a fixed (seed-independent) random subset in stable order."""
    from xstilts.data.prepare import load_split

    rows = load_split(data_dir, split, languages=languages).to_pylist()
    if limit is not None and len(rows) > limit:
        keep = np.sort(np.random.default_rng(0).permutation(len(rows))[:limit])
        rows = [rows[i] for i in keep]
    return rows


def _data_key(data_dir: str, split: str, limit, languages=None) -> dict:
    """Identifies prepared rows for the feature cache: the split file's checksum plus the selection."""
    from xstilts.data.prepare import read_manifest

    manifest = read_manifest(data_dir)
    return {"sha256": manifest["splits"][split]["sha256"], "limit": limit, "languages": languages}


def _labels(task, data_dir: str) -> list[str] | None:
    if task.labels is not None:
        return list(task.labels)
    from xstilts.data.prepare import read_manifest

    return read_manifest(data_dir).get("labels")


def _head_spec(task, data_dir: str, hp: dict) -> dict:
    labels = _labels(task, data_dir)
    return {"kind": task.head_kind, "n_labels": len(labels) if labels else None, "labels": labels,
            "task": task.name, "pooling": hp["pooling"]}


def _apply_adaptation(model, adaptation: str, hp: dict) -> None:
    if adaptation == "lora":
        from xstilts.models import apply_lora

        apply_lora(model, hp["lora_r"], hp["lora_alpha"], hp["lora_dropout"])
    if hp.get("compile"):
        import torch

        model.encoder.forward = torch.compile(model.encoder.forward)


def _task_stream(task, data_dir: str, tok, hp: dict, translated_dir: str | None = None):
    from xstilts.features import encode
    from xstilts.train import Stream

    limit = hp.get("max_train_examples")
    labels = _labels(task, data_dir)
    rows = _rows(data_dir, "train", limit=limit)
    feats = encode(task, rows, tok, hp, train=True, data_key=_data_key(data_dir, "train", limit), labels=labels)
    if translated_dir:
        from xstilts.data.prepare import read_manifest

        n_langs = len(read_manifest(translated_dir)["languages"])
        mt_rows = _rows(translated_dir, "train", limit=limit * n_langs if limit else None)
        mt = encode(task, mt_rows, tok, hp, train=True, data_key=_data_key(translated_dir, "train", limit),
                    labels=labels)
        feats = {k: feats[k] + mt[k] for k in feats}
    return Stream(task.name, task.head_name, task.head_kind, feats, hp["batch_size"]), len(rows)


def _dev_scorer(model, head: str, task, data_dir: str, tok, hp: dict, device, meter):
    """English dev subset scorer for checkpoint selection (never the test languages); its tokens and seconds go
    to `meter.dev_eval` (cost.json `dev_eval_*`), not to the training counts."""
    from xstilts import kinds
    from xstilts.evaluate import candidate_vectors, predict, score_rows
    from xstilts.features import encode

    split, kind = "dev", kinds.of(task)
    rows = _rows(data_dir, split, languages=["en"], limit=hp["eval_examples"])
    if not rows:
        raise UserError(f"{data_dir}: no English rows in split 'dev' of task {task.name}; checkpoint selection needs them")
    labels = _labels(task, data_dir)
    key = _data_key(data_dir, split, hp["eval_examples"], ["en"])
    feats = encode(task, rows, tok, hp, train=False, data_key=key, labels=labels)
    # a kind with a candidate table retrieves among the dev rows' own gold items here (the whole table at
    # every evaluation would cost more than the training it selects)
    own = kind.own_candidates(rows) if kind.candidate_schema else None
    if own == []:
        raise UserError(f"{data_dir}: the English dev rows of {task.name} carry no gold entity descriptions to "
                        "retrieve among; checkpoint selection needs them")
    own_feats = None if own is None else encode(task, own, tok, hp, train=False,
                                                data_key={**key, "own_candidates": True}, candidates=True)

    def score() -> float:
        with meter.dev_eval.timed():
            candidates = None if own is None else candidate_vectors(
                model, head, own, own_feats, hp, tok.pad_token_id, device, meter.dev_eval)
            preds = predict(model, head, task, rows, feats, labels, hp, tok.pad_token_id, device, meter.dev_eval,
                            candidates)
        return kind.selection_score(task, score_rows(task, rows, preds, "en"))

    return score


# ------------------------------------------------------------------------------------------ phase (i)
def run_fetch_model(args) -> int:
    """Snapshot a hub model at one commit into a local save_pretrained directory: safetensors only, no remote
    code. T5-family checkpoints keep their encoder (AutoModelForTextEncoding maps mt5 to MT5EncoderModel);
    the others keep their masked-LM model, whose head the mlm variant trains."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoModelForTextEncoding, AutoTokenizer

    from xstilts.data.lock import check_safetensors
    from xstilts.data.sources import first_line, hub_commit
    from xstilts.models import T5_LIKE

    commit = hub_commit(args.model, args.revision, "model")  # a branch is resolved, and recorded, here
    check_safetensors(commit)
    where = f"hub model {args.model!r} at {commit.sha}"
    try:
        model_type = AutoConfig.from_pretrained(args.model, revision=commit.sha).model_type
        cls = AutoModelForTextEncoding if model_type in T5_LIKE else AutoModelForMaskedLM
        model = cls.from_pretrained(args.model, revision=commit.sha, use_safetensors=True)
        tok = AutoTokenizer.from_pretrained(args.model, revision=commit.sha)
    except (OSError, ValueError, ImportError) as e:
        raise UserError(f"{where}: cannot load it: {type(e).__name__}: {first_line(e)}") from None
    with atomic_path(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json(Path(tmp) / "xstilts_source.json", {"model": args.model, "revision": args.revision,
                                                        "commit": commit.sha, "class": type(model).__name__})
    _log(f"fetch-model: {args.model} @ {args.revision} = {commit.sha} ({type(model).__name__})")
    return 0


def run_pretrain(args) -> int:
    from xstilts import recipes
    from xstilts.accounting import CostMeter
    from xstilts.features import encode_text, tokenizer_fingerprint
    from xstilts.models import MLMOnly, count_parameters, save_tokenizer
    from xstilts.pretrain import build_mlm, heldout_mlm_loss, state_tokenizer
    from xstilts.train import Stream, Trainer

    hp = recipes.resolve("pretrain", args.hparams)
    _seed_everything(args.seed)
    train_rows = _rows(args.corpus, "train")
    dev_rows = _rows(args.corpus, "dev", limit=2000)
    state_dir = args.state_dir or f"{args.out}.state"
    key = _job_key(phase="pretrain", corpus=_data_key(args.corpus, "train", None), seed=args.seed, hp=hp)
    tok = state_tokenizer(state_dir, key, [r["text"] for r in train_rows], hp["vocab_size"], log=_log)
    model = build_mlm(tok, hp)
    feats = encode_text(train_rows, tok, hp["max_length"])
    dev_feats = encode_text(dev_rows, tok, hp["max_length"])
    unigram = Counter(t for ids in feats["input_ids"] for t in ids)

    wrapper = MLMOnly(model)
    device = _device()
    wrapper.to(device)
    meter = CostMeter("pretrain", device, count_parameters(model), training=True)
    trainer = Trainer(wrapper, tok, [Stream("mlm", "mlm", "mlm", feats, hp["batch_size"])], hp, args.seed,
                      state_dir, meter, _job_key(job=key, tokenizer=tokenizer_fingerprint(tok)),
                      label="pretrain", log=_log, progress=_progress)
    log = trainer.fit()
    held = heldout_mlm_loss(model, tok, dev_feats, unigram, hp["mlm_probability"])
    _log(f"pretrain: held-out MLM loss {held['mlm_loss']:.3f} vs unigram baseline {held['unigram_loss']:.3f}")
    with atomic_path(args.out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer(tok, tmp)
        write_json(Path(tmp) / "pretrain_log.json", {**log, "heldout": held, "hparams": hp})
        write_json(Path(tmp) / "cost.json", meter.record())
    trainer.cleanup()
    return 0


# ------------------------------------------------------------------------------------------ phase (ii)
def run_intermediate(args) -> int:
    from xstilts import recipes
    from xstilts.accounting import CostMeter
    from xstilts.features import encode_text
    from xstilts.models import build_task_model, count_parameters, load_tokenizer, save_encoder
    from xstilts.train import Stream, Trainer

    if len(args.tasks) != len(args.data):
        raise UserError(f"--tasks has {len(args.tasks)} entries but --data has {len(args.data)}; give one data dir per task")
    tasks = [get_task(t) for t in args.tasks]
    for t in tasks:
        if not t.trainable:
            raise UserError(f"task {t.name!r} has no training head ({t.kind}); it cannot be an intermediate task")
    if args.variant == "mlm" and not args.corpus:
        raise UserError("--variant mlm needs --corpus (the prepared multilingual corpus)")
    if args.variant == "mt" and (not args.translated or len(args.translated) != len(tasks)):
        raise UserError("--variant mt needs --translated with one prepared translated dir per task")
    if args.variant != "mt" and args.translated:
        raise UserError(f"--translated given but --variant is {args.variant!r}; use --variant mt")
    hp = recipes.resolve("intermediate", args.hparams)
    _seed_everything(args.seed)
    tok = load_tokenizer(args.model)
    specs = {}
    for t, d in zip(tasks, args.data):
        specs[t.head_name] = _head_spec(t, d, hp)
    model = build_task_model(args.model, specs, with_mlm_head=args.variant == "mlm")
    _apply_adaptation(model, args.adaptation, hp)
    device = _device()
    model.to(device)
    streams, sizes = [], {}
    for i, (t, d) in enumerate(zip(tasks, args.data)):
        stream, n = _task_stream(t, d, tok, hp, args.translated[i] if args.variant == "mt" else None)
        streams.append(stream)
        sizes[t.name] = n
    if args.variant == "mlm":
        # as many corpus sentences as task examples: at the default 1:1 mixing every one is seen once an epoch
        corpus = _rows(args.corpus, "train", limit=sum(sizes.values()))
        streams.append(Stream("mlm", "mlm", "mlm", encode_text(corpus, tok, hp["max_length"]), hp["batch_size"]))
    meter = CostMeter("intermediate", device, count_parameters(model), training=True)
    key = _job_key(phase="intermediate", model=args.model, tasks=args.tasks, data=args.data, variant=args.variant,
                   corpus=args.corpus, translated=args.translated, adaptation=args.adaptation, seed=args.seed, hp=hp)
    scorers = {t.name: _dev_scorer(model, t.head_name, t, d, tok, hp, device, meter)
               for t, d in zip(tasks, args.data)}

    def dev_scores() -> dict:
        return {name: score() for name, score in scorers.items()}

    trainer = Trainer(model, tok, streams, hp, args.seed, args.state_dir, meter, key,
                      label=args.label or f"intermediate {'+'.join(args.tasks)} [{args.variant}]", log=_log,
                      dev_monitor=dev_scores, progress=_progress)
    log = trainer.fit()
    dev = dev_scores()
    _log(f"{trainer.label}: step {trainer.step}/{trainer.total_steps} English dev after training: "
         + ", ".join(f"{name} {score:.2f}" for name, score in dev.items()))
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        save_encoder(model, tok, tmp / "encoder")  # target heads are always fresh: keep the encoder only
        write_json(tmp / "train_log.json", {**log, "dev": dev, "train_examples": sizes, "hparams": hp,
                                            "variant": args.variant, "adaptation": args.adaptation})
        write_json(tmp / "cost.json", meter.record(row="+".join(args.tasks), variant=args.variant,
                                                   adaptation=args.adaptation, seed=args.seed))
    trainer.cleanup()
    return 0


# ------------------------------------------------------------------------------------------ phase (iii)
def run_finetune(args) -> int:
    from xstilts import kinds, recipes
    from xstilts.accounting import CostMeter
    from xstilts.models import build_task_model, count_parameters, load_tokenizer, save_model_dir
    from xstilts.train import Trainer

    task = get_task(args.train_task)
    if not task.trainable or "train" not in task.sources:
        raise UserError(f"--train-task {task.name!r} has no English training split to fine-tune on")
    hp = recipes.resolve("finetune", args.hparams, task=task.name)
    _seed_everything(args.seed)
    tok = load_tokenizer(args.encoder)
    model = build_task_model(args.encoder, {task.head_name: _head_spec(task, args.data, hp)})
    _apply_adaptation(model, args.adaptation, hp)
    device = _device()
    model.to(device)
    stream, n = _task_stream(task, args.data, tok, hp)
    meter = CostMeter("finetune", device, count_parameters(model), training=True)
    dev_scorer = _dev_scorer(model, task.head_name, task, args.data, tok, hp, device, meter)
    key = _job_key(phase="finetune", encoder=args.encoder, task=task.name, data=args.data,
                   adaptation=args.adaptation, seed=args.seed, hp=hp)
    trainer = Trainer(model, tok, [stream], hp, args.seed, args.state_dir, meter, key,
                      label=args.label or f"finetune {task.name}", dev_eval=dev_scorer, log=_log,
                      progress=_progress)
    log = trainer.fit()
    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        save_model_dir(model, tok, tmp / "model")
        write_json(tmp / "dev.json", {"task": task.name, "best_dev": log["best_dev"], "best_step": log["best_step"],
                                      "metric": kinds.of(task).selection_metric(task)})
        write_json(tmp / "train_log.json", {**log, "train_examples": n, "hparams": hp, "adaptation": args.adaptation})
        write_json(tmp / "cost.json", meter.record(train_task=task.name, adaptation=args.adaptation, seed=args.seed))
    trainer.cleanup()
    return 0


def _target_specs(args, each: list[str], optional: list[str] = ()) -> list[SimpleNamespace]:
    """One namespace per --target of a multi-target verb: each flag in `each` given once per --target, each in
    `optional` once per --target or not at all (then None), paired with the targets in order."""
    n = len(args.target)
    for flag in [*each, *optional]:
        values = getattr(args, flag)
        if (values is not None or flag in each) and len(values or []) != n:
            raise UserError(f"--{flag}: {len(values or [])} given for {n} --target; give one per --target, in the "
                            "same order" + (" (or none at all)" if flag in optional else ""))
    resolved = [Path(o).resolve() for o in args.out]
    shared = next((o for o, r in zip(args.out, resolved) if resolved.count(r) > 1), None)
    if shared is not None:
        raise UserError(f"--out {shared!r} given for two targets; each target needs its own output directory")
    return [SimpleNamespace(target=t, **{f: getattr(args, f)[i] for f in each},
                            **{f: getattr(args, f)[i] if getattr(args, f) is not None else None for f in optional})
            for i, t in enumerate(args.target)]


def run_evaluate(args) -> int:
    """Every --target with its fine-tuned --model; a model shared by consecutive targets is loaded once."""
    from xstilts import recipes
    from xstilts.models import load_model_dir, load_tokenizer

    specs = _target_specs(args, ["model", "data", "out"], ["languages", "hparams"])
    for spec in specs:  # every target's recipe checked before any model is loaded
        if get_task(spec.target).retrieval:
            raise UserError(f"target {spec.target!r} is a retrieval task; use `xstilts retrieve`")
        spec.hp = recipes.resolve("evaluate", spec.hparams or {}, task=spec.target)
    device, loaded = _device(), None
    for spec in specs:
        if loaded is None or loaded[0] != spec.model:
            model = load_model_dir(spec.model)
            model.to(device)
            loaded = (spec.model, model, load_tokenizer(spec.model))
        _evaluate_target(spec, *loaded[1:], device)
    return 0


def _evaluate_target(spec, model, tok, device) -> None:
    import torch

    from xstilts import kinds
    from xstilts.accounting import CostMeter
    from xstilts.evaluate import candidate_vectors, predict, score_rows, write_submission
    from xstilts.features import encode
    from xstilts.kinds.base import CANDIDATES
    from xstilts.metrics import task_summary
    from xstilts.models import count_parameters

    task, hp = get_task(spec.target), spec.hp
    kind = kinds.of(task)
    head = next(iter(model.head_specs))
    train_task = get_task(model.head_specs[head]["task"])
    if train_task.name != task.train_on:
        raise UserError(f"model {spec.model} was fine-tuned on {train_task.name!r} but target {task.name!r} "
                        f"trains on {task.train_on!r}")
    labels = model.head_specs[head]["labels"]
    meter = CostMeter("evaluate", device, count_parameters(model), training=False)
    languages = spec.languages or list(task.languages)
    per_split: dict[str, dict] = {split: {} for split in _scored_splits(spec.data)}
    with atomic_path(Path(spec.out)) as tmp, torch.no_grad():
        tmp.mkdir()
        candidates = None
        if kind.candidate_schema:  # encoded once, for every language and split (Mewsli-X's entity table)
            table = _rows(spec.data, CANDIDATES)
            table_feats = encode(task, table, tok, hp, train=False, data_key=_data_key(spec.data, CANDIDATES, None),
                                 candidates=True)
            candidates = candidate_vectors(model, head, table, table_feats, hp, tok.pad_token_id, device, meter)
        # one prediction call per language, or one over every language when the kind pools them (LAReQA)
        groups = [",".join(languages)] if kind.pools_languages else languages
        for group in _each_language(f"evaluate {task.name}", groups, meter):
            group_langs = group.split(",")
            test_ids: set = set()
            for split, per_language in per_split.items():
                limit = hp["dev_max_examples"] if split == "dev" else None
                rows = _rows(spec.data, split, languages=group_langs, limit=limit)
                if split == "dev" and (not rows or {r["id"] for r in rows} <= test_ids):
                    # no dev labels in this language, or a "dev" that is test rows (data.missing_dev: test,
                    # TyDiQA's authors' selection set): not a separate validation split, so not scored as one
                    continue
                if not rows:
                    raise UserError(f"{spec.data}: split 'test' of {task.name} has no rows for language {group!r}")
                if split == "test":
                    test_ids = {r["id"] for r in rows}
                feats = encode(task, rows, tok, hp, train=False,
                               data_key=_data_key(spec.data, split, limit, group_langs), labels=labels)
                meter.examples += len(rows)
                preds = predict(model, head, task, rows, feats, labels, hp, tok.pad_token_id, device, meter,
                                candidates)
                for lang in group_langs:
                    idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
                    if not idx and split == "dev":
                        continue
                    if not idx:
                        raise UserError(f"{spec.data}: split 'test' of {task.name} has no rows for language {lang!r}")
                    lang_rows, lang_preds = [rows[i] for i in idx], [preds[i] for i in idx]
                    per_language[lang] = score_rows(task, lang_rows, lang_preds, lang)
                    write_submission(tmp, task, lang, lang_rows, lang_preds, labels, split)
        summary = task_summary(task.name, per_split["test"])
        write_json(tmp / "metrics.json", {"task": task.name, "metric": task.metric, **summary,
                                          "dev": _dev_summary(task.name, per_split)})
        write_json(tmp / "cost.json", meter.record(target=task.name))
    _log(f"evaluate {task.name}: score {summary['score']:.2f} over {len(per_split['test'])} languages")


def _scored_splits(data_dir: str) -> list[str]:
    """`test`, and `dev` too when the prepared data has one: every labelled split is scored (issue 12)."""
    from xstilts.data.prepare import read_manifest

    return ["test", "dev"] if "dev" in read_manifest(data_dir)["splits"] else ["test"]


def _dev_summary(task: str, per_split: dict[str, dict]) -> dict | None:
    """metrics.json's `dev`: the same layout as the (test) top level, or None when no language has dev labels."""
    from xstilts.metrics import task_summary

    return task_summary(task, per_split["dev"]) if per_split.get("dev") else None


def embed(model, tok, texts: list[str], layer: int, hp: dict, device, meter=None) -> np.ndarray:
    """Mean over non-pad tokens of hidden_states[layer] (index 0 = embeddings); retrieval L2-normalises."""
    import torch

    from xstilts import features as F
    from xstilts.models import autocast, hidden_size, mean_pool

    feats = {"input_ids": tok(texts, truncation=True, max_length=hp["max_length"])["input_ids"]}
    out = np.zeros((len(texts), hidden_size(model)), dtype=np.float32)
    model.eval()
    with torch.no_grad():
        for idx in F.sorted_batches(F.seq_lengths(feats), hp["eval_batch_size"]):
            batch = F.collate(feats, idx, tok.pad_token_id)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            if meter is not None:
                meter.add_tokens(int(mask.sum()), ids.numel(), len(idx))
            with autocast(device, hp.get("bf16", "auto")):
                states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
            out[idx] = mean_pool(states, mask).float().cpu().numpy()
    return out


def run_retrieve(args) -> int:
    """Every --target from one loaded --encoder."""
    from xstilts import recipes
    from xstilts.models import default_retrieval_layer, load_encoder, load_tokenizer, num_layers

    specs = _target_specs(args, ["data", "out"], ["languages"])
    for spec in specs:
        if not get_task(spec.target).retrieval:
            raise UserError(f"target {spec.target!r} is not a retrieval task; use `xstilts evaluate`")
    hp = recipes.resolve("retrieval", args.hparams)
    tok = load_tokenizer(args.encoder)
    model = load_encoder(args.encoder)
    device = _device()
    model.to(device)
    layer = hp["layer"] if hp["layer"] is not None else default_retrieval_layer(num_layers(model))
    if not 0 <= layer <= num_layers(model):
        raise UserError(f"retrieval layer {layer} outside 0..{num_layers(model)} for {args.encoder}")
    for spec in specs:
        _retrieve_target(spec, model, tok, layer, hp, device)
    return 0


def _retrieve_target(spec, model, tok, layer: int, hp: dict, device) -> None:
    """One retrieval target's every language by its kind's protocol (xstilts.kinds.retrieval)."""
    from xstilts import kinds
    from xstilts.accounting import CostMeter
    from xstilts.data.prepare import load_gold
    from xstilts.io import write_text
    from xstilts.metrics import task_summary
    from xstilts.models import count_parameters

    task = get_task(spec.target)
    kind = kinds.of(task)
    meter = CostMeter("retrieval", device, count_parameters(model), training=False)
    languages = spec.languages or list(task.languages)
    per_split: dict[str, dict] = {split: {} for split in _scored_splits(spec.data)}
    details = {}

    def embed_texts(texts: list[str]) -> np.ndarray:
        return embed(model, tok, texts, layer, hp, device, meter)

    with atomic_path(Path(spec.out)) as tmp:
        tmp.mkdir()
        for lang in _each_language(f"retrieve {task.name}", languages, meter, "sentences"):
            def write(file_kind: str, split: str, lines, lang=lang) -> None:
                write_text(tmp / file_kind / task.name / f"{split}-{lang}.tsv", "".join(f"{line}\n" for line in lines))

            scores, detail = kind.retrieve_language(
                task, spec.data, lang, list(per_split), rows=lambda split, lang=lang: _rows(spec.data, split, [lang]),
                gold=lambda split, lang=lang: [g for g in load_gold(spec.data, split).to_pylist() if g["lang"] == lang],
                embed=embed_texts, write=write, hp=hp)
            for split, value in scores.items():
                per_split[split][lang] = value
            if detail is not None:
                details[lang] = detail
        summary = task_summary(task.name, per_split["test"])
        write_json(tmp / "metrics.json", {"task": task.name, "metric": task.metric, "layer": layer,
                                          "bucc_dev_tuning": details or None, **summary,
                                          "dev": _dev_summary(task.name, per_split)})
        write_json(tmp / "cost.json", meter.record(target=task.name))
    _log(f"retrieve {task.name}: score {summary['score']:.2f} (layer {layer})")
