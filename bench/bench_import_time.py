"""How long `starbridge scene import` takes, stage by stage, on a clip filmed in the procedural world; with
`--compare TREE`, the same import run by another source tree (e.g. a `git worktree` of an earlier commit)
side by side in the same run, and the ratio (the machine's load changes less between two runs back to back
than between days).

    python bench/bench_import_time.py --out bench/results                      # 10 s, 300 frames at 512x288
    git worktree add /tmp/old <commit> && python bench/bench_import_time.py --compare /tmp/old --out DIR
    python bench/bench_import_time.py --frames 40 --width 320 --height 180       # a quick one

Each import is a fresh `python -m starbridge.cli scene import` process (what a user runs), timed from the
outside (wall and CPU of the process, and its peak resident memory) and from its own report (scene.json
"capture" seconds per stage). The clip is rendered once (`--clip` reuses an MP4, and the report describes it by
what the import kept). The table also says whether the two imports made the same
scene (depth and moving masks), since a faster import that changed the result is a different thing.
Each tree first imports a short clip untimed: a tree's first import compiles its numba kernels (15 s here),
which would otherwise be charged to a tree that has not run yet.
JSON: `import-time-<host>.json` in `--out`.
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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "backend"), str(REPO)]

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.scenes.bundle import SceneBundle  # noqa: E402
from starbridge.scenes.procedural.clips import ClipConfig, render_clip  # noqa: E402

STAGES = ("shots", "tracking", "depth", "moving")


def import_once(tree: Path, clip: Path, store: Path, fov: float | None) -> dict[str, Any]:
    """One import by the source tree `tree` (its `backend/` first on the path) in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(tree / "backend"))
    cmd = [sys.executable, "-m", "starbridge.cli", "scene", "import", str(clip), "--store", str(store), "--id",
           "clip", "--overwrite"]  # fmt: skip
    if fov is not None:
        cmd += ["--fov", str(fov)]
    # the child's own resource use (os.wait4: its CPU time and its peak resident memory, which RUSAGE_CHILDREN
    # would give only as the largest of all children so far)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"import by {tree} failed ({code}):\n{err.read().decode(errors='replace')[-2000:]}")
    meta = json.loads((store / "clip" / "scene.json").read_text())
    report = meta["capture"]
    return {
        "tree": str(tree), "commit": _commit(tree), "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
        "stage_s": report["seconds"], "frames": report["frames_tracked"], "scene_frames": meta["frame_count"],
        "scene_size": [meta["width"], meta["height"]],
        "depth_coverage": report["depth_coverage"], "moving_fraction": report["moving_fraction"],
        "vertical_fov_deg": report.get("vertical_fov_deg"), "fov_source": report.get("fov_source"),
    }  # fmt: skip


def _commit(tree: Path) -> str | None:
    """The tree's git commit (None outside git); "+" when it has uncommitted changes to tracked files."""
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "-C", str(tree), "diff", "--quiet", "HEAD"], capture_output=True).returncode
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def same_scene(a: Path, b: Path) -> dict[str, float]:
    """How far two imported scenes differ: the fraction of pixels whose inverse depth differs by more than
    0.1%, and of moving-mask pixels that differ."""
    sa, sb = SceneBundle(a), SceneBundle(b)
    with np.errstate(divide="ignore"):
        ia, ib = 1.0 / sa.depth, 1.0 / sb.depth
    differ = np.abs(ia - ib) > 1e-3 * np.maximum(ia, ib)
    ma, mb = sa.moving, sb.moving
    masks = float(np.mean(ma != mb)) if ma is not None and mb is not None else float(ma is not mb)
    return {"depth_pixels_differing": float(differ.mean()), "mask_pixels_differing": masks}


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'tree':<28} {'wall s':>7} {'cpu s':>7} {'peak GiB':>8} "
        + " ".join(f"{s + ' s':>10}" for s in STAGES)
        + "  fov"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        stages = " ".join(f"{r['stage_s'].get(s, float('nan')):>10.1f}" for s in STAGES)
        fov = f"{r['vertical_fov_deg']:.2f} ({r['fov_source']})" if r.get("vertical_fov_deg") is not None else "-"
        lines.append(
            f"{r['tree'][-28:]:<28} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} {r['peak_rss_gib']:>8.2f} {stages}  {fov}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--kind", default="handheld", help="the clip's camera path (procedural clip kinds)")
    p.add_argument("--clip", type=Path, default=None, help="import this MP4 instead of rendering one")
    p.add_argument("--fov", type=float, default=None, help="pass --fov to the import (default: estimated)")
    p.add_argument("--compare", type=Path, default=None, help="another source tree to run side by side")
    add_out_argument(p)
    args = p.parse_args(argv)
    out = out_dir(args.out)
    trees = [REPO] + ([args.compare.resolve()] if args.compare else [])
    for tree in trees:
        if not (tree / "backend" / "starbridge" / "cli.py").is_file():
            raise SystemExit(f"--compare {tree}: not a StarBridge source tree (no backend/starbridge/cli.py)")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        work = Path(tmp)
        clip = args.clip
        if clip is None:
            print(f"rendering a {args.frames}-frame {args.width}x{args.height} {args.kind} clip ...", flush=True)
            filmed = render_clip(ClipConfig(kind=args.kind, frames=args.frames, width=args.width,
                                            height=args.height, vertical_fov_deg=48.0))  # fmt: skip
            clip = filmed.write_mp4(work / f"{args.kind}.mp4")
        elif not clip.is_file():
            raise SystemExit(f"--clip {clip}: no such file")
        warm = render_clip(ClipConfig(kind=args.kind, frames=12, width=160, height=90, vertical_fov_deg=48.0))
        warm_clip = warm.write_mp4(work / "warm.mp4")
        for tree in trees:
            print(f"compiling {tree}'s kernels (a short import, untimed) ...", flush=True)
            import_once(tree, warm_clip, work / "warm-store", args.fov)
        rows = []
        for n, tree in enumerate(trees):
            print(f"importing with {tree} ...", flush=True)
            rows.append(import_once(tree, clip, work / f"store{n}", args.fov))
        report: dict[str, Any] = {
            "benchmark": "import_time", "version": __version__,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine_info(),
            # a given clip is described by what its import kept (--frames, --width, --height, --kind are unused)
            "clip": {"path": str(args.clip) if args.clip else None, "kind": None if args.clip else args.kind,
                     "frames": rows[0]["scene_frames"] if args.clip else args.frames,
                     "size": rows[0]["scene_size"] if args.clip else [args.width, args.height],
                     "bytes": clip.stat().st_size},
            "fov": args.fov, "runs": rows,
        }  # fmt: skip
        if len(rows) == 2:
            report["wall_ratio"] = round(rows[1]["wall_s"] / rows[0]["wall_s"], 3)
            report["same_scene"] = same_scene(work / "store0" / "clip", work / "store1" / "clip")
    print(_table(rows))
    if len(rows) == 2:
        print(f"{trees[1]} took {report['wall_ratio']:.2f}x the wall time of this tree; "
              f"scenes differ at {report['same_scene']}")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(out / f"import-time-{host_tag()}.json", report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
