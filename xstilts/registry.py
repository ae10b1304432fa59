"""The one task registry: every intermediate and target task is declared here, once.

Loaders, heads, metrics, the CLI and the Snakemake DAG all read this module; nothing else keeps
a list of task names. Facts (hub ids, configs, schemas, languages) follow `shared/reference/xtreme.md`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from xstilts.errors import UserError

# Bump when the internal (normalised) schema of any kind changes: it is part of the prepare cache key.
SCHEMA_VERSION = 1

Kind = Literal[
    "classification",  # single sentence -> label
    "pair_classification",  # sentence pair -> label
    "multiple_choice",  # context/question + N choices -> index
    "qa",  # extractive QA, every question answerable (SQuAD v1.1 style)
    "qa_unanswerable",  # extractive QA with unanswerable questions (SQuAD v2.0 style)
    "tagging",  # one label per word
    "bitext_retrieval",  # Tatoeba: 1-NN from each source sentence into the English side
    "bitext_mining",  # BUCC: mine pairs from pools with distractors
]

# The internal schema of each kind: the columns `prepare` writes (parquet) and every later phase reads.
INTERNAL_SCHEMA: dict[str, dict[str, str]] = {
    "classification": {"id": "string", "lang": "string", "text_a": "string", "text_b": "string?", "label": "int64"},
    "pair_classification": {"id": "string", "lang": "string", "text_a": "string", "text_b": "string", "label": "int64"},
    "multiple_choice": {"id": "string", "lang": "string", "context": "string", "question": "string",
                        "choices": "list<string>", "label": "int64"},
    "qa": {"id": "string", "lang": "string", "context": "string", "question": "string",
           "answer_texts": "list<string>", "answer_starts": "list<int64>"},
    "qa_unanswerable": {"id": "string", "lang": "string", "context": "string", "question": "string",
                        "answer_texts": "list<string>", "answer_starts": "list<int64>"},
    "tagging": {"id": "string", "lang": "string", "tokens": "list<string>", "tags": "list<string>"},
    "bitext_retrieval": {"id": "string", "lang": "string", "source": "string", "target": "string"},
    # BUCC pools: one row per sentence of either side; gold pairs go to `<split>-gold.parquet`
    # with columns lang, src_id, en_id.
    "bitext_mining": {"lang": "string", "side": "string", "sent_id": "string", "text": "string"},
}

KIND_HEAD: dict[str, str | None] = {
    "classification": "classification",
    "pair_classification": "classification",
    "multiple_choice": "multiple_choice",
    "qa": "span",
    "qa_unanswerable": "span",
    "tagging": "tagging",
    "bitext_retrieval": None,
    "bitext_mining": None,
}

# Official XTREME language lists, in the official scorer's order.
XTREME_LANGUAGES: dict[str, tuple[str, ...]] = {
    "xnli": tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split()),
    "pawsx": tuple("de en es fr ja ko zh".split()),
    "udpos": tuple(("af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl tr "
                    "ur vi yo zh").split()),
    "panx": tuple(("ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja ka ko "
                   "th sw yo my zh kk tr et fi hu").split()),
    "xquad": tuple("en es de el ru tr ar vi th zh hi".split()),
    "mlqa": tuple("en es de ar hi vi zh".split()),
    "tydiqa": tuple("en ar bn fi id ko ru sw te".split()),
    "bucc2018": tuple("de fr ru zh".split()),
    "tatoeba": tuple(("ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka ko th "
                      "sw zh kk tr et fi hu").split()),
}

# Config-name spellings the hub uses for some tasks.
UDPOS_CONFIG_NAME = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "mr": "Marathi", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "yo": "Yoruba", "zh": "Chinese",
}
TATOEBA_ISO3 = {
    "af": "afr", "ar": "ara", "bn": "ben", "bg": "bul", "de": "deu", "zh": "cmn", "el": "ell", "et": "est",
    "eu": "eus", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind", "it": "ita",
    "jv": "jav", "ja": "jpn", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld",
    "fa": "pes", "pt": "por", "ru": "rus", "es": "spa", "sw": "swh", "ta": "tam", "te": "tel", "tl": "tgl",
    "th": "tha", "tr": "tur", "ur": "urd", "vi": "vie",
}
TYDIQA_LANGUAGE_NAME = {
    "en": "english", "ar": "arabic", "bn": "bengali", "fi": "finnish", "id": "indonesian", "ko": "korean",
    "ru": "russian", "sw": "swahili", "te": "telugu",
}

UPOS_TAGS = tuple("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split())
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
NLI_LABELS = ("entailment", "neutral", "contradiction")

# Pinned hub revisions. `refs/convert/parquet` is the hub's parquet export of each dataset, which loads
# without running any dataset script; pin a commit sha in config (`data.revisions`) for a frozen run.
# Every prepared split records the revision it was built from in its manifest.
DEFAULT_REVISION = "refs/convert/parquet"


@dataclass(frozen=True)
class Source:
    """One hub dataset (and the local mirror of it) a split is read from.

    `config` and `split` may contain `{lang}` (XTREME code), `{udpos_name}`, `{iso3}`; a local mirror
    stores the same files at `<local_dir>/<path>/<config>/<split>.parquet|jsonl`.
    """

    path: str
    config: str | None
    split: str
    raw_schema: str  # name of the raw-schema normaliser in xstilts.data.normalize
    # Only rows whose id starts with this prefix (TyDiQA's English training part).
    id_prefix: str | None = None
    local_only: bool = False


@dataclass(frozen=True)
class Task:
    name: str
    role: Literal["intermediate", "target"]
    kind: Kind
    metric: str
    languages: tuple[str, ...]
    # Split name -> the sources concatenated into it. Targets with per-language test data use `{lang}`.
    sources: dict[str, tuple[Source, ...]]
    labels: tuple[str, ...] | None = None  # None: label set read from the training data (CCG supertags)
    train_on: str | None = None  # targets: the task whose ENGLISH training split fine-tunes the model
    group: str | None = None  # targets: XTREME score group
    head: str | None = None  # tasks sharing a head name share one head in multi-task training
    description: str = ""

    @property
    def head_kind(self) -> str | None:
        return KIND_HEAD[self.kind]

    @property
    def head_name(self) -> str:
        return self.head or self.name

    @property
    def schema(self) -> dict[str, str]:
        return INTERNAL_SCHEMA[self.kind]

    @property
    def trainable(self) -> bool:
        return self.head_kind is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["head_kind"] = self.head_kind
        d["schema"] = self.schema
        return d


def _src(path, config, split, raw, **kw) -> tuple[Source, ...]:
    return (Source(path, config, split, raw, **kw),)


_X = "google/xtreme"

TASKS: dict[str, Task] = {}


def _register(task: Task) -> None:
    TASKS[task.name] = task


# --------------------------------------------------------------------------------------------- intermediate
_register(Task(
    "anli_plus", "intermediate", "pair_classification", "accuracy", ("en",), labels=NLI_LABELS, head="nli",
    description="ANLI r1-r3 + MNLI + SNLI, one NLI head (SNLI label -1 dropped)",
    sources={
        "train": (Source("anli", None, "train_r1", "anli"), Source("anli", None, "train_r2", "anli"),
                  Source("anli", None, "train_r3", "anli"), Source("glue", "mnli", "train", "glue_mnli"),
                  Source("snli", None, "train", "snli")),
        "dev": (Source("anli", None, "dev_r1", "anli"), Source("anli", None, "dev_r2", "anli"),
                Source("anli", None, "dev_r3", "anli")),
    },
))
_register(Task(
    "mnli", "intermediate", "pair_classification", "accuracy", ("en",), labels=NLI_LABELS, head="nli",
    description="MultiNLI", sources={"train": _src("glue", "mnli", "train", "glue_mnli"),
                                     "dev": _src("glue", "mnli", "validation_matched", "glue_mnli")},
))
_register(Task(
    "qqp", "intermediate", "pair_classification", "accuracy", ("en",), labels=("not_duplicate", "duplicate"),
    description="Quora Question Pairs", sources={"train": _src("glue", "qqp", "train", "glue_qqp"),
                                                "dev": _src("glue", "qqp", "validation", "glue_qqp")},
))
_register(Task(
    "squad_v1", "intermediate", "qa", "squad", ("en",), description="SQuAD v1.1",
    sources={"train": _src("squad", None, "train", "squad"), "dev": _src("squad", None, "validation", "squad")},
))
_register(Task(
    "squad_v2", "intermediate", "qa_unanswerable", "squad", ("en",), description="SQuAD v2.0 (unanswerable)",
    sources={"train": _src("squad_v2", None, "train", "squad"),
             "dev": _src("squad_v2", None, "validation", "squad")},
))
_register(Task(
    "hellaswag", "intermediate", "multiple_choice", "accuracy", ("en",), labels=("0", "1", "2", "3"),
    description="HellaSwag (labels are strings)",
    sources={"train": _src("Rowan/hellaswag", None, "train", "hellaswag"),
             "dev": _src("Rowan/hellaswag", None, "validation", "hellaswag")},
))
_register(Task(
    "commonsenseqa", "intermediate", "multiple_choice", "accuracy", ("en",), labels=("A", "B", "C", "D", "E"),
    description="CommonsenseQA (answer keys A-E)",
    sources={"train": _src("commonsense_qa", None, "train", "commonsense_qa"),
             "dev": _src("commonsense_qa", None, "validation", "commonsense_qa")},
))
_register(Task(
    "cosmosqa", "intermediate", "multiple_choice", "accuracy", ("en",), labels=("0", "1", "2", "3"),
    description="Cosmos QA",
    sources={"train": _src("cosmos_qa", None, "train", "cosmos_qa"),
             "dev": _src("cosmos_qa", None, "validation", "cosmos_qa")},
))
_register(Task(
    "ccg", "intermediate", "tagging", "token_accuracy", ("en",), labels=None,
    description="CCGbank supertagging (LDC licence: local files only, see docs/data.md)",
    sources={"train": _src("ccgbank", None, "train", "ccg", local_only=True),
             "dev": _src("ccgbank", None, "validation", "ccg", local_only=True)},
))

# --------------------------------------------------------------------------------------------- target
_register(Task(
    "xnli", "target", "pair_classification", "accuracy", XTREME_LANGUAGES["xnli"], labels=NLI_LABELS,
    train_on="mnli", group="classification", description="XNLI (trained on MNLI)",
    sources={"dev": _src(_X, "XNLI", "validation", "xnli"), "test": _src(_X, "XNLI", "test", "xnli")},
))
_register(Task(
    "pawsx", "target", "pair_classification", "accuracy", XTREME_LANGUAGES["pawsx"], labels=("0", "1"),
    train_on="pawsx", group="classification", description="PAWS-X (labels are strings '0'/'1')",
    sources={"train": _src(_X, "PAWS-X.{lang}", "train", "pawsx"),
             "dev": _src(_X, "PAWS-X.{lang}", "validation", "pawsx"),
             "test": _src(_X, "PAWS-X.{lang}", "test", "pawsx")},
))
_register(Task(
    "udpos", "target", "tagging", "seqeval_f1", XTREME_LANGUAGES["udpos"], labels=UPOS_TAGS,
    train_on="udpos", group="tagging", description="UD-POS v2.5 (seqeval over raw UPOS strings)",
    sources={"train": _src(_X, "udpos.{udpos_name}", "train", "udpos"),
             "dev": _src(_X, "udpos.{udpos_name}", "validation", "udpos"),
             "test": _src(_X, "udpos.{udpos_name}", "test", "udpos")},
))
_register(Task(
    "panx", "target", "tagging", "seqeval_f1", XTREME_LANGUAGES["panx"], labels=PANX_TAGS,
    train_on="panx", group="tagging", description="PAN-X / WikiANN NER",
    sources={"train": _src(_X, "PAN-X.{lang}", "train", "panx"),
             "dev": _src(_X, "PAN-X.{lang}", "validation", "panx"),
             "test": _src(_X, "PAN-X.{lang}", "test", "panx")},
))
_register(Task(
    "xquad", "target", "qa", "squad", XTREME_LANGUAGES["xquad"], train_on="squad_v1", group="qa",
    description="XQuAD (trained on SQuAD v1.1)", sources={"test": _src(_X, "XQuAD.{lang}", "validation", "squad")},
))
_register(Task(
    "mlqa", "target", "qa", "mlqa", XTREME_LANGUAGES["mlqa"], train_on="squad_v1", group="qa",
    description="MLQA, context language = question language (trained on SQuAD v1.1)",
    sources={"dev": _src(_X, "MLQA.{lang}.{lang}", "validation", "squad"),
             "test": _src(_X, "MLQA.{lang}.{lang}", "test", "squad")},
))
_register(Task(
    "tydiqa", "target", "qa", "squad", XTREME_LANGUAGES["tydiqa"], train_on="tydiqa", group="qa",
    description="TyDiQA-GoldP (English part of train; dev used as test)",
    sources={"train": _src(_X, "tydiqa", "train", "squad", id_prefix="english-"),
             "test": _src(_X, "tydiqa", "validation", "squad", id_prefix="{tydiqa_name}-")},
))
_register(Task(
    "bucc2018", "target", "bitext_mining", "bucc_f1", XTREME_LANGUAGES["bucc2018"], group="retrieval",
    description="BUCC 2018 mining: original files (pools + gold) from a local directory",
    sources={"dev": _src("bucc2018", "{lang}-en", "sample", "bucc_original", local_only=True),
             "test": _src("bucc2018", "{lang}-en", "training", "bucc_original", local_only=True)},
))
_register(Task(
    "tatoeba", "target", "bitext_retrieval", "accuracy", XTREME_LANGUAGES["tatoeba"], group="retrieval",
    description="Tatoeba 1-NN retrieval into English",
    sources={"test": _src(_X, "tatoeba.{iso3}", "validation", "tatoeba")},
))

XTREME_GROUPS = ("classification", "tagging", "qa", "retrieval")


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


def intermediate_tasks() -> list[str]:
    return [t.name for t in TASKS.values() if t.role == "intermediate"]


def target_tasks() -> list[str]:
    return [t.name for t in TASKS.values() if t.role == "target"]


def training_tasks_for(targets: list[str]) -> list[str]:
    """The distinct English training tasks the given targets fine-tune on (XQuAD and MLQA share one)."""
    out: list[str] = []
    for name in targets:
        t = get_task(name)
        if t.train_on and t.train_on not in out:
            out.append(t.train_on)
    return out


def targets_trained_on(train_task: str, targets: list[str]) -> list[str]:
    return [t for t in targets if get_task(t).train_on == train_task]


def source_format_args(lang: str) -> dict[str, str]:
    """Placeholders a Source's config/split/id_prefix may use."""
    return {
        "lang": lang,
        "udpos_name": UDPOS_CONFIG_NAME.get(lang, lang),
        "iso3": TATOEBA_ISO3.get(lang, lang),
        "tydiqa_name": TYDIQA_LANGUAGE_NAME.get(lang, lang),
    }


def task_records() -> list[dict]:
    return [
        {"name": t.name, "role": t.role, "kind": t.kind, "metric": t.metric, "train_on": t.train_on,
         "group": t.group, "head": t.head_name, "labels": list(t.labels) if t.labels else None,
         "languages": list(t.languages),
         "sources": {s: [f"{x.path}:{x.config or ''}:{x.split}" for x in xs] for s, xs in t.sources.items()},
         "schema": t.schema, "description": t.description}
        for t in TASKS.values()
    ]


# Multilingual material that is not a task: the unlabelled MLM corpus (CC-100 / Wikipedia text in real
# runs) and machine-translated intermediate training data (one file per task and language, in the
# task's own raw schema). Both are local-only.
CORPUS_SOURCE = Source("xstilts-corpus", "{lang}", "train", "text", local_only=True)


def translated_source(task: str) -> Source:
    """Where the machine-translated training data of an intermediate task lives (local mirror)."""
    raw = get_task(task).sources["train"][0].raw_schema
    return Source("xstilts-mt", f"{task}.{{lang}}", "train", raw, local_only=True)
