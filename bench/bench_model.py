"""Model benchmark: STAR frames/s and first-block latency on ONNX Runtime vs PyTorch (docs/architecture.md §7).

    python bench/bench_model.py [--preset star-tiny] [--seconds S] [--no-compile] [--no-e2e] [--no-variants]
                                [--threads N] [--out DIR]

For each preset (random weights: speed does not depend on their values) the same model runs side by side
in this process:

* ``onnxruntime``: the exported bundle through runtime.star (IO-bound KV cache, fused attention and rotary
  operators, the CPU-optimised graphs saved with the bundle), the provider it picks;
* on the CPU, three variants of it (unless --no-variants): ``ort plain graph`` (the same weights exported
  without fused operators or saved optimisation), ``ort float32`` (the bundle's float32 CPU graphs instead
  of its int8 copies: what the int8 weights are worth) and ``ort 1 thread`` (one intra-op thread);
* ``torch eager`` and ``torch.compile``: the same modules through model.pipeline.TorchEngine, the same block
  loop (render, encode, context, 4 steps, decode), so the ratio column is our runtime against PyTorch.

The engines are timed in interleaved rounds (a few blocks each, in turn) rather than one after another, so
load from other processes on a shared machine lands on all of them alike. Per engine: first-block latency
(session open -> first block's frames, reference latents included), steady-state frames/s (frames per block
/ mean block time) and this process's CPU time per block (all threads: less sensitive to other load than
wall time). `--threads N` gives every engine N threads: with one, no library's worker threads wait on
each other, which on a machine shared with other work is the like-for-like comparison of the code itself
(PyTorch's OpenMP workers spin-wait, and on an oversubscribed machine that, not its kernels, sets its speed).
``ort in turn`` is the ONNX Runtime engine with the block's explicit renders on the calling thread
(StarSession ``overlap=False``) instead of beside the context pass and the steps; the PyTorch engines always
run that way (their OpenMP workers spin-wait: beside a render thread they ran 2.2x slower), so "ort in turn"
is their like-for-like row and ``onnxruntime`` what the runtime serves.
`end to end` then serves the bundle with a real `starbridge serve --model` process and flies
`starbridge fly` against it at 30 frames/s (shared memory), reporting delivered frames/s once streaming (first
frame to last; the flight's rate with the wait for the first frame, and that wait, beside it) and pose-to-frame
latency; `e2e shipped` does the same with the shipped star-tiny (trained weights; it also draws and composites
the explicit generator's layered render and keeps a world memory). Targets: star-tiny >= 29 frames/s end to
end at 30 requested on two CPU cores (the shipped bundle >= 24) and ONNX Runtime >= 1.2x torch.compile;
inspatio-1.3b >= 24 frames/s and first frame <= 0.5 s on one H100 (run there with
--preset inspatio-1.3b).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Bundles shipped in the package (star-tiny: trained weights, compositing the layered render).
PACKAGED = REPO_ROOT / "backend" / "starbridge" / "models"
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402

TARGETS = {
    "star-tiny": {
        "what": "end to end at 30 requested, 2 CPU cores (the shipped bundle, which also composites: >= 24)",
        "fps": 29.0,
        "ort_vs_compile": 1.2,
        "shipped_fps": 24.0,
    },
    "inspatio-1.3b": {"what": "one H100, 480x832", "fps": 24.0, "first_frame_s": 0.5},
}


def _requests(preset, n_blocks: int):
    """Camera requests for `n_blocks` blocks: a slow orbit-like sideways drift, scene clock playing at 24 fps."""
    from starbridge.geometry.camera import Intrinsics
    from starbridge.runtime.generator import FrameRequest

    intr = Intrinsics.from_fov(60.0, preset.width, preset.height)
    out = []
    for b in range(n_blocks):
        block = []
        for k in range(preset.frames_per_block):
            i = b * preset.frames_per_block + k
            c2w = np.eye(4)
            c2w[0, 3] = 0.3 * np.sin(i / 20.0)
            block.append(FrameRequest(c2w, intr, i / 24.0))
        out.append(block)
    return out


class _Timed:
    """One engine's session and its block times (wall and this process's CPU time)."""

    def __init__(self, generator, scene, preset, engine_factory, overlap: bool = True) -> None:
        from starbridge.runtime.star import StarSession

        self.blocks = _requests(preset, 10_000)
        self.preset = preset
        t0 = time.perf_counter()
        engine = engine_factory() if engine_factory else None
        self.session = StarSession(generator, scene, engine=engine, overlap=overlap)
        self.session.generate_block(self.blocks[0])
        self.first = time.perf_counter() - t0
        self.next = 1
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, n: int) -> None:
        for _ in range(n):
            t, c = time.perf_counter(), time.process_time()
            self.session.generate_block(self.blocks[self.next % len(self.blocks)])
            self.wall.append(time.perf_counter() - t)
            self.cpu.append(time.process_time() - c)
            self.next += 1

    def report(self) -> dict[str, Any]:
        arr = np.array(self.wall) * 1000
        return {
            "first_block_s": self.first,
            "block_ms_p50": float(np.percentile(arr, 50)),
            "block_ms_p95": float(np.percentile(arr, 95)),
            "block_ms_mean": float(arr.mean()),
            "block_cpu_ms_mean": float(np.mean(self.cpu) * 1000),
            "fps": self.preset.frames_per_block / (arr.mean() / 1000),
            "blocks": len(self.wall),
        }


def _served(bundle: Path, scene, preset, sync, warm_up: bool) -> dict[str, Any]:
    from starbridge.runtime.star import StarGenerator

    blocks = _requests(preset, 2)
    t0 = time.perf_counter()
    generator = StarGenerator(bundle, warm_up=warm_up)
    t1 = time.perf_counter()
    generator.prepare(scene)
    sync()
    t2 = time.perf_counter()
    out: dict[str, Any] = {"load_s": t1 - t0, "prepare_s": t2 - t1, "provider": generator.execution_provider}
    for key, requests in (("first_block_s", blocks[0]), ("next_client_first_block_s", blocks[1])):
        t = time.perf_counter()
        session = generator.open(scene, preset.width, preset.height)
        session.generate_block(requests)
        sync()
        out[key] = time.perf_counter() - t
        session.close()
    return out


def served_first_blocks(bundle: Path, scene, preset, sync=lambda: None, rounds: int = 1) -> dict[str, Any]:
    """What `serve --model` makes a client wait for, on a generator of its own: `load_s` (the bundle's graphs
    opened), `prepare_s` (StarGenerator.prepare at startup: the scene's reference latents and the warm-up block),
    then the first block of the first client's session (`first_block_s`: opened to first frames) and of a
    second client's after the first closed (`next_client_first_block_s`: its engine from the pool); `sync`
    waits for the device (torch.cuda.synchronize on a GPU) before each clock is read. With `rounds` > 1, that
    many rounds of a generator that does not warm up and one that does, in turn (medians; what the warm-up is
    worth: `without_warm_up`)."""
    if rounds <= 1:
        return _served(bundle, scene, preset, sync, warm_up=True)
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(rounds):
        for warm_up in (False, True):
            runs[warm_up].append(_served(bundle, scene, preset, sync, warm_up))

    def median(rows: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [k for k, v in rows[0].items() if isinstance(v, float)]
        return rows[0] | {k: float(np.median([r[k] for r in rows])) for k in keys} | {"rounds": len(rows)}

    return median(runs[True]) | {"without_warm_up": median(runs[False])}


def _time_engines(engines, scene, preset, seconds: float, round_blocks: int = 4) -> dict[str, dict[str, Any]]:
    """Time the engines side by side: warm each up, then rounds of `round_blocks` blocks per engine in turn
    until each has run about `seconds`, so load from other processes lands on all of them alike."""
    timed: dict[str, _Timed] = {}
    out: dict[str, dict[str, Any]] = {}
    for name, generator, factory in engines:
        print(f"  {preset.name}: {name} (first block) ...", flush=True)
        try:
            # PyTorch's OpenMP workers spin-wait: beside the render thread they ran 2.2x slower (measured), so the
            # torch engines make their renders in turn, as "ort in turn" does: the like-for-like row for them
            timed[name] = _Timed(generator, scene, preset, factory, overlap=factory is None and name != "ort in turn")
            timed[name].run(2)  # warm-up, not counted
            timed[name].wall.clear()
            timed[name].cpu.clear()
        except Exception as exc:  # torch.compile needs a compiler toolchain; say why it did not run
            out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
    print(f"  {preset.name}: {', '.join(timed)} in rounds of {round_blocks} blocks ...", flush=True)

    def short() -> bool:
        return min(sum(t.wall) for t in timed.values()) < seconds or min(len(t.wall) for t in timed.values()) < 3

    while timed and short():
        for t in timed.values():
            t.run(round_blocks)
    for name, _, _ in engines:
        if name in timed:
            out[name] = timed[name].report()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _end_to_end(bundle: Path, store: Path, seconds: float, fps: float, spin: bool = False) -> dict[str, Any]:
    """A real `serve --model [--spin]` process and a real `fly` (shared memory) against it."""
    from starbridge.client.fly import FlyConfig, fly

    grpc_port, engine_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "starbridge.cli", "--store", str(store), "serve", "--model", str(bundle),
           "--grpc-port", str(grpc_port), "--engine-port", str(engine_port), "--no-viewer",
           "--fps", str(fps), *(["--spin"] if spin else [])]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "backend"))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "Press Ctrl+C" in line or proc.poll() is not None:
                break
        fly(FlyConfig(endpoint=f"tcp://127.0.0.1:{engine_port}", path="orbit", seconds=2.0, fps=fps))  # warm up
        report = fly(FlyConfig(endpoint=f"tcp://127.0.0.1:{engine_port}", path="tour", seconds=seconds, fps=fps))
        return {
            "fps_requested": fps,
            # The stream's rate (first frame to last); the flight's (the wait for the first frame included) and
            # that wait beside it: a session's start-up is not its frame rate (client/fly.py).
            "fps": report.stream_fps,
            "fps_flight": report.fps,
            "first_frame_ms": 1000.0 * report.first_frame_s,
            "frames": report.frames,
            "latency_ms_p50": report.percentile(report.latencies_ms, 50),
            "latency_ms_p95": report.percentile(report.latencies_ms, 95),
            "transport": report.transport,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(preset_name: str, seconds: float, compile_: bool, e2e: bool, work: Path, variants: bool = True,
            threads: int = 0, spin: bool = False
            ) -> dict[str, Any]:  # fmt: skip
    import torch

    from starbridge.model.export import build_random, export_bundle
    from starbridge.model.pipeline import TorchEngine
    from starbridge.model.presets import get_preset
    from starbridge.runtime.bundle import read_model
    from starbridge.runtime.star import StarGenerator
    from starbridge.scenes.store import SceneStore

    preset = get_preset(preset_name)
    model, ae = build_random(preset)
    bundle = export_bundle(preset, model, ae, work / preset.name, weights="random (benchmark)")
    store = SceneStore(work / "scenes")
    scene = store.ensure_demo()
    if threads:
        torch.set_num_threads(threads)
    generator = StarGenerator(bundle, threads=threads, spin=spin)
    device = "cuda" if generator.execution_provider == "CUDAExecutionProvider" else "cpu"
    text = np.load(bundle / "text.npy") if preset.star.text_dim else None
    results: dict[str, Any] = {
        "preset": preset.name,
        "resolution": f"{preset.width}x{preset.height}",
        "frames_per_block": preset.frames_per_block,
        "provider": generator.execution_provider,
        "torch_threads": torch.get_num_threads(),
        "ort_spinning_pool": spin,
        "torch_device": device,
        "ort_graphs": {
            "fused_attention": read_model(bundle).doc.get("fused_attention", False),
            "cpu_graphs": bool(read_model(bundle).doc.get("cpu_graphs")),
        },  # fmt: skip
        "engines": {},
    }
    engines: list[tuple[str, Any, Any]] = [("onnxruntime", generator, None)]
    if variants and device == "cpu" and not spin:  # (a spinning pool is process-wide: its variants cannot be had)
        # The same weights as plain graphs (no fused attention/rotary, no saved optimisation), and the fused
        # bundle on one intra-op thread: what each choice is worth, measured in the same rounds.
        plain = export_bundle(preset, model, ae, work / f"{preset.name}-plain", weights="random (benchmark)",
                              fused=False)  # fmt: skip
        doc = json.loads((plain / "model.json").read_text())
        cpu_graphs = doc.pop("cpu_graphs", {})
        for name in (*cpu_graphs.get("graphs", {}).values(), *cpu_graphs.get("int8", {}).values()):
            (plain / name).unlink()
        (plain / "model.json").write_text(json.dumps(doc))
        engines.append(("ort plain graph", StarGenerator(plain, threads=threads), None))
        engines.append(("ort float32", StarGenerator(bundle, threads=threads, int8=False), None))
        if threads != 1:
            engines.append(("ort 1 thread", StarGenerator(bundle, threads=1), None))
        engines.append(("ort in turn", generator, None))  # renders on the calling thread (StarSession overlap)
    engines.append(("torch eager", generator, lambda: TorchEngine(model, ae, device=device, text=text)))
    if compile_:
        engines.append(("torch.compile", generator,
                        lambda: TorchEngine(model, ae, device=device, compile=True, text=text)))  # fmt: skip
    results["engines"] = _time_engines(engines, scene, preset, seconds)
    print(f"  {preset.name}: first blocks as served (a generator of its own, prepared) ...", flush=True)
    results["served"] = served_first_blocks(bundle, scene, preset, rounds=3)
    if e2e:
        print(f"  {preset.name}: end to end (serve --model + fly) ...", flush=True)
        results["end_to_end"] = _end_to_end(bundle, work / "scenes", max(seconds, 6.0), 30.0, spin)
        if (PACKAGED / preset.name / "model.json").is_file():  # the shipped weights (compositing, world memory)
            print(f"  {preset.name}: end to end, the shipped bundle ...", flush=True)
            results["end_to_end_shipped"] = _end_to_end(
                PACKAGED / preset.name, work / "scenes", max(seconds, 6.0), 30.0, spin
            )
    return results


def _table(all_results: list[dict[str, Any]]) -> str:
    rows = [f"{'preset':14} {'engine':16} {'provider':22} {'first block s':>13} {'block ms p50':>12} "
            f"{'CPU ms/block':>12} {'frames/s':>9} {'ORT vs it':>9}"]  # fmt: skip
    rows.append("-" * len(rows[0]))
    for r in all_results:
        ort_fps = r["engines"].get("onnxruntime", {}).get("fps")
        for name, e in r["engines"].items():
            provider = r["provider"] if name.startswith("o") else f"torch {r['torch_device']}"
            if "error" in e:
                rows.append(f"{r['preset']:14} {name:16} {provider:22} {'failed: ' + e['error'][:60]}")
                continue
            ratio = f"{ort_fps / e['fps']:.2f}x" if ort_fps and name != "onnxruntime" else ""
            rows.append(f"{r['preset']:14} {name:16} {provider:22} {e['first_block_s']:13.2f} "
                        f"{e['block_ms_p50']:12.1f} {e['block_cpu_ms_mean']:12.1f} {e['fps']:9.1f} "
                        f"{ratio:>9}")  # fmt: skip
        served = r.get("served")
        if served:
            cold = served.get("without_warm_up", {})
            rows.append(f"{r['preset']:14} {'served':16} {served['provider']:22} {served['first_block_s']:13.2f}  "
                        f"first client (prepared at startup in {served['prepare_s']:.2f} s); the next client "
                        f"{served['next_client_first_block_s']:.2f} s"
                        + (f"; without the warm-up {cold['first_block_s']:.2f} s (prepared in "
                           f"{cold['prepare_s']:.2f} s)" if cold else ""))  # fmt: skip
        for key, label in (("end_to_end", "end to end"), ("end_to_end_shipped", "e2e shipped")):
            e2e = r.get(key)
            if not e2e:
                continue
            target = TARGETS.get(r["preset"], {}).get("fps" if key == "end_to_end" else "shipped_fps")
            verdict = "" if target is None else ("PASS" if e2e["fps"] >= target else "FAIL") + f" (>= {target:g})"
            rows.append(f"{r['preset']:14} {label:16} {r['provider']:22} {'':13} {'':12} {'':12} "
                        f"{e2e['fps']:9.1f}  {verdict} at {e2e['fps_requested']:g} requested; latency p50 "
                        f"{e2e['latency_ms_p50']:.0f} ms, p95 {e2e['latency_ms_p95']:.0f} ms; over the flight "
                        f"{e2e.get('fps_flight', e2e['fps']):.1f} (first frame after "
                        f"{e2e.get('first_frame_ms', float('nan')):.0f} ms)")  # fmt: skip
    return "\n".join(rows)


def run(out_dir: Path, seconds: float = 5.0, presets: tuple[str, ...] = ("star-tiny",), compile_: bool = True,
        e2e: bool = True, variants: bool = True, threads: int = 0, spin: bool = False) -> dict[str, Any]:  # fmt: skip
    """Measure, print the table, write out_dir/model-<hostname>.json; returns the report."""
    import onnxruntime
    import torch

    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="starbridge-bench-") as tmp:
        results = [measure(p, seconds, compile_, e2e, Path(tmp), variants, threads, spin) for p in presets]
    report = {
        "benchmark": "model",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        # Other processes' load (1-minute average, before and after): wall-clock numbers on a shared machine
        # move with it; the CPU-time column and the interleaved rounds do much less.
        "load_average_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "versions": {"onnxruntime": onnxruntime.__version__, "torch": torch.__version__},
        "settings": {
            "seconds": seconds,
            "weights": "random",
            "scene": "demo",
            "interleaved": True,
            "threads": threads or "default",
            "ort_spinning_pool": spin,
        },  # fmt: skip
        "results": results,
        "targets": {p: TARGETS[p] for p in presets if p in TARGETS},
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print()
    print(_table(results))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    host = host_tag()
    path = out_dir / (f"model-{host}" + (f"-{threads}thread" if threads else "") + ("-spin" if spin else "") + ".json")
    write_json(path, report)
    print(f"wrote {path}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", action="append", help="preset(s) to run (default: star-tiny)")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--no-e2e", action="store_true", help="skip the serve + fly run")
    p.add_argument("--no-variants", action="store_true", help="skip the plain-graph and one-thread ORT rows")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for every engine (ORT intra-op and torch; default: each library's own choice); "
                   "written to model-<host>-<N>thread.json")  # fmt: skip
    p.add_argument("--spin", action="store_true",
                   help="ONNX Runtime with its process-wide spinning pool (serve --spin; no ORT variants); written to "
                   "model-<host>[-<N>thread]-spin.json")  # fmt: skip
    add_out_argument(p)
    a = p.parse_args(argv)
    run(out_dir(a.out), a.seconds, tuple(a.preset or ["star-tiny"]), not a.no_compile, not a.no_e2e, not a.no_variants,
        a.threads, a.spin)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
