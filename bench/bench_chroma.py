"""A clip's colour rebuilt at its luma's resolution (scenes/chroma.py) against FFmpeg's plain 4:2:0 upsampling,
side by side on the same clips and the same tracked cameras.

    python bench/bench_chroma.py [--clips all | w0:handheld,w1:orbit,...] [--frames 40] [--crf 16] [--out DIR]

Per clip (the sixteen of the README's tables, bench_capture_variants.py's `--clips`), rendered with ground
truth and encoded to H.264 at `--crf`:
1. the frames as decoded both ways against the rendered ones: PSNR of the RGB, of the luma (BT.601) and of the
   two colour differences, and the decode's milliseconds per frame;
2. the import both ways (bench_capture.measure), the second on the first one's tracked cameras (COLMAP's
   global mapper is threaded and two runs differ a little: this way what differs is the colour's), with the
   novel-view gap, the exact geometry with the decoded frames (`novel_psnr_exact_decoded_frames`: what the
   colour alone buys), AbsRel and the moving masks' IoU.
Prints a table per clip and the means; writes out/chroma-<hostname>.json. Sixteen clips take about 20 minutes
on two cores.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from bench.bench_capture import TARGET_ABSREL, TARGET_PSNR_GAP_DB, measure  # noqa: E402
from bench.bench_capture_variants import ALL_CLIPS, DEFAULT_CRF, Clip, parse_clip  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.scenes import chroma  # noqa: E402
from starbridge.scenes.capture import pipeline  # noqa: E402
from starbridge.scenes.procedural.clips import ClipConfig, render_clip  # noqa: E402
from starbridge.scenes.video import decode_video  # noqa: E402

#: The two decodes compared: FFmpeg's own upsampling, and the chroma rebuilt first (the default).
WAYS = ("plain", "rebuilt")
#: RGB -> (Y, Cb, Cr) rows, BT.601 (the clips are encoded with it).
_YCC = np.array([[0.299, 0.587, 0.114], [-0.1687, -0.3313, 0.5], [0.5, -0.4187, -0.0813]])


@contextmanager
def plain_chroma() -> Iterator[None]:
    """While open, every decode leaves the chroma to FFmpeg (chroma.rebuilds answers no): the import's own
    decode, which takes no such setting."""
    original = chroma.rebuilds
    chroma.rebuilds = lambda frame, size: False  # type: ignore[assignment]
    try:
        yield
    finally:
        chroma.rebuilds = original  # type: ignore[assignment]


class SharedTracking:
    """Stands in for the pipeline's `track_camera` while installed: the first call for a clip runs it, the
    second (the other decode's frames, a few levels apart) gets the same cameras."""

    def __init__(self, track: Callable[..., Any]) -> None:
        self._track = track
        self._done: dict[str, Any] = {}
        self.clip = ""

    def __call__(self, frames: np.ndarray, *, vertical_fov_deg: float | None, progress: Any, config: Any) -> Any:
        key = self.clip + repr((vertical_fov_deg, config))
        if key not in self._done:
            self._done[key] = self._track(frames, vertical_fov_deg=vertical_fov_deg, progress=progress,
                                          config=config)  # fmt: skip
        return self._done[key]


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(((a - b) ** 2).mean())
    return float(10 * np.log10(peak**2 / max(mse, 1e-10)))


def frame_quality(decoded: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """PSNR (dB) of decoded RGB frames against the rendered ones: all three channels, the luma, the colour
    differences."""
    d, t = decoded.astype(np.float64), truth.astype(np.float64)
    dy, ty = d @ _YCC.T, t @ _YCC.T
    return {"rgb": _psnr(d, t), "luma": _psnr(dy[..., 0], ty[..., 0]), "chroma": _psnr(dy[..., 1:], ty[..., 1:])}


def decode_both(mp4: Path, side: int, truth: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for way in WAYS:
        t0 = time.perf_counter()
        frames = decode_video(mp4, side, 0, lambda *a: None, rebuild_chroma=way == "rebuilt").frames
        ms = 1000 * (time.perf_counter() - t0) / len(frames)
        out[way] = {**frame_quality(frames, truth), "decode_ms_per_frame": ms}
    return out


KEYS = ("novel_psnr_gap_db", "novel_psnr_exact_decoded_frames", "depth_absrel", "moving_iou",
        "moving_depth_absrel_path_scale", "rotation_error_deg_median")  # fmt: skip


def run(out: Path, clips: list[Clip], frames: int = 40, crf: int = DEFAULT_CRF) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    shared = SharedTracking(pipeline.track_camera)
    original = pipeline.track_camera
    pipeline.track_camera = shared  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="starbridge-chroma-") as tmp:
            for clip in clips:
                shared.clip = clip.name
                work = Path(tmp) / clip.name.replace(":", "_")
                work.mkdir()
                truth = render_clip(ClipConfig(kind=clip.kind, frames=frames, width=clip.width, height=clip.height,
                                               vertical_fov_deg=48.0, world_seed=clip.world))  # fmt: skip
                mp4 = truth.write_mp4(work / "clip.mp4", crf=crf)
                row: dict[str, Any] = {"frames": decode_both(mp4, max(clip.width, clip.height), truth.frames)}
                for way in ("rebuilt", "plain"):  # the rebuilt frames are tracked, as an import does by default
                    (work / way).mkdir()
                    if way == "plain":
                        with plain_chroma():
                            rec = measure(clip.kind, frames, clip.width, clip.height, work / way, 48.0, True,
                                          clip.world, crf=crf)  # fmt: skip
                    else:
                        rec = measure(clip.kind, frames, clip.width, clip.height, work / way, 48.0, True, clip.world,
                                      crf=crf)  # fmt: skip
                    row[way] = {k: rec.get(k) for k in KEYS}
                    row[way]["record"] = rec
                rows[clip.name] = row
                f = row["frames"]
                print(f"{clip.name:<22} RGB {f['plain']['rgb']:5.2f} -> {f['rebuilt']['rgb']:5.2f} dB  gap "
                      f"{row['plain']['novel_psnr_gap_db']:5.2f} -> {row['rebuilt']['novel_psnr_gap_db']:5.2f} dB",
                      flush=True)  # fmt: skip
    finally:
        pipeline.track_camera = original  # type: ignore[assignment]
    summary = _summary(rows)
    print(f"\nStarBridge chroma: {len(clips)} clips of {frames} frames at CRF {crf}, field of view given; each clip "
          "tracked once (its rebuilt frames), both imports on those cameras")  # fmt: skip
    print(_table(rows))
    print()
    print(_summary_table(summary))
    report = {
        "benchmark": "chroma",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "frames": frames,
            "crf": crf,
            "fov_given_to_import": True,
            "clips": [c.name for c in clips],
            "chroma": {"radius": chroma.DEFAULT.radius, "eps": chroma.DEFAULT.eps},
        },  # fmt: skip
        "machine": machine_info(),
        "versions": {"starbridge": __version__},
        "provider": "CPU (numpy, PyAV's FFmpeg, pycolmap)",
        "targets": {"depth_absrel": TARGET_ABSREL, "novel_psnr_gap_db": TARGET_PSNR_GAP_DB},
        "summary": summary,
        "clips": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(out / f"chroma-{host_tag()}.json", report)
    print(f"wrote {path}")
    return report


def _mean(rows: dict[str, dict[str, Any]], way: str, key: str) -> float:
    values = [r[way][key] for r in rows.values() if r[way].get(key) is not None]
    return float(np.mean(values)) if values else float("nan")


def _summary(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for way in WAYS:
        frames = {k: float(np.mean([r["frames"][way][k] for r in rows.values()]))
                  for k in ("rgb", "luma", "chroma", "decode_ms_per_frame")}  # fmt: skip
        gaps = [r[way]["novel_psnr_gap_db"] for r in rows.values()]
        absrel = [r[way]["depth_absrel"] for r in rows.values() if r[way]["depth_absrel"] is not None]
        out[way] = {
            "frames": frames, **{f"mean_{k}": _mean(rows, way, k) for k in KEYS},
            "within_gap_target": int(sum(g <= TARGET_PSNR_GAP_DB for g in gaps)),
            "within_absrel_target": int(sum(a <= TARGET_ABSREL for a in absrel)), "clips": len(rows),
        }  # fmt: skip
    out["gap_better"] = int(sum(r["rebuilt"]["novel_psnr_gap_db"] < r["plain"]["novel_psnr_gap_db"] - 0.01
                                for r in rows.values()))  # fmt: skip
    out["gap_worse"] = int(sum(r["rebuilt"]["novel_psnr_gap_db"] > r["plain"]["novel_psnr_gap_db"] + 0.01
                               for r in rows.values()))  # fmt: skip
    return out


def _table(rows: dict[str, dict[str, Any]]) -> str:
    head = (f"{'clip':<22} {'RGB dB':>13} {'chroma dB':>13} {'exact+decoded':>14} {'gap dB':>12} "
            f"{'AbsRel':>13} {'IoU':>11}")  # fmt: skip
    lines = [head, "(plain -> rebuilt)", "-" * len(head)]

    def pair(r: dict[str, Any], key: str, fmt: str) -> str:
        a, b = r["plain"].get(key), r["rebuilt"].get(key)
        return "—" if a is None or b is None else f"{a:{fmt}}>{b:{fmt}}"

    for name, r in rows.items():
        f = r["frames"]
        lines.append(
            f"{name:<22} {f['plain']['rgb']:6.2f}>{f['rebuilt']['rgb']:<6.2f} "
            f"{f['plain']['chroma']:6.2f}>{f['rebuilt']['chroma']:<6.2f} "
            f"{pair(r, 'novel_psnr_exact_decoded_frames', '6.2f'):>14} {pair(r, 'novel_psnr_gap_db', '5.2f'):>12} "
            f"{pair(r, 'depth_absrel', '6.3f'):>13} {pair(r, 'moving_iou', '5.2f'):>11}"
        )
    return "\n".join(lines)


def _summary_table(s: dict[str, Any]) -> str:
    head = (f"{'decode':<8} {'RGB':>6} {'luma':>6} {'chroma':>6} {'ms/fr':>6} {'exact+dec':>9} {'gap':>6} "
            f"{'<=2dB':>6} {'AbsRel':>7} {'<=0.10':>6} {'IoU':>5} {'movAbsRel':>9}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for way in WAYS:
        w = s[way]
        f = w["frames"]
        lines.append(
            f"{way:<8} {f['rgb']:6.2f} {f['luma']:6.2f} {f['chroma']:6.2f} {f['decode_ms_per_frame']:6.1f} "
            f"{w['mean_novel_psnr_exact_decoded_frames']:9.2f} {w['mean_novel_psnr_gap_db']:6.3f} "
            f"{w['within_gap_target']:>4}/{w['clips']:<1} {w['mean_depth_absrel']:7.4f} "
            f"{w['within_absrel_target']:>4}/{w['clips']:<1} {w['mean_moving_iou']:5.3f} "
            f"{w['mean_moving_depth_absrel_path_scale']:9.3f}"
        )
    lines.append(f"gap better with the rebuilt colour on {s['gap_better']} clips, worse on {s['gap_worse']} "
                 "(by more than 0.01 dB)")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--clips", default="all", help="'all' (the README's sixteen) or w<world>:<kind>[:<W>x<H>],...")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--crf", type=int, default=DEFAULT_CRF, help="H.264 quality (default %(default)s)")
    add_out_argument(p)
    args = p.parse_args(argv)
    try:
        clips = [parse_clip(c) for c in (ALL_CLIPS if args.clips == "all" else args.clips.split(","))]
    except InvalidArgument as exc:
        p.error(str(exc))
    if args.frames < 8:
        p.error(f"--frames must be at least 8, got {args.frames}")
    if not 0 <= args.crf <= 51:
        p.error(f"--crf must be 0-51, got {args.crf}")
    run(out_dir(args.out), clips, args.frames, args.crf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
