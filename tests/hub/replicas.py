"""Replicas of the hub repositories the pipeline reads, built from the small fixture mirror (tests/fixtures/raw).

Each replica copies the REAL repository's layout as shared/reference/hub-sources.md describes it: canonical id,
file paths (`<config>/<split>-00000-of-00001.parquet`, `data/<split>-*` for `default` configs, the parquet
export's `<config>/<split>/0000.parquet`), README `configs:` metadata, split names and column types (ClassLabel
columns as in the hub's parquet, written by `datasets` with its feature metadata), a few rows each, at the
commit registry.REPOS pins (or a fixed fake one). Which replica follows which section: docs/data.md, "Test
replicas of the hub". Nothing binary is committed: the parquet files are generated here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import datasets
import yaml

from tests.hub.server import Repo, fake_commit
from xstilts.data.sources import local_stem, resolve
from xstilts.registry import (CORPUS_HUB_SOURCE, NLI_LABELS, PANX_TAGS, REPOS, REPOS_BY_ID, TASKS,
                              TRANSLATED_HUB_SOURCES, UPOS_TAGS, hub_repo, source_format_args)

RAW = Path(__file__).resolve().parents[1] / "fixtures" / "raw"
datasets.disable_progress_bars()
# Languages the replicas hold: the fixture mirror's (en, de) plus UD-POS test-only ones made from German rows.
EXTRA_UDPOS = {"kk": ("train", "test"), "th": ("test",)}  # Kazakh: train + test; Thai: test only (section 1)

# Old commits the tests need, at the ids hub-sources.md records for them.
XTREME_SCRIPT_COMMIT = "906cd56999b3ba487eb49102ff36156076eb2e9b"  # section 1: old main with xtreme.py
XTREME_MOVED_COMMIT = fake_commit("google/xtreme", "a later parquet commit")
COSMOS_SCRIPT_COMMIT = REPOS["cosmos_qa"].revision  # section 9: main still holds cosmos_qa.py
XQUAD_SCRIPT_COMMIT = "41d9ea3c3faee14b30cf35004a805dd92558d373"  # section 11: main is xquad_xtreme.py
XQUAD_PARQUET_COMMIT = fake_commit("juletxara/xquad_xtreme", "refs/convert/parquet")
SUPER_GLUE_PARQUET_COMMIT = fake_commit("aps/super_glue", "refs/convert/parquet")
WIKIANN_PARQUET_COMMIT = fake_commit("unimelb-nlp/wikiann", "refs/convert/parquet")
# Repositories whose replica is not the generic `<config>/<split>-00000-of-00001.parquet` + README layout.
OWN_LAYOUT = ("aps/super_glue", "unimelb-nlp/wikiann")

_CLASS_LABELS = {
    "anli": {"label": datasets.ClassLabel(names=list(NLI_LABELS))},
    "glue_mnli": {"label": datasets.ClassLabel(names=list(NLI_LABELS)), "idx": datasets.Value("int32")},
    "glue_qqp": {"label": datasets.ClassLabel(names=["not_duplicate", "duplicate"]), "idx": datasets.Value("int32")},
    "snli": {"label": datasets.ClassLabel(names=list(NLI_LABELS))},
    "xnli_mt": {"label": datasets.ClassLabel(names=list(NLI_LABELS))},
    "udpos": {"pos_tags": datasets.Sequence(datasets.ClassLabel(names=list(UPOS_TAGS)))},
    "panx": {"ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(PANX_TAGS)))},
    "copa": {"label": datasets.ClassLabel(names=["choice1", "choice2"]), "idx": datasets.Value("int32")},
    "xcopa": {"label": datasets.Value("int32"), "idx": datasets.Value("int32")},
}


def parquet(rows: list[dict], raw_schema: str) -> bytes:
    """Rows as the hub's parquet: datasets' own writer, with ClassLabel features where the hub has them."""
    ds = datasets.Dataset.from_list(rows)
    for column, feature in _CLASS_LABELS.get(raw_schema, {}).items():
        if column in ds.column_names:
            ds = ds.cast_column(column, feature)
    buf = io.BytesIO()
    ds.to_parquet(buf)
    return buf.getvalue()


def readme(configs: dict[str, dict[str, str]]) -> bytes:
    """A dataset card whose YAML `configs:` maps each config's splits to its files (what datasets 5 reads)."""
    card = {"configs": [{"config_name": name, "data_files": [{"split": s, "path": p} for s, p in splits.items()]}
                        for name, splits in configs.items()]}
    return f"---\n{yaml.safe_dump(card, sort_keys=False)}---\n# replica for tests\n".encode()


def fixture(rel: str | Path) -> list[dict] | None:
    """The rows of one fixture-mirror file (`<path>/<config>/<split>`, suffix optional); None if absent."""
    path = RAW / rel
    path = path.with_suffix(".jsonl") if path.suffix != ".jsonl" else path
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class _Builder:
    """Files and README configs of one replica commit, gathered source by source."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.configs: dict[str, dict[str, str]] = {}

    def add(self, config: str | None, split: str, rows: list[dict], raw_schema: str) -> None:
        folder = config or "data"
        path = f"{folder}/{split}-00000-of-00001.parquet"
        if path in self.files:
            return
        self.files[path] = parquet(rows, raw_schema)
        self.configs.setdefault(config or "default", {})[split] = f"{folder}/{split}-*"

    def commit(self) -> dict[str, bytes]:
        return {"README.md": readme(self.configs), **self.files}


def _task_sources():
    """(source, lang) for every registry task source and fixture language, plus the UD-POS test-only languages."""
    for task in TASKS.values():
        for split, sources in task.sources.items():
            for source in sources:
                if source.local_only:
                    continue
                for lang in ("en",) if split == "train" else task.languages:
                    if source.has_language(lang):
                        yield task, split, source, lang


def dataset_repos() -> list[Repo]:
    """A replica of every registry hub repository, at its pinned commit (its `main`)."""
    builders: dict[str, _Builder] = {}
    for task, split, source, lang in _task_sources():
        src = resolve(source, lang)
        rows = fixture(local_stem(Path(), src))
        if rows is None and task.name == "udpos" and lang in EXTRA_UDPOS:
            if src.split not in EXTRA_UDPOS[lang]:
                continue
            rows = fixture(local_stem(Path(), resolve(source, "de")))
        if rows is None:
            continue
        repo = hub_repo(src)
        if repo.id in OWN_LAYOUT:
            continue
        builders.setdefault(repo.id, _Builder()).add(src.config or repo.config, src.split, rows, src.raw_schema)
    repos = []
    for repo_id, b in builders.items():
        r = Repo("dataset", repo_id)
        r.commit(REPOS_BY_ID[repo_id].revision, b.commit(), "main")
        repos.append(r)
    xtreme = next(r for r in repos if r.id == "google/xtreme")
    _xtreme_history(xtreme)
    return repos + [_cosmos(), _xnli(), _xquad_xtreme(), _super_glue(), _wikiann(), _wikipedia(), _mteb_bucc()]


def _xtreme_history(repo: Repo) -> None:
    """google/xtreme's old script-only main, and a later parquet commit (PAN-X.de test one row shorter)."""
    pinned = repo.commits[REPOS_BY_ID["google/xtreme"].revision]
    repo.commit(XTREME_SCRIPT_COMMIT, {"README.md": b"---\npretty_name: XTREME\n---\n", "xtreme.py": b"# script\n",
                                       "dataset_infos.json": b"{}"})
    later = dict(pinned)
    rows = fixture(Path("google/xtreme/PAN-X.de/test"))[:-1]
    later["PAN-X.de/test-00000-of-00001.parquet"] = parquet(rows, "panx")
    repo.commit(XTREME_MOVED_COMMIT, later)


def _cosmos() -> Repo:
    """allenai/cosmos_qa: main still holds the loading script (section 9)."""
    r = Repo("dataset", "allenai/cosmos_qa")
    r.commit(COSMOS_SCRIPT_COMMIT, {"README.md": b"---\npretty_name: Cosmos QA\n---\n", "cosmos_qa.py": b"# script\n",
                                    "dataset_infos.json": b"{}"}, "main")
    return r


def _xnli() -> Repo:
    """facebook/xnli: per-language configs `<lang>/{train,validation,test}-00000-of-00001.parquet` (section 11);
    the German MNLI translations of the fixture mirror as `de` train."""
    b = _Builder()
    source = TRANSLATED_HUB_SOURCES["mnli"]
    rows = [{k: r[k] for k in ("premise", "hypothesis", "label")} for r in fixture(Path("xstilts-mt/mnli.de/train"))]
    b.add("de", source.split, rows, source.raw_schema)
    b.add("de", "validation", rows[:2], source.raw_schema)
    r = Repo("dataset", "facebook/xnli")
    r.commit(REPOS_BY_ID["facebook/xnli"].revision, b.commit(), "main")
    return r


def _xquad_xtreme() -> Repo:
    """juletxara/xquad_xtreme: main is a loading script; the parquet export branch holds
    `<lang>/translate_train/0000.parquet` and no README (section 11)."""
    r = Repo("dataset", "juletxara/xquad_xtreme")
    r.commit(XQUAD_SCRIPT_COMMIT, {"README.md": b"---\npretty_name: XQuAD-XTREME\n---\n",
                                   "xquad_xtreme.py": b"# script\n"}, "main")
    rows = fixture(Path("squad/train"))
    pattern = TRANSLATED_HUB_SOURCES["squad_v1"].data_files
    files = {pattern.format(**source_format_args("de")).replace("*", "0000"): parquet(rows, "squad"),
             "de/test/0000.parquet": parquet(fixture(Path("google/xtreme/XQuAD.de/validation")), "squad")}
    r.commit(XQUAD_PARQUET_COMMIT, files, "refs/convert/parquet")
    return r


def _super_glue() -> Repo:
    """aps/super_glue: the parquet export branch holds `copa/<split>/0000.parquet` (docs/data.md, "XTREME-R
    sources"), the layout XCOPA's English training sources name by `data_files`; main is not read."""
    r = Repo("dataset", "aps/super_glue")
    r.commit(fake_commit("aps/super_glue", "main: a loading script"),
             {"README.md": b"---\npretty_name: SuperGLUE\n---\n", "super_glue.py": b"# script\n"}, "main")
    files = {f"copa/{split}/0000.parquet": parquet(fixture(Path(f"super_glue/copa/{split}")), "copa")
             for split in ("train", "validation")}
    r.commit(SUPER_GLUE_PARQUET_COMMIT, files, "refs/convert/parquet")
    return r


def _wikiann() -> Repo:
    """unimelb-nlp/wikiann: the parquet export branch holds `<lang>/<split>/0000.parquet` (docs/data.md, "XTREME-R
    sources"), the layout PAN-X's XTREME-R languages name by `data_files`; main is not read."""
    r = Repo("dataset", "unimelb-nlp/wikiann")
    r.commit(fake_commit("unimelb-nlp/wikiann", "main"), {"README.md": b"---\npretty_name: WikiANN\n---\n"}, "main")
    files = {f"ro/{split}/0000.parquet": parquet(fixture(Path(f"wikiann/ro/{split}")), "panx")
             for split in ("validation", "test")}
    r.commit(WIKIANN_PARQUET_COMMIT, files, "refs/convert/parquet")
    return r


def _wikipedia() -> Repo:
    """wikimedia/wikipedia: configs `20231101.<lang>`, train split in numbered shards (section 10)."""
    b = _Builder()
    files = {}
    for lang in ("en", "de"):
        texts = [r["text"] for r in fixture(Path(f"xstilts-corpus/{lang}/train"))]
        rows = [{"id": str(i), "url": f"https://{lang}.wikipedia.org/wiki?curid={i}", "title": f"T{i}", "text": t}
                for i, t in enumerate(texts)]
        for k, part in enumerate((rows[:-1], rows[-1:])):  # the pipeline reads the first shard only
            files[f"20231101.{lang}/train-{k:05d}-of-00002.parquet"] = parquet(part, "text")
        b.configs[f"20231101.{lang}"] = {"train": f"20231101.{lang}/train-*"}
    r = Repo("dataset", CORPUS_HUB_SOURCE.path)
    r.commit(REPOS_BY_ID[CORPUS_HUB_SOURCE.path].revision, {"README.md": readme(b.configs), **files}, "main")
    return r


# ------------------------------------------------------------------------------------------------ models
XLMR, MBERT, MT5 = "FacebookAI/xlm-roberta-large", "google-bert/bert-base-multilingual-cased", "google/mt5-small"
MODEL_PINS = {XLMR: "c23d21b0620b635a76227c604d44e43a9f0ee389",  # section 14 [C]
              MBERT: "3f076fdb1ab68d5b2880cb87a0886f315b8146f8"}  # section 14 [V]
MT5_MAIN = fake_commit(MT5, "main: pytorch_model.bin only")
MT5_PR2 = fake_commit(MT5, "refs/pr/2: Adding `safetensors` variant")
_WORDS = "the a house world cat dog runs sees big small Haus Welt Katze Hund sieht groß".split()


def _texts(n: int = 400) -> list[str]:
    import random

    rng = random.Random(0)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n)]


def _files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def model_repos(workdir: Path) -> list[Repo]:
    """Tiny models in the real repositories' file layouts (section 14), made with transformers from tiny configs:
    XLM-R (config, model.safetensors, tokenizer.json), mBERT (config, model.safetensors, vocab.txt) and mT5
    (config, spiece.model and no tokenizer.json; main without safetensors, refs/pr/2 with them)."""
    import sentencepiece as spm
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer, MT5Config, MT5ForConditionalGeneration

    from xstilts.pretrain import build_mlm, train_tokenizer

    torch.manual_seed(0)
    hp = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}
    repos = []
    xlmr = workdir / "xlmr"
    tok = train_tokenizer(_texts(), 60)
    build_mlm(tok, hp).save_pretrained(xlmr)
    tok.save_pretrained(xlmr)
    repos.append(Repo("model", XLMR))
    repos[-1].commit(MODEL_PINS[XLMR], _files(xlmr), "main")

    mbert = workdir / "mbert"
    mbert.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(w.lower() for w in _WORDS) | set(_WORDS))]
    (mbert / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(str(mbert / "vocab.txt"), do_lower_case=False).save_pretrained(mbert)
    BertForMaskedLM(BertConfig(vocab_size=len(vocab), **hp, max_position_embeddings=64)).save_pretrained(mbert)
    repos.append(Repo("model", MBERT))
    repos[-1].commit(MODEL_PINS[MBERT], _files(mbert), "main")

    mt5 = workdir / "mt5"
    mt5.mkdir()
    corpus = workdir / "mt5-corpus.txt"
    corpus.write_text("\n".join(_texts()), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(mt5 / "spiece"), vocab_size=30,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, pad_piece="<pad>",
                                   eos_piece="</s>", unk_piece="<unk>", minloglevel=2)
    (mt5 / "spiece.vocab").unlink()
    MT5ForConditionalGeneration(MT5Config(vocab_size=30, d_model=16, d_kv=8, d_ff=32, num_layers=2, num_heads=2,
                                          decoder_start_token_id=0)).save_pretrained(mt5)
    files = _files(mt5)
    weights = files.pop("model.safetensors")
    files["pytorch_model.bin"] = b"placeholder: the pipeline never loads pickled weights"
    repo = Repo("model", MT5)
    repo.commit(MT5_MAIN, files, "main")
    repo.commit(MT5_PR2, {**files, "model.safetensors": weights}, "refs/pr/2")
    repos.append(repo)
    return repos


def bucc_lines(lang: str, split: str, side: str) -> list[tuple[str, str]]:
    """(id, text) lines of one original BUCC file of the fixture mirror."""
    path = RAW / f"bucc2018/{lang}-en/{lang}-en.{split}.{side}"
    return [tuple(line.split("\t")) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _mteb_bucc() -> Repo:
    """mteb/BUCC (section 13): config `<lang>-en`, split test, ONE row with both pools of the BUCC training set and
    1-based gold index pairs (as mteb's BUCCBitextMining reads it); file names [U]. Made from the fixture
    mirror's original `training` files."""
    b = _Builder()
    src, en = bucc_lines("de", "training", "de"), bucc_lines("de", "training", "en")
    pos_src = {i: k for k, (i, _) in enumerate(src, 1)}
    pos_en = {i: k for k, (i, _) in enumerate(en, 1)}
    gold = [[pos_src[a], pos_en[b]] for a, b in bucc_lines("de", "training", "gold")]
    b.add("de-en", "test", [{"sentence1": [t for _, t in src], "sentence2": [t for _, t in en], "gold": gold}],
          "bucc_mteb")
    r = Repo("dataset", "mteb/BUCC")
    r.commit(REPOS_BY_ID["mteb/BUCC"].revision, b.commit(), "main")
    return r
