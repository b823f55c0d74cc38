#!/usr/bin/env bash
# Train star-world on one GPU in one command of at most ten minutes, data generation included, and export the
# bundle. The same recipe as the CPU run (`starbridge train`), at the scale a GPU affords: a larger sample pool
# rendered by every core, larger batches, and a wall-clock budget shared out by stage (train/trainer.py
# STAGE_SHARES) instead of step counts. Each stage checkpoints into OUT, so a second call resumes.
#
#   scripts/train_gpu.sh [OUT] [BUNDLE]          # defaults: runs/star-world-gpu, bundles/star-world
#   DEVICE=cpu PRESET=star-world-test MINUTES=2 POOL=4 BATCH=2 scripts/train_gpu.sh /tmp/try /tmp/try-bundle  # tiny, CPU
#
# Needs the `train` extra with a CUDA build of PyTorch (pip install -e '.[train]'). Then rate it:
#   python bench/bench_quality.py --model BUNDLE --cuda ; python bench/bench_quality.py --paths roam --model BUNDLE
set -euo pipefail
OUT=${1:-runs/star-world-gpu}
BUNDLE=${2:-bundles/star-world}
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-8.5}         # training budget, data generation included; export adds ~20 s
POOL=${POOL:-384}               # procedural samples (8 frames each), rendered in parallel
BATCH=${BATCH:-32}
PRESET=${PRESET:-star-world}   # star-world-test: the same code paths, reduced (a quick try on a CPU)
WORKERS=${WORKERS:-$(nproc)}
STARBRIDGE=${STARBRIDGE:-starbridge}   # a command line: e.g. "python3 -m starbridge.cli" where it is not installed
read -ra STARBRIDGE_CMD <<< "$STARBRIDGE"

if [ "$DEVICE" = cuda ]; then
  python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("train_gpu.sh: PyTorch sees no CUDA device (DEVICE=cpu runs the recipe on the CPU)")
print(f"training on {torch.cuda.get_device_name(0)}")
PY
fi

# Step counts are ceilings the budget will not reach on one GPU; the budget decides where each stage stops.
exec timeout 600 "${STARBRIDGE_CMD[@]}" train --out "$OUT" --preset "$PRESET" --device "$DEVICE" \
  --budget-minutes "$MINUTES" --workers "$WORKERS" --pool "$POOL" --batch "$BATCH" --hole-weight 4 \
  --init-autoencoder star-tiny \
  --autoencoder-steps 200000 --teacher-steps 200000 --real-teacher-steps 200000 --student-steps 200000 \
  --checkpoint-every 500 --export "$BUNDLE"
