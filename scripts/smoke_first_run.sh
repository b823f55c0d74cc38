#!/usr/bin/env bash
# The README's first run, end to end, with whatever `starbridge` and `python` come first on PATH. CI runs it
# in a bare virtual environment (`pip install .`, no extras) to prove the serving dependencies are complete:
#
#   starbridge serve (free ports, background) -> wait until ready -> starbridge fly --out x.mp4 --frames-dir
#   -> starbridge scene import (a real MP4, made with PyAV) -> starbridge scene list / model info / doctor
#   -> SIGTERM to serve, which must exit 0.
#
# Usage: bash scripts/smoke_first_run.sh        (SMOKE_CLIP=video.mp4 imports that clip instead)
# Everything it writes goes to a temporary folder (STARBRIDGE_HOME too), removed at the end. Any failure
# exits non-zero with the step that failed and the backend's log.
set -euo pipefail
export PYTHONUNBUFFERED=1

work="$(mktemp -d "${TMPDIR:-/tmp}/starbridge-smoke.XXXXXX")"
export STARBRIDGE_HOME="$work/home"  # a private scene store: never the user's
serve_pid=""
step="setup"

finish() {
  local rc=$?
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -KILL "$serve_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    echo "smoke_first_run: FAILED at step: $step (exit $rc)" >&2
    if [ -f "$work/serve.log" ]; then
      echo "---- starbridge serve log (last 40 lines) ----" >&2
      tail -n 40 "$work/serve.log" >&2
    fi
  fi
  rm -rf "$work"
  exit "$rc"
}
trap finish EXIT

step="find starbridge"
echo "== starbridge: $(command -v starbridge)  python: $(command -v python)"
starbridge --version

step="pick free ports"
read -r grpc_port engine_port viewer_port < <(python - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

step="starbridge serve"
echo "== starbridge serve --grpc-port $grpc_port --engine-port $engine_port --viewer-port $viewer_port"
starbridge serve --grpc-port "$grpc_port" --engine-port "$engine_port" --viewer-port "$viewer_port" </dev/null >"$work/serve.log" 2>&1 &
serve_pid=$!
# Ready when it prints its banner; the first start builds the demo scene (seconds).
for _ in $(seq 1 360); do
  grep -q "Press Ctrl+C to stop" "$work/serve.log" && break
  kill -0 "$serve_pid" 2>/dev/null || { echo "starbridge serve exited before it was ready" >&2; exit 1; }
  sleep 0.5
done
grep -q "Press Ctrl+C to stop" "$work/serve.log" || { echo "starbridge serve not ready after 180 s" >&2; exit 1; }
cat "$work/serve.log"
grep -q "starbridge fly --out demo.mp4 --endpoint tcp://127.0.0.1:$engine_port" "$work/serve.log" \
  || { echo "the banner does not show the fly command for port $engine_port" >&2; exit 1; }

step="browser viewer"
echo "== browser viewer at http://127.0.0.1:$viewer_port/ (the page and its modules are package data)"
grep -q "viewer: *http://127.0.0.1:$viewer_port/" "$work/serve.log" \
  || { echo "the banner does not show the viewer's URL for port $viewer_port" >&2; exit 1; }
python - "$viewer_port" <<'EOF'
import json
import sys
import urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
page = urllib.request.urlopen(base + "/", timeout=30).read().decode()
assert "<canvas" in page and "js/main.js" in page, "the viewer page is not the packaged index.html"
with urllib.request.urlopen(base + "/js/main.js", timeout=30) as r:
    assert r.headers["Content-Type"].startswith("text/javascript"), r.headers["Content-Type"]
scenes = json.load(urllib.request.urlopen(base + "/api/scenes", timeout=30))["scenes"]
assert any(s["id"] == "demo" for s in scenes), scenes
print(f"viewer: page, modules and {len(scenes)} scene(s) served")
EOF

step="starbridge fly"
echo "== starbridge fly --out flight.mp4 --frames-dir frames/"
timeout 120 starbridge fly --endpoint "tcp://127.0.0.1:$engine_port" --path dolly --seconds 3 \
  --out "$work/flight.mp4" --frames-dir "$work/frames" </dev/null
python - "$work/flight.mp4" "$work/frames" <<'EOF'
import sys
from pathlib import Path

import av
import numpy as np
from PIL import Image

video, frames = Path(sys.argv[1]), Path(sys.argv[2])
with av.open(str(video)) as container:
    decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
pngs = sorted(frames.glob("frame-*.png"))
assert len(decoded) >= 10, f"{video}: {len(decoded)} frames"
assert pngs, f"no PNG in {frames}"
png = np.asarray(Image.open(pngs[0]))
assert png.ndim == 3 and png.std() > 5, f"{pngs[0]} looks empty"
print(f"flight: {len(decoded)} frames {decoded[0].shape[1]}x{decoded[0].shape[0]} in {video.name}, {len(pngs)} PNG")
EOF

step="make a clip"
clip="${SMOKE_CLIP:-$work/clip.mp4}"
if [ -z "${SMOKE_CLIP:-}" ]; then
  # A real H.264 (or MPEG-4) file through FFmpeg, with PyAV: a base dependency, so no test extra is needed.
  python - "$clip" <<'EOF'
import sys

import av
import numpy as np

path = sys.argv[1]
width, height, count = 192, 108, 24
with av.open(path, mode="w") as container:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    stream = container.add_stream(codec, rate=24)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    y, x = np.mgrid[0:height, 0:width]
    for i in range(count):
        rgb = np.stack([(x * 255 // width + 8 * i) % 256, y * 255 // height, np.full_like(x, 40 + 4 * i)], -1)
        frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
print(f"clip: {count} frames {width}x{height} ({codec}) in {path}")
EOF
fi

step="starbridge scene import"
echo "== starbridge scene import $(basename "$clip") --id smoke-clip"
timeout 300 starbridge scene import "$clip" --id smoke-clip --max-frames 24 </dev/null
starbridge scene list </dev/null | tee "$work/scenes.txt"
grep -q "^smoke-clip " "$work/scenes.txt" || { echo "the imported scene is not listed" >&2; exit 1; }

step="starbridge model info"
starbridge model info star-tiny </dev/null

step="starbridge doctor"
echo "== starbridge doctor"
timeout 120 starbridge doctor </dev/null

step="stop serve (SIGTERM)"
echo "== SIGTERM to starbridge serve (pid $serve_pid)"
kill -TERM "$serve_pid"
for _ in $(seq 1 60); do
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$serve_pid" 2>/dev/null; then
  echo "starbridge serve still running 30 s after SIGTERM" >&2
  exit 1
fi
serve_rc=0
wait "$serve_pid" || serve_rc=$?
serve_pid=""
[ "$serve_rc" -eq 0 ] || { echo "starbridge serve exited $serve_rc after SIGTERM (expected 0)" >&2; exit 1; }

step="done"
echo "smoke_first_run: OK (serve, fly, scene import, doctor, clean stop)"
