#!/usr/bin/env bash
# GPU checks and benchmarks, for a CUDA machine: the training path tests (bf16 autocast,
# channels_last, data on the GPU, torch.compile), then `medbench bench optim` and `bench train`
# on the GPU. Run from the repository root with the project's environment (or any Python that
# has medbench's dependencies): PYTHON=.venv/bin/python scripts/bench_gpu.sh
set -euo pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-reports/bench-gpu}
MODEL=${MODEL:-resnet18}
SIZE=${SIZE:-224}
BATCH=${BATCH:-64}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible to $PY: nothing to run" >&2
  exit 0
fi
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
"$PY" -m pytest -q -p no:cacheprovider tests/engine/test_gpu.py tests/optim/test_cuda.py tests/test_flatness.py -k "cuda or gpu or GPU or compiled or pinned or channels or precision"
"$PY" -m medbench bench optim --device cuda --model "$MODEL" --image-size "$SIZE" --batch-size "$BATCH" --steps 30 --out "$OUT"
"$PY" -m medbench bench train --device cuda --model "$MODEL" --image-size "$SIZE" --batch-size "$BATCH" --out "$OUT"
echo "results: $OUT/bench.json, $OUT/bench.md"
