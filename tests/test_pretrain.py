"""Phase (i) of the demo is reproducible: the tokenizer comes out byte-identical in separate processes, and a
preempted pretraining job resumes on the tokenizer saved with its state and ends bit-identical to an
uninterrupted run (docs/reliability.md, "Reproducible from scratch")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts import cli, pretrain
from xstilts.features import tokenizer_fingerprint
from xstilts.train import Trainer

# The demo's own recipe for the tokenizer (config/config.yaml: hparams.pretrain.vocab_size).
DEMO_VOCAB = 3000
TRAIN_IN_A_NEW_PROCESS = """
import sys
import pyarrow.parquet as pq
from xstilts.pretrain import train_tokenizer
texts = pq.read_table(sys.argv[1]).column("text").to_pylist()
train_tokenizer(texts, int(sys.argv[2])).backend_tokenizer.save(sys.argv[3])
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The CI-size synthetic corpus (all 7 languages), prepared as the workflow prepares it."""
    root = tmp_path_factory.mktemp("corpus")
    assert cli.main(["synth", "--out", str(root / "syn"), "--size", "ci"]) == 0
    assert cli.main(["prepare", "--corpus", "--source", "local", "--local-dir", str(root / "syn"),
                     "--languages", "en,de,ru,ar,hi,zh,sw", "--out", str(root / "corpus")]) == 0
    return root / "corpus"


def test_demo_tokenizer_is_byte_identical_in_two_processes(corpus, tmp_path):
    """tokenizers' UnigramTrainer gave a new tokenizer.json on every call (hash-map order of its float sums),
    with RAYON_NUM_THREADS=1 too; the two processes here differ in hash seed and thread settings."""
    outs = []
    for i, env in enumerate([{"PYTHONHASHSEED": "1", "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"},
                             {"PYTHONHASHSEED": "2", "RAYON_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}]):
        out = tmp_path / f"tokenizer{i}.json"
        run = subprocess.run([sys.executable, "-c", TRAIN_IN_A_NEW_PROCESS, str(corpus / "train.parquet"),
                              str(DEMO_VOCAB), str(out)], env={**os.environ, **env}, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    vocab = json.loads(outs[0])["model"]["vocab"]
    assert [piece for piece, _ in vocab[:5]] == pretrain.SPECIAL_TOKENS and 1000 < len(vocab) <= DEMO_VOCAB


HP = {"max_steps": 8, "save_every": 3, "batch_size": 16, "max_length": 32, "vocab_size": 500, "hidden_size": 32,
      "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}


def _pretrain(corpus: Path, out: Path) -> int:
    return cli.main(["pretrain", "--corpus", str(corpus), "--out", str(out), "--seed", "0", "--hparams",
                     json.dumps(HP), "--state-dir", f"{out}.state"])


def test_preempted_pretrain_resumes_on_its_saved_tokenizer_and_ends_bit_identical(corpus, tmp_path, monkeypatch,
                                                                                 capsys):
    assert _pretrain(corpus, tmp_path / "ref") == 0
    original = Trainer._micro_step

    def signal_at_step_3(self, i):
        if self.step == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        return original(self, i)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_micro_step", signal_at_step_3)
        assert _pretrain(corpus, tmp_path / "run") == 75  # preempted at step 4, state saved
    state = tmp_path / "run.state"
    assert (state / "tokenizer/tokenizer.json").exists() and (state / "ckpt/progress.json").exists()
    capsys.readouterr()

    def retrain(*args):  # the resumed job must not train another tokenizer: it would be a new id space
        raise AssertionError("the resumed job retrained its tokenizer")

    monkeypatch.setattr(pretrain, "train_tokenizer", retrain)
    assert _pretrain(corpus, tmp_path / "run") == 0
    err = capsys.readouterr().err
    assert "of the saved state loaded from" in err and "resumed from step 4 of 8" in err
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert not state.exists()


def _saved(state: Path, key: str, texts: list[str]):
    """A tokenizer saved in `state` for job `key`, and the state's (stand-in) checkpoint beside it."""
    tok = pretrain.state_tokenizer(state, key, texts, 200, log=lambda m: None)
    (state / "ckpt").mkdir()
    return tok


def test_saved_tokenizer_is_used_only_for_its_own_job_and_only_intact(tmp_path):
    from tests.conftest import random_texts

    texts, other = random_texts(500), random_texts(500, seed=1)
    messages = []
    state = tmp_path / "state"
    saved = _saved(state, "job", other)  # as if the trainer had given another tokenizer back then
    assert tokenizer_fingerprint(pretrain.state_tokenizer(state, "job", texts, 200, messages.append)) == \
        tokenizer_fingerprint(saved)
    assert "of the saved state loaded" in messages[-1]

    fresh = tokenizer_fingerprint(pretrain.train_tokenizer(texts, 200))
    assert fresh != tokenizer_fingerprint(saved)
    with open(state / "tokenizer/tokenizer.json", "a") as f:  # damaged: not what was saved
        f.write(" ")
    assert tokenizer_fingerprint(pretrain.state_tokenizer(state, "job", texts, 200, messages.append)) == fresh
    assert "sha256 differs" in messages[-1] and (state / "ckpt").exists()  # the trainer's key check decides

    elsewhere = tmp_path / "other-job"
    _saved(elsewhere, "job", other)
    assert tokenizer_fingerprint(pretrain.state_tokenizer(elsewhere, "another job", texts, 200,
                                                          messages.append)) == fresh
    assert "another job configuration" in messages[-1] and not (elsewhere / "ckpt").exists()


def test_vocab_size_too_small_for_the_corpus_is_one_line_naming_the_key(tmp_path):
    from tests.conftest import random_texts
    from xstilts.errors import UserError

    with pytest.raises(UserError) as e:
        pretrain.train_tokenizer(random_texts(100), 20)  # 42 distinct characters (+ specials) do not fit
    assert len(str(e.value).splitlines()) == 1
    assert str(e.value).startswith("hparams.pretrain.vocab_size 20 cannot be trained on this corpus: Vocabulary size")


def test_masked_lm_loss_equals_the_full_logits_loss_in_value_and_gradient():
    """The LM head applied to the masked positions only (models.masked_lm_loss) is the loss the model's own
    `labels=` path computes over every position, and it moves every weight the same way."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    from xstilts.models import masked_lm_loss

    torch.manual_seed(0)
    model = XLMRobertaForMaskedLM(XLMRobertaConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=4, intermediate_size=64)).eval()
    ids = torch.randint(5, 300, (4, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    labels = ids.clone()
    labels[(torch.rand(ids.shape) > 0.3) | (mask == 0)] = -100

    def loss_and_grads(loss_fn):
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        return float(loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    full, full_grads = loss_and_grads(lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    masked, masked_grads = loss_and_grads(lambda: masked_lm_loss(model, ids, mask, labels))
    assert masked == pytest.approx(full, rel=1e-6)
    assert full_grads.keys() == masked_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(masked_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
