"""`serve --spin` (StarGenerator(spin=True)): ONNX Runtime's process-wide spinning pool really backs the four
sessions, and the frames equal those of the default per-session pools. Run in fresh processes: the pool is
process-wide and must be made before the process's first session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

CHILD = """
import json, sys
import numpy as np
from starbridge.geometry.camera import Intrinsics
from starbridge.runtime.generator import FrameRequest
from starbridge.runtime.star import StarGenerator, spinning_pool
from starbridge.scenes.store import SceneStore
from starbridge.errors import InvalidArgument
bundle, store, out, spin = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
gen = StarGenerator(bundle, prefer_cuda=False, spin=spin, threads=2 if spin else 0)
session = gen.open(SceneStore(store).get("demo"), 256, 144)
intr = Intrinsics.from_fov(60, 256, 144)
frames = []
for b in range(3):
    c2w = np.eye(4); c2w[0, 3] = 0.1 * b
    frames += session.generate_block([FrameRequest(c2w, intr, b / 12.0)] * 2)
np.save(out, np.stack(frames))
refused = ""
if spin:
    try:
        spinning_pool(1)
    except InvalidArgument as exc:
        refused = str(exc)
print(json.dumps({
    "per_session": [s.get_session_options().use_per_session_threads for s in gen.graphs.sessions.values()],
    "refused": refused,
}))
"""


def _run(bundle: Path, store: Path, out: Path, spin: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(bundle), str(store), str(out), "1" if spin else "0"],
                          check=True, capture_output=True, text=True, timeout=600)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_spinning_pool_backs_every_session_and_changes_no_frame(tmp_path: Path, demo_store: Path):
    from starbridge.model.export import build_random, export_bundle
    from starbridge.model.presets import get_preset

    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=3)
    bundle = export_bundle(preset, model, ae, tmp_path / "tiny")
    plain = _run(bundle, demo_store, tmp_path / "plain.npy", spin=False)
    spun = _run(bundle, demo_store, tmp_path / "spin.npy", spin=True)
    assert plain["per_session"] == [True] * 4 and spun["per_session"] == [False] * 4
    assert "2 threads" in spun["refused"] and "1 cannot be had" in spun["refused"]
    a, b = np.load(tmp_path / "plain.npy").astype(int), np.load(tmp_path / "spin.npy").astype(int)
    assert a.shape == b.shape == (6, 144, 256, 4)
    assert np.abs(a - b).max() <= 2  # the same graphs; only how the threads split the sums differs
