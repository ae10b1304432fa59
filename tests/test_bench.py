"""`xstilts bench --size smoke`: every key of the contract with sane values. No speed assertions (the
numbers depend on the machine and its load); correctness checks (same predictions, same mined pairs) hold."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xstilts import bench
from xstilts.cli import main


@pytest.fixture(scope="module")
def smoke():
    return bench.run("smoke")


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 and np.isfinite(x)


def test_smoke_run_reports_every_key_with_sane_values(smoke):
    tps = smoke["train_tokens_per_s"]
    assert set(tps) == {"xstilts", "pad128_baseline", "raw_step_limit"}
    assert all(_positive(v) for v in tps.values())
    for key in ("train_speedup_vs_pad128", "train_fraction_of_limit", "eval_speedup_sorted"):
        assert _positive(smoke[key]), key
    # the ratios are the ratios of the reported medians
    assert smoke["train_speedup_vs_pad128"] == pytest.approx(tps["xstilts"] / tps["pad128_baseline"], rel=1e-2)
    assert smoke["train_fraction_of_limit"] == pytest.approx(tps["xstilts"] / tps["raw_step_limit"], rel=1e-2)
    assert smoke["eval"]["same_predictions"] is True and smoke["eval"]["mismatches"] == 0

    bucc = smoke["bucc_mining"]
    assert bucc["n"] == bench.SIZES["smoke"]["bucc"]["n"] and bucc["dim"] >= 768
    assert all(_positive(bucc[k]) for k in ("faiss_s", "bruteforce_s", "speedup", "peak_rss_mb"))
    assert bucc["same_pairs"] is True
    # planted pairs are easy: mining finds all of them and nothing else
    assert bucc["same_pairs_check"]["f1"] == pytest.approx(100.0)
    assert bucc["same_pairs_check"]["mined_pairs"] == bucc["same_pairs_check"]["n"] // 10

    assert smoke["dag"]["jobs"] > 100 and _positive(smoke["dag"]["dry_run_s"])
    m = smoke["machine"]
    assert m["cpu_count"] >= 1 and m["torch"] and m["device_kind"] == "cpu"
    assert smoke["length_distribution"]["max"] == bench.PAD_TO


def test_hf_peer_rows_are_present_with_sane_values(smoke):
    """The HF Trainer / Trainer.predict / plain-forward peers ran in the same process: every row has positive
    tokens/s and its ratio is xstilts' figure over the peer's; inference and embeddings agree with xstilts'."""
    peers = smoke["peers"]
    assert set(peers) == {"hf_trainer_default", "hf_trainer_best", "hf_predict_default", "hf_predict_best",
                          "hf_forward_embed_default", "hf_forward_embed_best"}
    for name, row in peers.items():
        assert _positive(row["useful_tokens_per_s"]) and _positive(row["ratio"]), name
    xs = smoke["train_tokens_per_s"]["xstilts"]
    for name in ("hf_trainer_default", "hf_trainer_best"):
        assert peers[name]["ratio"] == pytest.approx(xs / peers[name]["useful_tokens_per_s"], rel=1e-2)
        assert 0 < peers[name]["padding_efficiency"] <= 1
    # run_xnli pads to 128: its padding efficiency is the pad128 baseline's kind, below dynamic padding's
    assert peers["hf_trainer_default"]["padding_efficiency"] < peers["hf_trainer_best"]["padding_efficiency"]
    for name in ("hf_predict_default", "hf_predict_best"):
        assert peers[name]["same_predictions"] is True and peers[name]["mismatches"] == 0, name
        assert peers[name]["ratio"] == pytest.approx(
            smoke["eval"]["useful_tokens_per_s"] / peers[name]["useful_tokens_per_s"], rel=1e-2)
    # group_by_length reorders predict()'s batches too: the bench puts them back by example index
    assert peers["hf_predict_best"]["returned_shuffled"] is True
    assert peers["hf_predict_default"]["returned_shuffled"] is False
    for name in ("hf_forward_embed_default", "hf_forward_embed_best"):
        assert peers[name]["same_vectors"] is True and peers[name]["max_abs_diff"] < 1e-4, name


def test_unknown_part_is_a_user_error():
    with pytest.raises(bench.UserError, match="bench part.*gpu"):
        bench.run("smoke", ("train", "gpu"))


def test_dynamic_padding_executes_fewer_tokens_than_pad128(smoke):
    setup = smoke["train_setup"]
    assert setup["pad128_padding_efficiency"] < setup["xstilts_padding_efficiency"] <= 1.0


def test_lengths_follow_the_stated_distribution():
    lengths = bench.sample_lengths(20_000, np.random.default_rng(0))
    spec = bench.LENGTHS
    assert lengths.min() >= spec["min"] and lengths.max() == spec["max"]
    assert abs(np.median(lengths) - spec["median"]) <= 1
    assert 0.001 < np.mean(lengths == spec["max"]) < 0.02  # a long tail, capped


def test_planted_pools_hold_the_gold_pairs():
    src, en, gold = bench.planted_pools(500, 64, seed=0)
    assert len(gold) == 50 and len({s for s, _ in gold}) == 50
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert min(cos(src[s], en[e]) for s, e in gold) > 0.7


def test_unknown_size_is_a_user_error():
    with pytest.raises(bench.UserError, match="bench size 'huge'"):
        bench.run("huge")


def test_cli_prints_one_json_object(monkeypatch, capsys):
    monkeypatch.setattr(bench, "run", lambda size, parts: {"size": size, "dag": {"jobs": 1}})
    assert main(["bench", "--json", "--size", "smoke"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out) == {"size": "smoke", "dag": {"jobs": 1}}


def test_large_model_section_runs_full_and_lora(smoke):
    """The GPU comparison's code path at toy size on CPU: both modes measured, LoRA trains fewer parameters,
    no MFU without a known bf16 peak (never invented)."""
    large = smoke["large_model"]
    assert large["device_kind"] == "cpu" and large["peak_bf16_tflops"] is None
    for mode in ("full", "lora"):
        assert _positive(large[mode]["useful_tokens_per_s"]) and _positive(large[mode]["peak_memory_gib"])
        assert large[mode]["mfu"] is None
    assert large["lora"]["trainable_params"] < large["full"]["trainable_params"]
    assert large["lora"]["total_params"] >= large["full"]["total_params"]
    assert large["full"]["flops_convention"] == "6N" and large["lora"]["flops_convention"] != "6N"
    for name in ("hf_trainer_default", "hf_trainer_best"):  # the HF peers on the same big model
        row = large["peers"][name]
        assert _positive(row["useful_tokens_per_s"]) and _positive(row["ratio"]) and row["mfu"] is None


def test_peak_table_has_no_entry_for_cpu():
    import torch

    assert bench.peak_bf16_flops(torch.device("cpu")) is None


def test_gpu_script_dry_path_writes_the_large_section(tmp_path):
    """bench/gpu.sh without CUDA: the same large-model code at toy size, its JSON (with the HF peer rows) in $OUT."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import torch

    if torch.cuda.is_available():
        pytest.skip("with CUDA the script runs the full-size GPU section")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gpu.json"
    proc = subprocess.run(["bash", str(root / "bench" / "gpu.sh")], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "OUT": str(out)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["size"] == "smoke" and result["parts"] == ["large"]
    assert set(result["large_model"]["peers"]) == {"hf_trainer_default", "hf_trainer_best"}
    assert _positive(result["large_model"]["full"]["useful_tokens_per_s"])
