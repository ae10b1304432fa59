"""The positive control at CI size: a real workflow run (synthetic data, the tiny pretrained model, three
seeds) of a cut of the demo's transfer plan, whose summary/planted.csv must recover the planted positives
and keep most planted nulls at zero. The demo runs the whole plan (docs/synth.md, "Transfer plan";
its recovery rate is measured there).

The cut: `none`, `ccg` (word_class + entity_type: planted positive on UD-POS and PAN-X) and `hellaswag`
(choice: a planted null on both), fine-tuned briefly enough that the encoder's head start shows.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, WORKFLOW_ENV, copy_workflow

ROOT = Path(__file__).resolve().parents[1]


def plan_config() -> dict:
    """config/ci.yaml cut to the plan above, with three seeds and training long enough to learn tagging."""
    cfg = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text(encoding="utf-8"))
    cfg.update(experiment="plan", targets=["udpos", "panx"], intermediate=["none", "ccg", "hellaswag"],
               seeds=[0, 1, 2], languages=["en", "de", "ar", "zh"])
    cfg["data"]["max_examples"] = 400
    hp = cfg["hparams"]
    hp["intermediate"] = {"default": {**hp["intermediate"]["default"], "epochs": 3, "max_train_examples": 400,
                                      "lr": 1.0e-3, "eval_every": 25}}
    hp["finetune"] = {"default": {**hp["finetune"]["default"], "epochs": 2, "max_train_examples": 200,
                                  "lr": 2.0e-3, "eval_every": 5}}
    hp["evaluate"] = {"default": hp["evaluate"]["default"]}
    return cfg


@pytest.mark.slow  # one CI-size run with three seeds (~2 minutes on 2 cores)
def test_a_ci_sized_run_recovers_the_planted_positives_and_most_nulls(tmp_path):
    work = copy_workflow(tmp_path / "work", {"plan.yaml": plan_config()})
    for target in ([], ["summary"]):
        run = subprocess.run([str(BIN / "snakemake"), *target, "--profile", "profiles/local", "--cores", "2",
                              "--configfile", "plan.yaml"], cwd=work, env=WORKFLOW_ENV, capture_output=True, text=True,
                             timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    planted = pd.read_csv(work / "results" / "plan" / "summary" / "planted.csv", dtype={"planted": str})
    assert len(planted) == 4 and set(planted.n_seeds) == {3}
    positives, nulls = planted[planted.planted == "+"], planted[planted.planted == "0"]
    assert set(zip(positives.row, positives.target)) == {("ccg", "udpos"), ("ccg", "panx")}
    assert positives.recovered.all(), positives.to_string()
    assert (positives.low > 0).all()
    assert nulls.recovered.sum() >= len(nulls) / 2, nulls.to_string()
