"""Phase (i) for the offline demo: a Unigram tokenizer trained on the multilingual corpus and a tiny
XLM-R-architecture masked LM, saved with `save_pretrained` so later phases load it exactly as they would load
`xlm-roberta-large` (`from_pretrained(dir)`).

The tokenizer is trained by SentencePiece (single-threaded), not by `tokenizers`' UnigramTrainer: the latter
sums its EM statistics in the iteration order of a randomly seeded hash map, so every process got a tokenizer
whose piece scores differed in the last digits (and then a different model downstream). SentencePiece sorts
its word counts and, with one thread, adds in a fixed order: same corpus, same `tokenizer.json` bytes
(tests/test_pretrain.py trains it in two processes and compares). The pieces and scores are then served by
`tokenizers`' Unigram model, so later phases see an ordinary fast tokenizer.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from pathlib import Path

import torch

from xstilts.errors import UserError
from xstilts.io import atomic_path, read_json, sha256_file, write_json

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids: <s>=0 <pad>=1 </s>=2 <unk>=3


def train_tokenizer(texts: list[str], vocab_size: int):
    """A SentencePiece Unigram tokenizer (NFKC, Metaspace pre-tokenisation) with XLM-R's special tokens;
    the same texts give the same tokenizer in any process."""
    import io

    import sentencepiece as spm
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    normalizer = normalizers.NFKC()  # normalise with the very rules the tokenizer applies at run time
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=(normalizer.normalize_str(t) for t in texts), model_writer=model,
            model_type="unigram", vocab_size=vocab_size - len(SPECIAL_TOKENS) + 1,  # its <unk> is ours
            character_coverage=1.0, normalization_rule_name="identity", hard_vocab_limit=False,
            input_sentence_size=0, shuffle_input_sentence=False,  # every sentence, in corpus order
            num_threads=1,  # threads would change the order in which the E-step adds its floats
            unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2)
    except RuntimeError as e:  # e.g. vocab_size below the number of distinct characters
        # SentencePiece's reason, without its source location and its advice on flags xstilts does not expose
        why = str(e).strip().splitlines()[-1].rpartition("] ")[2].split(" Increase vocab_size")[0]
        raise UserError(f"hparams.pretrain.vocab_size {vocab_size} cannot be trained on this corpus: {why}") from None
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(1, sp.get_piece_size())]
    tok = Tokenizer(models.Unigram([(t, 0.0) for t in SPECIAL_TOKENS] + pieces,
                                   unk_id=SPECIAL_TOKENS.index("<unk>"), byte_fallback=False))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return _fast(tok)


def _fast(tok):
    """The transformers tokenizer around a `tokenizers.Tokenizer`, with XLM-R's special-token roles."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
                                   model_max_length=512)


def state_tokenizer(state_dir: str | Path, job_key: str, texts: list[str], vocab_size: int, log=print):
    """The tokenizer of a resumable pretraining job, kept in `state_dir/tokenizer/` beside its checkpoint: loaded
    from there when it was saved for this job (same `job_key`, sha256 intact), otherwise trained and saved there
    before training starts. A resumed job therefore continues its model on the ids it was trained with, whatever
    the trainer would give today; state left by another job configuration is dropped."""
    from tokenizers import Tokenizer

    from xstilts.features import tokenizer_fingerprint

    where = Path(state_dir) / "tokenizer"
    try:
        meta = read_json(where / "state.json")
        if meta["job_key"] != job_key:
            log(f"pretrain: state in {state_dir} not used, it belongs to another job configuration; starting fresh")
            shutil.rmtree(state_dir, ignore_errors=True)
        elif sha256_file(where / "tokenizer.json") != meta["sha256"]:
            log(f"pretrain: tokenizer in {where} not used, its sha256 differs from the one saved with it; retraining")
        else:
            tok = _fast(Tokenizer.from_file(str(where / "tokenizer.json")))
            log(f"pretrain: tokenizer {tokenizer_fingerprint(tok)} of the saved state loaded from {where}")
            return tok
    except (OSError, ValueError, KeyError):  # nothing saved yet, or the save was cut short
        pass
    tok = train_tokenizer(texts, vocab_size)
    with atomic_path(where) as tmp:
        tmp.mkdir()
        tok.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        write_json(tmp / "state.json", {"job_key": job_key, "sha256": sha256_file(tmp / "tokenizer.json")})
    return tok


def xlmr_config(tokenizer, hp: dict, vocab_size: int | None = None):
    """An XLM-R architecture sized by `hp`, with the tokenizer's special ids; the vocabulary is the
    tokenizer's unless `vocab_size` asks for a bigger embedding table (the benchmark's XLM-R Large)."""
    from transformers import XLMRobertaConfig

    return XLMRobertaConfig(
        vocab_size=vocab_size or len(tokenizer), hidden_size=hp["hidden_size"],
        num_hidden_layers=hp["num_hidden_layers"], num_attention_heads=hp["num_attention_heads"],
        intermediate_size=hp["intermediate_size"], max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)


def build_mlm(tokenizer, hp: dict):
    from transformers import XLMRobertaForMaskedLM

    return XLMRobertaForMaskedLM(xlmr_config(tokenizer, hp))


@torch.no_grad()
def heldout_mlm_loss(model, tokenizer, feats: dict, unigram: Counter, probability: float, batch_size: int = 64,
                     seed: int = 1234) -> dict[str, float]:
    """Masked-token cross-entropy of the model and of a unigram baseline on the SAME masked positions."""
    from xstilts import features as F
    from xstilts.models import masked_lm_loss
    from xstilts.train import mask_tokens

    model.eval()
    total = sum(unigram.values())
    vocab = len(tokenizer)
    model_nll = base_nll = 0.0
    count = 0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for idx in F.sorted_batches(F.seq_lengths(feats), batch_size):
            batch = F.collate(feats, idx, tokenizer.pad_token_id)
            inputs, labels = mask_tokens(batch["input_ids"], batch["attention_mask"], tokenizer, probability)
            sel = labels != F.IGNORE
            gold = labels[sel]
            model_nll += float(masked_lm_loss(model, inputs, batch["attention_mask"], labels, reduction="sum"))
            base_nll += sum(-math.log((unigram[int(t)] + 1) / (total + vocab)) for t in gold)
            count += int(sel.sum())
    return {"mlm_loss": model_nll / count, "unigram_loss": base_nll / count, "masked_tokens": count}
