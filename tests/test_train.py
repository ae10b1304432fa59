"""The training loop: resume equality, preemption signals, divergence, LoRA, backbones, accounting."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from tests.conftest import random_texts
from xstilts import recipes
from xstilts.accounting import CostMeter
from xstilts.errors import Diverged, Preempted, UserError
from xstilts.kinds.classification import encode as encode_classification
from xstilts.models import apply_lora, build_task_model, count_parameters, load_tokenizer, merge_lora, save_encoder
from xstilts.train import Stream, Trainer

SPEC = {"nli": {"kind": "classification", "n_labels": 2, "labels": ["no", "yes"], "task": "qqp"}}


def _stream(tok, n=96):
    texts = random_texts(n, seed=1)
    rows = [{"text_a": t, "text_b": None, "label": int("yes" in t.split())} for t in texts]
    return Stream("qqp", "nli", "classification", encode_classification(rows, tok, 32), 8)


def _trainer(model_dir, state_dir, hp_over=None, adaptation="full"):
    torch.manual_seed(0)
    tok = load_tokenizer(model_dir)
    model = build_task_model(model_dir, SPEC)
    hp = recipes.resolve("finetune", {"epochs": 2, "grad_accum": 2, "lr": 1e-3, "save_every": 3,
                                      "warmup_ratio": 0.1, **(hp_over or {})})
    if adaptation == "lora":
        apply_lora(model, 4, 8, 0.1)
    meter = CostMeter("finetune", torch.device("cpu"), count_parameters(model), training=True)
    return Trainer(model, tok, [_stream(tok)], hp, 0, state_dir, meter, "job", label="test", log=lambda m: None)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _signal_at_step(trainer, step: int):
    """Send SIGUSR1 (a preemption) at the first micro-batch after optimizer step `step`."""
    original = trainer._micro_step

    def micro_step_then_signal(i):
        if trainer.step == step and i % trainer.hp["grad_accum"] == 0:
            os.kill(os.getpid(), signal.SIGUSR1)
        return original(i)

    trainer._micro_step = micro_step_then_signal
    return trainer


def test_killed_and_resumed_training_equals_uninterrupted(tiny_model_dir, tmp_path):
    ref = _trainer(tiny_model_dir, tmp_path / "a")
    ref.fit()
    expected = _weights(ref.model)

    interrupted = _signal_at_step(_trainer(tiny_model_dir, tmp_path / "b"), 5)
    with pytest.raises(Preempted, match="SIGUSR1 at step 6"):
        interrupted.fit()
    assert (tmp_path / "b" / "ckpt" / "progress.json").exists()

    resumed = _trainer(tiny_model_dir, tmp_path / "b")
    log = resumed.fit()
    assert log["resumed_from_step"] == 6
    got = _weights(resumed.model)
    assert expected.keys() == got.keys()
    for k in expected:
        assert torch.equal(expected[k], got[k]), k
    assert resumed.meter.steps == ref.meter.steps
    assert resumed.meter.useful_tokens == ref.meter.useful_tokens


def test_state_from_another_configuration_is_not_reused(tiny_model_dir, tmp_path):
    first = _trainer(tiny_model_dir, tmp_path / "s", {"max_steps": 4})
    first.save_state()
    other = _trainer(tiny_model_dir, tmp_path / "s")
    other.job_key = "different"
    assert other.try_resume() is False
    assert other.step == 0


def test_sigterm_also_preempts(tiny_model_dir, tmp_path):
    trainer = _trainer(tiny_model_dir, tmp_path / "t")
    original = trainer._micro_step

    def step(i):
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(i)

    trainer._micro_step = step
    with pytest.raises(Preempted, match="SIGTERM"):
        trainer.fit()
    # the handler is removed afterwards: the default SIGTERM disposition is back
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_divergence_names_label_step_and_last_finite_loss(tiny_model_dir, tmp_path):
    trainer = _trainer(tiny_model_dir, tmp_path / "d", {"lr": 1e-3})
    calls = {"n": 0}
    original = trainer.model.forward

    def forward(head, ids, mask):
        calls["n"] += 1
        out = original(head, ids, mask)
        return out * float("nan") if calls["n"] > 3 else out

    trainer.model.forward = forward
    with pytest.raises(Diverged, match=r"test: non-finite loss \(nan\) on stream qqp at step 1; last finite loss \d"):
        trainer.fit()


def test_lora_trains_fewer_parameters_and_merges_into_the_encoder(tiny_model_dir, tmp_path):
    full = _trainer(tiny_model_dir, tmp_path / "f")
    lora = _trainer(tiny_model_dir, tmp_path / "l", adaptation="lora")
    pf, pl = count_parameters(full.model), count_parameters(lora.model)
    assert pl["trainable"] < pf["trainable"] / 2
    assert pl["total"] > pf["total"]  # adapters add parameters
    lora.fit()
    model, tok = lora.model, lora.tokenizer
    model.eval()
    batch = tok(["alpha beta Berlin", "слово 12"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        merge_lora(model)
        after = model.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-4)
    # handoff: the merged encoder is a plain checkpoint the next phase loads and adapts again
    save_encoder(model, tok, tmp_path / "merged")
    nxt = build_task_model(tmp_path / "merged", SPEC)
    nxt.eval()
    with torch.no_grad():
        again = nxt.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    torch.testing.assert_close(after, again, atol=1e-5, rtol=1e-4)
    apply_lora(nxt, 4, 8, 0.0)
    assert count_parameters(nxt)["trainable"] < count_parameters(full.model)["trainable"] / 2


def test_cost_meter_convention(tiny_model_dir, tmp_path):
    trainer = _trainer(tiny_model_dir, tmp_path / "c", {"max_steps": 3})
    trainer.fit()
    rec = trainer.meter.record()
    assert 0 < rec["useful_tokens"] <= rec["executed_tokens"]
    assert rec["useful_flops"] == 6 * rec["n_params_non_embedding"] * rec["useful_tokens"]
    assert rec["flop_counter_step"]["counted"] > 0
    assert rec["energy_j"] is None  # CPU: never invented
    assert rec["peak_memory_kind"] == "cpu_peak_rss" and rec["peak_memory_bytes"] > 0
    lora = _trainer(tiny_model_dir, tmp_path / "c2", {"max_steps": 1}, adaptation="lora")
    assert lora.meter.flops_per_token < trainer.meter.flops_per_token


@pytest.mark.parametrize("arch", ["bert", "mt5"])
def test_other_backbones_build_train_and_take_lora(arch, tiny_model_dir, tmp_path):
    """mBERT- and mT5-encoder-shaped models through the same Auto-class path (random tiny configs)."""
    from transformers import BertConfig, BertForMaskedLM, MT5Config, MT5EncoderModel

    tok = load_tokenizer(tiny_model_dir)
    if arch == "bert":
        model = BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=64, pad_token_id=tok.pad_token_id))
    else:
        model = MT5EncoderModel(MT5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2,
                                          num_heads=2, pad_token_id=tok.pad_token_id))
    out = tmp_path / arch
    model.save_pretrained(out)
    tok.save_pretrained(out)
    torch.manual_seed(0)
    tm = build_task_model(out, SPEC)
    assert tm.default_pooling == ("first" if arch == "bert" else "mean")
    apply_lora(tm, 4, 8, 0.0)
    hp = recipes.resolve("finetune", {"epochs": 1, "grad_accum": 1, "lr": 1e-3})
    meter = CostMeter("finetune", torch.device("cpu"), count_parameters(tm), training=True)
    log = Trainer(tm, tok, [_stream(tok, 32)], hp, 0, tmp_path / f"{arch}-state", meter, "k",
                  log=lambda m: None).fit()
    assert log["steps"] == 4


def test_pooling_choice_changes_the_sequence_vector_and_is_validated(tiny_model_dir):
    """`pooling` picks the first token's state or the mean over non-pad tokens (pad positions ignored)."""
    model = build_task_model(tiny_model_dir, SPEC)
    states = torch.arange(24, dtype=torch.float).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(model.pool(states, mask, "first"), states[:, 0])
    assert torch.equal(model.pool(states, mask, "auto"), states[:, 0])  # XLM-R: first token
    assert torch.allclose(model.pool(states, mask, "mean")[0], states[0, :2].mean(0))
    with pytest.raises(UserError, match="pooling"):
        recipes.resolve("finetune", {"pooling": "max"})


def test_progress_lines_and_dev_monitor_leave_training_bit_identical(tiny_model_dir, tmp_path):
    """Progress every `log_every` steps (or `log_seconds`), dev monitoring every `eval_every`: the same
    weights as a run that logs nothing, and train_log's `progress` holds the numbers of the lines."""
    import re

    quiet = _trainer(tiny_model_dir, tmp_path / "q", {"log_every": 10_000, "log_seconds": 1e9})
    quiet.fit()
    loud = _trainer(tiny_model_dir, tmp_path / "l", {"log_every": 2, "eval_every": 3})
    lines, monitored = [], []

    def monitor():  # what phase (ii)'s dev scorer does to the model: an eval-mode forward pass
        loud.model.eval()
        with torch.no_grad():
            loud.model("nli", torch.tensor([[0, 5, 6, 2]]), torch.ones(1, 4, dtype=torch.long))
        monitored.append(loud.step)
        return {"qqp": 50.0}

    loud.log = loud.progress = lines.append
    loud.dev_monitor = monitor
    log = loud.fit()
    for name, value in _weights(quiet.model).items():
        assert torch.equal(value, loud.model.state_dict()[name]), name
    total = loud.total_steps
    assert [r["step"] for r in log["progress"]] == [s for s in range(1, total + 1) if s % 2 == 0 or s == total]
    first = log["progress"][0]
    assert first["total_steps"] == total and first["loss"] > 0 and first["lr"] > 0 and first["grad_norm"] > 0
    assert first["tokens_per_s"] > 0 and first["elapsed_s"] >= 0 and first["eta_s"] >= 0
    assert 0 < first["epoch"] < log["progress"][-1]["epoch"] == 2.0
    progress = [line for line in lines if "tokens/s" in line]
    assert len(progress) == len(log["progress"])
    assert re.fullmatch(rf"test: step 2/{total} \(\d+%\) epoch 0\.\d\d loss \d+\.\d{{4}} lr \d\.\d\de-\d\d "
                        r"grad_norm \d+\.\d{3} tokens/s [\d,]+ elapsed \d:\d\d:\d\d ETA \d:\d\d:\d\d", progress[0])
    assert monitored == [s for s in range(3, total, 3)]
    assert f"test: step 3/{total} English dev qqp 50.00" in lines
    # preempted at step 5 and resumed: the same lines (but for wall-clock numbers) as the run above
    interrupted = _signal_at_step(_trainer(tiny_model_dir, tmp_path / "p", {"log_every": 2, "eval_every": 3}), 4)
    with pytest.raises(Preempted):
        interrupted.fit()
    computed = ("step", "total_steps", "epoch", "loss", "lr", "grad_norm")
    resumed = _trainer(tiny_model_dir, tmp_path / "p", {"log_every": 2, "eval_every": 3}).fit()
    assert resumed["resumed_from_step"] == 5
    assert [{k: r[k] for k in computed} for r in resumed["progress"]] == \
        [{k: r[k] for k in computed} for r in log["progress"]]
    # log_seconds: a line after every step once that many seconds have passed, whatever log_every says
    timed = _trainer(tiny_model_dir, tmp_path / "t", {"log_every": 10_000, "log_seconds": 1e-9})
    assert [r["step"] for r in timed.fit()["progress"]] == list(range(1, total + 1))


def test_early_stopping_and_selection_follow_jiants_metarunner(tiny_model_dir, tmp_path):
    """jiant jiant/proj/main/metarunner.py: a checkpoint is best only on a strict gain (:243), training stops
    once `patience` evaluations in a row bring none (:174), and the best one is restored at the end (:188)."""
    trainer = _trainer(tiny_model_dir, tmp_path / "s", {"eval_every": 1, "patience": 2})
    scores, snapshots = iter([10.0, 20.0, 20.0, 15.0, 99.0]), {}

    def dev_eval():
        snapshots[trainer.step] = _weights(trainer.model)
        return next(scores)

    trainer.dev_eval = dev_eval
    log = trainer.fit()
    assert (log["steps"], log["best_step"], log["best_dev"], log["stopped_early"]) == (4, 2, 20.0, True)
    assert [h["step"] for h in log["history"] if "dev" in h] == [1, 2, 3, 4]  # the tie at step 3 is no gain
    for name, value in snapshots[2].items():
        assert torch.equal(value, trainer.model.state_dict()[name]), name
