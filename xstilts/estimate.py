"""Cost before running (`xstilts estimate`): the projected tokens, FLOPs and device-hours of every job of a grid,
per rule and in all, and the same grid priced under the authors' jiant recipe and XTREME's reference scripts.

Jobs are `xstilts.grid`'s (the ones Snakemake runs), hyperparameters `grid.hparams` resolved by
`recipes.resolve`, FLOPs by `accounting.flops_per_token` (6N per trained token, 4N through frozen LoRA weights,
2N per inference token) with N counted on the job's model built on the meta device (no weights loaded).

Data: where a task's prepared data (manifest + parquet) and the backbone's tokenizer are on disk, each split
is tokenised with the very encoders training uses (`features.encode`): counts and lengths are measured.
Otherwise `registry.SIZE_FACTS` supplies counts (cited) and mean lengths (estimates, grade [E]); every job
says which (`data`: measured | facts).

The step count follows `train.Trainer` (micro-batches per epoch, MLM mixing, gradient accumulation); early
stopping is not predicted (a projection is an upper bound on training). Device-hours = executed FLOPs /
(peak of --gpu x --mfu): --mfu is the fraction of peak reached on the work done, padding included, so a
statically padded recipe pays for its padding.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from xstilts import grid, kinds, recipes, registry
from xstilts.accounting import flops_per_token
from xstilts.errors import UserError
from xstilts.kinds.base import CANDIDATES

# Dense bf16 peak TFLOP/s. H100: shared/reference/efficiency.md (MFU bullet: "H100 SXM dense bf16 ~ 989");
# H200 has the same Hopper SXM compute; A100 and V100 (fp16 tensor cores): NVIDIA's datasheets.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "V100": 125.0}
DEFAULT_GPU = "H100"
DEFAULT_MFU = 0.35  # an assumption (encoder fine-tuning at these lengths typically reaches 30-40%); state yours
# Rules with one job per row whose targets are projected one by one (grid.evaluate_args, grid.retrieve_args)
ROW_RULES = ("evaluate", "retrieve")
RULE_OF_PHASE = {"intermediate": "intermediate", "finetune": "finetune", "evaluate": "evaluate",
                 "retrieval": "retrieve"}

# The authors' jiant recipe: the same epochs, batches and evaluation schedule as xstilts' defaults (recipes.py
# is that recipe), every sequence padded to max_seq_length: 256, QA 384 (nyu-mll/jiant
# jiant/scripts/benchmarks/xtreme/subscripts/c_tokenize_and_cache.sh:16-86,165 256, :98,110,121,130,173 384,
# retrieval :142,154 512; micro-batch 4 and
# epochs d_write_configs.sh:15-63; eval every 1000 steps on 500 dev examples e_run_models.sh:16).
# XTREME's reference scripts (google-research/xtreme @ 838c13b): per training task the epochs, max_seq_length
# (static padding: third_party/run_classify.py:441 -> processors/utils.py:133-139; utils_tag.py:195-202),
# effective batch (XLM-R Large), and what is evaluated during training every `save_steps` (UD-POS: English dev
# every logging_steps 50; its save_steps evaluations, 10% more, are not counted).
XTREME_SCRIPTS = {
    "mnli": {"epochs": 5, "max_length": 128, "batch": 32, "every": 100, "test_langs": True, "dev": True,
             "cite": "scripts/train_xnli.sh:26-27,40-41,67,73 (--save_steps 100 --eval_test_set); "
                     "third_party/run_classify.py:242-256 (every test language and en dev each save_steps)"},
    "pawsx": {"epochs": 5, "max_length": 128, "batch": 32, "every": 200, "test_langs": True, "dev": True,
              "cite": "scripts/train_pawsx.sh:26-27,40-41,62,73-74; third_party/run_classify.py:242-256"},
    "udpos": {"epochs": 10, "max_length": 128, "batch": 32, "every": 50, "test_langs": False, "dev": True,
              "cite": "scripts/train_udpos.sh:25-26,40-41,60,67,72 (--evaluate_during_training); "
                      "third_party/run_tag.py:"
                      "183-196 (en dev every logging_steps, default 50 at :452, and every save_steps 500)"},
    "panx": {"epochs": 10, "max_length": 128, "batch": 32, "every": 1000, "test_langs": False, "dev": True,
             "cite": "scripts/train_panx.sh:25-26,40-41,61,73; third_party/run_tag.py:194-196 (en dev every "
                     "save_steps)"},
    "squad_v1": {"epochs": 3, "max_length": 384, "batch": 32, "every": None, "test_langs": False, "dev": False,
                 "cite": "scripts/train_qa.sh:26-31,66-68 (--save_steps -1: no evaluation while training)"},
}
XTREME_SCRIPTS["tydiqa"] = {**XTREME_SCRIPTS["squad_v1"], "cite": "scripts/train_qa.sh (XTREME trains TyDiQA "
                            "on SQuAD with the same script; priced here on the grid's TyDiQA job)"}
# XTREME-R's targets by XTREME-R's scripts (google-research/xtreme 838c13b; XLM-R Large's settings): neither
# evaluates while training (XCOPA keeps its last checkpoint, LAReQA's and Mewsli-X's evaluation is only a
# dev loss [U]).
XTREME_SCRIPTS["xcopa"] = {"epochs": 5, "max_length": 128, "batch": 32, "every": None, "test_langs": False,
                           "dev": False, "cite": "scripts/train_xcopa.sh:29-54 (batch 2 x accumulation 16)"}
XTREME_SCRIPTS["lareqa"] = {"epochs": 3, "max_length": 256, "batch": 16, "every": None, "test_langs": False,
                            "dev": False, "cite": "scripts/train_lareqa.sh:27-33,49-73 (batch 4 x accumulation 4)"}
XTREME_SCRIPTS["mewslix"] = {"epochs": 2, "max_length": 64, "batch": 32, "every": None, "test_langs": False,
                             "dev": False, "cite": "scripts/train_mewslix.sh:27-45,67-80 (batch 8 x accumulation 4; "
                                                   "its dev evaluation is a loss on wikipedia_pairs-dev [U])"}
XTREME_EVAL_LENGTH = {"xnli": 128, "pawsx": 128, "udpos": 128, "panx": 128, "xquad": 384, "mlqa": 384, "tydiqa": 384,
                      "xcopa": 128, "lareqa": 256, "mewslix": 64}


# ------------------------------------------------------------------------------------------- data profiles
@dataclass(frozen=True)
class Profile:
    """One selection of a split as a job sees it: examples, features (QA windows; one per example
    otherwise), sequences (multiple choice: a sequence per choice), useful tokens and the tokens executed
    with dynamic padding (`dynamic`) and with every sequence padded to the window (`static`)."""

    examples: int
    features: int
    sequences: int
    useful: float
    dynamic: float
    static: float
    data: str  # "measured" or "facts"

    def per_batch(self, batch: int) -> tuple[float, float, float]:
        n = max(1, math.ceil(self.features / batch))
        return self.useful / n, self.dynamic / n, self.static / n


_EMPTY = Profile(0, 0, 0, 0.0, 0.0, 0.0, "facts")


def _measured(task, data_dir: str, split: str, tok, hp: dict, train: bool, languages, limit) -> Profile:
    from xstilts import features as F
    from xstilts.phases import _labels, _rows

    if split not in _manifest(data_dir)["splits"]:
        return Profile(0, 0, 0, 0.0, 0.0, 0.0, "measured")
    rows = _rows(data_dir, split, languages=languages, limit=limit)
    if not rows:
        return Profile(0, 0, 0, 0.0, 0.0, 0.0, "measured")
    if task.retrieval:
        texts = kinds.of(task).texts(rows)
        feats = {"input_ids": tok(texts, truncation=True, max_length=hp["max_length"])["input_ids"]}
    else:
        feats = F.encode(task, rows, tok, hp, train=train, data_key={}, labels=_labels(task, data_dir),
                         candidates=split == CANDIDATES)
    ids = feats["input_ids"]
    nested = bool(ids) and isinstance(ids[0][0], list)
    seqs = [[c for c in x] for x in ids] if nested else [[x] for x in ids]
    useful = sum(len(c) for s in seqs for c in s)
    lengths = F.seq_lengths(feats)
    batch = hp["batch_size"] if train else hp["eval_batch_size"]
    order = F.length_grouped_batches(lengths, batch, 0, 0) if train else F.sorted_batches(lengths, batch)
    dynamic = sum(max(len(c) for i in idx for c in seqs[i]) * sum(len(seqs[i]) for i in idx) for idx in order)
    static = sum(len(s) for s in seqs) * hp["max_length"]
    return Profile(len(rows), len(ids), sum(len(s) for s in seqs), float(useful), float(dynamic), float(static),
                   "measured")


@functools.lru_cache(maxsize=None)
def _manifest(data_dir: str) -> dict:
    from xstilts.data.prepare import read_manifest

    return read_manifest(data_dir)


def _fact_count(task: str, split: str, lang: str | None):
    facts = registry.SIZE_FACTS[task]
    value = facts.get(split, 0)
    if isinstance(value, dict):
        return value.get(lang, 0)
    return value


def _from_facts(task, split: str, hp: dict, languages, limit, cap: int | None = None) -> Profile:
    """A split's profile from registry.SIZE_FACTS: `cap` per language (config data.max_examples, applied by
    prepare), then `limit` over the selection (phases._rows)."""
    facts = registry.SIZE_FACTS[task.name]
    langs = languages or (["en"] if split == "train" or task.role == "intermediate" else
                          ["*"] if split == CANDIDATES else list(task.languages))
    examples = sum(min(_fact_count(task.name, split, lang), cap or math.inf) for lang in langs)
    examples = int(min(examples, limit or math.inf))
    length, per_example = facts["tokens"], 1 if split == CANDIDATES else facts["sequences"]
    window = hp["max_length"]
    features = examples * kinds.of(task).windows(length, hp)
    seq = features * per_example
    useful = seq * min(length, window)
    dynamic = useful * 1.05  # [E] length-grouped batches pad little (measured ratio on the demo: see docs)
    return Profile(examples, features, seq, float(useful), float(dynamic), float(seq * window), "facts")


class _Data:
    """Profiles of the config's prepared data: measured when on disk (with the backbone's tokenizer), else facts."""

    def __init__(self, config: dict, backbone: str, measure: bool = True):
        self.config, self.measure = config, measure
        self.cap = config["data"]["max_examples"]
        self.tok = None
        mdir = Path(grid.model_dir(backbone, config))
        if measure and ((mdir / "config.json").exists() or (mdir / "encoder" / "config.json").exists()):
            from xstilts.models import load_tokenizer

            self.tok = load_tokenizer(mdir)
        self.cache: dict = {}

    def dir_of(self, task: str, translated: bool = False) -> str | None:
        path = grid.translated_dir(self.config, task) if translated else grid.prepared_dir(self.config, task)
        return path if self.tok is not None and (Path(path) / "manifest.json").exists() else None

    def profile(self, task_name: str, split: str, hp: dict, train: bool, languages=None, limit=None,
                translated: bool = False) -> Profile:
        key = (task_name, split, json.dumps(hp, sort_keys=True, default=str), train, tuple(languages or ()), limit,
               translated)
        if key not in self.cache:
            task = registry.get_task(task_name)
            data_dir = self.dir_of(task_name, translated)
            if data_dir is not None:
                if translated and limit:  # phases._task_stream: `limit` translated rows per language
                    limit *= len(_manifest(data_dir)["languages"])
                self.cache[key] = _measured(task, data_dir, split, self.tok, hp, train, languages, limit)
            elif translated:  # facts: the English set once per language the prepare job translates into
                base = _from_facts(task, split, hp, None, limit, self.cap)
                job = next(j for j in grid.prepare_jobs(self.config) if j.kind == "translated" and j.task == task_name)
                hub = registry.TRANSLATED_HUB_SOURCES.get(task_name)
                n = len(job.languages or (hub.languages if hub else ()) or ()) or 1
                self.cache[key] = Profile(*(x * n for x in (base.examples, base.features, base.sequences,
                                                            base.useful, base.dynamic, base.static)), "facts")
            else:
                self.cache[key] = _from_facts(task, split, hp, languages, limit, self.cap)
        return self.cache[key]

    def corpus(self, n: int, hp: dict) -> Profile:
        cdir = grid.corpus_dir(self.config)
        if self.tok is not None and (Path(cdir) / "manifest.json").exists():
            from xstilts.features import encode_text
            from xstilts.phases import _rows

            rows = _rows(cdir, "train", limit=n)
            ids = encode_text(rows, self.tok, hp["max_length"])["input_ids"]
            useful = float(sum(map(len, ids)))
            return Profile(len(ids), len(ids), len(ids), useful, useful * 1.05, float(len(ids) * hp["max_length"]),
                           "measured")
        length = min(registry.CORPUS_TOKENS, hp["max_length"])
        return Profile(n, n, n, n * length, n * length * 1.05, float(n * hp["max_length"]), "facts")


# ------------------------------------------------------------------------------------------- parameters
@functools.lru_cache(maxsize=None)
def _encoder_config_json(config_json: str):
    from transformers import AutoConfig

    spec = json.loads(config_json)
    return AutoConfig.for_model(spec.pop("model_type"), **spec)


def encoder_config(config: dict, backbone: str):
    """The backbone's architecture: its model directory's config.json, else (not yet fetched or pretrained) the
    registry's architecture of a hub model or the pretrain hyperparameters."""
    from transformers import AutoConfig

    mdir = Path(grid.model_dir(backbone, config))
    for d in (mdir / "encoder", mdir):
        if (d / "config.json").exists():
            return AutoConfig.from_pretrained(d)
    spec = config["backbones"][backbone]
    if spec["kind"] == "hub":
        if spec["model"] not in registry.BACKBONE_ARCHITECTURES:
            raise UserError(f"config key backbones.{backbone}.model: no architecture for {spec['model']!r} in "
                            "registry.BACKBONE_ARCHITECTURES and no model directory at "
                            f"{mdir}; fetch it first (xstilts fetch-model) to estimate its cost")
        return _encoder_config_json(json.dumps(registry.BACKBONE_ARCHITECTURES[spec["model"]]))
    hp = recipes.resolve("pretrain", grid.hparams(config, "pretrain"))
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
    return _encoder_config_json(json.dumps({"model_type": "xlm-roberta", "max_position_embeddings": 514,
                                            "type_vocab_size": 1, **{k: hp[k] for k in keys}}))


def job_params(enc_config, heads: list[tuple[str, int | None]], adaptation: str, hp: dict,
               mlm: bool = False) -> dict[str, int]:
    """`_job_params` once per distinct model (a grid has few: its heads, adaptations and the mlm variant)."""
    return _job_params(enc_config.to_json_string(), tuple(heads), adaptation,
                       hp["lora_r"] if adaptation == "lora" else None, mlm)


@functools.lru_cache(maxsize=None)
def _job_params(config_json: str, heads: tuple, adaptation: str, lora_r: int | None, mlm: bool) -> dict[str, int]:
    """models.count_parameters of the job's model, built on the meta device: the encoder (with its MLM head
    for the mlm variant), the task heads, and LoRA adapters (r x (in + out) per targeted projection; the rest
    frozen)."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    from xstilts.kinds.heads import get as head_kind
    from xstilts.models import LORA_TARGETS, T5_LIKE, TaskModel, count_parameters

    spec = json.loads(config_json)
    enc_config = AutoConfig.for_model(spec.pop("model_type"), **spec)

    with torch.device("meta"):
        if mlm:
            encoder = AutoModelForMaskedLM.from_config(enc_config)
        elif enc_config.model_type in ("bert", "roberta", "xlm-roberta"):
            encoder = AutoModel.from_config(enc_config, add_pooling_layer=False)
        else:
            from transformers import AutoModelForTextEncoding

            cls = AutoModelForTextEncoding if enc_config.model_type in T5_LIKE else AutoModel
            encoder = cls.from_config(enc_config)
        hidden = getattr(enc_config, "hidden_size", None) or enc_config.d_model
        head_modules = torch.nn.ModuleList(head_kind(kind).build(hidden, n) for kind, n in heads)
    base = encoder.base_model if mlm else encoder
    # counted as the job counts its TaskModel: the encoder first, so a tied MLM decoder is the embedding matrix
    model = TaskModel(base, {str(i): h for i, h in enumerate(head_modules)}, {}, encoder if mlm else None)
    out, head = count_parameters(model), count_parameters(head_modules)
    if adaptation == "lora":
        targets = set(LORA_TARGETS.get(enc_config.model_type, ()))
        lora = sum(lora_r * (m.in_features + m.out_features) for name, m in base.named_modules()
                   if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets)
        out = {"total": out["total"] + lora, "non_embedding": out["non_embedding"] + lora,
               "trainable": head["trainable"] + lora, "trainable_non_embedding": head["trainable_non_embedding"] + lora}
    return out


def _head(task_name: str, data: _Data) -> tuple[str, int | None]:
    task = registry.get_task(task_name)
    n = len(task.labels) if task.labels is not None else None
    if n is None:  # labels read from the data (CCG supertags): the manifest's, else ~ 400 [E]
        d = data.dir_of(task_name)
        n = len(_manifest(d).get("labels") or []) if d else 400
    return task.head_kind, n


# ------------------------------------------------------------------------------------------- jobs
def _steps(features: list[int], batch: int, hp: dict, mlm_ratio: float) -> int:
    """train.Trainer.total_steps."""
    task_batches = sum(math.ceil(f / batch) for f in features)
    micro = task_batches / (1 - mlm_ratio) if mlm_ratio else task_batches
    steps = math.ceil(micro * hp["epochs"] / hp["grad_accum"])
    return min(steps, hp["max_steps"]) if hp.get("max_steps") else steps


def _record(rule, row, name, params, training, useful, dynamic, static, dev=(0.0, 0.0, 0.0), steps=0,
            data="facts", evals=0) -> dict:
    fpt, convention = flops_per_token(params, training)
    inf, _ = flops_per_token(params, False)
    return {"rule": rule, "row": row.path, "name": name, "data": data, "steps": steps, "dev_evals": evals,
            "n_params_non_embedding": params["non_embedding"], "flops_convention": convention,
            "useful_tokens": useful, "executed_tokens": dynamic, "static_tokens": static,
            "useful_flops": fpt * useful, "executed_flops": fpt * dynamic, "static_flops": fpt * static,
            "dev_eval_useful_tokens": dev[0], "dev_eval_useful_flops": inf * dev[0],
            "dev_eval_executed_flops": inf * dev[1], "dev_eval_static_flops": inf * dev[2]}


def _train_job(rule, row, name, task_names, hp, data, params, variant, mt=False, runs_per_task=None) -> dict:
    batch, r = hp["batch_size"], 0.0
    profiles = [data.profile(t, "train", hp, True, limit=hp.get("max_train_examples")) for t in task_names]
    if mt:  # phases._task_stream: the translated rows (limit x languages) join the task's stream
        extra = [data.profile(t, "train", hp, True, limit=hp.get("max_train_examples"), translated=True)
                 for t in task_names]
        profiles = [Profile(p.examples + e.examples, p.features + e.features, p.sequences + e.sequences,
                            p.useful + e.useful, p.dynamic + e.dynamic, p.static + e.static, p.data)
                    for p, e in zip(profiles, extra)]
    if variant == "mlm":
        r = hp["mlm_ratio"]
    steps = _steps([p.features for p in profiles], batch, hp, r)
    micro = steps * hp["grad_accum"]
    sizes = [p.features for p in profiles]
    probs = [s / sum(sizes) for s in sizes] if sum(sizes) else []
    if hp.get("task_sampling") == "temperature" and sizes:
        w = [s ** (1 / hp["sampling_temperature"]) for s in sizes]
        probs = [x / sum(w) for x in w]
    per = [0.0, 0.0, 0.0]
    for p, q in zip(profiles, probs):  # train.Trainer._pick_stream: a stream per micro-batch, by size
        for i, v in enumerate(p.per_batch(batch)):
            per[i] += (1 - r) * q * v
    if variant == "mlm":
        corpus = data.corpus(sum(p.examples for p in profiles), hp)
        for i, v in enumerate(corpus.per_batch(batch)):
            per[i] += r * v
    dev = [0.0, 0.0, 0.0]
    evals = 0
    for t in task_names:
        runs = runs_per_task(steps)
        evals += runs
        prof = data.profile(t, "dev", hp, False, languages=["en"], limit=hp["eval_examples"])  # phases._dev_scorer
        for i, v in enumerate((prof.useful, prof.dynamic, prof.static)):
            dev[i] += runs * v
    kind = "measured" if all(p.data == "measured" for p in profiles) else "facts"
    return _record(rule, row, name, params, True, micro * per[0], micro * per[1], micro * per[2], tuple(dev),
                   steps, kind, evals)


def _finetune_runs(every):
    return lambda steps: steps // every + (1 if steps % every else 0)  # Trainer._evaluate: every N and the last


def _monitor_runs(every):
    return lambda steps: (steps - 1) // every + 1  # Trainer._monitor before the end, then phases' final dev_scores


def jobs(config: dict, measure: bool = True) -> list[dict]:
    """One projection per intermediate / finetune / evaluate / retrieve job of the grid."""
    out = []
    data_by_backbone = {b: _Data(config, b, measure) for b in config["backbones"]}
    enc_by_backbone = {b: encoder_config(config, b) for b in config["backbones"]}
    for row in grid.rows(config):
        data, enc = data_by_backbone[row.backbone], enc_by_backbone[row.backbone]
        if row.intermediate != grid.NONE:
            tasks = grid.tasks_of(config, row.intermediate)
            hp = recipes.resolve("intermediate", grid.hparams(config, "intermediate", row.intermediate))
            params = job_params(enc, [_head(t, data) for t in tasks], row.adaptation, hp, row.variant == "mlm")
            out.append(_train_job("intermediate", row, "+".join(tasks), tasks, hp, data, params, row.variant,
                                  mt=row.variant == "mt", runs_per_task=_monitor_runs(hp["eval_every"])))
        for t in grid.training_tasks(config):
            hp = recipes.resolve("finetune", grid.hparams(config, "finetune", t), task=t)
            params = job_params(enc, [_head(t, data)], row.adaptation, hp)
            out.append(_train_job("finetune", row, t, [t], hp, data, params, "en",
                                  runs_per_task=_finetune_runs(hp["eval_every"])))
        for target in grid.eval_targets(config):
            task = registry.get_task(target)
            hp = recipes.resolve("evaluate", grid.hparams(config, "evaluate", target), task=target)
            params = job_params(enc, [_head(task.train_on, data)], "full", hp)
            langs = grid.languages(config, target) or list(task.languages)
            test = data.profile(target, "test", hp, False, languages=langs)
            dev = _sum(data.profile(target, "dev", hp, False, languages=[x], limit=hp["dev_max_examples"])
                       for x in langs) if "dev" in task.sources else _EMPTY  # phases.run_evaluate: capped per language
            # a candidate table is encoded once per evaluation (phases._evaluate_target)
            table = data.profile(target, CANDIDATES, hp, False) if kinds.of(task).candidate_schema else _EMPTY
            tot = _sum([test, dev, table])
            out.append(_record("evaluate", row, target, params, False, tot.useful, tot.dynamic, tot.static,
                               data=test.data))
        for target in grid.retrieval_targets(config):
            task = registry.get_task(target)
            hp = recipes.resolve("retrieval", grid.hparams(config, "retrieval"))
            params = job_params(enc, [], "full", hp)
            langs = grid.languages(config, target) or list(task.languages)
            tot = _sum(data.profile(target, s, hp, False, languages=langs) for s in ("dev", "test")
                       if s in task.sources)
            out.append(_record("retrieve", row, target, params, False, tot.useful, tot.dynamic, tot.static,
                               data=tot.data))
    return out


def _sum(profiles) -> Profile:
    ps = list(profiles)
    return Profile(*(sum(getattr(p, f) for p in ps) for f in ("examples", "features", "sequences", "useful",
                                                               "dynamic", "static")),
                   "measured" if ps and all(p.data == "measured" for p in ps) else "facts")


# ------------------------------------------------------------------------------------------- the recipes priced
def _xtreme_flops(job: dict, config: dict, data: _Data) -> float:
    """One job's FLOPs (training + in-training evaluation) under XTREME's reference scripts: finetune jobs by
    XTREME_SCRIPTS, evaluate jobs padded to XTREME_EVAL_LENGTH; intermediate jobs as jiant and retrieval as
    xstilts (the scripts have neither an intermediate phase nor a cost model of ours for retrieval)."""
    if job["rule"] == "intermediate":
        return job["static_flops"] + job["dev_eval_static_flops"]
    if job["rule"] == "retrieve":
        return job["executed_flops"]
    inference = 2 * job["n_params_non_embedding"]  # accounting.flops_per_token(training=False)
    if job["rule"] == "evaluate":
        task = registry.get_task(job["name"])
        hp = {**recipes.resolve("evaluate", task=job["name"]), "max_length": XTREME_EVAL_LENGTH[job["name"]]}
        langs = grid.languages(config, job["name"]) or list(task.languages)
        return inference * data.profile(job["name"], "test", hp, False, languages=langs).static
    ref = XTREME_SCRIPTS[job["name"]]
    hp = recipes.resolve("finetune", {**grid.hparams(config, "finetune", job["name"]),
                                      "max_length": ref["max_length"]}, task=job["name"])
    train = data.profile(job["name"], "train", hp, True, limit=hp.get("max_train_examples"))
    steps = math.ceil(train.features / ref["batch"]) * ref["epochs"]
    per_token = job["useful_flops"] / job["useful_tokens"] if job["useful_tokens"] else 0.0
    evals = steps // ref["every"] if ref["every"] else 0
    tokens = 0.0
    targets = registry.targets_trained_on(job["name"], grid.eval_targets(config))
    if ref["dev"]:  # the English dev of the target (XNLI's for MNLI), as the scripts read it
        dev_task = next((t for t in targets if "dev" in registry.get_task(t).sources), job["name"])
        tokens += data.profile(dev_task, "dev", hp, False, languages=["en"]).static
    if ref["test_langs"]:
        for target in targets:
            langs = grid.languages(config, target) or list(registry.get_task(target).languages)
            tokens += data.profile(target, "test", {**recipes.resolve("evaluate", task=target),
                                                    "max_length": ref["max_length"]}, False, languages=langs).static
    return per_token * train.static * ref["epochs"] + inference * tokens * evals


def summarize(config: dict, job_list: list[dict], gpu: str, mfu: float, measure: bool = True) -> dict:
    """Totals per rule and for the grid under three recipes (FLOPs incl. in-training dev evaluation; hours
    from executed FLOPs), with the ratios to xstilts."""
    peak = PEAK_TFLOPS[gpu] * 1e12 * mfu
    data = {b: _Data(config, b, measure) for b in config["backbones"]}
    backbone_of = {r.path: r.backbone for r in grid.rows(config)}
    rules: dict[str, dict] = {}
    seen_jobs = set()
    for job in job_list:
        r = rules.setdefault(job["rule"], {"jobs": 0, "useful_tokens": 0.0, "executed_tokens": 0.0,
                                           "useful_flops": 0.0, "dev_eval_flops": 0.0, "executed_flops": 0.0,
                                           "jiant_flops": 0.0, "xtreme_flops": 0.0})
        key = (job["rule"], job["row"], None if job["rule"] in ROW_RULES else job["name"])
        r["jobs"] += key not in seen_jobs
        seen_jobs.add(key)
        r["useful_tokens"] += job["useful_tokens"] + job["dev_eval_useful_tokens"]
        r["executed_tokens"] += job["executed_tokens"]
        r["useful_flops"] += job["useful_flops"]
        r["dev_eval_flops"] += job["dev_eval_executed_flops"]
        r["executed_flops"] += job["executed_flops"] + job["dev_eval_executed_flops"]
        r["jiant_flops"] += job["static_flops"] + job["dev_eval_static_flops"]
        r["xtreme_flops"] += _xtreme_flops(job, config, data[backbone_of[job["row"]]])
    total = {k: sum(r[k] for r in rules.values()) for k in next(iter(rules.values()), {})}
    for r in [*rules.values(), total]:
        r["device_hours"] = r["executed_flops"] / peak / 3600
        r["jiant_device_hours"] = r["jiant_flops"] / peak / 3600
        r["xtreme_device_hours"] = r["xtreme_flops"] / peak / 3600
        r["jiant_ratio"] = r["jiant_flops"] / r["executed_flops"] if r["executed_flops"] else None
        r["xtreme_ratio"] = r["xtreme_flops"] / r["executed_flops"] if r["executed_flops"] else None
    kinds = sorted({j["data"] for j in job_list})
    return {"experiment": config["experiment"], "gpu": gpu, "peak_tflops": PEAK_TFLOPS[gpu], "mfu": mfu,
            "data": kinds, "rules": rules, "total": total,
            "notes": ["FLOPs: accounting.flops_per_token (6N trained, 4N through frozen LoRA weights, 2N inference)",
                      "device-hours = executed FLOPs / (peak x mfu); early stopping not predicted (upper bound)",
                      "data 'facts': counts from registry.SIZE_FACTS (cited), mean lengths " +
                      registry.SIZE_FACTS_TOKENS_GRADE,
                      "jiant: the same schedule, every sequence padded to max_seq_length (256, QA 384)",
                      "xtreme: finetune and evaluate jobs by XTREME's scripts (estimate.XTREME_SCRIPTS); "
                      "intermediate jobs as jiant, retrieval as xstilts (the scripts have neither)"]}


@functools.lru_cache(maxsize=4)
def _job_hours(config_json: str, gpu: str, mfu: float) -> dict:
    config = json.loads(config_json)
    peak = PEAK_TFLOPS[gpu] * 1e12 * mfu
    return {(j["rule"], j["row"], j["name"]): (j["executed_flops"] + j["dev_eval_executed_flops"]) / peak / 3600
            for j in jobs(config)}


def runtime_minutes(config: dict, rule: str, wildcards) -> int | None:
    """Slurm `runtime` (minutes, attempt 1) of one job from its projection x `resources_from_estimate.safety`;
    None when the config does not ask for it or the rule is not one the estimate prices."""
    opts = config.get("resources_from_estimate")
    if not opts or rule not in RULE_OF_PHASE.values() or wildcards is None:
        return None
    if opts["gpu"] not in PEAK_TFLOPS:
        raise UserError(f"config key resources_from_estimate.gpu: {opts['gpu']!r} is not valid; expected one of "
                        f"{', '.join(PEAK_TFLOPS)}")
    w = dict(wildcards.items()) if hasattr(wildcards, "items") else dict(wildcards)
    row = grid.ROW_PATTERN.format(**{k: w[k] for k in ("backbone", "adaptation", "seed", "intermediate", "variant")})
    if rule in ROW_RULES:  # the sum over the row's targets
        names = grid.eval_targets(config) if rule == "evaluate" else grid.retrieval_targets(config)
    else:
        names = [w.get("train_task") or "+".join(grid.tasks_of(config, w["intermediate"]))]
    projected = _job_hours(json.dumps(config, sort_keys=True, default=str), opts["gpu"], opts["mfu"])
    if any((rule, row, name) not in projected for name in names):
        return None
    hours = sum(projected[(rule, row, name)] for name in names)
    return max(opts.get("min_minutes", 5), math.ceil(hours * 60 * opts["safety"]))


# ------------------------------------------------------------------------------------------- CLI
def _fmt(x: float) -> str:
    return f"{x:.3g}" if x < 1e4 else f"{x:.2e}"


def main(args) -> int:
    if args.gpu not in PEAK_TFLOPS:
        raise UserError(f"--gpu {args.gpu!r}: unknown; expected one of {', '.join(PEAK_TFLOPS)}")
    if not 0 < args.mfu <= 1:
        raise UserError(f"--mfu {args.mfu}: expected a fraction in (0, 1]")
    schema = args.schema or "workflow/schemas/config.schema.yaml"
    config = grid.load_config(args.configfile, schema)
    job_list = jobs(config)
    summary = summarize(config, job_list, args.gpu, args.mfu)
    if args.json:
        print(json.dumps({**summary, "jobs": job_list if args.jobs else None}, indent=2))
        return 0
    print(f"{config['experiment']}: {summary['total']['jobs']} jobs on {args.gpu} ({summary['peak_tflops']:.0f} TFLOP/s bf16 "
          f"peak) at MFU {args.mfu}; data: {', '.join(summary['data'])}")
    head = f"{'rule':<14}{'jobs':>6}{'tokens':>11}{'train FLOPs':>13}{'dev-eval FLOPs':>16}{'device-h':>11}" \
           f"{'jiant h':>10}{'x':>6}{'XTREME h':>11}{'x':>6}"
    print(head)
    for name, r in [*summary["rules"].items(), ("total", summary["total"])]:
        print(f"{name:<14}{r['jobs']:>6}{_fmt(r['useful_tokens']):>11}{_fmt(r['useful_flops']):>13}"
              f"{_fmt(r['dev_eval_flops']):>16}{_fmt(r['device_hours']):>11}{_fmt(r['jiant_device_hours']):>10}"
              f"{r['jiant_ratio'] or 0:>6.2f}{_fmt(r['xtreme_device_hours']):>11}{r['xtreme_ratio'] or 0:>6.2f}")
    for note in summary["notes"]:
        print(f"  {note}")
    return 0
