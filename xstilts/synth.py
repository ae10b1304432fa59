"""`xstilts synth`: a deterministic, offline miniature of XTREME and the intermediate tasks, written as a local
mirror in the hub datasets' own schemas, so the real loaders, heads and metrics run on it unchanged.

Everything is rendered from one semantic generator (facts such as PERSON VERB NUM ADJ OBJECT for ORG in
LOCATION) into English and six synthetic languages with their own lexicons, scripts and word orders: the same
content exists in every language (parallel data, transfer), named entities and numbers are largely shared,
and every task's label follows from the facts, so a small model can learn it. See docs/synth.md.
"""

from __future__ import annotations

import concurrent.futures
import json
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pyarrow as pa

from xstilts import kinds
from xstilts.data.sources import MEWSLIX_SCHEMAS, local_stem, resolve, source_tag
from xstilts.errors import UserError
from xstilts.io import write_json, write_parquet, write_text
from xstilts.registry import (CORPUS_SOURCE, NLI_LABELS, PANX_TAGS, TASKS, TATOEBA_ISO3, UPOS_TAGS, Source, Task,
                              translated_source)

LANGUAGES = ("en", "de", "ru", "ar", "hi", "zh", "sw")
REPORT = "synth_report.json"
DEFAULT_MT_ERROR_RATE = 0.15
# chrF of a translated file is scored on its first this many text fields (scoring all would dominate the run).
MT_CHRF_SEGMENTS = 100

_CI = {"inter_train": 400, "inter_dev": 100, "target_train": 300, "eval": 60, "bucc_gold": 40,
       "bucc_distractors": 80, "corpus": 1500}
_DEMO = {**{k: 3 * v for k, v in _CI.items()}, "corpus": 6000}
# Examples per split (per language for evaluation data); see docs/synth.md.
SIZES = {"ci": _CI, "demo": _DEMO, "large": {k: 10 * v for k, v in _DEMO.items()}}


# --------------------------------------------------------------------------------------------- languages
EN_VERBS = (("buy", "bought"), ("sell", "sold"), ("paint", "painted"), ("carry", "carried"), ("find", "found"),
            ("build", "built"), ("clean", "cleaned"), ("repair", "repaired"), ("order", "ordered"),
            ("deliver", "delivered"), ("count", "counted"), ("hide", "hid"), ("move", "moved"),
            ("open", "opened"), ("wash", "washed"), ("print", "printed"), ("lose", "lost"),
            ("borrow", "borrowed"), ("cook", "cooked"), ("collect", "collected"), ("inspect", "inspected"),
            ("sort", "sorted"), ("pack", "packed"), ("load", "loaded"))
EN_OBJECTS = tuple(("boxes chairs apples books lamps bicycles letters bottles tables shoes cakes maps radios baskets "
                    "clocks carpets phones hats coins tickets candles plates keys blankets").split())
EN_ADJECTIVES = tuple("red blue green old new small large heavy cheap wooden".split())
EN_ADVERBS = tuple("yesterday today later again early".split())
EN_FUNCTION = {"IN": "in", "FOR": "for", "TO": "to", "NOT": "not", "DID": "did", "THE": "the", "THEN": "then",
               "WH_PER": "who", "WH_NUM": "how many", "WH_LOC": "where", "WH_OBJ": "what"}
# UPOS of each part of a function word (English "how many" has two).
FUNCTION_UPOS = {"IN": ("ADP",), "FOR": ("ADP",), "TO": ("ADP",), "NOT": ("PART",), "DID": ("AUX",),
                 "THE": ("DET",), "THEN": ("ADV",), "CLF": ("NOUN",), "WH_PER": ("PRON",), "WH_NUM": ("ADV", "ADJ"),
                 "WH_LOC": ("ADV",), "WH_OBJ": ("PRON",)}
ORG_SUFFIXES = ("Group", "Bank", "Institute", "Works", "Labs", "Trust")
LOC_PARTS = ("Port", "Bay", "Valley", "North")

_LATIN_ONSETS = "b d f g h k l m n p r s t v z br tr kl st".split()
_LATIN_VOWELS = "a e i o u a e o ia ei".split()


@dataclass(frozen=True)
class LangSpec:
    """How a language writes a fact: phrase order, noun-phrase order, adpositions, wh-movement, script."""

    order: tuple[str, ...]  # phrase slots of a declarative sentence
    np_order: tuple[str, ...]  # det num clf adj obj
    postpositions: bool
    wh_front: bool  # wh-phrase moves to the front (else stays in place)
    spaces: bool  # words separated by spaces (zh: no)
    cased: bool
    stop: str
    qmark: str
    syllables: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())  # onset, nucleus, coda
    function: tuple[str, ...] = ("IN", "FOR", "TO", "NOT", "THEN", "WH_PER", "WH_NUM", "WH_LOC", "WH_OBJ")
    translit: str | None = None  # script some entity names are transliterated into


_SVO = ("SUBJ", "NEG", "VERB", "NP", "REC", "ORG", "LOC", "ADV")
_SOV = ("SUBJ", "ADV", "LOC", "ORG", "REC", "NP", "NEG", "VERB")
SPECS = {
    "en": LangSpec(_SVO, ("det", "num", "adj", "obj"), False, True, True, True, ".", "?"),
    "de": LangSpec(_SOV, ("det", "num", "adj", "obj"), False, True, True, True, ".", "?",
                   (tuple("b d f g h k l m n p r s t w z sch st br kr fl".split()),
                    tuple("a e i o u ei au ä ü ö".split()), tuple(["", "", "n", "r", "t", "ch", "ng", "l", "s"])),
                   ("IN", "FOR", "TO", "NOT", "THEN", "THE", "WH_PER", "WH_NUM", "WH_LOC", "WH_OBJ")),
    "ru": LangSpec(("SUBJ", "ADV", "NEG", "VERB", "NP", "REC", "ORG", "LOC"), ("num", "adj", "obj"), False, True,
                   True, True, ".", "?",
                   (tuple("б в г д ж з к л м н п р с т ф х ц ч ш ст пр кр".split()), tuple("а е и о у ы я ю".split()),
                    tuple(["", "", "н", "р", "т", "в", "й", "л", "к"])), translit="ru"),
    "ar": LangSpec(("NEG", "VERB", "SUBJ", "NP", "REC", "ORG", "LOC", "ADV"), ("num", "obj", "adj"), False, True,
                   True, False, ".", "؟",
                   (tuple("ب ت ج ح د ر ز س ش ع ف ق ك ل م ن ه و ي".split()), ("ا", "و", "ي", ""),
                    tuple(["", "", "ب", "ت", "د", "ر", "ل", "م", "ن"])), translit="ar"),
    "hi": LangSpec(_SOV, ("num", "adj", "obj"), True, False, True, False, "।", "?",
                   (tuple("क ख ग च ज ट ड त द न प ब म य र ल व स ह".split()), ("", "ा", "ि", "ी", "ु", "ू", "े", "ो"),
                    ("", "", "न", "र", "ं")), translit="hi"),
    "zh": LangSpec(("SUBJ", "ADV", "LOC", "ORG", "REC", "NEG", "VERB", "NP"), ("num", "clf", "adj", "obj"), False,
                   False, False, False, "。", "？",
                   function=("IN", "FOR", "TO", "NOT", "THEN", "CLF", "WH_PER", "WH_NUM", "WH_LOC", "WH_OBJ")),
    "sw": LangSpec(("SUBJ", "NEG", "VERB", "NP", "REC", "ORG", "LOC", "ADV"), ("obj", "adj", "num"), False, True,
                   True, True, ".", "?",
                   (tuple("b ch d f g h j k l m n ny p s t w y z mb nd".split()), tuple("a e i o u".split()), ("",))),
}

_RU = dict(zip("abcdefghijklmnopqrstuvwxyz", "абкдефгхийклмнопкрстуввксыз"))
_AR = dict(zip("abcdefghijklmnopqrstuvwxyz", "ابكديفجهيجكلمنوبقرستوفوكيز"))
_HI_CONS = dict(zip("bcdfghjklmnpqrstvwxyz", "बकदफगहजकलमनपकरसतववकयज"))
_HI_VOWELS = {"a": ("अ", ""), "e": ("ए", "े"), "i": ("इ", "ि"), "o": ("ओ", "ो"), "u": ("उ", "ु")}


def _translit_word(word: str, script: str) -> str:
    """A Latin name written letter by letter in Cyrillic, Arabic or Devanagari."""
    if script != "hi":
        out = "".join((_RU if script == "ru" else _AR).get(ch, ch) for ch in word.lower())
        return out.capitalize()  # Cyrillic has case; Arabic is unaffected
    out, after_consonant = [], False
    for ch in word.lower():
        if ch in _HI_VOWELS:
            out.append(_HI_VOWELS[ch][1 if after_consonant else 0])
            after_consonant = False
        else:
            out.append(_HI_CONS.get(ch, ch))
            after_consonant = True
    return "".join(out)


# --------------------------------------------------------------------------------------------- semantics
@dataclass(frozen=True)
class Fact:
    """One event: `person` `verb`s `num` `adj` `obj` to `rec` for `org` in `loc` `adv` (optionally negated)."""

    person: str
    verb: int
    obj: int
    num: int | None = None
    adj: int | None = None
    loc: str | None = None
    org: str | None = None
    adv: int | None = None
    rec: str | None = None
    neg: bool = False


class Tok(NamedTuple):
    """A rendered word with its UPOS, PAN-X tag and the fact role it expresses (answer spans use roles)."""

    text: str
    upos: str
    ner: str = "O"
    role: str = ""


# The question asked about a fact -> the phrase slot it replaces and the roles of its answer's words.
ASK_SLOT = {"per": "SUBJ", "num": "NP", "obj": "NP", "loc": "LOC", "org": "ORG"}
ANSWER_ROLES = {"per": {"per"}, "num": {"num"}, "obj": {"adj", "obj"}, "loc": {"loc"}, "org": {"org"}}


def _rng(seed: int, *parts: str) -> np.random.Generator:
    """A generator per purpose, so adding a task or language does not shift the others' data."""
    return np.random.default_rng([seed, zlib.crc32("/".join(parts).encode())])


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _other(rng: np.random.Generator, seq, avoid):
    while (x := _pick(rng, seq)) == avoid:
        pass
    return x


def _distinct(rng: np.random.Generator, seq, k: int) -> list:
    return [seq[i] for i in rng.choice(len(seq), size=k, replace=False)]


def asks(f: Fact) -> list[str]:
    """The questions a fact can answer."""
    optional = (("num", f.num), ("loc", f.loc), ("org", f.org))
    return ["per", "obj"] + [ask for ask, value in optional if value is not None]


def qview(f: Fact, ask: str) -> Fact:
    """The part of a fact a question about `ask` repeats (no adverb, recipient or negation)."""
    return replace(f, org=f.org if ask == "org" else None, adv=None, rec=None, neg=False)


# How often a random fact fills each optional slot.
SLOT_PROBS = {"num": 0.85, "adj": 0.6, "loc": 0.9, "org": 0.3, "adv": 0.2}


class World:
    """Entities and per-language lexicons drawn from the seed, and renderers into each language."""

    def __init__(self, seed: int):
        self.seed = seed
        rng = _rng(seed, "entities")
        names = self._latin_words(rng, 260, 2, 3)
        first, rest = names[:40], names[40:]
        last, rest = rest[:40], rest[40:]
        self.persons = tuple(dict.fromkeys(f"{_pick(rng, first)} {_pick(rng, last)}" for _ in range(200)))[:120]
        self.orgs = tuple(f"{n} {_pick(rng, ORG_SUFFIXES)}" for n in rest[:40])
        self.locs = tuple(n if rng.random() < 0.7 else f"{_pick(rng, LOC_PARTS)} {n}" for n in rest[40:100])
        self.lex = {lang: self._lexicon(lang, _rng(seed, "lexicon", lang)) for lang in LANGUAGES}
        self._renderers: dict[str, Renderer] = {}
        self._keys: dict[str, dict] = {}

    @staticmethod
    def _latin_words(rng, n: int, lo: int, hi: int) -> list[str]:
        out: dict[str, None] = {}
        while len(out) < n:
            syl = int(rng.integers(lo, hi + 1))
            w = "".join(_pick(rng, _LATIN_ONSETS) + _pick(rng, _LATIN_VOWELS) for _ in range(syl))
            out[w.capitalize() + _pick(rng, ("", "", "n", "s", "k", "r"))] = None
        return list(out)

    @staticmethod
    def _lexicon(lang: str, rng) -> dict:
        if lang == "en":
            lex: dict = dict(EN_FUNCTION)
            lex.update({("V", i): past for i, (_, past) in enumerate(EN_VERBS)})
            lex.update({("VB", i): base for i, (base, _) in enumerate(EN_VERBS)})
        else:
            spec, used, lex = SPECS[lang], set(), {}

            def word(syllables: int) -> str:
                for attempt in range(1000):
                    if lang == "zh":
                        w = "".join(chr(int(rng.integers(0x4E00, 0x9FA6))) for _ in range(syllables))
                    else:
                        onset, nucleus, coda = spec.syllables
                        n = syllables + attempt // 50
                        w = "".join(_pick(rng, onset) + _pick(rng, nucleus) for _ in range(n)) + _pick(rng, coda)
                    if w not in used:
                        used.add(w)
                        return w
                raise RuntimeError(f"lexicon of {lang!r}: no unused word left")  # unreachable with these inventories

            lex.update({key: word(1) for key in spec.function})
            for i in range(len(EN_VERBS)):
                lex[("V", i)] = lex[("VB", i)] = word(2 + int(rng.integers(2)))
            lex.update({("O", i): word(2 + int(rng.integers(2))) for i in range(len(EN_OBJECTS))})
            lex.update({("A", i): word(2) for i in range(len(EN_ADJECTIVES))})
            lex.update({("ADV", i): word(2) for i in range(len(EN_ADVERBS))})
            return lex
        lex.update({("O", i): w for i, w in enumerate(EN_OBJECTS)})
        lex.update({("A", i): w for i, w in enumerate(EN_ADJECTIVES)})
        lex.update({("ADV", i): w for i, w in enumerate(EN_ADVERBS)})
        return lex

    def fact(self, rng, p: dict | None = None, **fixed) -> Fact:
        """A random fact: optional slots filled with the probabilities `p` (over `SLOT_PROBS`), then the
        `fixed` fields set (None leaves a slot empty)."""
        p = {**SLOT_PROBS, **(p or {})}
        num, adj, loc, org, adv = (p[k] for k in ("num", "adj", "loc", "org", "adv"))
        f = Fact(person=_pick(rng, self.persons), verb=int(rng.integers(len(EN_VERBS))),
                 obj=int(rng.integers(len(EN_OBJECTS))),
                 num=int(rng.integers(2, 100)) if rng.random() < num else None,
                 adj=int(rng.integers(len(EN_ADJECTIVES))) if rng.random() < adj else None,
                 loc=_pick(rng, self.locs) if rng.random() < loc else None,
                 org=_pick(rng, self.orgs) if rng.random() < org else None,
                 adv=int(rng.integers(len(EN_ADVERBS))) if rng.random() < adv else None)
        return replace(f, **fixed)

    def entity_name(self, name: str, lang: str) -> str:
        """Entities keep their Latin spelling, except about 30% transliterated in ru, ar and hi."""
        script = SPECS[lang].translit
        if script and zlib.crc32(f"{self.seed}|{lang}|{name}".encode()) % 100 < 30:
            return " ".join(_translit_word(w, script) for w in name.split())
        return name

    def lexicon_keys(self, lang: str) -> dict:
        """word -> lexicon key of `lang` (a verb's past and base forms share a word outside English: the base)."""
        if lang not in self._keys:
            self._keys[lang] = {word: key for key, word in self.lex[lang].items()}
        return self._keys[lang]

    def renderer(self, lang: str) -> Renderer:
        if lang not in self._renderers:
            self._renderers[lang] = Renderer(self, lang)
        return self._renderers[lang]


class Renderer:
    """Renders facts into one language; with an `error_rate` it is a deliberately imperfect MT system that
    replaces or drops words and records (output, exact rendering) pairs for chrF."""

    def __init__(self, world: World, lang: str, error_rate: float = 0.0, rng=None):
        self.world, self.lang, self.spec, self.lex = world, lang, SPECS[lang], world.lex[lang]
        self.error_rate, self.rng, self.pairs = error_rate, rng, []
        self._content = [v for k, v in self.lex.items() if isinstance(k, tuple)]
        self._cache: dict[tuple, list[Tok]] = {}  # rendered function words and entities (lists never mutated)

    # ---------------------------------------------------------------- words and phrases
    def fw(self, key: str, role: str = "") -> list[Tok]:
        """A function word (several tokens where English uses several)."""
        if (key, role) not in self._cache:
            upos = FUNCTION_UPOS[key]
            self._cache[key, role] = [Tok(w, upos[min(i, len(upos) - 1)], "O", role)
                                      for i, w in enumerate(self.lex[key].split())]
        return self._cache[key, role]

    def entity(self, name: str, kind: str, role: str) -> list[Tok]:
        if (name, kind, role) not in self._cache:
            words = self.world.entity_name(name, self.lang).split()
            self._cache[name, kind, role] = [Tok(w, "PROPN", ("B-" if i == 0 else "I-") + kind, role)
                                             for i, w in enumerate(words)]
        return self._cache[name, kind, role]

    def word(self, key: tuple, upos: str, role: str = "") -> Tok:
        return Tok(self.lex[key], upos, "O", role)

    def _adp(self, key: str, phrase: list[Tok], slot: str) -> list[Tok]:
        adp = self.fw(key, slot)
        return phrase + adp if self.spec.postpositions else adp + phrase

    def _np(self, f: Fact, ask: str | None) -> list[Tok]:
        if ask == "obj":
            return self.fw("WH_OBJ", "wh")
        parts = {"num": (self.fw("WH_NUM", "wh") if ask == "num" else
                         [Tok(str(f.num), "NUM", "O", "num")] if f.num is not None else []),
                 "adj": [self.word(("A", f.adj), "ADJ", "adj")] if f.adj is not None else [],
                 "obj": [self.word(("O", f.obj), "NOUN", "obj")]}
        parts["det"] = self.fw("THE") if "THE" in self.lex and not parts["num"] else []
        parts["clf"] = self.fw("CLF") if "CLF" in self.lex and parts["num"] else []
        return [t for k in self.spec.np_order for t in parts[k]]

    def fact(self, f: Fact, ask: str | None = None, variant: str = "base") -> list[Tok]:
        """One sentence: the fact, or (with `ask`) the question about one of its slots. `variant` reorders
        phrases for paraphrases: `loc_front` fronts the location, `rec_first` puts the recipient first."""
        en = self.lang == "en"
        wh_per = self.fw("WH_PER", "wh")
        base_verb = en and (f.neg or ask not in (None, "per"))
        phr = {"SUBJ": wh_per if ask == "per" else self.entity(f.person, "PER", "per"),
               "VERB": [self.word(("VB" if base_verb else "V", f.verb), "VERB", "verb")],
               "NP": self._np(f, ask)}
        if f.neg:
            phr["NEG"] = (self.fw("DID") if en else []) + self.fw("NOT")
        if f.rec is not None:
            phr["REC"] = self._adp("TO", self.entity(f.rec, "PER", "rec"), "REC")
        if f.org is not None or ask == "org":
            phr["ORG"] = self._adp("FOR", wh_per if ask == "org" else self.entity(f.org, "ORG", "org"), "ORG")
        if ask == "loc":
            phr["LOC"] = self.fw("WH_LOC", "wh")
        elif f.loc is not None:
            phr["LOC"] = self._adp("IN", self.entity(f.loc, "LOC", "loc"), "LOC")
        if f.adv is not None:
            phr["ADV"] = [self.word(("ADV", f.adv), "ADV")]
        order = list(self.spec.order)
        if variant == "rec_first":
            i, j = order.index("NP"), order.index("REC")
            order[i], order[j] = order[j], order[i]
        elif variant == "loc_front" and "LOC" in phr:
            order.remove("LOC")
            order.insert(0, "LOC")
            phr["LOC"] = phr["LOC"] + [Tok(",", "PUNCT")]
        if ask is not None and self.spec.wh_front:
            order.remove(ASK_SLOT[ask])
            order.insert(0, ASK_SLOT[ask])
            if en and ask != "per":
                order.insert(1, "DID")
                phr["DID"] = self.fw("DID")
        toks = [t for k in order if k in phr for t in phr[k]]
        toks.append(Tok(self.spec.qmark if ask else self.spec.stop, "PUNCT"))
        if self.spec.cased:
            toks[0] = toks[0]._replace(text=toks[0].text[:1].upper() + toks[0].text[1:])
        return toks

    # ---------------------------------------------------------------- text
    def join(self, toks: list[Tok]) -> tuple[str, list[int]]:
        """The text of `toks` and each token's character offset. Punctuation attaches to the word before it;
        zh puts a space only on either side of a Latin/digit word ("Anna Berg", "在 Paris 买"), as much modern
        Chinese typesetting does, so that a name or number is the same word there as in the other languages."""
        parts, starts, pos, spaces, prev = [], [], 0, self.spec.spaces, ""
        for t in toks:
            text = t.text
            if prev and t.upos != "PUNCT" and (spaces or (prev[-1].isascii() and prev[-1].isalnum())
                                               or (text[0].isascii() and text[0].isalnum())):
                parts.append(" ")
                pos += 1
            starts.append(pos)
            parts.append(text)
            pos += len(text)
            prev = text
        return "".join(parts), starts

    def emit(self, toks: list[Tok], protect=()) -> tuple[list[Tok], list[int]]:
        """The tokens as this renderer outputs them (corrupted at `error_rate`; `protect`ed indices kept) and
        the new indices of the protected ones."""
        if self.rng is None:  # an exact renderer, not an MT one
            return toks, list(protect)
        protect, out, kept = set(protect), [], []
        for i, t in enumerate(toks):
            if i in protect:
                kept.append(len(out))
            elif t.upos != "PUNCT" and self.rng.random() < self.error_rate:
                if self.rng.random() < 0.5:
                    continue  # dropped
                t = t._replace(text=_pick(self.rng, self._content))
            out.append(t)
        if not any(t.upos != "PUNCT" for t in out):  # never translate a field into nothing
            out, kept = toks, list(protect)
        if len(self.pairs) < MT_CHRF_SEGMENTS:
            self.pairs.append((self.join(out)[0], self.join(toks)[0]))
        return out, sorted(kept)

    def text(self, toks: list[Tok], protect=()) -> tuple[str, tuple[int, int] | None]:
        """Text of `toks` and the character span (start, end) of the protected tokens (None if none)."""
        toks, kept = self.emit(toks, protect)
        text, starts = self.join(toks)
        if not kept:
            return text, None
        return text, (starts[kept[0]], starts[kept[-1]] + len(toks[kept[-1]].text))

    def sentence(self, toks: list[Tok]) -> str:
        return self.text(toks)[0]


# --------------------------------------------------------------------------------------------- tasks
class Meta(NamedTuple):
    """Where a row goes: its index in the file's language block, language and (resolved) source."""

    index: int
    lang: str
    source: Source


def _labels(rng, n: int, k: int) -> list[int]:
    """Balanced labels 0..k-1 in random order."""
    return [int(x) for x in rng.permutation(np.arange(n) % k)]


def _nli_items(w: World, rng, n: int, task: Task) -> list:
    """(premise fact, hypothesis, label): entailment restates (part of) the premise; contradiction is the same
    frame negated (three times as often as with another number, or another location, where the fact has one);
    neutral is an unrelated fact about the person. A one-fact premise and mostly negated contradictions keep the
    rule within what a tiny model learns in the demo's 25 fine-tuning steps (docs/synth.md, "Learnability against
    budget")."""
    items = []
    for label in _labels(rng, n, 3):
        f = w.fact(rng)
        h = replace(f, num=f.num if rng.random() < 0.5 else None, adj=f.adj if rng.random() < 0.5 else None,
                    loc=f.loc if rng.random() < 0.6 else None, org=None, adv=None)
        if NLI_LABELS[label] == "neutral":
            h = w.fact(rng, org=None, adv=None, person=f.person, verb=_other(rng, range(len(EN_VERBS)), f.verb),
                       obj=_other(rng, range(len(EN_OBJECTS)), f.obj))
        elif NLI_LABELS[label] == "contradiction":
            how = _pick(rng, ["neg"] * 3 + ["num"] * (f.num is not None) + ["loc"] * (f.loc is not None))
            if how == "num":
                h = replace(h, num=_other(rng, range(2, 100), f.num))
            elif how == "loc":
                h = replace(h, loc=_other(rng, w.locs, f.loc))
            else:
                h = replace(h, neg=True)
        items.append((f, h, label))
    return items


def _nli_texts(item, R: Renderer) -> tuple[str, str, int]:
    premise, h, label = item
    return R.sentence(R.fact(premise)), R.sentence(R.fact(h)), label


def _anli_row(w, item, R, m: Meta) -> dict:
    p, h, label = _nli_texts(item, R)
    return {"uid": f"{m.source.split}-{m.index}", "premise": p, "hypothesis": h, "label": label, "reason": ""}


def _mnli_row(w, item, R, m: Meta) -> dict:
    p, h, label = _nli_texts(item, R)
    return {"premise": p, "hypothesis": h, "label": label, "idx": m.index}


def _snli_row(w, item, R, m: Meta) -> dict:
    p, h, label = _nli_texts(item, R)
    return {"premise": p, "hypothesis": h, "label": -1 if m.index % 20 == 19 else label}  # -1: no gold label


def _xnli_row(w, item, R, m: Meta) -> dict:
    p, h, label = _nli_texts(item, R)
    return {"language": m.lang, "sentence1": p, "sentence2": h, "gold_label": NLI_LABELS[label]}


def _qqp_items(w: World, rng, n: int, task: Task) -> list:
    """(question 1, question 2, label), each question (fact, ask, variant). Half the items ask about a
    giving event (a recipient): a duplicate asks the same with its phrases reordered, a non-duplicate swaps the
    giver and the recipient (same words; PAWS-X's hard case, the `roles` skill of the transfer plan). The other
    half: a duplicate asks the same with a slot left out; a non-duplicate asks about another slot of the fact or
    the same slot of another fact about the person."""
    items = []
    for label in _labels(rng, n, 2):
        if rng.random() < 0.5:
            f = w.fact(rng, org=None)
            f = replace(f, rec=_other(rng, w.persons, f.person))
            ask = _pick(rng, [a for a in asks(f) if a != "per"])
            q = replace(qview(f, ask), rec=f.rec)
            v1 = _pick(rng, ("base", "rec_first"))
            if label == 1:
                q2 = (q, ask, "rec_first" if v1 == "base" else "base")
            else:
                q2 = (replace(q, person=f.rec, rec=f.person), ask, _pick(rng, ("base", "rec_first")))
            items.append(((q, ask, v1), q2, label))
            continue
        f = w.fact(rng)
        ask = _pick(rng, asks(f))
        q1 = (qview(f, ask), ask, "base")
        if label == 1:  # leave out a slot the question does not ask about, where there is one
            drops = [k for k in ("adj", "loc") if getattr(q1[0], k) is not None and k != ask]
            q2 = (replace(q1[0], **{_pick(rng, drops): None}) if drops else q1[0], ask, "base")
        elif rng.random() < 0.5:
            other = _other(rng, asks(f), ask)
            q2 = (qview(f, other), other, "base")
        else:
            g = w.fact(rng, {"num": 1.0, "loc": 1.0, "org": float(ask == "org")}, person=f.person,
                       verb=_other(rng, range(len(EN_VERBS)), f.verb))
            q2 = (qview(g, ask), ask, "base")
        items.append((q1, q2, label))
    return items


def _qqp_row(w, item, R, m: Meta) -> dict:
    q1, q2, label = item
    return {"question1": R.sentence(R.fact(*q1)), "question2": R.sentence(R.fact(*q2)), "label": label,
            "idx": m.index}


def _squad_items(w: World, rng, n: int, task: Task) -> list:
    """(context facts, index of the asked fact or None if unanswerable, asked fact, ask). A context is one or two
    facts (more are not learnt in the demo's budget: docs/synth.md); facts in a context share no person, verb,
    object, location or organisation, so each question has one answer."""
    unanswerable = kinds.of(task).allows_unanswerable
    items = []
    for i in range(n):
        k = int(rng.integers(1, 3))
        persons = _distinct(rng, w.persons, k + 1)
        slots = zip(persons, _distinct(rng, range(len(EN_VERBS)), k), _distinct(rng, range(len(EN_OBJECTS)), k),
                    _distinct(rng, w.locs, k), _distinct(rng, w.orgs, k))
        facts = [w.fact(rng, person=p, verb=v, obj=o, loc=loc if rng.random() < 0.9 else None,
                        org=org if rng.random() < 0.3 else None) for p, v, o, loc, org in slots]
        t = int(rng.integers(k))
        ask = _pick(rng, asks(facts[t]))
        if unanswerable and i % 3 == 2:  # about a person the context does not mention
            ask = "obj" if ask == "per" else ask
            items.append((facts, None, replace(qview(facts[t], ask), person=persons[k]), ask))
        else:
            items.append((facts, t, qview(facts[t], ask), ask))
    return items


def _squad_row(w, item, R: Renderer, m: Meta) -> dict:
    facts, t, qfact, ask = item
    toks, protect = [], []
    for j, f in enumerate(facts):
        ft = R.fact(f)
        if j == t:
            protect = [len(toks) + k for k, tok in enumerate(ft) if tok.role in ANSWER_ROLES[ask]]
        toks += ft
    context, span = R.text(toks, protect)
    answers = {"text": [context[span[0]:span[1]]], "answer_start": [span[0]]} if span else \
        {"text": [], "answer_start": []}
    return {"id": f"{m.source.id_prefix or 'synth-'}{m.source.split}-{m.index:06d}",
            "title": w.entity_name(facts[0].loc or facts[0].person, R.lang), "context": context,
            "question": R.sentence(R.fact(qfact, ask)), "answers": answers}


def _hellaswag_items(w: World, rng, n: int, task: Task) -> list:
    """(fact, next verb, 4 objects, label): the right ending goes on with the same object."""
    items = []
    for _ in range(n):
        f = w.fact(rng, org=None, adv=None)
        objs = [f.obj] + _distinct(rng, [o for o in range(len(EN_OBJECTS)) if o != f.obj], 3)
        label = int(rng.integers(4))
        objs[0], objs[label] = objs[label], objs[0]
        items.append((f, _other(rng, range(len(EN_VERBS)), f.verb), objs, label))
    return items


def _hellaswag_row(w, item, R: Renderer, m: Meta) -> dict:
    f, verb, objs, label = item
    ctx_a = R.sentence(R.fact(f))
    then = R.fw("THEN")
    ctx_b = R.sentence([t._replace(text=t.text.capitalize()) if R.spec.cased else t for t in then])
    endings = [R.sentence(R.fact(Fact(f.person, verb, o))) for o in objs]
    return {"ind": m.index, "activity_label": EN_VERBS[f.verb][0], "ctx_a": ctx_a, "ctx_b": ctx_b,
            "ctx": ctx_a + (" " if R.spec.spaces else "") + ctx_b, "endings": endings,
            "source_id": f"synth~{m.index}", "split": "train" if m.source.split == "train" else "val",
            "split_type": "indomain", "label": str(label)}


def _copa_items(w: World, rng, n: int, task: Task) -> list:
    """(fact, next verb, [object of choice 1, of choice 2], label, cause|effect): HellaSwag's rule with two
    choices (the right one goes on with the same object), so COPA / XCOPA share its `choice` skill."""
    items = []
    for _ in range(n):
        f = w.fact(rng, org=None, adv=None)
        objs = [f.obj, _other(rng, range(len(EN_OBJECTS)), f.obj)]
        label = int(rng.integers(2))
        objs[0], objs[label] = objs[label], objs[0]
        items.append((f, _other(rng, range(len(EN_VERBS)), f.verb), objs, label, _pick(rng, ("cause", "effect"))))
    return items


def _copa_row(w, item, R: Renderer, m: Meta) -> dict:
    """SuperGLUE COPA's columns (XCOPA's add `changed`); `question` is the English word in every language, as
    in XCOPA's files."""
    f, verb, objs, label, relation = item
    row = {"premise": R.sentence(R.fact(f)), "choice1": R.sentence(R.fact(Fact(f.person, verb, objs[0]))),
           "choice2": R.sentence(R.fact(Fact(f.person, verb, objs[1]))), "question": relation, "idx": m.index,
           "label": label}
    return {**row, "changed": False} if m.source.raw_schema == "xcopa" else row


def _csqa_items(w: World, rng, n: int, task: Task) -> list:
    """(fact, ask obj|loc, 5 choices, label, id): the statement, then a question about its object or place."""
    items = []
    for _ in range(n):
        f = w.fact(rng, {"loc": 1.0}, org=None, adv=None)
        ask = _pick(rng, ("obj", "loc"))
        pool, right = (range(len(EN_OBJECTS)), f.obj) if ask == "obj" else (w.locs, f.loc)
        choices = [right] + _distinct(rng, [x for x in pool if x != right], 4)
        label = int(rng.integers(5))
        choices[0], choices[label] = choices[label], choices[0]
        items.append((f, ask, choices, label, rng.bytes(16).hex()))
    return items


def _choice_text(R: Renderer, ask: str, value) -> str:
    if ask == "obj":
        return R.sentence([R.word(("O", value), "NOUN")])
    return R.sentence(R.entity(value, "PER" if ask == "per" else "LOC", ask))


def _csqa_row(w, item, R: Renderer, m: Meta) -> dict:
    f, ask, choices, label, qid = item
    return {"id": qid, "question": R.sentence(R.fact(f) + R.fact(qview(f, ask), ask)),
            "question_concept": R.lex[("V", f.verb)],
            "choices": {"label": list("ABCDE"), "text": [_choice_text(R, ask, c) for c in choices]},
            "answerKey": "ABCDE"[label]}


def _cosmos_items(w: World, rng, n: int, task: Task, k: int = 4) -> list:
    """(two facts, ask, `k` choices, label, id): the question is about the first person. In a third of the
    items the other person's answer is among the wrong choices (only reading which fact the question is about
    tells them apart); otherwise the wrong choices are not in the context (finding the answer in it is
    enough, the cue a small model learns first)."""
    items = []
    for _ in range(n):
        p1, p2 = _distinct(rng, w.persons, 2)
        o1, o2 = _distinct(rng, range(len(EN_OBJECTS)), 2)
        l1, l2 = _distinct(rng, w.locs, 2)
        f1 = w.fact(rng, person=p1, obj=o1, loc=l1, org=None, adv=None)
        f2 = w.fact(rng, person=p2, obj=o2, loc=l2, org=None, adv=None, verb=_other(rng, range(len(EN_VERBS)), f1.verb))
        ask = _pick(rng, ("per", "obj", "loc"))
        key = {"per": "person", "obj": "obj", "loc": "loc"}[ask]
        pool = {"per": w.persons, "obj": range(len(EN_OBJECTS)), "loc": w.locs}[ask]
        right, near = getattr(f1, key), getattr(f2, key)
        others = _distinct(rng, [x for x in pool if x not in (right, near)], k - 1)
        choices = [right] + ([near] + others[:k - 2] if rng.random() < 1 / 3 else others)
        order = [int(x) for x in rng.permutation(k)]
        items.append(([f1, f2] if rng.random() < 0.5 else [f2, f1], f1, ask, [choices[k] for k in order],
                      order.index(0), rng.bytes(12).hex()))
    return items


def _cosmos_row(w, item, R: Renderer, m: Meta) -> dict:
    facts, f1, ask, choices, label, qid = item
    row = {"id": qid, "context": R.sentence([t for f in facts for t in R.fact(f)]),
           "question": R.sentence(R.fact(qview(f1, ask), ask))}
    row.update({f"answer{k}": _choice_text(R, ask, c) for k, c in enumerate(choices)})
    row["label"] = label
    return row


def _siqa_items(w: World, rng, n: int, task: Task) -> list:
    """Social IQa's shape: Cosmos QA's reading items with 3 choices."""
    return _cosmos_items(w, rng, n, task, k=3)


def _siqa_row(w, item, R: Renderer, m: Meta) -> dict:
    facts, f1, ask, choices, label, _ = item
    row = {"context": R.sentence([t for f in facts for t in R.fact(f)]),
           "question": R.sentence(R.fact(qview(f1, ask), ask))}
    row.update({f"answer{k}": _choice_text(R, ask, c) for k, c in zip("ABC", choices)})
    row["label"] = str(label + 1)
    return row


def _sentence_items(w: World, rng, n: int, task: Task | None) -> list:
    """(fact, ask, variant): statements (some negated, some with a recipient or reordered) and questions."""
    items = []
    for _ in range(n):
        f = w.fact(rng, neg=rng.random() < 0.15,
                   rec=_pick(rng, w.persons) if rng.random() < 0.15 else None)
        if rng.random() < 0.2:
            ask = _pick(rng, asks(f))
            items.append((qview(f, ask), ask, "base"))
        else:
            items.append((f, None, _pick(rng, ("base", "base", "loc_front") + ("rec_first",) * (f.rec is not None))))
    return items


def _sentence_toks(item, R: Renderer) -> list[Tok]:
    f, ask, variant = item
    return R.emit(R.fact(f, ask, variant))[0]


def supertags(toks: list[Tok]) -> list[str]:
    """CCG-style categories derived deterministically from each word's class and position."""
    question, aux = toks[-1].text == "?", any(t.upos == "AUX" for t in toks)
    out = []
    for i, t in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        tag = {"NUM": "N/N", "ADJ": "N/N", "NOUN": "N", "DET": "NP[nb]/N", "PART": r"(S\NP)\(S\NP)",
               "CCONJ": "conj", "PUNCT": t.text}.get(t.upos)
        if t.upos == "PROPN":  # the entity type is a feature of the category: CCG shares entity typing with PAN-X
            kind = t.ner[2:].lower()
            tag = f"N[{kind}]/N[{kind}]" if nxt is not None and nxt.ner.startswith("I-") else f"NP[{kind}]"
        elif t.upos == "VERB":
            tag = r"(S[b]\NP)/NP" if aux else r"(S[dcl]\NP)/NP"
        elif t.upos == "AUX":
            tag = r"(S[q]/(S[b]\NP))/NP" if question else r"(S[dcl]\NP)/(S[b]\NP)"
        elif t.upos == "PRON":
            tag = r"S[wq]/(S[dcl]\NP)" if i == 0 else "NP"
        elif t.upos == "ADP":
            tag = "PP/NP" if t.role == "REC" else r"((S\NP)\(S\NP))/NP"
        elif t.upos == "ADV":
            tag = r"S[wq]/S[q]" if i == 0 else r"(S\NP)\(S\NP)"
        out.append(tag)
    return out


def _ccg_row(w, item, R, m: Meta) -> dict:
    toks = _sentence_toks(item, R)
    return {"tokens": [t.text for t in toks], "supertags": supertags(toks)}


def _udpos_row(w, item, R, m: Meta) -> dict:
    toks = _sentence_toks(item, R)
    return {"tokens": [t.text for t in toks], "pos_tags": [UPOS_TAGS.index(t.upos) for t in toks]}


def _panx_row(w, item, R, m: Meta) -> dict:
    toks = _sentence_toks(item, R)
    return {"tokens": [t.text for t in toks], "ner_tags": [PANX_TAGS.index(t.ner) for t in toks],
            "langs": [m.lang] * len(toks)}


def _corpus_items(w: World, rng, n: int, task: Task | None) -> list:
    """(sentences, parallel) per MLM corpus row: a third are one sentence; a third are short documents about one
    person (a fact, another fact of the person, then the first restated without its adverb or asked about), so a
    masked word can often be found elsewhere in the row, as in real text; a third are `parallel`: in a
    non-English corpus the sentence is followed by its English rendering, XLM's translation language modelling
    (Conneau & Lample 2019), so a masked word is predictable from its translation (docs/synth.md, "The corpus")."""
    items = []
    for sentence in _sentence_items(w, rng, n, None):
        kind = int(rng.integers(3))
        if kind == 1:
            f = sentence[0] if sentence[1] is None else w.fact(rng)
            g = w.fact(rng, person=f.person, verb=_other(rng, range(len(EN_VERBS)), f.verb))
            ask = _pick(rng, asks(f))
            last = (qview(f, ask), ask, "base") if rng.random() < 0.5 else (replace(f, adv=None), None, "base")
            items.append(([(f, None, "base"), (g, None, "base"), last], False))
        else:
            items.append(([sentence], kind == 2))
    return items


# Share of a non-English corpus row's lexicon words written as their English word (code-switching, as in
# bilingual text): a word and its translation then fill the same slots, which is what aligns the languages.
CODE_SWITCH_RATE = 0.3


def _code_switched(w: World, toks: list[Tok], R: Renderer, rng) -> list[Tok]:
    """`toks` with each lexicon word that has an English counterpart replaced by it at `CODE_SWITCH_RATE`."""
    if R.lang == "en":
        return toks
    en, key_of = w.lex["en"], w.lexicon_keys(R.lang)
    return [t._replace(text=en[key_of[t.text]]) if key_of.get(t.text) in en and rng.random() < CODE_SWITCH_RATE
            else t for t in toks]


def _text_row(w, item, R, m: Meta) -> dict:
    sentences, parallel = item
    rng = _rng(w.seed, "code-switch", R.lang, str(m.index))
    text = (" " if R.spec.spaces else "").join(R.join(_code_switched(w, _sentence_toks(s, R), R, rng))[0]
                                               for s in sentences)
    if parallel and R.lang != "en":
        en = w.renderer("en")
        text += " " + " ".join(en.join(_sentence_toks(s, en))[0] for s in sentences)
    return {"text": text}


def _paws_items(w: World, rng, n: int, task: Task) -> list:
    """(fact, variant 1, fact 2, variant 2, label): a paraphrase reorders phrases; a third of the
    non-paraphrases swap the giver and the recipient (same words, PAWS's hard case), the rest say another
    event with the same people and place (another verb, and another number where there is one)."""
    variants = ("base", "loc_front", "rec_first")
    items = []
    for label in _labels(rng, n, 2):
        f = w.fact(rng, {"loc": 1.0}, org=None)
        f = replace(f, rec=_other(rng, w.persons, f.person))
        v1 = _pick(rng, variants)
        if label == 1:
            g, v2 = f, _other(rng, variants, v1)
        elif rng.random() < 1 / 3:
            g, v2 = replace(f, person=f.rec, rec=f.person), _pick(rng, variants)
        else:
            g = replace(f, verb=_other(rng, range(len(EN_VERBS)), f.verb),
                        num=None if f.num is None else _other(rng, range(2, 100), f.num))
            v2 = _pick(rng, variants)
        items.append((f, v1, g, v2, label))
    return items


def _paws_row(w, item, R: Renderer, m: Meta) -> dict:
    f, v1, g, v2, label = item
    return {"sentence1": R.sentence(R.fact(f, variant=v1)), "sentence2": R.sentence(R.fact(g, variant=v2)),
            "label": str(label)}


def _unique_facts(w: World, rng, n: int, p: dict) -> list[Fact]:
    out: dict[Fact, None] = {}
    while len(out) < n:
        out[w.fact(rng, p)] = None
    return list(out)


def _tatoeba_items(w: World, rng, n: int, task: Task) -> list:
    return _unique_facts(w, rng, n, {"org": 0.2})


def _tatoeba_row(w, item, R: Renderer, m: Meta) -> dict:
    en = w.renderer("en")
    return {"source_sentence": R.sentence(R.fact(item)) + "\n", "target_sentence": en.sentence(en.fact(item)) + "\n",
            "source_lang": TATOEBA_ISO3.get(m.lang, m.lang), "target_lang": "eng"}


_MEWSLIX_ROLES = {"per": "person", "org": "org", "loc": "loc"}


def _mewslix_entities(w: World) -> list[tuple[str, str, str]]:
    """(QID, name, role) of every entity of the world."""
    named = [(n, "per") for n in w.persons] + [(n, "org") for n in w.orgs] + [(n, "loc") for n in w.locs]
    return [(f"Q{1000 + i}", name, role) for i, (name, role) in enumerate(named)]


def _mewslix_descriptions(w: World, entities) -> list[dict]:
    """The entity table's records (the same draws as the `candidate_set_entities` file)."""
    rng = _rng(w.seed, "mewslix", "candidate_set_entities")
    out = []
    for qid, name, role in entities:
        lang = "en" if rng.random() < 0.6 else _pick(rng, LANGUAGES[1:])
        text, spans = _mewslix_context(w, rng, w.renderer(lang), name, role, lead=True)[:2]
        out.append({"entity_id": qid, "title": name, "description": text, "description_url": "",
                    "description_language": lang, "sentence_spans": spans})
    return out


def _mewslix_context(w: World, rng, R: Renderer, name: str, role: str, lead: bool = False):
    """(text, sentence spans, the entity's span): 2-3 sentences, the first (`lead`) or a random one about the
    entity (it fills the slot of `role`), the others random facts."""
    n = int(rng.integers(2, 4))
    at = 0 if lead else int(rng.integers(n))
    text, spans, mention = "", [], None
    for k in range(n):
        f = w.fact(rng, {"org": 0.3}, **{_MEWSLIX_ROLES[role]: name}) if k == at else w.fact(rng)
        toks = R.fact(f)
        sentence, span = R.text(toks, [j for j, t in enumerate(toks) if t.role == role] if k == at else ())
        if text and R.spec.spaces:
            text += " "
        if k == at:
            mention = (len(text) + span[0], len(text) + span[1])
        spans.append({"start": len(text), "end": len(text) + len(sentence)})
        text += sentence
    return text, spans, mention


def _mewslix_mention(w: World, rng, lang: str, name: str, role: str, qid: str, example_id: str):
    """A WikiNews-style (context, mention) pair in `lang` naming entity `qid`."""
    text, spans, (start, end) = _mewslix_context(w, rng, w.renderer(lang), name, role)
    context = {"document_id": f"{lang}-{example_id}", "document_url": "", "document_title": "", "section_title": "",
               "language": lang, "text": text, "sentence_spans": spans}
    mention = {"example_id": example_id, "entity_id": qid,
               "mention_span": {"start": start, "end": end, "text": text[start:end]}}
    return context, mention


class Gen(NamedTuple):
    """How to make one raw schema's data: sample semantic items once per source (shared by every language),
    then render each item into a row of the hub schema."""

    sample: Callable
    row: Callable
    schema: pa.Schema
    # Training splits this many times the size preset's: tasks whose cue is a comparison across two texts
    # (paraphrase, reading which fact a question is about, unanswerable questions) need ~10,000 examples
    # before a small model learns them (measured: docs/synth.md "Learnability"); the real ones are large too.
    train_scale: int = 1


_S, _I32, _I64 = pa.string(), pa.int32(), pa.int64()
_STRS = pa.list_(_S)
_SQUAD = Gen(_squad_items, _squad_row, pa.schema([
    ("id", _S), ("title", _S), ("context", _S), ("question", _S),
    ("answers", pa.struct([("text", _STRS), ("answer_start", pa.list_(_I32))]))]), train_scale=10)
GENERATORS: dict[str, Gen] = {
    "anli": Gen(_nli_items, _anli_row, pa.schema([("uid", _S), ("premise", _S), ("hypothesis", _S),
                                                  ("label", _I64), ("reason", _S)])),
    "glue_mnli": Gen(_nli_items, _mnli_row, pa.schema([("premise", _S), ("hypothesis", _S), ("label", _I64),
                                                       ("idx", _I32)])),
    "snli": Gen(_nli_items, _snli_row, pa.schema([("premise", _S), ("hypothesis", _S), ("label", _I64)])),
    "glue_qqp": Gen(_qqp_items, _qqp_row, pa.schema([("question1", _S), ("question2", _S), ("label", _I64),
                                                     ("idx", _I32)])),
    "squad": _SQUAD,
    "squad_sentences": _SQUAD,  # LAReQA's training pairs read SQuAD's own files
    "hellaswag": Gen(_hellaswag_items, _hellaswag_row, pa.schema([
        ("ind", _I32), ("activity_label", _S), ("ctx_a", _S), ("ctx_b", _S), ("ctx", _S), ("endings", _STRS),
        ("source_id", _S), ("split", _S), ("split_type", _S), ("label", _S)])),
    "commonsense_qa": Gen(_csqa_items, _csqa_row, pa.schema([
        ("id", _S), ("question", _S), ("question_concept", _S),
        ("choices", pa.struct([("label", _STRS), ("text", _STRS)])), ("answerKey", _S)])),
    "cosmos_qa": Gen(_cosmos_items, _cosmos_row, pa.schema(
        [("id", _S), ("context", _S), ("question", _S)] + [(f"answer{k}", _S) for k in range(4)] +
        [("label", _I32)]), train_scale=10),
    "social_i_qa": Gen(_siqa_items, _siqa_row, pa.schema([("context", _S), ("question", _S), ("answerA", _S),
                                                          ("answerB", _S), ("answerC", _S), ("label", _S)]),
                       train_scale=10),
    "copa": Gen(_copa_items, _copa_row, pa.schema([("premise", _S), ("choice1", _S), ("choice2", _S),
                                                   ("question", _S), ("idx", _I32), ("label", _I32)])),
    "xcopa": Gen(_copa_items, _copa_row, pa.schema([("premise", _S), ("choice1", _S), ("choice2", _S),
                                                    ("question", _S), ("label", _I32), ("idx", _I32),
                                                    ("changed", pa.bool_())])),
    "ccg": Gen(_sentence_items, _ccg_row, pa.schema([("tokens", _STRS), ("supertags", _STRS)])),
    "xnli": Gen(_nli_items, _xnli_row, pa.schema([("language", _S), ("sentence1", _S), ("sentence2", _S),
                                                  ("gold_label", _S)])),
    "pawsx": Gen(_paws_items, _paws_row, pa.schema([("sentence1", _S), ("sentence2", _S), ("label", _S)]),
                 train_scale=10),
    "udpos": Gen(_sentence_items, _udpos_row, pa.schema([("tokens", _STRS), ("pos_tags", pa.list_(_I64))])),
    "panx": Gen(_sentence_items, _panx_row, pa.schema([("tokens", _STRS), ("ner_tags", pa.list_(_I64)),
                                                       ("langs", _STRS)])),
    "tatoeba": Gen(_tatoeba_items, _tatoeba_row, pa.schema([("source_sentence", _S), ("target_sentence", _S),
                                                            ("source_lang", _S), ("target_lang", _S)])),
    "text": Gen(_corpus_items, _text_row, pa.schema([("text", _S)])),
}


# --------------------------------------------------------------------------------------------- writing
class _Writer:
    """Writes the mirror under `root` and keeps the report's per-file row counts."""

    def __init__(self, root: Path, world: World, sizes: dict):
        self.root, self.world, self.sizes = root, world, sizes
        self.files: dict[str, int] = {}
        self.items: dict[str, list] = {}  # sampled items per (unresolved) source, reused for the MT data

    def _items(self, task: Task, source: Source, n: int) -> list:
        key = source_tag(source)
        if key not in self.items:
            gen = GENERATORS[source.raw_schema]
            self.items[key] = gen.sample(self.world, _rng(self.world.seed, key), n, task)
        return self.items[key]

    def table(self, source: Source, langs, items, renderer: Callable[[str], Renderer]) -> None:
        """Render `items` in each of `langs` into the mirror file of `source` (one file for all `langs`)."""
        gen = GENERATORS[source.raw_schema]
        rows = []
        for lang in langs:
            src, R = resolve(source, lang), renderer(lang)
            rows += [gen.row(self.world, item, R, Meta(i, lang, src)) for i, item in enumerate(items)]
        path = local_stem(self.root, resolve(source, langs[0])).with_suffix(".parquet")
        write_parquet(path, pa.Table.from_pylist(rows, schema=gen.schema))
        self.files[path.relative_to(self.root).as_posix()] = len(rows)

    def source(self, task: Task, split: str, source: Source) -> None:
        """Every file of one registry source: English only for training and intermediate data, else every
        language (languages resolving to the same file, as in XNLI and TyDiQA, share it)."""
        if source.raw_schema == "bucc_original":
            for lang in LANGUAGES[1:]:
                self.bucc(source, lang)
            return
        if source.raw_schema == "lareqa_original":
            self.lareqa(task, source)
            return
        if source.raw_schema in MEWSLIX_SCHEMAS:
            self.mewslix(task, source)
            return
        if task.role == "intermediate":
            n = self.sizes["inter_train" if split == "train" else "inter_dev"]
        else:
            n = self.sizes["target_train" if split == "train" else "eval"]
        if split == "train":
            n *= GENERATORS[source.raw_schema].train_scale
        same_path = sum(1 for s in task.sources[split] if s.path == source.path and s.config == source.config)
        items = self._items(task, source, max(1, n // same_path))
        by_file: dict[Path, list[str]] = {}
        for lang in (("en",) if task.role == "intermediate" or split == "train" else LANGUAGES):
            if source.has_language(lang):  # a source of some languages only (PAN-X's WikiANN: XTREME-R's 8)
                by_file.setdefault(local_stem(self.root, resolve(source, lang)), []).append(lang)
        for path, langs in by_file.items():
            if path.relative_to(self.root).with_suffix(".parquet").as_posix() not in self.files:
                self.table(source, langs, items, self.world.renderer)

    def bucc(self, source: Source, lang: str) -> None:
        """Original BUCC files: both pools hold the gold pairs plus distractors, shuffled, with random ids."""
        src = resolve(source, lang)
        rng = _rng(self.world.seed, "bucc", src.split, lang)
        n_gold, n_dis = self.sizes["bucc_gold"], self.sizes["bucc_distractors"]
        facts = _unique_facts(self.world, rng, n_gold + 2 * n_dis, {"org": 0.2})
        gold, dis_src, dis_en = facts[:n_gold], facts[n_gold:n_gold + n_dis], facts[n_gold + n_dis:]
        folder = self.root / src.path / src.config
        ids = {}
        for side, side_lang, pool in ((lang, lang, gold + dis_src), ("en", "en", gold + dis_en)):
            R = self.world.renderer(side_lang)
            numbers = rng.choice(1_000_000, size=len(pool), replace=False)
            ids[side] = [f"{side_lang}-{k:06d}" for k in numbers]
            lines = [f"{ids[side][i]}\t{R.sentence(R.fact(pool[i]))}\n" for i in rng.permutation(len(pool))]
            self._text(folder / f"{src.config}.{src.split}.{side}", lines)
        pairs = sorted(zip(ids[lang][:n_gold], ids["en"][:n_gold]))
        self._text(folder / f"{src.config}.{src.split}.gold", [f"{a}\t{b}\n" for a, b in pairs])

    def lareqa(self, task: Task, source: Source) -> None:
        """xquad-r files: the same SQuAD-style items in every language (a question's id is shared by its
        translations), each context its own paragraph with the `sentence_breaks` the real files carry."""
        from xstilts.kinds.answer_retrieval import sentence_breaks

        items = _squad_items(self.world, _rng(self.world.seed, "lareqa"), self.sizes["eval"], task)
        for lang in LANGUAGES:
            src, R = resolve(source, lang), self.world.renderer(lang)
            paragraphs = []
            for i, item in enumerate(items):
                row = _squad_row(self.world, item, R, Meta(i, lang, src))
                paragraphs.append({"context": row["context"],
                                   "sentence_breaks": [list(b) for b in sentence_breaks(row["context"])],
                                   "qas": [{"id": f"lareqa-{i:06d}", "question": row["question"],
                                            "answers": [{"text": t, "answer_start": s} for t, s in
                                                        zip(row["answers"]["text"], row["answers"]["answer_start"])]}]})
            path = local_stem(self.root, src).with_suffix(".json")
            write_text(path, json.dumps({"version": "1.1", "data": [{"title": "xquad-r", "paragraphs": paragraphs}]},
                                        ensure_ascii=False))
            self.files[path.relative_to(self.root).as_posix()] = len(paragraphs)

    def mewslix(self, task: Task, source: Source) -> None:
        """One file of the Mewsli-X release (JSONL, its own schema): the entity table is every person,
        organisation and place of the world, each described in one language (English for about 60%, as most of
        the real table is not); Wikipedia pairs are English; WikiNews articles are written in each Mewsli-X
        language the world has. A mention's context is 2-3 sentences, one of them naming the entity."""
        entities = _mewslix_entities(self.world)
        rng = _rng(self.world.seed, "mewslix", source.split)
        path = (self.root / source.path / source.split).with_suffix(".jsonl")
        if source.raw_schema == "mewslix_entities":
            lines = _mewslix_descriptions(self.world, entities)
        elif source.raw_schema == "mewslix_pairs":
            n = self.sizes["eval"] if "dev" in source.split else 3 * self.sizes["target_train"]
            descriptions = {e["entity_id"]: e for e in _mewslix_descriptions(self.world, entities)}
            lines = []
            for i in range(n):
                qid, name, role = entities[int(rng.integers(len(entities)))]
                context, mention = _mewslix_mention(self.world, rng, "en", name, role, qid, f"{source.split}-{i:06d}")
                lines.append({"contextual_mention": {"context": context, "mention": mention},
                              "entity": descriptions[qid]})  # the pair's entity is the table's record of it
        else:
            lines = []
            for lang in (x for x in LANGUAGES if x in task.languages):
                for i in range(self.sizes["eval"]):
                    qid, name, role = entities[int(rng.integers(len(entities)))]
                    context, mention = _mewslix_mention(self.world, rng, lang, name, role, qid,
                                                        f"{source.split}-{lang}-{i:06d}")
                    lines.append({"context": context, "mentions": [mention]})
        self._text(path, [json.dumps(line, ensure_ascii=False) + "\n" for line in lines])

    def _text(self, path: Path, lines: list[str]) -> None:
        write_text(path, "".join(lines))
        self.files[path.relative_to(self.root).as_posix()] = len(lines)

    def corpus(self) -> None:
        for lang in LANGUAGES:
            items = _corpus_items(self.world, _rng(self.world.seed, "corpus", lang), self.sizes["corpus"], None)
            self.table(CORPUS_SOURCE, [lang], items, self.world.renderer)

    def translated(self, task: Task, error_rate: float) -> dict[str, float]:
        """Noisy "machine translations" of the task's first training source into every other language, and
        their chrF against the exact rendering: its first `inter_train` examples (a `train_scale` beyond the
        preset's size would multiply the translation time and is not what the mt variant needs)."""
        from sacrebleu.metrics import CHRF

        first = task.sources["train"][0]
        items = self._items(task, first, self.sizes["inter_train"])[:self.sizes["inter_train"]]
        target, chrf = translated_source(task.name), {}
        for lang in LANGUAGES[1:]:
            R = Renderer(self.world, lang, error_rate, _rng(self.world.seed, "mt", task.name, lang))
            self.table(replace(target, raw_schema=first.raw_schema), [lang], items, lambda _: R)
            hyps, refs = zip(*R.pairs)
            chrf[lang] = round(CHRF().corpus_score(list(hyps), [list(refs)]).score, 2)
        return chrf


def _task_groups() -> list[list[str]]:
    """The tasks, in registry order, grouped so that tasks reading a common source (ANLI+ holds MNLI's
    training set) are generated by one writer: the first task's sample of it is the one both use."""
    groups: list[tuple[list[str], set[str]]] = []
    for task in TASKS.values():
        keys = {source_tag(s) for sources in task.sources.values() for s in sources}
        joined = [g for g in groups if g[1] & keys]
        groups = [g for g in groups if not g[1] & keys]
        names = sorted([*(n for g in joined for n in g[0]), task.name], key=list(TASKS).index)
        groups.append((names, keys.union(*(g[1] for g in joined))))
    return [names for names, _ in groups]


def _generate_part(root: str, seed: int, size: str, rate: float, names: list[str] | None) -> tuple[dict, dict]:
    """One writer's share of the mirror: the tasks `names` (their files and MT data) or, for None, the MLM
    corpus. Every sample has its own random stream (`_rng` keyed by what it is), so how the mirror is split
    among processes does not change a byte (tests/test_synth.py)."""
    w = _Writer(Path(root), World(seed), SIZES[size])
    if names is None:
        w.corpus()
        return w.files, {}
    for name in names:
        for split, sources in TASKS[name].sources.items():
            for source in sources:
                w.source(TASKS[name], split, source)
    return w.files, {name: w.translated(TASKS[name], rate) for name in names if TASKS[name].role == "intermediate"}


def generate(out_dir: str | Path, seed: int = 0, size: str = "demo", mt_error_rate: float | None = None,
             workers: int = 1) -> dict:
    """Write the synthetic mirror under `out_dir` and return the report (also written as synth_report.json);
    `workers` processes share the task groups."""
    if size not in SIZES:
        raise UserError(f"--size {size!r}: expected one of {', '.join(SIZES)}")
    if seed < 0:
        raise UserError(f"--seed {seed}: expected a non-negative integer")
    rate = DEFAULT_MT_ERROR_RATE if mt_error_rate is None else mt_error_rate
    if not 0.0 <= rate <= 1.0:
        raise UserError(f"--mt-error-rate {rate}: expected a probability between 0 and 1")
    if workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    root = Path(out_dir)
    parts = [(str(root), seed, size, rate, names) for names in [*_task_groups(), None]]
    if workers > 1:
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(parts))) as pool:
            done = list(pool.map(_generate_part, *zip(*parts)))
    else:
        done = [_generate_part(*part) for part in parts]
    files = {name: rows for part_files, _ in done for name, rows in part_files.items()}
    chrf_by_task = {name: value for _, part_chrf in done for name, value in part_chrf.items()}
    chrf = {t.name: chrf_by_task[t.name] for t in TASKS.values() if t.role == "intermediate"}
    report = {"seed": seed, "size": size, "languages": list(LANGUAGES), "mt_error_rate": rate,
              "files": dict(sorted(files.items())), "mt_chrf": chrf}
    write_json(root / REPORT, report)
    return report


def main(args) -> int:
    """The `xstilts synth` verb: generate, then print a short summary with the chrF table."""
    report = generate(args.out, seed=args.seed, size=args.size, mt_error_rate=args.mt_error_rate,
                      workers=args.workers)
    print(f"xstilts synth: wrote {len(report['files'])} files ({sum(report['files'].values())} rows) to {args.out} "
          f"(seed {report['seed']}, size {report['size']}, languages {' '.join(report['languages'])})")
    langs = LANGUAGES[1:]
    print(f"MT chrF at word error rate {report['mt_error_rate']}:")
    print(f"{'task':<14}" + "".join(f"{x:>7}" for x in langs))
    for task, row in report["mt_chrf"].items():
        print(f"{task:<14}" + "".join(f"{row[x]:>7.1f}" for x in langs))
    return 0
