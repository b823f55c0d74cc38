"""Scene bundle benchmark: size on disk, write time, load time and round-trip error of the bundle format
against the format-1 layout (plain .npy arrays) it replaces.

    python bench/bench_bundle.py [--frames 300] [--width 512 --height 288] [--repeat 3] [--cache CLIP.npz] [--out DIR]

The clip is a procedural ground-truth clip (scenes/procedural/clips.py, kind "handheld": a sideways walk with
hand shake; colour, exact depth with sky, moving-object masks), 10 s at 30 fps by default (rendering it takes a
minute or two; `--cache` keeps it in an .npz for the next run). It is also encoded as the MP4 a user would
import (H.264, CRF 16), the size the bundle is compared with. Written and loaded:

* ``video``: the bundle format as a video import with exact depth stores it (lossy H.264 colour at COLOUR_CRF,
  full-size log-quantised depth, masks); a multi-view-stereo import stores its depth at the working size
  instead (bench/bench_bundle_size.py measures that layout on real captures);
* ``rendered``: as a rendered scene (demo, engine) stores it: lossless colour and depth;
* ``rotation-only``: a tripod import: colour only, depth "infinite" in scene.json;
* ``npy (format 1)``: the old layout, written as the old writer did; "load" reads every byte into memory
  (the old reader memory-mapped: opening was free, the first touch of each page paid the read).

Load time is the best of `--repeat` loads (wall and CPU time; colour and depth decode on two threads), each a
fresh SceneBundle with nothing cached. Files were just written, so they are in the page cache (a warm read).
Targets: the video bundle at most 5x the source clip, a 10 s 512x288 clip loaded in <= 2 s, colour PSNR
>= 40 dB (mean absolute error ~1 level), depth relative error <= 0.5 % where finite. Benchmarks are not tests:
nothing fails on a slow machine; the table says PASS/FAIL.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
# `python bench/bench_bundle.py` puts bench/, not the root, on the path; and measure this checkout's package.
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.scenes import bundle as bundle_mod  # noqa: E402
from starbridge.scenes.bundle import SceneBundle, SceneMeta, normalise_scene, write_bundle  # noqa: E402

TARGET_SIZE_RATIO = 5.0
TARGET_LOAD_S = 2.0
TARGET_PSNR_DB = 40.0
TARGET_DEPTH_REL = 0.005
SOURCE_CRF = 16


def render(frames: int, width: int, height: int, cache: Path | None) -> dict[str, np.ndarray]:
    """The clip's frames, depth (metres, +inf sky), poses and moving masks; from `cache` when it matches."""
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            clip = {k: z[k] for k in ("frames", "depth", "poses", "moving")}
        if clip["frames"].shape == (frames, height, width, 3):
            print(f"clip from {cache}")
            return clip
    from starbridge.scenes.procedural.clips import ClipConfig, render_clip

    print(f"rendering a {frames}-frame {width}x{height} clip ...", flush=True)
    started = time.perf_counter()
    gt = render_clip(ClipConfig(kind="handheld", frames=frames, width=width, height=height))
    print(f"rendered in {time.perf_counter() - started:.1f} s")
    clip = {"frames": gt.frames, "depth": gt.depth, "poses": gt.poses, "moving": gt.moving}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **clip)
    return clip


def write_format1(dest: Path, meta: SceneMeta, frames: np.ndarray, depth: np.ndarray, poses: np.ndarray) -> None:
    """The format-1 writer: normalise, then frames.npy, depth.npy, poses.npy and scene.json."""
    meta, depth, poses = normalise_scene(meta, depth, poses)
    dest.mkdir(parents=True)
    for name, arr in (("frames.npy", frames), ("depth.npy", depth), ("poses.npy", poses)):
        bundle_mod._save_npy(dest / name, np.ascontiguousarray(arr))
    doc = replace(meta, format_version=1, created=bundle_mod.now_iso()).to_json()
    bundle_mod._save_bytes(dest / "scene.json", (json.dumps(doc, indent=2) + "\n").encode())


def _load_once(path: Path) -> tuple[float, float, SceneBundle]:
    bundle_mod.drop_decoded()
    gc.collect()  # nothing shared from an earlier load
    wall, cpu = time.perf_counter(), time.process_time()
    b = SceneBundle(path)
    if b.meta.format_version == 1:  # read every byte, as serving from memory needs
        arrays = (np.array(b.frames), np.array(b.depth))
        assert arrays[0].shape[0] == b.meta.frame_count
    else:
        b.load()
    return time.perf_counter() - wall, time.process_time() - cpu, b


def _errors(b: SceneBundle, frames: np.ndarray, depth: np.ndarray, moving: np.ndarray | None) -> dict[str, Any]:
    diff = b.frames.astype(np.int16) - frames
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    finite = np.isfinite(depth)
    want = (depth[finite] * np.float32(b.meta.scale)).astype(np.float64)  # what the writer was given
    got = np.asarray(b.depth)[finite].astype(np.float64)
    rel = np.abs(got - want) / want if want.size else np.zeros(1)
    return {
        "colour_psnr_db": math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse),
        "colour_mae": float(np.abs(diff).mean()),
        "colour_max_abs": int(np.abs(diff).max()),
        "depth_rel_max": float(rel.max()),
        "depth_rel_mean": float(rel.mean()),
        "depth_inf_kept": bool((np.isinf(b.depth) == ~finite).all()),
        "moving_exact": None if moving is None else bool(b.moving is not None and (b.moving == moving).all()),
    }


def measure(clip: dict[str, np.ndarray], work: Path, repeat: int) -> tuple[dict[str, Any], int]:
    frames, depth, poses, moving = clip["frames"], clip["depth"], clip["poses"], clip["moving"]
    n, h, w = depth.shape
    source = work / "clip.mp4"
    from starbridge.scenes.video import write_video

    write_video(source, frames, 30.0, crf=SOURCE_CRF)
    source_bytes = source.stat().st_size
    intr = Intrinsics.from_fov(60.0, w, h)

    def meta(scene_id: str, src: str, depth_source: str, rotation_only: bool = False) -> SceneMeta:
        return SceneMeta(scene_id=scene_id, title="bench", fps=30.0, frame_count=n, intrinsics=intr, source=src,
                         depth_source=depth_source, rotation_only=rotation_only)  # fmt: skip

    identity = np.repeat(np.eye(4)[None], n, axis=0)
    sky = np.full((n, h, w), np.inf, np.float32)
    cases: list[tuple[str, Any, np.ndarray, np.ndarray | None]] = [
        ("video", lambda d: write_bundle(d, meta("video", "video:clip.mp4", "depth-files"), frames, depth, poses,
                                         moving=moving), depth, moving),
        ("rendered", lambda d: write_bundle(d, meta("rendered", "engine", "exact"), frames, depth, poses,
                                            moving=moving), depth, moving),
        ("rotation-only", lambda d: write_bundle(d, meta("rotation-only", "video:clip.mp4", "none", True), frames,
                                                 sky, identity), sky, None),
        ("npy (format 1)", lambda d: write_format1(d, meta("npy", "engine", "exact"), frames, depth, poses),
         depth, None),
    ]  # fmt: skip
    results: dict[str, Any] = {}
    for name, write, want_depth, want_moving in cases:
        dest = work / re.sub(r"[^a-z0-9]+", "-", name).strip("-")
        gc.collect()
        started = time.perf_counter()
        write(dest)
        write_s = time.perf_counter() - started
        files = {p.name: p.stat().st_size for p in sorted(dest.iterdir())}
        walls, cpus = [], []
        for _ in range(max(1, repeat)):
            bundle = None  # dropped before the next load: each load decodes afresh
            load_wall, load_cpu, bundle = _load_once(dest)
            walls.append(load_wall)
            cpus.append(load_cpu)
        wall, cpu = min(walls), min(cpus)
        errors = _errors(bundle, frames, want_depth, want_moving)
        del bundle
        total = sum(files.values())
        results[name] = {
            "write_s": round(write_s, 3),
            "load_wall_s": round(wall, 3),
            "load_cpu_s": round(cpu, 3),
            "bytes": total,
            "files": files,
            "x_source": round(total / source_bytes, 2),
            **errors,
        }
        print(f"  {name}: {total / 1e6:.2f} MB, write {write_s:.2f} s, load {wall:.2f} s", flush=True)
    return results, source_bytes


def _table(results: dict[str, Any], source_bytes: int) -> str:
    rows = [("layout", "MB", "x clip", "write s", "load s", "load cpu s", "PSNR dB", "MAE", "depth rel max", "masks")]
    for name, r in results.items():
        psnr = "exact" if math.isinf(r["colour_psnr_db"]) else f"{r['colour_psnr_db']:.1f}"
        masks = "-" if r["moving_exact"] is None else ("exact" if r["moving_exact"] else "WRONG")
        rel = "exact" if r["depth_rel_max"] == 0 else f"{r['depth_rel_max']:.2e}"
        rows.append((name, f"{r['bytes'] / 1e6:.2f}", f"{r['x_source']:.2f}", f"{r['write_s']:.2f}",
                     f"{r['load_wall_s']:.2f}", f"{r['load_cpu_s']:.2f}", psnr, f"{r['colour_mae']:.2f}", rel,
                     masks))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * x for x in widths))
    lines.append(f"source clip (H.264 CRF {SOURCE_CRF}): {source_bytes / 1e6:.2f} MB")
    return "\n".join(lines)


def run(
    out_dir: Path,
    frames: int = 300,
    width: int = 512,
    height: int = 288,
    repeat: int = 3,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Measure, print the table, write out_dir/bundle-<hostname>.json atomically; returns the report."""
    out_dir = Path(out_dir)
    started = time.perf_counter()
    clip = render(frames, width, height, cache)
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    try:
        results, source_bytes = measure(clip, work, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    video = results["video"]
    # The load target is for a 10 s 512x288 clip: the time is scaled to that many pixels when the clip differs,
    # and not judged for a clip under a tenth of it (fixed costs dominate).
    scale = (300 * 512 * 288) / (frames * width * height)
    load_s = round(video["load_wall_s"] * scale, 3)
    checks: dict[str, tuple[Any, bool | None]] = {
        "size_x_source": (video["x_source"], video["x_source"] <= TARGET_SIZE_RATIO),
        "load_s_at_10s_512x288": (load_s, load_s <= TARGET_LOAD_S if scale <= 10 else None),
        "colour_psnr_db": (round(video["colour_psnr_db"], 2), video["colour_psnr_db"] >= TARGET_PSNR_DB),
        "depth_rel_max": (video["depth_rel_max"], video["depth_rel_max"] <= TARGET_DEPTH_REL),
    }
    report: dict[str, Any] = {
        "benchmark": "bundle",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "frames": frames,
            "width": width,
            "height": height,
            "fps": 30.0,
            "clip_kind": "handheld",
            "repeat": repeat,
            "source_crf": SOURCE_CRF,
            "colour_crf": bundle_mod.COLOUR_CRF,
            "depth_log_step": bundle_mod.DEPTH_LOG_STEP,
            "format_version": bundle_mod.FORMAT_VERSION,
            "page_cache": "warm (files just written)",
        },
        "machine": machine_info(),
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "starbridge": __version__,
            "av": _av_version(),
        },
        "source_clip_bytes": source_bytes,
        "measurements": results,
        "targets": {
            "size_x_source": TARGET_SIZE_RATIO,
            "load_s": TARGET_LOAD_S,
            "colour_psnr_db": TARGET_PSNR_DB,
            "depth_rel_max": TARGET_DEPTH_REL,
            "measured": {k: v[0] for k, v in checks.items()},
            "pass": {k: v[1] for k, v in checks.items()},
        },
        "wall_s": round(time.perf_counter() - started, 2),
    }
    mach = report["machine"]
    print()
    print(f"StarBridge bundle benchmark: {frames} frames {width}x{height} (handheld procedural clip)")
    print(f"host {mach['hostname']}, {mach['processor']}, {mach['cpu_count']} CPUs; numpy {mach['numpy']}")
    print()
    print(_table(results, source_bytes))
    print()
    for k, (value, ok) in checks.items():
        print(f"{k}: {value} {'n/a (clip too small to judge)' if ok is None else 'PASS' if ok else 'FAIL'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    host = host_tag()
    path = out_dir / f"bundle-{host}.json"
    tmp = path.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"wrote {path}")
    return report


def _av_version() -> str | None:
    try:
        import av
    except ImportError:
        return None
    return str(av.__version__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--frames", type=int, default=300, help="frames of the clip (default 300: 10 s at 30 fps)")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--repeat", type=int, default=3, help="loads per layout; the best counts (default 3)")
    p.add_argument("--cache", type=Path, default=None, help="keep / reuse the rendered clip in this .npz")
    add_out_argument(p)
    args = p.parse_args(argv)
    run(out_dir(args.out), args.frames, args.width, args.height, args.repeat, args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
