"""Phase (i) for the offline demo: a Unigram tokenizer trained with `tokenizers` on the multilingual corpus
and a tiny XLM-R-architecture masked LM, saved with `save_pretrained` so later phases load it exactly as
they would load `xlm-roberta-large` (`from_pretrained(dir)`)."""

from __future__ import annotations

import math
from collections import Counter

import torch

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R's ids: <s>=0 <pad>=1 </s>=2 <unk>=3


def train_tokenizer(texts: list[str], vocab_size: int):
    """A SentencePiece-style Unigram tokenizer (Metaspace pre-tokenisation) with XLM-R's special tokens."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
                                   model_max_length=512)


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
            logits = model(input_ids=inputs, attention_mask=batch["attention_mask"]).logits
            sel = labels != F.IGNORE
            gold = labels[sel]
            model_nll += float(torch.nn.functional.cross_entropy(logits[sel], gold, reduction="sum"))
            base_nll += sum(-math.log((unigram[int(t)] + 1) / (total + vocab)) for t in gold)
            count += int(sel.sum())
    return {"mlm_loss": model_nll / count, "unigram_loss": base_nll / count, "masked_tokens": count}
