"""Capture settings side by side: the same clips imported with the defaults and with each variant, on the same
tracked cameras, compared with the truth as bench_capture.py does.

    python bench/bench_capture_variants.py --variant 'off=depth.regions="off"'
        [--variant 'NAME=SECTION.KEY=VALUE[;SECTION.KEY=VALUE...]' ...] [--clips all | w0:handheld,w1:orbit,...]
        [--frames 40] [--crfs 16[,15,17...]] [--estimated-fov] [--out DIR]

A variant names settings of the import's `CaptureConfig` (its sections: tracking, depth, dynamic, moving_depth,
ground_fill; the keys are their dataclass fields, and a key may go on into a nested one:
`moving_depth.ground.precision_rounds=3`), each value a Python literal (`depth.region_percentiles=(10, 90)`,
`depth.regions="off"`). Every clip is filmed, encoded and tracked once: the tracking's result is kept
and handed to every variant whose tracking settings are the same (each clip's tracking is paid once; a run
repeats exactly on one machine, but the numbers move by about 0.1 dB between machines, so compare variants
within one run: docs/capture-measurements.md, "The plain plank once more"). The field of view is given to
the import unless `--estimated-fov` (a variant of the depth stage is judged apart from the field of view's
error, which dominates where it is estimated: bench_capture.py).

Clips: `all` is the sixteen of the README's tables (worlds 0, 1 and 2 at 320x180 and world 0 at 512x288, each a
handheld walk, a drone orbit, a vehicle dolly and a walk among moving objects; the tripod pan has no depth to
compare), or a list of `w<world>:<kind>[:<W>x<H>]`. Printed: per clip and variant the novel-view gap (dB), the
depth's AbsRel (one median scale) and at the path's scale, the moving masks' IoU; then per variant the means,
the clips within the targets (gap <= 2 dB, AbsRel <= 0.10) and how many clips it made better or worse than the
defaults. Written: out/capture-variants-<hostname>.json with every clip's full bench_capture record.
Sixteen clips take about 9 minutes a variant (the defaults are one) on two cores, the tracking run once a clip.

The noise floor: `--crfs 15,16,17` encodes every clip at each of those H.264 qualities (16 is the README's) and
runs everything on each encode (each tracked once). The pipeline is chaotic in its input: where in the flat
valley of a sideways path's cost the tracking lands (README, "The yaw of a sideways path") moves with the
compression noise, and every later stage with it, so a clip's gap moves by tenths of a dB between encodes that
differ by one CRF step. The summary then also prints, per variant, its mean gap on each encode and their spread
(the benchmark's noise floor for a change that alters the tracked input, e.g. the renderer's), and the clips it
made better or worse on every encode (a depth setting is compared on the same tracking, encode by encode: a
difference that holds on every encode is the setting's, one that flips sign is noise).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime as _dt
import hashlib
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir, write_json  # noqa: E402
from bench.bench_capture import TARGET_ABSREL, TARGET_PSNR_GAP_DB, measure  # noqa: E402
from starbridge import __version__  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.scenes.capture import pipeline  # noqa: E402
from starbridge.scenes.capture.pipeline import CaptureConfig  # noqa: E402
from starbridge.scenes.procedural.clips import CLIP_KINDS  # noqa: E402
from starbridge.scenes.procedural.raycast import RENDER_VERSION  # noqa: E402

#: The sixteen clips of the README's capture tables.
ALL_CLIPS = tuple(
    [f"w{w}:{k}" for w in (0, 1, 2) for k in ("handheld", "orbit", "dolly", "moving")]
    + [f"w0:{k}:512x288" for k in ("handheld", "orbit", "dolly", "moving")]
)
BASELINE = "defaults"
#: The H.264 quality the README's clips are encoded at (bench_capture.measure's default).
DEFAULT_CRF = 16


@dataclasses.dataclass(frozen=True)
class Clip:
    world: int
    kind: str
    width: int = 320
    height: int = 180

    @property
    def name(self) -> str:
        size = "" if (self.width, self.height) == (320, 180) else f":{self.width}x{self.height}"
        return f"w{self.world}:{self.kind}{size}"


def parse_clip(text: str) -> Clip:
    """'w<world>:<kind>[:<W>x<H>]' -> Clip; InvalidArgument naming what is wrong."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0].startswith("w") or not parts[0][1:].isdigit():
        raise InvalidArgument(f"clip {text!r}: expected w<world>:<kind>[:<W>x<H>], e.g. w1:orbit or w0:dolly:512x288")
    if parts[1] not in CLIP_KINDS:
        raise InvalidArgument(f"clip {text!r}: kind must be one of {', '.join(CLIP_KINDS)}")
    width, height = 320, 180
    if len(parts) == 3:
        size = parts[2].lower().split("x")
        if len(size) != 2 or not all(s.isdigit() and int(s) >= 32 for s in size):
            raise InvalidArgument(f"clip {text!r}: size must be <W>x<H>, each at least 32 pixels")
        width, height = int(size[0]), int(size[1])
    return Clip(int(parts[0][1:]), parts[1], width, height)


def parse_crfs(text: str) -> tuple[int, ...]:
    """'15,16,17' -> (15, 16, 17): distinct H.264 CRF values in 0..51; InvalidArgument naming what is wrong."""
    parts = [t.strip() for t in text.split(",")]
    if not all(t.isdigit() and 0 <= int(t) <= 51 for t in parts):
        raise InvalidArgument(f"--crfs {text!r}: expected H.264 CRF values 0..51, comma-separated, e.g. 15,16,17")
    crfs = tuple(int(t) for t in parts)
    if len(set(crfs)) != len(crfs):
        raise InvalidArgument(f"--crfs {text!r}: each value once")
    return crfs


def parse_variant(text: str) -> tuple[str, CaptureConfig, dict[str, Any]]:
    """'NAME=SECTION.KEY=VALUE[;...]' -> (name, the defaults with those settings, the settings); the values
    are Python literals, and a KEY may go on into a nested config (SECTION.KEY.SUBKEY=VALUE, e.g.
    moving_depth.ground.precision_rounds=3). InvalidArgument for an unknown section or key, a value that is not a
    literal, or settings the config itself refuses."""
    name, sep, body = text.partition("=")
    if not sep or not name.strip() or not body.strip():
        raise InvalidArgument(f"variant {text!r}: expected NAME=SECTION.KEY=VALUE[;SECTION.KEY=VALUE...]")
    name = name.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", name):
        raise InvalidArgument(f"variant name {name!r}: letters, digits and _ . + - only (it names a folder)")
    if name == BASELINE:
        raise InvalidArgument(f"variant name {BASELINE!r} is the defaults' own")
    config = CaptureConfig()
    settings: dict[str, Any] = {}
    tree: dict[str, Any] = {}  # the settings by path; a leaf is a _Value
    sections = {f.name for f in dataclasses.fields(CaptureConfig)}
    for item in body.split(";"):
        key, sep, value = item.partition("=")
        section, *path = key.strip().split(".")
        if not sep or not path or section not in sections:
            raise InvalidArgument(f"variant {name!r}: {item.strip()!r} is not SECTION.KEY=VALUE with SECTION one of "
                                  f"{', '.join(sorted(sections))}")  # fmt: skip
        part: Any = getattr(config, section)
        for depth, field in enumerate(path):
            if not dataclasses.is_dataclass(part) or field not in {f.name for f in dataclasses.fields(part)}:
                raise InvalidArgument(f"variant {name!r}: {type(part).__name__} has no setting {field!r}")
            if depth < len(path) - 1:
                part = getattr(part, field)
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise InvalidArgument(
                f"variant {name!r}: {value.strip()!r} for {key.strip()} is not a Python literal (quote strings: "
                f'{path[-1]}="{value.strip()}")'
            ) from None
        node = tree.setdefault(section, {})
        for field in path[:-1]:
            node = node.setdefault(field, {})
        node[path[-1]] = _Value(parsed)
        settings[key.strip()] = parsed
    # each config replaced once, with all of its settings: its own checks see them together
    return name, _replaced(config, tree), settings


@dataclasses.dataclass(frozen=True)
class _Value:
    """A setting's value in parse_variant's tree (a literal, not a branch)."""

    value: Any


def _replaced(config: Any, tree: dict[str, Any]) -> Any:
    """`config` (a frozen dataclass) with the settings of `tree` (field -> _Value or a subtree) put in."""
    changes = {
        key: node.value if isinstance(node, _Value) else _replaced(getattr(config, key), node)
        for key, node in tree.items()
    }
    return dataclasses.replace(config, **changes)


class TrackingMemo:
    """Stands in for the pipeline's `track_camera` while installed: the first call for given frames, field of
    view and tracking settings runs it, the later ones get its result."""

    def __init__(self, track: Callable[..., Any]) -> None:
        self._track = track
        self._done: dict[str, Any] = {}
        self.runs = 0

    def __call__(self, frames: np.ndarray, *, vertical_fov_deg: float | None, progress: Any, config: Any) -> Any:
        key = hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest() + repr((vertical_fov_deg, config))
        if key not in self._done:
            self.runs += 1
            self._done[key] = self._track(frames, vertical_fov_deg=vertical_fov_deg, progress=progress,
                                          config=config)  # fmt: skip
        return self._done[key]


def _summary(rows: dict[str, dict[str, dict[str, Any]]], names: list[str]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        recs = [rows[clip][name] for clip in rows]
        gaps = [r["novel_psnr_gap_db"] for r in recs]
        absrel = [r["depth_absrel"] for r in recs if "depth_absrel" in r]
        iou = [r["moving_iou"] for r in recs if "moving_iou" in r]
        base = [rows[clip][BASELINE]["novel_psnr_gap_db"] for clip in rows]
        out.append({
            "variant": name, "clips": len(recs), "mean_gap_db": float(np.mean(gaps)),
            "within_gap_target": sum(g <= TARGET_PSNR_GAP_DB for g in gaps),
            "mean_absrel": float(np.mean(absrel)) if absrel else None,
            "within_absrel_target": sum(a <= TARGET_ABSREL for a in absrel),
            "mean_moving_iou": float(np.mean(iou)) if iou else None,
            "gap_better": sum(g < b - 0.01 for g, b in zip(gaps, base, strict=True)),
            "gap_worse": sum(g > b + 0.01 for g, b in zip(gaps, base, strict=True)),
        })  # fmt: skip
    return out


def encoded_name(clip: Clip, crf: int, crfs: tuple[int, ...]) -> str:
    """A row's name: the clip's, with `@crfN` when several encodes are compared."""
    return clip.name if len(crfs) == 1 else f"{clip.name}@crf{crf}"


def _encodes(
    rows: dict[str, dict[str, dict[str, Any]]], names: list[str], clips: list[str], crfs: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Per variant: the mean gap over the clips on each encode, their spread (max - min), and the clips whose
    gap the variant moved the same way against the defaults (by more than 0.01 dB) on every encode."""
    out = []
    for name in names:
        means = {crf: float(np.mean([rows[f"{c}@crf{crf}"][name]["novel_psnr_gap_db"] for c in clips])) for crf in crfs}
        better = worse = 0
        for c in clips:
            diffs = [
                rows[f"{c}@crf{crf}"][name]["novel_psnr_gap_db"] - rows[f"{c}@crf{crf}"][BASELINE]["novel_psnr_gap_db"]
                for crf in crfs
            ]
            better += all(d < -0.01 for d in diffs)
            worse += all(d > 0.01 for d in diffs)
        spread = max(means.values()) - min(means.values())
        out.append({"variant": name, "mean_gap_db_by_crf": {str(k): v for k, v in means.items()},
                    "spread_db": spread, "better_every_encode": better, "worse_every_encode": worse})  # fmt: skip
    return out


def _encodes_table(encodes: list[dict[str, Any]], crfs: tuple[int, ...]) -> str:
    head = (
        f"{'variant':<16} "
        + " ".join(f"{'CRF ' + str(c):>8}" for c in crfs)
        + f" {'spread':>7} {'better':>6} {'worse':>5}"
    )
    lines = [head, "-" * len(head)]
    for e in encodes:
        means = " ".join(f"{e['mean_gap_db_by_crf'][str(c)]:8.3f}" for c in crfs)
        lines.append(f"{e['variant']:<16} {means} {e['spread_db']:7.3f} {e['better_every_encode']:>6} "
                     f"{e['worse_every_encode']:>5}")  # fmt: skip
    lines.append("mean gap (dB) over the clips per encode; spread: the largest difference between those means (the "
                 "noise floor of a change to the input); better / worse: clips the variant moved the same way on "
                 "every encode")  # fmt: skip
    return "\n".join(lines)


def run(out: Path, clips: list[Clip], variants: list[tuple[str, CaptureConfig, dict[str, Any]]], frames: int = 40,
        given_fov: bool = True, crfs: tuple[int, ...] = (DEFAULT_CRF,)) -> dict[str, Any]:  # fmt: skip
    """Every clip, encoded at each of `crfs`, under the defaults and each variant; prints the tables, writes the
    JSON, returns the report (rows named `clip` with one encode, `clip@crfN` with several)."""
    runs = [(BASELINE, CaptureConfig(), {})] + variants
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    memo = TrackingMemo(pipeline.track_camera)
    original = pipeline.track_camera
    pipeline.track_camera = memo  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="starbridge-variants-") as tmp:
            for clip in clips:
                for crf in crfs:
                    row = encoded_name(clip, crf, crfs)
                    rows[row] = {}
                    for name, config, _ in runs:
                        work = Path(tmp) / f"{row.replace(':', '_').replace('@', '_')}-{name}"
                        work.mkdir()
                        rec = measure(clip.kind, frames, clip.width, clip.height, work, 48.0, given_fov, clip.world,
                                      config.tracking.mapper, capture=config, crf=crf)  # fmt: skip
                        rows[row][name] = rec
                        print(f"{row:<28} {name:<16} gap {rec['novel_psnr_gap_db']:5.2f} dB  AbsRel "
                              f"{rec.get('depth_absrel', float('nan')):.3f}", flush=True)  # fmt: skip
    finally:
        pipeline.track_camera = original  # type: ignore[assignment]
    names = [name for name, _, _ in runs]
    summary = _summary(rows, names)
    encodes = _encodes(rows, names, [c.name for c in clips], crfs) if len(crfs) > 1 else []
    print(f"\nStarBridge capture variants: {len(clips)} clips of {frames} frames at CRF "
          f"{', '.join(map(str, crfs))}, field of view {'given' if given_fov else 'estimated'}; tracking run "
          f"{memo.runs} times")  # fmt: skip
    print(_clip_table(rows, names))
    print()
    print(_summary_table(summary))
    if encodes:
        print()
        print(_encodes_table(encodes, crfs))
    report = {
        "benchmark": "capture-variants",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "frames": frames,
            "crfs": list(crfs),
            "fov_given_to_import": given_fov,
            "clips": [c.name for c in clips],
            "variants": {name: settings for name, _, settings in runs},
            "render_version": RENDER_VERSION,
        },  # fmt: skip
        "machine": machine_info(),
        "versions": {"starbridge": __version__},
        "provider": "CPU (numpy, pycolmap)",
        "targets": {"depth_absrel": TARGET_ABSREL, "novel_psnr_gap_db": TARGET_PSNR_GAP_DB},
        "tracking_runs": memo.runs,
        "summary": summary,
        "encodes": encodes,
        "clips": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = write_json(out / f"capture-variants-{host_tag()}.json", report)
    print(f"wrote {path}")
    return report


def _clip_table(rows: dict[str, dict[str, dict[str, Any]]], names: list[str]) -> str:
    def cell(r: dict[str, Any]) -> str:
        iou = f"{r['moving_iou']:.2f}" if "moving_iou" in r else "  - "
        absrel = f"{r['depth_absrel']:.3f}" if "depth_absrel" in r else "  -  "
        path = f"{r['depth_absrel_path_scale']:.3f}" if "depth_absrel_path_scale" in r else "  -  "
        return f"{r['novel_psnr_gap_db']:5.2f} {absrel} {path} {iou}"

    head = f"{'clip':<22} " + " | ".join(f"{n[:24]:<24}" for n in names)
    sub = f"{'':<22} " + " | ".join(f"{'gap':>5} {'AbsRel':<5} {'path':<5} {'IoU':<4}" for _ in names)
    lines = [head, sub, "-" * len(sub)]
    lines += [f"{clip:<22} " + " | ".join(f"{cell(by[n]):<24}" for n in names) for clip, by in rows.items()]
    return "\n".join(lines)


def _summary_table(summary: list[dict[str, Any]]) -> str:
    head = (f"{'variant':<16} {'mean gap':>8} {'<=2 dB':>6} {'AbsRel':>7} {'<=0.10':>6} {'IoU':>5} "
            f"{'better':>6} {'worse':>5}")  # fmt: skip
    lines = [head, "-" * len(head)]
    for s in summary:
        absrel = f"{s['mean_absrel']:.4f}" if s["mean_absrel"] is not None else "-"
        iou = f"{s['mean_moving_iou']:.2f}" if s["mean_moving_iou"] is not None else "-"
        lines.append(f"{s['variant']:<16} {s['mean_gap_db']:8.3f} {s['within_gap_target']:>4}/{s['clips']:<1} "
                     f"{absrel:>7} {s['within_absrel_target']:>6} {iou:>5} {s['gap_better']:>6} "
                     f"{s['gap_worse']:>5}")  # fmt: skip
    lines.append("better / worse: clips whose gap the variant moved by more than 0.01 dB against the defaults")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--variant", action="append", default=[], metavar="NAME=SECTION.KEY=VALUE[;...]",
                   help="settings to compare with the defaults (repeat for several)")  # fmt: skip
    p.add_argument("--clips", default="all", help="'all' (the README's sixteen) or w<world>:<kind>[:<W>x<H>],...")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--crfs", default=str(DEFAULT_CRF),
                   help="H.264 qualities to encode every clip at, comma-separated (several: the noise floor; "
                        "default %(default)s)")  # fmt: skip
    p.add_argument("--estimated-fov", action="store_true", help="let the import estimate the field of view")
    add_out_argument(p)
    args = p.parse_args(argv)
    try:
        clips = [parse_clip(c) for c in (ALL_CLIPS if args.clips == "all" else args.clips.split(","))]
        variants = [parse_variant(v) for v in args.variant]
    except InvalidArgument as exc:
        p.error(str(exc))
    names = [name for name, _, _ in variants]
    if len(set(names)) != len(names):
        p.error(f"variant names must differ: {', '.join(names)}")
    if args.frames < 8:
        p.error(f"--frames must be at least 8, got {args.frames}")
    try:
        crfs = parse_crfs(args.crfs)
    except InvalidArgument as exc:
        p.error(str(exc))
    run(out_dir(args.out), clips, variants, args.frames, not args.estimated_fov, crfs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
