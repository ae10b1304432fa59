"""Shared fixtures: a tiny random XLM-R-architecture model directory (no hub access), and an isolated
feature cache per test session."""

from __future__ import annotations

import random

import pytest


@pytest.fixture(autouse=True)
def _isolated_feature_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XSTILTS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "feature-cache"))


WORDS = ["alpha", "beta", "gamma", "delta", "mu", "nu", "xi", "omega", "Anna", "Berlin", "12", "пример",
         "слово", "مثال", "कुछ", "字符", "yes", "no", "not", "the"]


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))) for _ in range(n)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A save_pretrained directory with a trained Unigram tokenizer and a random 2-layer XLM-R MLM."""
    import torch

    from xstilts.pretrain import build_mlm, train_tokenizer

    out = tmp_path_factory.mktemp("tiny-model")
    tok = train_tokenizer(random_texts(2000), 200)
    torch.manual_seed(0)
    model = build_mlm(tok, {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                            "intermediate_size": 64})
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
