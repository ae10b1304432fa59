"""In-loop dev evaluation is counted as its own cost (issue 13, item 4): tokens, 2N FLOPs, seconds and runs in
cost.json's dev_eval_* fields, separate from the training counts, kept across a resume."""

from __future__ import annotations

import torch

from tests.test_train import _stream, _trainer
from xstilts.accounting import CostMeter
from xstilts.evaluate import predict
from xstilts.registry import get_task


def test_dev_evaluations_have_their_own_tokens_flops_and_seconds(tiny_model_dir, tmp_path):
    trainer = _trainer(tiny_model_dir, tmp_path / "s", {"max_steps": 4, "eval_every": 2})
    feats = _stream(trainer.tokenizer, n=16).feats
    rows = [{"label": 0}] * len(feats["input_ids"])
    tokens_per_run = sum(len(ids) for ids in feats["input_ids"])
    hp = {**trainer.hp, "eval_batch_size": 8}

    def dev_eval() -> float:  # what phases._dev_scorer does with the job's meter
        with trainer.meter.dev_eval.timed():
            predict(trainer.model, "nli", get_task("qqp"), rows, feats, ["no", "yes"], hp,
                    trainer.tokenizer.pad_token_id, torch.device("cpu"), trainer.meter.dev_eval)
        return 50.0

    trainer.dev_eval = dev_eval
    trainer.fit()
    rec = trainer.meter.record()
    runs = rec["dev_eval_runs"]
    assert runs == 2  # steps 2 and 4
    assert rec["dev_eval_useful_tokens"] == runs * tokens_per_run
    assert rec["dev_eval_useful_flops"] == 2 * rec["n_params_non_embedding"] * rec["dev_eval_useful_tokens"]
    assert rec["dev_eval_executed_tokens"] >= rec["dev_eval_useful_tokens"]
    assert 0 < rec["dev_eval_s"] <= rec["wall_s"]
    # the training counts are training only: 6N per trained token, dev tokens not in them
    assert rec["useful_flops"] == 6 * rec["n_params_non_embedding"] * rec["useful_tokens"]


def test_dev_eval_counts_survive_a_resume(tiny_model_dir, tmp_path):
    trainer = _trainer(tiny_model_dir, tmp_path / "r", {"max_steps": 1})
    meter = trainer.meter
    meter.dev_eval.add_tokens(30, 40)
    with meter.dev_eval.timed():
        pass
    again = CostMeter("finetune", torch.device("cpu"), meter.params, training=True)
    again.load_state(meter.state())
    assert again.dev_eval.state() == meter.dev_eval.state()
    legacy = {k: v for k, v in meter.state().items() if k != "dev_eval"}  # a state saved before issue 13
    again.load_state(legacy)
    assert again.record()["dev_eval_useful_tokens"] == 0
