"""Sentence retrieval scored straight from an encoder (no head, no fine-tuning): Tatoeba and BUCC 2018.

Each kind carries its protocol for one language (`retrieve_language`); the vector-level search, margin
mining and threshold live in `xstilts.retrieval`, and `xstilts retrieve` only loads, embeds and writes.
"""

from __future__ import annotations

from typing import Callable

from xstilts.kinds.base import TaskKind

Rows = Callable[[str], list]  # split -> the language's prepared rows of that split
Embed = Callable[[list], object]  # texts -> float32 (texts x dim) embeddings
Write = Callable[[str, str, object], None]  # ("predictions" | "labels", split, lines) -> file written


class BitextRetrieval(TaskKind):
    """Tatoeba: for each English sentence, its nearest source-language sentence. The direction is XTREME's
    (`third_party/run_retrieval.py` before c168376, `utils_retrieve.similarity_search`: the source sentences
    are the index, the English ones the queries); one predicted index per line, gold = the row's own index."""

    name = "bitext_retrieval"
    schema = {"id": "string", "lang": "string", "source": "string", "target": "string"}

    def texts(self, rows: list[dict]) -> list[str]:
        """Every text a run embeds (xstilts.estimate)."""
        return [r[k] for r in rows for k in ("source", "target")]

    def retrieve_language(self, task, data_dir: str, lang: str, splits: list[str], rows: Rows, gold: Rows,
                          embed: Embed, write: Write, hp: dict) -> tuple[dict, dict | None]:
        """({split: scores} for every split that has rows (dev is optional, test is not), None)."""
        import numpy as np

        from xstilts import retrieval
        from xstilts.errors import UserError

        scores = {}
        for split in splits:
            split_rows = rows(split)
            if not split_rows and split == "dev":
                continue
            if not split_rows:
                raise UserError(f"{data_dir}: Tatoeba test has no rows for language {lang!r}")
            pred = retrieval.tatoeba_predict(embed([r["source"] for r in split_rows]),
                                             embed([r["target"] for r in split_rows]))
            scores[split] = {"accuracy": retrieval.tatoeba_accuracy(pred, np.arange(len(split_rows)))}
            write("predictions", split, (int(p) for p in pred))
            write("labels", split, range(len(split_rows)))
        return scores, None


class BitextMining(TaskKind):
    """BUCC 2018: mine (source id, English id) pairs from two pools with distractors (LASER / XTREME
    `mine_bitext`: ratio margin, k neighbours both ways); the F1-maximising threshold is chosen on the dev
    ("sample") gold and applied unchanged to test. Files: one `src_id<TAB>en_id` pair per line."""

    name = "bitext_mining"
    # one row per sentence of either side; gold pairs go to `<split>-gold.parquet` (lang, src_id, en_id)
    schema = {"lang": "string", "side": "string", "sent_id": "string", "text": "string"}
    gold_pairs = True
    one_prediction_per_gold = False  # mined pairs against gold pairs: any number of each

    def score_keys(self, task):
        return ("f1",)

    def texts(self, rows: list[dict]) -> list[str]:
        return [r["text"] for r in rows]

    def parse_submission(self, paths, texts):
        lines = [[x.strip() for x in t.splitlines() if x.strip()] for t in texts]
        return tuple({tuple(x.split("\t")) for x in group} for group in lines)

    def units(self, task, lang, pred, gold):
        """Per source sentence: its predicted pair(s), gold pair(s), correct ones (F1 = 2c / (p + g))."""
        import numpy as np

        from xstilts.uncertainty import Units

        sources = sorted({s for s, _ in pred} | {s for s, _ in gold})
        index = {s: i for i, s in enumerate(sources)}
        stats = np.zeros((len(sources), 3))
        for column, pairs in ((0, pred & gold), (1, pred), (2, gold)):
            for s, _ in pairs:
                stats[index[s], column] += 1
        return Units(tuple(sources), 2 * stats[:, 0], stats[:, 1] + stats[:, 2])

    def retrieve_language(self, task, data_dir, lang, splits, rows, gold, embed, write, hp):
        """({split: scores} for dev and test, {threshold, dev_f1}): both pools are mined, the threshold is
        tuned on the dev gold only and applied to both splits (dev is in-sample by design)."""
        from xstilts import retrieval
        from xstilts.errors import UserError
        from xstilts.metrics import bucc_scores

        mined, gold_pairs = {}, {}
        for split in ("dev", "test"):
            pool = rows(split)
            src_rows = [r for r in pool if r["side"] == "src"]
            en_rows = [r for r in pool if r["side"] == "en"]
            if not src_rows or not en_rows:
                raise UserError(f"{data_dir}: BUCC {split} pool for {lang!r} is empty on one side")
            mined[split] = retrieval.bucc_mine_pools(
                [r["sent_id"] for r in src_rows], [r["text"] for r in src_rows],
                [r["sent_id"] for r in en_rows], [r["text"] for r in en_rows], embed, k=hp["bucc_k"])
            gold_pairs[split] = {(g["src_id"], g["en_id"]) for g in gold(split)}
        threshold, dev_f1 = retrieval.bucc_best_threshold(mined["dev"], gold_pairs["dev"])
        scores = {}
        for split in ("test", "dev"):
            pairs = retrieval.bucc_mine(mined[split], threshold)
            scores[split] = bucc_scores(pairs, gold_pairs[split])
            write("predictions", split, (f"{s}\t{e}" for s, e in sorted(pairs)))
            write("labels", split, (f"{s}\t{e}" for s, e in sorted(gold_pairs[split])))
        return scores, {"threshold": threshold, "dev_f1": dev_f1}


TATOEBA = BitextRetrieval()
BUCC = BitextMining()
