"""The one task registry: every intermediate and target task is declared here, once.

Loaders, heads, metrics, the CLI and the Snakemake DAG all read this module; nothing else keeps
a list of task names. Each task names its kind (xstilts.kinds), which holds the
behaviour; this module holds data only. Facts (hub ids, configs, schemas, languages) follow `shared/reference/xtreme.md`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from xstilts import kinds
from xstilts.errors import UserError

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

# XTREME-R's lists for its new targets, in the official scorer's order (google-research/xtreme evaluate.py,
# 838c13b, XTREME_R_TASK2LANGS lines 160-176; docs/data.md "XTREME-R").
XTREME_R_LANGUAGES: dict[str, tuple[str, ...]] = {
    "xcopa": tuple("et ht id it qu sw ta th tr vi zh".split()),  # no English test set
    # LAReQA: the scorer's list is empty (it does not score LAReQA); these are the xquad-r files' languages
    # (google-research-datasets/lareqa 9bc8c7f, xquad-r/<lang>.json), every one in the pool
    "lareqa": tuple("ar de el en es hi ru th tr vi zh".split()),
    # Mewsli-X: the WikiNews mention languages, English scored too (also utils_mewslix.MENTION_LANGUAGES)
    "mewslix": tuple("ar de en es fa ja pl ro ta tr uk".split()),
}

# XTREME-R's languages of XTREME tasks that XTREME lacks (evaluate.py 838c13b:160-176), where a source for them
# is registered: full WikiANN for PAN-X, google/xquad for XQuAD (docs/data.md, "XTREME-R sources"). UD-POS's
# five (UD 2.7) and Tatoeba's five have none yet (registry.Benchmark.unreadable_languages names them).
XTREME_R_ADDED_LANGUAGES: dict[str, tuple[str, ...]] = {
    "panx": tuple("qu pl uk az lt pa gu ro".split()),
    "xquad": ("ro",),
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

# UD-POS languages whose hub config has no validation split (Kazakh: train + test; Thai, Tagalog, Yoruba:
# test only; hub-sources.md section 1 [V]): test-only languages, never needed for selection (English dev is).
UDPOS_TEST_ONLY = ("kk", "th", "tl", "yo")

UPOS_TAGS = tuple("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split())
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
NLI_LABELS = ("entailment", "neutral", "contradiction")

# A hub revision that is a commit id; anything else (a branch, `refs/convert/parquet`, `refs/pr/N`) is resolved
# to one by `xstilts lock` before a run (xstilts/data/lock.py).
COMMIT_RE = r"[0-9a-f]{40}"


@dataclass(frozen=True)
class Source:
    """One split of one dataset, read from its hub repository (`REPOS[path]`) or from the local mirror of it.

    `config` and `split` may contain `{lang}` (XTREME code), `{udpos_name}`, `{iso3}`; a local mirror
    stores the same columns at `<local_dir>/<path>/<config>/<split>.parquet|jsonl`.
    """

    path: str  # the local-mirror folder; `REPOS[path]` names the hub repository behind it
    config: str | None
    split: str
    raw_schema: str  # name of the raw-schema normaliser in xstilts.data.normalize
    # Only rows whose id starts with this prefix (TyDiQA's English training part).
    id_prefix: str | None = None
    # No loadable hub copy (licensed data, a script-only repository, a local layout): the manual step that
    # fills the local mirror. Such a source is always read from the local mirror.
    manual: str | None = None
    # The languages this split exists in; None: every language of its task. (UD-POS kk/th/tl/yo have no
    # validation split: they are test-only.)
    languages: tuple[str, ...] | None = None
    # Hub only: read these parquet files (a glob in the repository, placeholders allowed) instead of the
    # README `configs:` entry, for layouts without one (`refs/convert/parquet`) or a first shard of a dump;
    # `config` then names only the local mirror's folder.
    data_files: str | None = None

    @property
    def local_only(self) -> bool:
        return self.manual is not None

    def has_language(self, lang: str) -> bool:
        return self.languages is None or lang in self.languages


@dataclass(frozen=True)
class HubRepo:
    """A hub dataset repository and the revision every source in it is read at."""

    id: str  # canonical namespaced id (short ids redirect today, cache folders follow the id passed)
    revision: str  # a commit where a loadable one is established, else a branch that `xstilts lock` resolves
    config: str | None = None  # the hub config of sources whose local mirror has no config folder
    evidence: str = ""  # where the id, layout and revision come from: shared/reference/hub-sources.md section


# The hub repository behind each local-mirror folder, with its pinned revision (hub-sources.md, evidence
# grades [V] seen on a stored hub page, [C] pinned by third-party code). Config `data.revisions` overrides
# a revision by repository id.
REPOS: dict[str, HubRepo] = {r.id if k is None else k: r for k, r in [
    ("anli", HubRepo("facebook/anli", "8e4813d81f46d313dac7892e1c28076917cfcdf9", "plain_text",
                     "§5: 'Convert dataset to Parquet (#5)' [V]; splits train_r1..test_r3")),
    ("glue", HubRepo("nyu-mll/glue", "bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c", None,
                     "§2: parquet at bcdcba79 [C]; configs mnli, qqp")),
    ("snli", HubRepo("stanfordnlp/snli", "cdb5c3d5eed6ead6e5a341c8e56e669bb666725b", "plain_text",
                     "§6: 'Convert dataset to Parquet (#6)', script deleted [V]")),
    ("squad", HubRepo("rajpurkar/squad", "7b6d24c440a36b6815f21b70d25016731768db1f", "plain_text",
                      "§3: main as re-resolved 2026-09-02 [C]")),
    ("squad_v2", HubRepo("rajpurkar/squad_v2", "3ffb306f725f7d2ce8394bc1873b24868140c412", "squad_v2",
                         "§4: pinned by 2026 projects [C]; file names [U]")),
    (None, HubRepo("Rowan/hellaswag", "218ec52e09a7e7462a5400043bb9a69a41d06b76", None,
                   "§7: hub HEAD 2026-09-15, loads with datasets 4.5 [C]; config default")),
    ("commonsense_qa", HubRepo("tau/commonsense_qa", "94630fe30dad47192a8546eb75f094926d47e155", None,
                               "§8: lighteval pin, parquet [C]; config default")),
    ("cosmos_qa", HubRepo("allenai/cosmos_qa", "7abfcdbc4014160732caee7b065177e7ac54679b", None,
                          "§9: main holds the loading script cosmos_qa.py [V]: manual source")),
    ("social_i_qa", HubRepo("allenai/social_i_qa", "6db3dcea20d5430c3dd74bf85fe9ca87268ea91b", None,
                            "docs/data.md 'XTREME-R sources': 'Convert dataset to Parquet' (PR #3: "
                            "data/{train,validation}-00000-of-00001.parquet, README configs, social_i_qa.py "
                            "removed) [V commit page]; whether that commit is on main [U]")),
    ("xcopa", HubRepo("cambridgeltl/xcopa", "042f78955ba48e6404616762fa6e05e839c3907a", None,
                      "docs/data.md 'XTREME-R sources': 'Convert dataset to Parquet (#3)' on main [V commit page]; <lang>/{validation,test}-"
                      "00000-of-00001.parquet [V PR #3 files]; whether xcopa.py is gone there [U]: read by "
                      "data_files")),
    ("wikiann", HubRepo("unimelb-nlp/wikiann", "refs/convert/parquet", None,
                        "docs/data.md 'XTREME-R sources': the parquet export branch holds <lang>/{train,validation,"
                        "test}/0000.parquet [V for ce, ang]; the eight XTREME-R languages and the tag order [U]; "
                        "no commit known: `xstilts lock` resolves it")),
    ("xquad", HubRepo("google/xquad", "51adfef1c1287aab1d2d91b5bead9bcfb9c68583", None,
                      "docs/data.md 'XTREME-R sources': 'Convert dataset to Parquet (#3)' on main, "
                      "xquad.<lang>/validation-00000-of-00001.parquet incl. xquad.ro, loading script deleted [V]")),
    ("super_glue", HubRepo("aps/super_glue", "refs/convert/parquet", None,
                           "docs/data.md 'XTREME-R sources': the parquet export holds copa/{train,validation,test}/0000.parquet [V commit "
                           "5ac8656 'Update parquet files']; its commit is not known: `xstilts lock` resolves it")),
    (None, HubRepo("google/xtreme", "21f88c0ff5bf413a83c854eb00050e75d245161f", None,
                   "§1: tip of refs/pr/9 'Delete loading script', 183 parquet configs [V]")),
    (None, HubRepo("facebook/xnli", "b8dd5d7af51114dbda02c0e3f6133f332186418e", None,
                   "§11: 'Convert dataset to Parquet (#10)' b8dd5d7 [V], full id pinned by third-party code "
                   "[C]; per-language train = machine-translated MultiNLI")),
    (None, HubRepo("juletxara/xquad_xtreme", "refs/convert/parquet", None,
                   "§11: main is a loading script [V]; the parquet export has <lang>/translate_train/0000.parquet "
                   "[V]; its commit is not known: `xstilts lock` resolves it")),
    (None, HubRepo("wikimedia/wikipedia", "b04c8d1ceb2f5cd4588862100d08de323dccfbaa", None,
                   "§10: 'still main on 2026-09-02' [C]; configs <dump>.<lang>, train only")),
    (None, HubRepo("mteb/BUCC", "414572247440f0ccacf7eb0bb70a31533a0e5443", None,
                   "§13 [V]: the BUCC 2018 training set's full pools, the revision MTEB's BUCC task pins "
                   "(mteb tasks/BitextMining/multilingual/BUCCBitextMining.py)")),
]}

_CCG_STEP = ("CCGbank is licensed (LDC2005T13) and has no hub copy: convert your copy into "
             "<local_dir>/ccgbank/{train,validation}.jsonl (docs/data.md, 'CCGbank')")
_COSMOS_STEP = ("allenai/cosmos_qa holds only a loading script, which datasets 5 does not run: write "
                "<local_dir>/cosmos_qa/{train,validation}.jsonl from the authors' files (docs/data.md, 'Cosmos QA')")
_LAREQA_STEP = ("LAReQA's pool is built from the sentence breaks of the xquad-r files, which the hub copy "
                "(google-research-datasets/xquad_r) lacks: copy xquad-r/<lang>.json of the LAReQA release "
                "(github.com/google-research-datasets/lareqa) into <local_dir>/lareqa/xquad-r/ (docs/data.md, 'LAReQA')")
_MEWSLIX_STEP = ("Mewsli-X has no official hub copy and its WikiNews text is rebuilt from archive.org dumps: run "
                 "get-mewsli-x.sh (google-research/google-research dense_representations_for_entity_retrieval/mel, "
                 "dataset mewsli-x_20220518_6) and copy its mewsli-x/*.jsonl into <local_dir>/mewslix/ "
                 "(docs/data.md, 'Mewsli-X')")
_BUCC_STEP = ("BUCC mining needs the original pools with distractors: unpack the BUCC 2018 release into "
              "<local_dir>/bucc2018/ (docs/data.md, 'BUCC 2018')")


REPOS_BY_ID: dict[str, HubRepo] = {r.id: r for r in REPOS.values()}


def sources_label(task: Task) -> str:
    """Where a task's evaluation languages come from, for messages: `google/xtreme PAN-X.{lang}`."""
    split = next(s for s in ("test", "dev", "train") if s in task.sources)
    return ", ".join(dict.fromkeys(f"{REPOS[s.path].id if s.path in REPOS else s.path}"
                                   f"{' ' + s.config if s.config else ''}" for s in task.sources[split]))


def hub_repo(source: Source) -> HubRepo:
    """The hub repository a (hub-readable) source is read from."""
    try:
        return REPOS[source.path]
    except KeyError:
        raise UserError(f"source {source.path!r} has no hub repository in registry.REPOS") from None


@dataclass(frozen=True)
class Task:
    name: str
    role: Literal["intermediate", "target"]
    kind: str  # a name in xstilts.kinds.KINDS: everything that differs between kinds is said there
    metric: str
    languages: tuple[str, ...]
    # Split name -> the sources concatenated into it. Targets with per-language test data use `{lang}`.
    sources: dict[str, tuple[Source, ...]]
    labels: tuple[str, ...] | None = None  # None: label set read from the training data (CCG supertags)
    train_on: str | None = None  # targets: the task whose ENGLISH training split fine-tunes the model
    # Tasks sharing a head name share one head in multi-task training. None (every task today): the task's own
    # head, as jiant gives each task of a mix (configurator.py:431-433; docs/protocol.md "Multi-task mix").
    head: str | None = None
    description: str = ""

    @property
    def head_kind(self) -> str | None:
        return kinds.of(self).head

    @property
    def head_name(self) -> str:
        return self.head or self.name

    @property
    def schema(self) -> dict[str, str]:
        return kinds.of(self).schema

    @property
    def trainable(self) -> bool:
        return self.head_kind is not None

    @property
    def retrieval(self) -> bool:
        return self.kind in kinds.RETRIEVAL_KINDS

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
    kinds.of(task)  # an unknown kind fails here, at import, not in the middle of a run
    TASKS[task.name] = task


# --------------------------------------------------------------------------------------------- intermediate
_register(Task(
    "anli_plus", "intermediate", "pair_classification", "accuracy", ("en",), labels=NLI_LABELS,
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
    "mnli", "intermediate", "pair_classification", "accuracy", ("en",), labels=NLI_LABELS,
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
    "siqa", "intermediate", "multiple_choice", "accuracy", ("en",), labels=("1", "2", "3"),
    description="Social IQa (XTREME-R's first stage before COPA; not one of the paper's nine)",
    sources={"train": _src("social_i_qa", None, "train", "social_i_qa"),
             "dev": _src("social_i_qa", None, "validation", "social_i_qa")},
))
_register(Task(
    "cosmosqa", "intermediate", "multiple_choice", "accuracy", ("en",), labels=("0", "1", "2", "3"),
    description="Cosmos QA",
    sources={"train": _src("cosmos_qa", None, "train", "cosmos_qa", manual=_COSMOS_STEP),
             "dev": _src("cosmos_qa", None, "validation", "cosmos_qa", manual=_COSMOS_STEP)},
))
_register(Task(
    "ccg", "intermediate", "tagging", "token_accuracy", ("en",), labels=None,
    description="CCGbank supertagging (LDC licence: local files only, see docs/data.md)",
    sources={"train": _src("ccgbank", None, "train", "ccg", manual=_CCG_STEP),
             "dev": _src("ccgbank", None, "validation", "ccg", manual=_CCG_STEP)},
))

# --------------------------------------------------------------------------------------------- target
_register(Task(
    "xnli", "target", "pair_classification", "accuracy", XTREME_LANGUAGES["xnli"], labels=NLI_LABELS,
    train_on="mnli", description="XNLI (trained on MNLI)",
    sources={"dev": _src(_X, "XNLI", "validation", "xnli"), "test": _src(_X, "XNLI", "test", "xnli")},
))
_register(Task(
    "pawsx", "target", "pair_classification", "accuracy", XTREME_LANGUAGES["pawsx"], labels=("0", "1"),
    train_on="pawsx", description="PAWS-X (labels are strings '0'/'1')",
    sources={"train": _src(_X, "PAWS-X.{lang}", "train", "pawsx"),
             "dev": _src(_X, "PAWS-X.{lang}", "validation", "pawsx"),
             "test": _src(_X, "PAWS-X.{lang}", "test", "pawsx")},
))
_register(Task(
    "udpos", "target", "tagging", "seqeval_f1", XTREME_LANGUAGES["udpos"], labels=UPOS_TAGS,
    train_on="udpos", description="UD-POS v2.5 (seqeval over raw UPOS strings)",
    sources={"train": _src(_X, "udpos.{udpos_name}", "train", "udpos"),
             "dev": _src(_X, "udpos.{udpos_name}", "validation", "udpos", languages=tuple(
                 x for x in XTREME_LANGUAGES["udpos"] if x not in UDPOS_TEST_ONLY)),
             "test": _src(_X, "udpos.{udpos_name}", "test", "udpos")},
))
_register(Task(
    "panx", "target", "tagging", "seqeval_f1", XTREME_LANGUAGES["panx"] + XTREME_R_ADDED_LANGUAGES["panx"],
    labels=PANX_TAGS, train_on="panx",
    description="PAN-X / WikiANN NER (XTREME's 40 languages from google/xtreme, XTREME-R's 8 more from full WikiANN)",
    sources={"train": _src(_X, "PAN-X.{lang}", "train", "panx"),
             **{split: (Source(_X, "PAN-X.{lang}", hub_split, "panx", languages=XTREME_LANGUAGES["panx"]),
                        Source("wikiann", "{lang}", hub_split, "panx", languages=XTREME_R_ADDED_LANGUAGES["panx"],
                               data_files=f"{{lang}}/{hub_split}/0000.parquet"))
                for split, hub_split in (("dev", "validation"), ("test", "test"))}},
))
_register(Task(
    "xquad", "target", "qa", "squad", XTREME_LANGUAGES["xquad"] + XTREME_R_ADDED_LANGUAGES["xquad"],
    train_on="squad_v1", description="XQuAD (trained on SQuAD v1.1; Romanian, XTREME-R's, from google/xquad)",
    sources={"test": (Source(_X, "XQuAD.{lang}", "validation", "squad", languages=XTREME_LANGUAGES["xquad"]),
                      Source("xquad", "xquad.{lang}", "validation", "squad",
                             languages=XTREME_R_ADDED_LANGUAGES["xquad"]))},
))
_register(Task(
    "mlqa", "target", "qa", "mlqa", XTREME_LANGUAGES["mlqa"], train_on="squad_v1",
    description="MLQA, context language = question language (trained on SQuAD v1.1)",
    sources={"dev": _src(_X, "MLQA.{lang}.{lang}", "validation", "squad"),
             "test": _src(_X, "MLQA.{lang}.{lang}", "test", "squad")},
))
_register(Task(
    "tydiqa", "target", "qa", "squad", XTREME_LANGUAGES["tydiqa"], train_on="tydiqa",
    description="TyDiQA-GoldP (English part of train; dev used as test)",
    sources={"train": _src(_X, "tydiqa", "train", "squad", id_prefix="english-"),
             "test": _src(_X, "tydiqa", "validation", "squad", id_prefix="{tydiqa_name}-")},
))
_register(Task(
    "bucc2018", "target", "bitext_mining", "bucc_f1", XTREME_LANGUAGES["bucc2018"],
    description="BUCC 2018 mining: original files (pools + gold) from a local directory",
    sources={"dev": _src("bucc2018", "{lang}-en", "sample", "bucc_original", manual=_BUCC_STEP),
             "test": _src("bucc2018", "{lang}-en", "training", "bucc_original", manual=_BUCC_STEP)},
))
_register(Task(
    "tatoeba", "target", "bitext_retrieval", "accuracy", XTREME_LANGUAGES["tatoeba"],
    description="Tatoeba 1-NN retrieval: English queries, source-language index (as XTREME's code)",
    sources={"test": _src(_X, "tatoeba.{iso3}", "validation", "tatoeba")},
))
_register(Task(
    "lareqa", "target", "answer_retrieval", "map@20", XTREME_R_LANGUAGES["lareqa"], train_on="lareqa",
    description="LAReQA on XQuAD-R (XTREME-R): one pool of the 11 languages' sentences, mAP@20; the dual "
                "encoder trains on English SQuAD v1.1 (question, answer sentence) pairs",
    sources={"train": _src("squad", None, "train", "squad_sentences"),
             "test": _src("lareqa", "xquad-r", "{lang}", "lareqa_original", manual=_LAREQA_STEP)},
))
_register(Task(
    "mewslix", "target", "entity_retrieval", "map@20", XTREME_R_LANGUAGES["mewslix"], train_on="mewslix",
    description="Mewsli-X (XTREME-R): WikiNews mentions retrieve their entity from one multilingual table of "
                "~1M entity descriptions, MRR@20 (named map@20); the dual encoder trains on English Wikipedia "
                "(mention, entity) pairs",
    sources={"train": _src("mewslix", None, "wikipedia_pairs-train", "mewslix_pairs", languages=("en",),
                           manual=_MEWSLIX_STEP),
             "dev": _src("mewslix", None, "wikipedia_pairs-dev", "mewslix_pairs", languages=("en",),
                         manual=_MEWSLIX_STEP),
             "test": _src("mewslix", None, "wikinews_mentions-test", "mewslix_mentions", manual=_MEWSLIX_STEP),
             "candidates": _src("mewslix", None, "candidate_set_entities", "mewslix_entities", manual=_MEWSLIX_STEP)},
))
_register(Task(
    "xcopa", "target", "multiple_choice", "accuracy", XTREME_R_LANGUAGES["xcopa"], labels=("0", "1"),
    train_on="xcopa", description="XCOPA (XTREME-R; trained on English COPA train + validation, as XTREME-R's "
                                  "third_party/xcopa_data/xcopa_data.py builds `en`)",
    sources={"train": (Source("super_glue", "copa", "train", "copa", data_files="copa/train/0000.parquet"),
                       Source("super_glue", "copa", "validation", "copa",
                              data_files="copa/validation/0000.parquet")),
             "test": _src("xcopa", "{lang}", "test", "xcopa", data_files="{lang}/test-00000-of-00001.parquet")},
))


@dataclass(frozen=True)
class Benchmark:
    """A named set of target tasks with its own aggregate score.

    A benchmark's score reads only its own tasks, so registering another target never changes it; a task's
    group belongs to the benchmark (XTREME-R groups the same tasks differently), so it is stated here alone.
    """

    name: str
    # Group -> its tasks. Groups and the tasks within them are in the benchmark's official order, so `tasks`
    # (their concatenation) is the official task order unless `members` states it.
    groups: dict[str, tuple[str, ...]]
    # How the score is defined; the only definition there is so far: the unweighted mean of the task scores,
    # reported only when every task has one (metrics.benchmark_score).
    aggregate: Literal["task_mean"]
    evidence: str  # where the task set, groups and aggregate are stated
    # The tasks in official order, where they are not the groups' concatenation (XTREME-R: a task in two
    # groups, one in none).
    members: tuple[str, ...] | None = None
    # The benchmark's own test languages of a task, where they differ from the registered task's (XTREME-R
    # adds languages to four XTREME tasks); `languages_of` gives every task's.
    languages: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Tasks the benchmark's official folder scorer cannot read, left out of a submission folder (`xstilts
    # export`): XTREME-R's evaluate.py has no LAReQA reader and stops with a KeyError on a lareqa folder.
    no_official_scorer: tuple[str, ...] = ()

    @property
    def tasks(self) -> tuple[str, ...]:
        if self.members is not None:
            return self.members
        return tuple(dict.fromkeys(name for names in self.groups.values() for name in names))

    def languages_of(self, task: str) -> tuple[str, ...]:
        return self.languages.get(task) or TASKS[task].languages

    def unreadable_languages(self, task: str) -> tuple[str, ...]:
        """The benchmark's languages of `task` that the registered task has no source for (so no run scores
        them, and its score is over fewer languages than the benchmark's)."""
        return tuple(x for x in self.languages_of(task) if x not in TASKS[task].languages)


XTREME_BENCHMARK = Benchmark(
    "xtreme",
    {"classification": ("xnli", "pawsx"), "tagging": ("udpos", "panx"), "qa": ("xquad", "mlqa", "tydiqa"),
     "retrieval": ("bucc2018", "tatoeba")},
    "task_mean",
    "xtreme.md section 4 and google-research/xtreme evaluate.py (b5d31e7): GROUP2TASK for the groups, "
    "`overall_scores['all_task']` = the sum of the 9 task scores / 9, shown only when all 9 are present; "
    "task order: xtreme.md section 2",
    # XTREME's own lists where the registered task has XTREME-R's longer one
    languages={task: XTREME_LANGUAGES[task] for task in XTREME_R_ADDED_LANGUAGES},
)
# XTREME-R as google-research/xtreme evaluate.py (838c13b) defines it: the 10 tasks are XTREME_R_TASK2LANGS's keys
# (160-176), the groups XTREME_R_GROUP2TASK (126-132), the score the mean of the 10 task scores (306-313). That
# script cannot score LAReQA (no reader, no metric, an empty language list: its `all_task` is never printed,
# docs/xtreme-r-facts.md section 4.6); here LAReQA's mAP@20 is one of the 10, as the task list says.
XTREME_R_BENCHMARK = Benchmark(
    "xtreme-r",
    {"classification": ("xnli", "xcopa"), "tagging": ("udpos", "panx"), "qa": ("xquad", "mlqa", "tydiqa"),
     "retrieval": ("tatoeba", "mewslix"), "multi_choice": ("xcopa",)},
    "task_mean",
    "google-research/xtreme evaluate.py 838c13b: XTREME_R_TASK2LANGS (160-176) for the tasks and languages, "
    "XTREME_R_GROUP2TASK (126-132) for the groups, all_task = the mean of the 10 task scores (306-313); "
    "docs/xtreme-r-facts.md section 4",
    members=("xnli", "panx", "udpos", "tatoeba", "xcopa", "lareqa", "mewslix", "xquad", "mlqa", "tydiqa"),
    languages={  # PAN-X's and XQuAD's are the registered tasks' own (XTREME_R_ADDED_LANGUAGES)
        "udpos": XTREME_LANGUAGES["udpos"] + tuple("lt pl uk wo ro".split()),
        "tatoeba": XTREME_LANGUAGES["tatoeba"] + tuple("az lt pl uk ro".split()),
    },
    no_official_scorer=("lareqa",),
)
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (XTREME_BENCHMARK, XTREME_R_BENCHMARK)}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UserError(f"unknown benchmark {name!r}; known benchmarks: {', '.join(BENCHMARKS)}") from None


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
    """`xstilts tasks`: one record per task; `group` is the task's XTREME group (None outside XTREME)."""
    xtreme_group = {name: group for group, names in XTREME_BENCHMARK.groups.items() for name in names}
    return [
        {"name": t.name, "role": t.role, "kind": t.kind, "metric": t.metric, "train_on": t.train_on,
         "group": xtreme_group.get(t.name), "head": t.head_name, "labels": list(t.labels) if t.labels else None,
         "languages": list(t.languages),
         "sources": {s: [f"{x.path}:{x.config or ''}:{x.split}" for x in xs] for s, xs in t.sources.items()},
         "schema": t.schema, "description": t.description}
        for t in TASKS.values()
    ]


# Multilingual material that is not a task: the unlabelled MLM corpus and machine-translated intermediate
# training data. A local mirror holds them in its own layout (any language, any task; the synthetic data
# writes it); the hub sources are real dumps and translations, in the languages they exist in.
_LOCAL_LAYOUT = "a local-mirror layout of this project (docs/data.md)"
CORPUS_SOURCE = Source("xstilts-corpus", "{lang}", "train", "text", manual=_LOCAL_LAYOUT)
# Wikipedia (hub-sources.md section 10): the first parquet shard of the 2023-11-01 dump of each language.
CORPUS_HUB_SOURCE = Source("wikimedia/wikipedia", None, "train", "text",
                           data_files="20231101.{lang}/train-00000-of-*.parquet")
# Hub translate-train data (hub-sources.md section 11): XNLI's machine-translated MultiNLI (`facebook/xnli`
# `<lang>` train) and XTREME's SQuAD v1.1 translate-train (`juletxara/xquad_xtreme` parquet export).
TRANSLATED_HUB_SOURCES: dict[str, Source] = {
    "mnli": Source("facebook/xnli", "{lang}", "train", "xnli_mt",
                   languages=tuple(x for x in XTREME_LANGUAGES["xnli"] if x != "en")),
    "squad_v1": Source("juletxara/xquad_xtreme", None, "translate_train", "squad",
                       data_files="{lang}/translate_train/*.parquet",
                       languages=tuple(x for x in XTREME_LANGUAGES["xquad"] if x != "en")),
}


# Hub sources that replace a task's (manual) local source when data is read from the hub: BUCC's test pools
# from mteb/BUCC `<lang>-en` test, one row holding sentence1 (the non-English pool), sentence2 (English) and gold
# (1-based [i, j] pairs: mteb BUCCBitextMining.dataset_transform subtracts 1). Its sample set (BUCC dev, where the
# mining threshold is tuned) is not on the hub: dev stays the manual original files.
HUB_SPLIT_SOURCES: dict[tuple[str, str], tuple[Source, ...]] = {
    ("bucc2018", "test"): (Source("mteb/BUCC", "{lang}-en", "test", "bucc_mteb"),),
}


def task_sources(task: Task, hub: bool) -> dict[str, tuple[Source, ...]]:
    """The sources each split of `task` is read from: `task.sources`, with `HUB_SPLIT_SOURCES` in place when
    reading from the hub."""
    if not hub:
        return dict(task.sources)
    return {split: HUB_SPLIT_SOURCES.get((task.name, split), sources) for split, sources in task.sources.items()}


def translated_source(task: str, hub: bool = False) -> Source:
    """Where the machine-translated training data of an intermediate task is read: the local mirror's
    `xstilts-mt/<task>.<lang>` (any task), or the task's hub translations (UserError when it has none)."""
    if hub:
        get_task(task)
        if task not in TRANSLATED_HUB_SOURCES:
            raise UserError(f"task {task!r} has no machine-translated hub source (there are: "
                            f"{', '.join(TRANSLATED_HUB_SOURCES)}); read it from a local mirror (data.source local)")
        return TRANSLATED_HUB_SOURCES[task]
    raw = get_task(task).sources["train"][0].raw_schema
    return Source("xstilts-mt", f"{task}.{{lang}}", "train", raw, manual=_LOCAL_LAYOUT)


# Sizes and lengths the cost estimate (`xstilts estimate`, xstilts/estimate.py) uses when a task's prepared data
# is not on disk (when it is, the estimate measures the real rows with the backbone's tokenizer instead).
# Counts: English train/dev examples and test (and dev) examples per language, each with where it comes from
# (xtreme.md = shared/reference/xtreme.md; "card" = the hub dataset card of the source registry.REPOS pins; a
# count marked [E] is an estimate, not a fact). `tokens`: mean sentencepiece (XLM-R) tokens of one sequence
# before truncation and `sequences` per example (choices of multiple choice); these are ALWAYS estimates
# (grade [E]: typical lengths of the texts, not measured here); `xstilts estimate` labels them so.
_E = "[E] estimate, not measured"
SIZE_FACTS: dict[str, dict] = {
    "anli_plus": {"train": 1_104_934, "dev": 3_200, "tokens": 45, "sequences": 1,
                  "counts_from": "docs/protocol.md 'Multi-task mix' (r1-r3 16,946+45,460+100,459, MNLI, SNLI with "
                                 "gold); dev r1-r3 1,000+1,000+1,200 (facebook/anli card)"},
    "mnli": {"train": 392_702, "dev": 9_815, "tokens": 40, "sequences": 1,
             "counts_from": "xtreme.md section 2 (train); glue card validation_matched (dev)"},
    "qqp": {"train": 363_846, "dev": 40_430, "tokens": 30, "sequences": 1, "counts_from": "glue card (qqp)"},
    "squad_v1": {"train": 87_599, "dev": 10_570, "tokens": 180, "sequences": 1,
                 "counts_from": "xtreme.md section 2 (train); rajpurkar/squad card (validation)"},
    "squad_v2": {"train": 130_319, "dev": 11_873, "tokens": 180, "sequences": 1,
                 "counts_from": "rajpurkar/squad_v2 card"},
    "hellaswag": {"train": 39_905, "dev": 10_042, "tokens": 70, "sequences": 4, "counts_from": "Rowan/hellaswag card"},
    "commonsenseqa": {"train": 9_741, "dev": 1_221, "tokens": 20, "sequences": 5,
                      "counts_from": "tau/commonsense_qa card"},
    "siqa": {"train": 33_410, "dev": 1_954, "tokens": 35, "sequences": 3,
             "counts_from": "allenai/social_i_qa card at 6db3dce (num_examples) [V]; tokens [E]"},
    "cosmosqa": {"train": 25_262, "dev": 2_985, "tokens": 100, "sequences": 4, "counts_from": "allenai/cosmos_qa card"},
    "ccg": {"train": 39_604, "dev": 1_913, "tokens": 35, "sequences": 1,
            "counts_from": "[E] CCGbank sections 02-21 / 00 (the usual split; the licensed files are not here)"},
    "xnli": {"dev": 2_490, "test": 5_010, "tokens": 45, "sequences": 1, "counts_from": "xtreme.md section 2"},
    "pawsx": {"train": 49_401, "dev": 2_000, "test": 2_000, "tokens": 55, "sequences": 1,
              "counts_from": "xtreme.md section 2 (train ~49.4k, test 2,000/lang); dev 2,000/lang [E]"},
    "udpos": {"train": 21_253, "dev": 1_500, "test": 1_500, "tokens": 30, "sequences": 1,
              "counts_from": "xtreme.md section 2 (train); dev/test per language [E] (treebanks vary widely)"},
    "panx": {"train": 20_000, "dev": 10_000, "test": 10_000, "tokens": 15, "sequences": 1,
             "counts_from": "xtreme.md section 2 (train); dev/test 10,000/lang [E] (smaller languages have less)"},
    "xquad": {"test": 1_190, "tokens": 200, "sequences": 1, "counts_from": "xtreme.md section 2"},
    "mlqa": {"dev": 500, "test": {"en": 11_590, "es": 5_253, "de": 4_517, "ar": 5_335, "hi": 4_918, "vi": 5_495,
                                   "zh": 5_137}, "tokens": 220, "sequences": 1,
             "counts_from": "xtreme.md section 2 (test); dev 500/lang [E]"},
    "tydiqa": {"train": 3_696, "test": 564, "tokens": 200, "sequences": 1,
               "counts_from": "xtreme.md section 2 (test 5,077 in all, spread evenly here [E]); English train "
                              "3,696 [E]"},
    "bucc2018": {"dev": 60_000, "test": 700_000, "tokens": 35, "sequences": 1,
                 "counts_from": "[E] sentences per language pair, both sides (BUCC 2018 pools hold ~0.2-1M "
                                "sentences per pair in 'training', ~10x fewer in 'sample'; gold pairs: xtreme.md)"},
    "tatoeba": {"test": 2_000, "tokens": 12, "sequences": 1,
                "counts_from": "xtreme.md section 2 (<= 1,000 pairs/lang: 2 sentences each)"},
    "lareqa": {"train": 87_599, "test": 1_190, "tokens": 150, "sequences": 2,
               "counts_from": "SQuAD v1.1 train (rajpurkar/squad card); 1,190 questions per language and 13,014 "
                              "candidates in all [V lareqa 9bc8c7f, counted]"},
    "mewslix": {"train": 167_719, "dev": 14_051, "test": {"ar": 1_501, "de": 1_551, "en": 1_490, "es": 1_552,
                                                         "fa": 458, "ja": 1_519, "pl": 1_562, "ro": 672, "ta": 1_567,
                                                         "tr": 1_215, "uk": 1_537},
                "candidates": 1_003_893, "tokens": 50, "sequences": 2,
                "counts_from": "mewsli-x.md (20220518_6): Wikipedia pairs train 167,719 / dev 14,051, WikiNews test "
                               "per language, candidate entities 1,003,893 [V]; tokens [E]"},
    "xcopa": {"train": 500, "test": 500, "tokens": 20, "sequences": 2,
              "counts_from": "COPA train 400 + validation 100 [U]; XCOPA test 500/lang [V cambridgeltl/xcopa "
                             "e2e9d7f, counted]"},
}
SIZE_FACTS_TOKENS_GRADE = _E
# The MLM corpus (variant mlm) draws as many sentences as the task has examples; mean tokens of one Wikipedia
# line, [E].
CORPUS_TOKENS = 60

# Backbone architectures (the hub config.json at the pinned commit) for a cost estimate before the model is
# fetched: the non-embedding parameter count N is counted from them (xstilts.estimate.backbone_params). XLM-R
# Large: N ~ 303M (shared/reference/efficiency.md, first bullet; xtreme.md section 1: 24 layers, d=1024).
BACKBONE_ARCHITECTURES: dict[str, dict] = {
    "FacebookAI/xlm-roberta-large": {"model_type": "xlm-roberta", "vocab_size": 250_002, "hidden_size": 1024,
                                     "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
                                     "max_position_embeddings": 514, "type_vocab_size": 1},
    "google-bert/bert-base-multilingual-cased": {"model_type": "bert", "vocab_size": 119_547, "hidden_size": 768,
                                                 "num_hidden_layers": 12, "num_attention_heads": 12,
                                                 "intermediate_size": 3072},
}
