"""ONNX Runtime thread settings for the STAR block loop: which one runs star-tiny fastest on this machine.

    python bench/bench_ort_threads.py [--blocks 40] [--rounds 3] [--out DIR]    # from the repository root

A star-tiny bundle with random weights (speed does not depend on their values) runs the whole block loop
(render, encode, context, 4 steps, decode) on the demo scene, in a fresh process per setting, the settings in
turn for `--rounds` rounds (so load from other processes lands on all of them alike). Settings:

* ``per-session, no spinning``: what runtime/star.py ships: each of the four sessions has its own intra-op
  pool (one thread per core), worker threads sleep when idle (`session.intra_op.allow_spinning` 0);
* ``global pool, spinning``: `serve --spin` (StarGenerator `spin`): one process-wide pool for all four
  sessions, whose workers spin between tasks: no wake-up latency between the many small operators, at the price
  of a busy core;
* ``per-session, step graph spinning``: only the step graph (4 calls a block) spins.

A global pool is process-wide, which is why each setting runs in a process of its own. Reported per setting:
mean wall and CPU ms per block (this process, all threads) and frames/s, and the ratio to the shipped setting.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402

SETTINGS = {
    "per-session, no spinning": "shipped",
    "global pool, spinning": "global",
    "per-session, step graph spinning": "step-spin",
}
WARMUP_BLOCKS = 3


def _child(setting: str, bundle: Path, store: Path, blocks: int, preset: str) -> dict[str, Any]:
    """Run `blocks` blocks under `setting` in this process; the measurements as a dict."""
    import onnxruntime as ort

    import starbridge.runtime.star as star
    from bench.bench_model import _requests
    from starbridge.model.presets import get_preset
    from starbridge.scenes.store import SceneStore

    shipped = star._session_options

    def spinning(threads: int) -> ort.SessionOptions:
        opts = shipped(threads)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
        return opts

    if setting == "step-spin":
        open_graph = star.open_graph

        def open_step_spinning(info, name, opts, providers, *rest, **named):  # (step_full: the step of full caches)
            chosen = spinning(0) if name in ("step", "step_full") else opts
            return open_graph(info, name, chosen, providers, *rest, **named)

        star.open_graph = open_step_spinning
    scene = SceneStore(store).ensure_demo()
    generator = star.StarGenerator(bundle, prefer_cuda=False, spin=setting == "global")  # serve --spin
    session = star.StarSession(generator, scene)
    requests = _requests(get_preset(preset), WARMUP_BLOCKS + blocks)
    for block in requests[:WARMUP_BLOCKS]:
        session.generate_block(block)
    wall, cpu = [], []
    for block in requests[WARMUP_BLOCKS:]:
        t, c = time.perf_counter(), time.process_time()
        session.generate_block(block)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    applied = {  # what the sessions really got (so a setting that silently did not apply shows)
        name: {
            "per_session_threads": s.get_session_options().use_per_session_threads,
            "spinning": _config(s.get_session_options(), "session.intra_op.allow_spinning"),
        }
        for name, s in generator.graphs.sessions.items()
    }
    return {"block_ms_mean": 1e3 * float(np.mean(wall)), "block_ms_p50": 1e3 * float(np.median(wall)),
            "block_cpu_ms_mean": 1e3 * float(np.mean(cpu)), "blocks": blocks, "applied": applied}  # fmt: skip


def _config(opts, key: str) -> str:
    """A session config entry; "pool" where it is not set (a process-wide pool spins by its own setting)."""
    try:
        return opts.get_session_config_entry(key)
    except RuntimeError:
        return "pool"


def run(out: Path, blocks: int = 40, rounds: int = 3, preset_name: str = "star-tiny") -> dict[str, Any]:
    import onnxruntime

    from starbridge.model.export import build_random, export_bundle
    from starbridge.model.presets import get_preset
    from starbridge.scenes.store import SceneStore

    started = time.perf_counter()
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="starbridge-bench-") as tmp:
        preset = get_preset(preset_name)
        model, ae = build_random(preset)
        bundle = export_bundle(preset, model, ae, Path(tmp) / preset.name, weights="random (benchmark)")
        store = Path(tmp) / "scenes"
        SceneStore(store).ensure_demo()
        for r in range(rounds):
            for name, setting in SETTINGS.items():
                print(f"  round {r + 1}/{rounds}: {name} ...", flush=True)
                done = subprocess.run(
                    [sys.executable, __file__, "--child", setting, "--bundle", str(bundle), "--store", str(store),
                     "--blocks", str(blocks), "--preset", preset.name],
                    check=True, capture_output=True, text=True, cwd=REPO_ROOT,
                )  # fmt: skip
                runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    frames = preset.frames_per_block
    results = {}
    for name, got in runs.items():
        wall = float(np.mean([g["block_ms_mean"] for g in got]))
        results[name] = {
            "block_ms_mean": wall,
            "block_cpu_ms_mean": float(np.mean([g["block_cpu_ms_mean"] for g in got])),
            "fps": frames / (wall / 1e3),
            "rounds": got,
        }
    base = results["per-session, no spinning"]["fps"]
    for r in results.values():
        r["vs_shipped"] = r["fps"] / base
    report = {
        "benchmark": "ort-threads",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "versions": {"onnxruntime": onnxruntime.__version__},
        "provider": "CPUExecutionProvider",
        "settings": {"preset": preset.name, "weights": "random", "scene": "demo", "blocks": blocks, "rounds": rounds},
        "results": results,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    rows = [f"{'setting':34} {'block ms':>9} {'CPU ms/block':>12} {'frames/s':>9} {'vs shipped':>10}"]
    rows.append("-" * len(rows[0]))
    for name, r in results.items():
        rows.append(f"{name:34} {r['block_ms_mean']:9.1f} {r['block_cpu_ms_mean']:12.1f} {r['fps']:9.1f} "
                    f"{r['vs_shipped']:9.2f}x")  # fmt: skip
    print("\n" + "\n".join(rows))
    out.mkdir(parents=True, exist_ok=True)
    host = host_tag()
    path = out / f"ort-threads-{host}.json"
    write_json(path, report)
    print(f"wrote {path}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=40, help="timed blocks per setting and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--preset", default="star-tiny", help="model preset (star-tiny-test: the reduced one)")
    p.add_argument("--child", choices=sorted(set(SETTINGS.values())), help=argparse.SUPPRESS)
    p.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    add_out_argument(p)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(_child(a.child, a.bundle, a.store, a.blocks, a.preset)))
        return 0
    run(out_dir(a.out), a.blocks, a.rounds, a.preset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
