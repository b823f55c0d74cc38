"""GPU benchmark: the one prepared run for a lent GPU (the published model's layout on ONNX Runtime CUDA vs PyTorch).

    python bench/bench_gpu.py [--preset inspatio-1.3b] [--dtype float16] [--seconds 15] [--budget-s 540] [--out DIR]

GPU time here is occasional and short (minutes, one chip), so everything the GPU part of the published-model
issue asks for happens in one run, each stage written to the JSON as soon as it is done (a run cut short still
reports what it measured):

1. **environment** -- the GPU, PyTorch and ONNX Runtime versions, and whether ONNX Runtime's CUDA provider
   really loads (runtime/providers.py);
2. **parity** -- the shipped star-tiny on CUDA against the same bundle on the CPU provider: the same session
   (seed, renders, reference latents) for `--parity-blocks` blocks, the uint8 frames compared (target: within 2
   levels);
3. **the preset** (default inspatio-1.3b, 480x832, 12 frames a block) with random weights in `--dtype` on the GPU,
   exported traced on the GPU (weights past 2 GB as external data, fused attention for CUDA), served by
   runtime.star on ONNX Runtime CUDA (IO binding, the KV cache on the device, the step captured as a CUDA
   graph) beside PyTorch eager and torch.compile on the same GPU (model.pipeline.TorchEngine, the same block
   loop), in interleaved rounds as bench_model.py times them: first block (session open -> first frames),
   frames/s, and a per-call breakdown (explicit render, encode, context, the denoising steps, decode; each
   call synchronised) so it shows where a block's time goes.

Without a GPU it runs the same stages on the CPU (a dry run: test it at reduced size with
`--preset inspatio-1.3b-test --dtype float32 --seconds 1`). Targets (inspatio-1.3b on one H100-class GPU):
>= 24 frames/s and first block <= 0.5 s on ONNX Runtime; star-tiny CUDA within 2 levels of the CPU.
How to get ONNX Runtime's CUDA build onto a GPU machine that lacks it: scripts/gpu_pack.py and README
"When a GPU is lent".
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from bench.bench_model import PACKAGED, _requests, _time_engines, served_first_blocks  # noqa: E402

#: Per preset on one H100-class GPU; the star-tiny CUDA frames' largest difference from the CPU provider's.
TARGETS: dict[str, dict[str, float]] = {"inspatio-1.3b": {"fps": 24.0, "first_block_s": 0.5}}
PARITY_LEVELS = 2
#: The calls a block makes, timed one by one in the breakdown pass.
CALLS = ("render", "encode", "context", "step", "decode")


def _gpu() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "available": torch.cuda.is_available(),
    }
    if info["available"]:
        props = torch.cuda.get_device_properties(0)
        info |= {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1), "capability": list(
            torch.cuda.get_device_capability(0))}  # fmt: skip
    return info


def _environment() -> dict[str, Any]:
    from starbridge.runtime.providers import choose_providers

    choice = choose_providers(prefer_cuda=True)
    return {
        "gpu": _gpu(),
        "provider": choice.name,
        "provider_reason": choice.reason,
        "onnxruntime": choice.onnxruntime_version,
    }


def _scene(work: Path):
    from starbridge.scenes.store import SceneStore

    return SceneStore(work / "scenes").ensure_demo()


def _parity(work: Path, blocks: int) -> dict[str, Any]:
    """The shipped star-tiny on the CUDA provider (if it loads) vs the CPU provider, block by block."""
    from starbridge.runtime.star import StarGenerator, StarSession

    bundle = PACKAGED / "star-tiny"
    scene = _scene(work)
    # the CPU side runs the float32 graphs (not the int8 copies): the same arithmetic as CUDA's
    gpu, cpu = StarGenerator(bundle, prefer_cuda=True), StarGenerator(bundle, prefer_cuda=False, int8=False)
    preset_blocks = _requests(gpu.info, blocks)  # (it reads width, height and frames_per_block)
    a, b = StarSession(gpu, scene, seed=1), StarSession(cpu, scene, seed=1)
    diffs = []
    for requests in preset_blocks:
        for fa, fb in zip(a.generate_block(requests), b.generate_block(requests), strict=True):
            diffs.append(np.abs(fa.astype(np.int16) - fb.astype(np.int16)))
    a.close()
    b.close()
    d = np.stack(diffs)
    return {
        "provider": gpu.execution_provider,
        "blocks": blocks,
        "max_level_diff": int(d.max()),
        "mean_level_diff": float(d.mean()),
        "fraction_over_2": float((d > 2).mean()),
        "pass": bool(d.max() <= PARITY_LEVELS),
    }


def _breakdown(session, requests_blocks, synchronize) -> dict[str, float]:
    """Mean milliseconds per block of each call type, every call synchronised (a separate pass: the
    synchronisation would slow the frames/s rounds)."""
    times: dict[str, list[float]] = {c: [] for c in CALLS}
    engine = session.engine

    def timed(obj, name: str, call: str) -> None:
        method = getattr(obj, name)

        def wrapper(*args, **kwargs):
            synchronize()
            t0 = time.perf_counter()
            out = method(*args, **kwargs)
            synchronize()
            times[call].append(time.perf_counter() - t0)
            return out

        setattr(obj, name, wrapper)

    for name in ("encode", "context", "step", "decode"):
        timed(engine, name, name)
    timed(session, "_render", "render")
    if session.layered is not None:
        timed(session.layered, "render", "render")
    for requests in requests_blocks:
        session.generate_block(requests)
    n = len(requests_blocks)
    return {call: 1000.0 * sum(v) / n for call, v in times.items() if v}


def _preset(name: str, dtype: str, seconds: float, work: Path, compile_: bool) -> dict[str, Any]:
    import torch

    from starbridge.model.export import build_random, export_bundle
    from starbridge.model.pipeline import TorchEngine
    from starbridge.model.presets import get_preset
    from starbridge.runtime.star import StarGenerator, StarSession

    preset = get_preset(name)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    out: dict[str, Any] = {"preset": name, "resolution": f"{preset.width}x{preset.height}", "dtype": dtype,
                           "frames_per_block": preset.frames_per_block, "torch_device": device}  # fmt: skip
    t0 = time.perf_counter()
    model, ae = build_random(preset)
    model, ae = model.to(device), ae.to(device)
    export_dtype = "float16" if dtype != "float32" else "float32"  # (ONNX Runtime graphs: float32 or float16)
    bundle = export_bundle(preset, model, ae, work / name, dtype=export_dtype, fused=cuda or None,
                           weights="random (benchmark)")  # fmt: skip
    out["export_s"] = round(time.perf_counter() - t0, 1)
    out["bundle_bytes"] = sum(f.stat().st_size for f in bundle.iterdir())
    model, ae = model.to(torch_dtype), ae.to(torch_dtype)
    scene = _scene(work)
    generator = StarGenerator(bundle)
    out["provider"] = generator.execution_provider
    text = np.load(bundle / "text.npy") if preset.star.text_dim else None
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    engines: list[tuple[str, Any, Any]] = [
        ("onnxruntime", generator, None),
        ("torch eager", generator, lambda: TorchEngine(model, ae, device=device, text=text)),
    ]
    if compile_:
        engines.append(("torch.compile", generator,
                        lambda: TorchEngine(model, ae, device=device, compile=True, text=text)))  # fmt: skip
    out["engines"] = _time_engines(engines, scene, preset, seconds)
    blocks = _requests(preset, 4)
    out["breakdown_ms_per_block"] = {}
    for label, factory in (("onnxruntime", None), ("torch eager", engines[1][2])):
        # one call at a time (no render thread), so each one's time is its own
        try:  # a failing engine costs its own row, not the timings measured before it
            session = StarSession(generator, scene, engine=factory() if factory else None, overlap=False)
            session.generate_block(blocks[0])  # warm (a CUDA graph is captured on the first step)
            out["breakdown_ms_per_block"][label] = _breakdown(session, blocks[1:], sync)
            session.close()
        except Exception as exc:  # noqa: BLE001 (recorded in the report)
            out.setdefault("breakdown_errors", {})[label] = f"{type(exc).__name__}: {exc}"
    try:  # what a client of `serve --model` waits for: a generator of its own, prepared (warmed up) at startup
        out["served"] = served_first_blocks(bundle, scene, preset, sync)
    except Exception as exc:  # noqa: BLE001 (recorded in the report)
        out["served"] = {"error": f"{type(exc).__name__}: {exc}"}
    ort = out["engines"].get("onnxruntime", {})
    target = TARGETS.get(name)
    if target and "fps" in ort:
        # the first block a client waits for (served: the generator prepared at startup, as `serve` does); the
        # engines' own first blocks (`first_block_s`, nothing prepared: ONNX Runtime's first run and, on CUDA,
        # the step graph's capture included) are reported beside it
        first = out["served"].get("first_block_s", ort["first_block_s"])
        out["pass"] = {"fps": bool(ort["fps"] >= target["fps"]), "first_block": bool(first <= target["first_block_s"])}
    return out


def _table(report: dict[str, Any]) -> str:
    rows = []
    env = report.get("environment", {})
    gpu = env.get("gpu", {})
    rows.append(f"GPU: {gpu.get('name', 'none')}; ONNX Runtime {env.get('onnxruntime')} on {env.get('provider')}"
                f" ({env.get('provider_reason')})")  # fmt: skip
    parity = report.get("parity")
    if parity and "max_level_diff" in parity:
        rows.append(f"star-tiny {parity['provider']} vs CPU: max {parity['max_level_diff']} levels, mean "
                    f"{parity['mean_level_diff']:.3f}, {100 * parity['fraction_over_2']:.3f}% over 2 "
                    f"({'PASS' if parity['pass'] else 'FAIL'})")  # fmt: skip
    p = report.get("preset")
    if p and "engines" in p:
        rows.append(f"{p['preset']} {p['resolution']} {p['dtype']} ({p['frames_per_block']} frames a block), export "
                    f"{p['export_s']} s")  # fmt: skip
        rows.append(f"  {'engine':16} {'first block s':>13} {'block ms p50':>12} {'frames/s':>9}")
        for name, e in p["engines"].items():
            if "error" in e:
                rows.append(f"  {name:16} failed: {e['error'][:80]}")
            else:
                rows.append(f"  {name:16} {e['first_block_s']:13.2f} {e['block_ms_p50']:12.1f} {e['fps']:9.1f}")
        for name, calls in p.get("breakdown_ms_per_block", {}).items():
            rows.append(f"  {name} per block: " + ", ".join(f"{c} {ms:.1f} ms" for c, ms in calls.items()))
        served = p.get("served", {})
        if "first_block_s" in served:
            rows.append(
                f"  served (prepared at startup in {served['prepare_s']:.2f} s): first block "
                f"{served['first_block_s']:.2f} s, the next client's {served['next_client_first_block_s']:.2f} s"
            )
        elif "error" in served:
            rows.append(f"  served: failed: {served['error'][:80]}")
    for stage, error in report.get("errors", {}).items():
        rows.append(f"{stage}: FAILED {error.splitlines()[-1][:120]}")
    return "\n".join(rows)


def run(out: Path, preset: str = "inspatio-1.3b", dtype: str = "float16", seconds: float = 15.0,
        parity_blocks: int = 12, compile_: bool = True, budget_s: float = 540.0) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "gpu",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "preset": preset,
            "dtype": dtype,
            "seconds": seconds,
            "parity_blocks": parity_blocks,
            "compile": compile_,
            "budget_s": budget_s,
        },  # fmt: skip
        "targets": {**TARGETS, "star-tiny parity levels": PARITY_LEVELS},
        "errors": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"gpu-{host_tag()}.json"
    with tempfile.TemporaryDirectory(prefix="starbridge-gpu-") as tmp:
        stages = (
            ("environment", lambda: _environment()),
            ("parity", lambda: _parity(Path(tmp), parity_blocks)),
            ("preset", lambda: _preset(preset, dtype, seconds, Path(tmp), compile_)),
        )
        for stage, fn in stages:
            left = budget_s - (time.perf_counter() - started)
            if left < 30:
                report["errors"][stage] = f"skipped: {left:.0f} s of the budget left"
                continue
            print(f"[{time.perf_counter() - started:6.1f} s] {stage} ...", flush=True)
            try:
                report[stage] = fn()
            except Exception:  # a stage that fails must not cost the others their numbers
                report["errors"][stage] = traceback.format_exc()
                print(report["errors"][stage], flush=True)
            report["wall_s"] = round(time.perf_counter() - started, 1)
            write_json(path, report)  # after every stage: a run cut short still reports
    print()
    print(_table(report))
    print(f"wrote {path}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="inspatio-1.3b")
    p.add_argument("--dtype", default="float16", choices=("float32", "float16", "bfloat16"),
                   help="PyTorch engines' dtype; the ONNX graphs are float16 unless float32")  # fmt: skip
    p.add_argument("--seconds", type=float, default=15.0, help="timed seconds per engine")
    p.add_argument("--parity-blocks", type=int, default=12)
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--budget-s", type=float, default=540.0, help="stages not started by then are skipped")
    add_out_argument(p)
    a = p.parse_args(argv)
    report = run(out_dir(a.out), a.preset, a.dtype, a.seconds, a.parity_blocks, not a.no_compile, a.budget_s)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
