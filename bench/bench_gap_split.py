"""Where a captured clip's novel-view gap comes from: each part of the captured scene swapped for the truth.

    python bench/bench_gap_split.py [--clips w2:orbit,w2:dolly,w2:moving] [--frames 40] [--crf 16] [--out DIR]

Each clip is filmed, encoded and imported as bench_capture.py does (the field of view given: its error is
bench_capture's own diagnostic), then the novel views (0.3 m beside the path, bench_capture's) are rendered
from scenes that keep the captured frames (decoded from the MP4) and swap one part for the truth:

* ``captured``: nothing swapped (the benchmark's scene);
* ``true_poses``: the true cameras, the captured depth at the camera path's scale (pose error's share);
* ``true_static_depth``: the true depth on the truly static pixels (the stereo's share);
* ``true_mover_depth``: the true depth on every truly moving pixel (moving_depth.py's share, plus the
  moving pixels the masks miss, which keep the stereo's depth);
* ``true_mover_depth_flagged`` / ``true_mover_depth_missed``: the same on the moving pixels the captured masks
  flag / miss (placement vs. mask coverage);
* ``true_masks``: the true moving masks, the captured depth;
* ``true_depth_and_masks``: the true depth and masks, the captured poses;
* ``exact_decoded``: the truth but the frames (bench_capture's diagnostic: the compression's share).

Printed per clip: each scene's loss in dB against ``exact_decoded`` (so ``captured``'s is the gap without the
compression's share; bench_capture's gap is that plus exact minus exact_decoded, also printed). What a swap
recovers is ``captured`` minus its loss. Written: out/gap-split-<hostname>.json. About 70 s a clip on two cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from bench.bench_capture import _novel_views, _similarity_error  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.scenes.bundle import SceneMeta, write_bundle  # noqa: E402
from starbridge.scenes.procedural.clips import CLIP_KINDS, ClipConfig, render_clip  # noqa: E402
from starbridge.scenes.procedural.raycast import RENDER_VERSION  # noqa: E402
from starbridge.scenes.store import SceneStore  # noqa: E402

FOV_DEG = 48.0
DEFAULT_CLIPS = "w2:orbit,w2:dolly,w2:moving"


def parse_clip(spec: str) -> tuple[int, str]:
    """`w<world>:<kind>` -> (world, kind), with a clear error for anything else."""
    world, _, kind = spec.strip().partition(":")
    if not world.startswith("w") or not world[1:].isdigit() or kind not in CLIP_KINDS or kind == "pan":
        kinds = ", ".join(k for k in CLIP_KINDS if k != "pan")
        raise InvalidArgument(f"clip {spec!r}: expected w<world>:<kind>, kind one of {kinds} (a pan has no depth)")
    return int(world[1:]), kind


def split(world: int, kind: str, work: Path, frames: int = 40, width: int = 320, height: int = 180,
          crf: int = 16) -> dict[str, Any]:  # fmt: skip
    """One clip's novel-view PSNR per swapped scene (see the module docstring)."""
    clip = render_clip(ClipConfig(kind=kind, frames=frames, width=width, height=height, vertical_fov_deg=FOV_DEG,
                                  world_seed=world))  # fmt: skip
    mp4 = clip.write_mp4(work / f"{kind}.mp4", crf=crf)
    bundle = SceneStore(work / "store").import_video(
        mp4, scene_id=kind, max_side=max(width, height), overwrite=True, vertical_fov_deg=FOV_DEG,
        progress=lambda *a: None)  # fmt: skip
    _, path_scale = _similarity_error(bundle.poses, clip.poses)  # metres per captured unit
    metres = 1.0 / path_scale
    meta = SceneMeta(scene_id=f"{kind}-swap", title="swap", fps=clip.config.fps, frame_count=frames,
                     intrinsics=clip.intrinsics, source="engine", depth_source="exact")  # fmt: skip

    def scene(name: str, depth: np.ndarray, poses: np.ndarray, moving: np.ndarray, units: float) -> tuple[Any, float]:
        b = write_bundle(work / name, meta, bundle.frames, depth, poses, moving=moving, in_scene_units=True,
                         lossless=True, overwrite=True)  # fmt: skip
        return b, units

    est, truth_units = bundle.depth, clip.depth / path_scale
    moving, flagged = clip.moving, bundle.moving if bundle.moving is not None else np.zeros_like(clip.moving)

    def swapped(where: np.ndarray) -> np.ndarray:
        out = est.copy()
        out[where] = truth_units[where]
        return out

    scenes = {
        "captured": (bundle, metres),
        "true_poses": scene("poses", est * path_scale, clip.poses, flagged, 1.0),
        "true_static_depth": scene("static", swapped(~moving), bundle.poses, flagged, metres),
        "true_mover_depth": scene("movers", swapped(moving), bundle.poses, flagged, metres),
        "true_mover_depth_flagged": scene("flagged", swapped(moving & flagged), bundle.poses, flagged, metres),
        "true_mover_depth_missed": scene("missed", swapped(moving & ~flagged), bundle.poses, flagged, metres),
        "true_masks": scene("masks", est, bundle.poses, moving, metres),
        "true_depth_and_masks": scene("depth-masks", truth_units, bundle.poses, moving, metres),
        "exact_decoded": scene("exact-decoded", clip.depth, clip.poses, moving, 1.0),
    }
    exact = write_bundle(work / "exact", meta, clip.frames, clip.depth, clip.poses, moving=moving,
                         in_scene_units=True, lossless=True, overwrite=True)  # fmt: skip
    psnr = _novel_views({**scenes, "exact": (exact, 1.0)}, clip, False)
    ref = psnr["exact_decoded"]
    return {
        "clip": f"w{world}:{kind}", "psnr": psnr,
        "loss_db": {name: ref - psnr[name] for name in scenes},
        "compression_db": psnr["exact"] - ref, "gap_db": psnr["exact"] - psnr["captured"],
        "moving_pixels": float(moving.mean()),
        "moving_flagged_fraction": float((moving & flagged).sum() / max(moving.sum(), 1)),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--clips", default=DEFAULT_CLIPS, help="comma-separated w<world>:<kind>")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--crf", type=int, default=16)
    add_out_argument(p)
    args = p.parse_args(argv)
    try:
        clips = [parse_clip(s) for s in args.clips.split(",") if s.strip()]
    except InvalidArgument as exc:
        p.error(str(exc))
    rows = []
    with tempfile.TemporaryDirectory(prefix="starbridge-gap-split-") as tmp:
        for i, (world, kind) in enumerate(clips):
            work = Path(tmp) / f"{i}"
            work.mkdir()
            row = split(world, kind, work, frames=args.frames, crf=args.crf)
            rows.append(row)
            losses = ", ".join(f"{k} {v:+.2f}" for k, v in row["loss_db"].items())
            print(f"{row['clip']}: gap {row['gap_db']:.2f} dB (compression {row['compression_db']:.2f}); loss vs "
                  f"exact_decoded: {losses}", flush=True)  # fmt: skip
    names = list(rows[0]["loss_db"]) if rows else []
    print("\nloss in dB against the exact geometry with the decoded frames (captured = the gap less compression)")
    print(f"{'swap':<26}" + "".join(f"{r['clip']:>12}" for r in rows))
    for name in names:
        print(f"{name:<26}" + "".join(f"{r['loss_db'][name]:12.2f}" for r in rows))
    report = {
        "benchmark": "gap_split",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "frames": args.frames,
            "size": [320, 180],
            "crf": args.crf,
            "vertical_fov_deg": FOV_DEG,
            "fov_given_to_import": True,
            "render_version": RENDER_VERSION,
        },  # fmt: skip
        "machine": machine_info(),
        "versions": {"starbridge": __version__},
        "provider": "CPU (numpy, pycolmap)",
        "clips": rows,
    }
    path = write_json(out_dir(args.out) / f"gap-split-{host_tag()}.json", report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
