#!/usr/bin/env bash
# GPU checks and benchmarks, for a CUDA machine: the training path tests (bf16 autocast,
# channels_last, data on the GPU, torch.compile, packed jobs sharing the GPU), then
# `medbench bench optim`, `bench train` and `bench paper` on the GPU. Run from the repository root
# with the project's environment (or any Python that has medbench's dependencies):
#   PYTHON=.venv/bin/python scripts/bench_gpu.sh
# Knobs (environment): OUT (reports/bench-gpu), MODEL/SIZE/BATCH (optim and train), EPOCHS (timed
# epochs per pair in bench paper, 5), JOBS (jobs per device bench paper tries, "1 2 4 8"),
# PAPER=0 to skip bench paper (it generates 2,405 release-size images once, then trains 9 pairs).
set -euo pipefail
PY=${PYTHON:-python3}
OUT=${OUT:-reports/bench-gpu}
MODEL=${MODEL:-resnet18}
SIZE=${SIZE:-224}
BATCH=${BATCH:-64}
EPOCHS=${EPOCHS:-5}
JOBS=${JOBS:-1 2 4 8}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device visible to $PY: nothing to run" >&2
  exit 0
fi
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
"$PY" -m pytest -q -p no:cacheprovider tests/engine/test_gpu.py tests/optim/test_cuda.py \
  tests/test_flatness.py tests/engine/test_packing.py \
  -k "cuda or gpu or GPU or compiled or pinned or channels or precision"
"$PY" -m medbench bench optim --device cuda --model "$MODEL" --image-size "$SIZE" --batch-size "$BATCH" --out "$OUT"
"$PY" -m medbench bench train --device cuda --model "$MODEL" --image-size "$SIZE" --batch-size "$BATCH" --out "$OUT"
if [ "${PAPER:-1}" != 0 ]; then
  # the paper config's models at 256 px, batch 16, on the full-scale synthetic set
  # shellcheck disable=SC2086  # JOBS is a list
  "$PY" -m medbench bench paper --device cuda --epochs "$EPOCHS" --jobs $JOBS --out "$OUT"
  # the packing target: ResNet-18 at batch 16, k jobs at once against one
  # shellcheck disable=SC2086
  "$PY" -m medbench bench paper --device cuda --models resnet18 --optimizers adam sam \
    --batch-size 16 --epochs "$EPOCHS" --jobs $JOBS --out "$OUT/resnet18-batch16"
fi
echo "results: $OUT/bench.json, $OUT/bench.md"
