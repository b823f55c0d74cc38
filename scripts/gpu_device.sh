#!/usr/bin/env bash
# Runs ON a lent GPU machine (README "When a GPU is lent"): the parts made by scripts/gpu_pack.py arrive one per
# device call (each call carries one .gpu/part-K folder); the last call assembles them, checks the SHA-256,
# unpacks the site folder (ONNX Runtime's CUDA build, PyAV, pyzmq, ...) into /tmp/site and runs the work:
#
#   bash scripts/gpu_device.sh stash          # keep the carried part in /tmp/starbridge-gpu (calls 1 .. n-1)
#   bash scripts/gpu_device.sh bench [ARGS]   # the last part too, then bench/bench_gpu.py ARGS (results in $OUT)
#   bash scripts/gpu_device.sh train          # the last part too, then scripts/train_gpu.sh (the bundle in $OUT)
#
# Calls must follow each other while the machine is warm: /tmp is lost when it is given back.
set -euo pipefail
STASH=/tmp/starbridge-gpu
OUT=${OUT:-/tmp/starbridge-gpu-out}
mkdir -p "$STASH" "$OUT"

stash() {
  local found=0
  for d in .gpu/part-*; do
    if [ -d "$d" ]; then cp "$d"/* "$STASH"/; found=1; echo "stashed $d"; fi
  done
  [ "$found" = 1 ] || echo "gpu_device: no .gpu/part-* was carried with this call" >&2
}

assemble() {
  python3 - "$STASH" <<'PY'
import hashlib, io, json, os, sys, tarfile
stash = sys.argv[1]
manifest = os.path.join(stash, "manifest.json")
if not os.path.exists(manifest):
    sys.exit("gpu_device: no part was stashed (carry .gpu/part-K with each call; see README)")
m = json.load(open(manifest))
n = len(m["parts"])
missing = [k for k in range(1, n + 1) if not os.path.exists(f"{stash}/site.tar.xz.{k}")]
if missing:
    sys.exit(f"gpu_device: part(s) {missing} of {n} are missing: carry each in its own call first")
blob = b"".join(open(f"{stash}/site.tar.xz.{k}", "rb").read() for k in range(1, n + 1))
if hashlib.sha256(blob).hexdigest() != m["sha256"]:
    sys.exit("gpu_device: the parts do not add up (SHA-256 differs): pack again and carry every part")
with tarfile.open(fileobj=io.BytesIO(blob), mode="r:xz") as tar:
    tar.extractall("/tmp", filter="data")
print(f"unpacked {len(blob) / 2**20:.1f} MiB into /tmp/site")
PY
  export PYTHONPATH=/tmp/site:$PWD/backend:$PWD
  export PYTHONUNBUFFERED=1
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  python3 -c "import onnxruntime as o, torch; print('onnxruntime', o.__version__, o.get_available_providers()); print('torch', torch.__version__, torch.cuda.is_available())"
}

what=${1:-}
case "$what" in
  stash)
    stash
    ls -la "$STASH"
    ;;
  bench)
    shift
    stash
    assemble
    set -o pipefail
    python3 bench/bench_gpu.py --out "$OUT" "$@" 2>&1 | tee "$OUT/bench_gpu.log"
    ;;
  train)
    stash
    assemble
    set -o pipefail
    STARBRIDGE="python3 -m starbridge.cli" MINUTES=${MINUTES:-8} scripts/train_gpu.sh /tmp/star-world-run \
      /tmp/star-world-bundle 2>&1 | tee "$OUT/train_gpu.log"
    tar -cf "$OUT/star-world-bundle.tar" -C /tmp star-world-bundle  # (one file: $OUT returns at most 8)
    ls -la "$OUT"
    ;;
  *)
    echo "usage: bash scripts/gpu_device.sh stash | bench [bench_gpu.py args] | train" >&2
    exit 2
    ;;
esac
