#!/usr/bin/env bash
# Fixed cost of one job through the warm worker: start a worker, time 30 `xstilts evaluate` calls that fail at
# once (no model), so what is timed is the client, the fork and the exit report (docs/workflow.md).
#   bash bench/worker_latency.sh            (from the repository root, with the venv's python)
set -euo pipefail
PY=${PY:-.venv/bin/python}
dir=$(mktemp -d); sock=$dir/socket
"$PY" -m xstilts.worker "$sock" $$ & worker=$!
trap 'kill $worker 2>/dev/null; rm -rf "$dir"' EXIT
while [ ! -S "$sock" ]; do sleep 0.2; done
start=$(date +%s.%N)
for _ in $(seq 30); do
  XSTILTS_WORKER=$sock "$PY" -m xstilts.cli evaluate --model "$dir/none" --target xnli --data "$dir/none" \
    --out "$dir/out" 2>/dev/null || true
done
end=$(date +%s.%N)
"$PY" -c "print(f'{($end - $start) / 30:.3f} s per job through the warm worker')"
