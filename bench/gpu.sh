#!/usr/bin/env bash
# The GPU section of `xstilts bench` in one go, for a short GPU slot: the XLM-R Large architecture in bf16
# through xstilts' Trainer (full fine-tuning and LoRA) and through the HF Trainer (run_xnli's set-up and its
# best settings) on the same weights and batches: useful tokens/s, ratios, MFU, peak memory. Writes the JSON
# to $OUT (default bench/gpu-<UTC date>.json). Without CUDA it runs the same code at toy size on the CPU
# (the dry path, for CI and for checking an environment before a slot) and writes to a temporary file.
# Usage: bench/gpu.sh            PYTHON=/path/to/python OUT=file.json bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  SIZE=full
  OUT=${OUT:-bench/gpu-$(date -u +%F).json}
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv >&2 || true
else
  echo "bench/gpu.sh: torch sees no CUDA device: dry run of the same code at toy size on the CPU" >&2
  SIZE=smoke
  OUT=${OUT:-$(mktemp --suffix=.json)}
fi
"$PY" -m xstilts.bench --size "$SIZE" --parts large --json --out "$OUT" > /dev/null
echo "bench/gpu.sh: $SIZE large_model section written to $OUT" >&2
