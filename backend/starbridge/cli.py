"""`starbridge` command line: serve | fly | scene | bench | doctor.

starbridge serve                      # demo scene on 127.0.0.1 (gRPC :50051, engine channel :50052, viewer :50053)
starbridge fly --out demo.mp4         # fly a camera through it as an engine would
starbridge scene import clip.mp4      # make a scene from a video
starbridge doctor                     # versions, ONNX Runtime providers, GPU
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .errors import StarBridgeError
from .model.presets import PRESETS  # no PyTorch: the layouts are plain dataclasses (model/config.py)
from .server.config import ServerConfig
from .train.stages import STAGES
from .transport.defaults import DEFAULT_ENGINE_ENDPOINT
from .transport.version import PROTOCOL_TEXT

log = logging.getLogger("starbridge")

# Error messages of the library name its parameters (`max_side`, `overwrite`, `hello.width`); each command
# says which of its flags a parameter is, so the user reads the flag they typed.
SERVE_FLAGS = {
    "host": "--host", "grpc_port": "--grpc-port", "engine_port": "--engine-port", "default_scene": "--scene",
    "viewer_port": "--viewer-port",
    "default_width": "--width", "default_height": "--height", "default_fps": "--fps",
    "heartbeat_timeout_s": "--heartbeat-timeout", "max_sessions": "--max-sessions", "store_root": "--store",
}  # fmt: skip
FLY_FLAGS = {
    "endpoint": "--endpoint", "scene_id": "--scene", "path": "--path", "seconds": "--seconds", "fps": "--fps",
    "width": "--width", "height": "--height", "vertical_fov_deg": "--fov", "token": "--token", "out": "--out",
    "frames_dir": "--frames-dir", "hello.width": "--width", "hello.height": "--height", "hello.fps": "--fps",
    "hello.token": "--token", "hello.scene_id": "--scene", "pose.vertical_fov_deg": "--fov",
}  # fmt: skip
IMPORT_FLAGS = {
    "scene_id": "--id", "depth_dir": "--depth-dir", "depth_model": "--depth-model", "max_side": "--max-side",
    "max_frames": "--max-frames", "vertical_fov_deg": "--fov", "lens_mm": "--lens", "overwrite": "--overwrite",
    "shot": "--shot",
}  # fmt: skip
SCENE_ID_FLAGS = {"scene_id": "scene id"}
#: Plain words replaced even when the error does not name them as its field.
ALWAYS_FLAGGED = frozenset({"overwrite"})


def flag_message(exc: StarBridgeError, flags: Mapping[str, str]) -> str:
    """`exc.message` with the parameter names in `flags` replaced by the CLI flags they come from.

    Names with '_' or '.' are replaced wherever they stand alone; plain words (`out`, `fps`) only when they are
    the error's field (or in ALWAYS_FLAGGED), so ordinary words of a message stay as they are."""
    message = exc.message
    for name in sorted(flags, key=len, reverse=True):
        if name == exc.field or not name.isalpha() or name in ALWAYS_FLAGGED:
            pattern = rf"(?<![\w./-]){re.escape(name)}(?!\.?[\w/-])"
            message = re.sub(pattern, flags[name].replace("\\", "\\\\"), message)
    return message


# ---------------------------------------------------------------------- serve


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.app import serve

    config = ServerConfig(
        host=args.host,
        grpc_port=args.grpc_port,
        engine_port=args.engine_port,
        store_root=args.store,
        default_scene=args.scene,
        default_width=args.width,
        default_height=args.height,
        default_fps=args.fps,
        heartbeat_timeout_s=args.heartbeat_timeout,
        token=args.token,
        max_sessions=args.max_sessions,
        viewer_port=args.viewer_port,
        viewer=not args.no_viewer,
    ).validate()  # refuse bad settings before loading a model or binding anything

    generator = None
    if args.model is not None:
        from .runtime.bundle import resolve_model
        from .runtime.star import StarGenerator

        generator = StarGenerator(resolve_model(args.model), prefer_cuda=not args.cpu, spin=args.spin,
                                  int8=not args.no_int8)  # fmt: skip
        width, height = generator.info.width, generator.info.height
        config = replace(config, default_width=width, default_height=height)

    def ready(backend) -> None:
        gen = backend.generator
        viewer = ""
        if backend.viewer is not None:
            token = "?token=TOKEN" if config.token else ""
            viewer = f"  viewer:         {backend.viewer.url}{token}   (open it in a browser)\n"
        print(
            f"StarBridge {__version__} (protocol {PROTOCOL_TEXT}) serving\n"
            f"  scenes:         {backend.store.root}  (default scene: {config.default_scene})\n"
            f"  generator:      {gen.name} on {gen.execution_provider}\n"
            f"  gRPC API:       {backend.grpc_address}   (grpcurl -plaintext {backend.grpc_address} list)\n"
            f"  engine channel: {backend.engine_endpoint}   (Unity/Godot plugins connect here)\n"
            f"{viewer}"
            f"  try:            {fly_command(backend.engine_endpoint, bool(config.token))}\n"
            "Press Ctrl+C to stop.",
            flush=True,
        )

    serve(config, generator, ready=ready)
    return 0


def fly_command(engine_endpoint: str, token: bool = False) -> str:
    """The `starbridge fly` line that reaches a backend bound at `engine_endpoint` from this machine."""
    endpoint = re.sub(r"^tcp://(0\.0\.0\.0|\*|\[::\]):", "tcp://127.0.0.1:", engine_endpoint)  # any interface
    command = "starbridge fly --out demo.mp4"
    if endpoint != DEFAULT_ENGINE_ENDPOINT:
        command += f" --endpoint {endpoint}"
    if token:
        command += " --token TOKEN"
    return command


# ---------------------------------------------------------------------- fly


def cmd_fly(args: argparse.Namespace) -> int:
    from .client.fly import FlyConfig, FlyReport, fly

    config = FlyConfig(
        endpoint=args.endpoint,
        scene_id=args.scene,
        path=args.path,
        seconds=args.seconds,
        fps=args.fps,
        width=args.width,
        height=args.height,
        inline=args.inline,
        token=args.token,
        out=args.out,
        frames_dir=args.frames_dir,
        vertical_fov_deg=args.fov,
    )
    report = FlyReport()

    def on_sigint(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break finalising the video
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        fly(config, report)
    except KeyboardInterrupt:
        if report.poses or report.frames:
            print(report.table(), flush=True)
        print("interrupted (Ctrl-C): kept what was received so far", file=sys.stderr)
        return 130
    except StarBridgeError:
        if report.poses or report.frames:  # the flight had started: what it got, then the error (main)
            print(report.table(), flush=True)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    print(report.table())
    return 0


# ---------------------------------------------------------------------- scene


def _store(args: argparse.Namespace):
    from .scenes.store import SceneStore, default_store_root

    return SceneStore(args.store or default_store_root())


def cmd_scene_list(args: argparse.Namespace) -> int:
    store = _store(args)
    store.ensure_demo()
    metas = store.list()
    print(f"{'id':24} {'frames':>6} {'fps':>5} {'size':>9}  {'depth':14} source")
    for m in metas:
        print(
            f"{m.scene_id:24} {m.frame_count:6d} {m.fps:5g} {m.width:4d}x{m.height:<4d}  {m.depth_source:14} {m.source}"
        )
    print(f"{len(metas)} scene(s) in {store.root}")
    return 0


def capture_summary(report: Mapping[str, Any]) -> str:
    """How a scene was captured, in a few lines of plain words (from scene.json's "capture" report)."""
    r = report
    lines = []
    shots = r.get("shots") or []
    kept = r.get("kept_frames") or [0, r.get("frames_in_clip", 0)]
    which = ""
    if len(shots) > 1:
        chosen = "the longest" if r.get("shot_chosen", "longest") == "longest" else "as asked"
        # scenes imported before the report named the shot kept were always the longest
        which = f" (shot {r['shot']} of {len(shots)}, {chosen})" if r.get("shot") else f" (the longest of {len(shots)})"
    lines.append(f"frames        {kept[1] - kept[0]} of {r.get('frames_in_clip')} in the clip{which}")
    tracking = r.get("tracking", "?")
    if tracking == "failed":
        lines.append("camera        not tracked: imported as rotation-only (see the warnings)")
    else:
        tracked = f"{r.get('frames_tracked')} frames tracked ({100 * r.get('tracked_fraction', 0):.0f}%)"
        error = f"mean reprojection error {r.get('reprojection_error_px')} px"
        lines.append(f"camera        {tracking}; {tracked}, {error}")
    if any(r.get(k) for k in ("orientation", "lens_metadata_mm", "colour", "borders", "timing")):
        said = [r[k] for k in ("orientation", "colour", "borders", "timing") if r.get(k)]
        said += (
            [f"its metadata names a {r['lens_metadata_mm']:g} mm-equivalent lens"] if r.get("lens_metadata_mm") else []
        )
        lines.append("video         " + "; ".join(said))
    lines.append(f"field of view {r.get('vertical_fov_deg')} degrees vertical, {r.get('fov_source')}"
                 + (f" ({r['fov_note']})" if r.get("fov_note") else ""))  # fmt: skip
    coverage = f"coverage {100 * r.get('depth_coverage', 0):.0f}%"
    lines.append(f"depth         {r.get('depth')}: {r.get('depth_note')}; {coverage}, "
                 f"{100 * r.get('depth_infinite_fraction', 0):.0f}% at infinity")  # fmt: skip
    if r.get("ground_filled_fraction"):
        lines.append(f"ground        its plane carried into {100 * r['ground_filled_fraction']:.1f}% of pixels "
                     "(holes on the ground, and depths on or under it)")  # fmt: skip
    if r.get("exposure_note"):
        lines.append(f"exposure      {r['exposure_note']}")
    if r.get("moving_fraction") is not None:
        lines.append(f"moving        {100 * r['moving_fraction']:.1f}% of pixels marked as moving objects"
                     + (f"; {r['moving_depth_note']}" if r.get("moving_depth_note") else ""))  # fmt: skip
    seconds = r.get("seconds") or {}
    if seconds:
        lines.append("time          " + ", ".join(f"{k} {v:g} s" for k, v in seconds.items()))
    for w in r.get("warnings") or []:
        lines.append(f"warning       {w}")
    return "\n".join(lines)


def cmd_scene_show(args: argparse.Namespace) -> int:
    bundle = _store(args).get(args.scene_id)
    info = json.loads((bundle.path / "scene.json").read_text())
    info["path"] = str(bundle.path)
    info["size_bytes"] = bundle.size_bytes()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    m = bundle.meta
    print(f"scene         {m.scene_id} ({m.title}): {m.frame_count} frames {m.width}x{m.height} @ {m.fps:g} fps, "
          f"{info['size_bytes'] / 1e6:.1f} MB at {bundle.path}")  # fmt: skip
    print(f"source        {m.source}; depth {m.depth_source}{' (rotation-only)' if m.rotation_only else ''}; "
          f"scale {m.scale:g} (median depth {m.median_depth_m:g} m)")  # fmt: skip
    if m.capture:
        print(capture_summary(m.capture))
    print("(--json for every field)")
    return 0


def cmd_scene_delete(args: argparse.Namespace) -> int:
    _store(args).delete(args.scene_id)
    print(f"deleted scene {args.scene_id}")
    return 0


def cmd_scene_import(args: argparse.Namespace) -> int:
    options = dict(
        scene_id=args.id, depth_dir=args.depth_dir, depth_model=args.depth_model, max_side=args.max_side,
        max_frames=args.max_frames, vertical_fov_deg=args.fov, lens_mm=args.lens, overwrite=args.overwrite,
    )  # fmt: skip
    store = _store(args)
    if args.shot == "all":
        bundles = store.import_shots(args.video, **options)
    else:
        bundles = [store.import_video(args.video, shot=args.shot, **options)]
    for bundle in bundles:
        m = bundle.meta
        print(
            f"imported scene {m.scene_id}: {m.frame_count} frames {m.width}x{m.height} @ {m.fps:g} fps, "
            f"depth: {m.depth_source}{' (rotation-only)' if m.rotation_only else ''} -> {bundle.path}"
        )
        if m.capture:
            print(capture_summary(m.capture))
    if len(bundles) > 1:
        print(f"{len(bundles)} scenes, one per shot: {', '.join(b.meta.scene_id for b in bundles)}")
    return 0


def shot_arg(text: str) -> int | str:
    """--shot: a shot number counted from 1, or 'all'."""
    if text.strip().lower() == "all":
        return "all"
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a shot number counted from 1, or 'all'; got {text!r}")
    return number


# ---------------------------------------------------------------------- model (needs the `train` extra: torch)


def _progress(desc: str):
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="graph", file=sys.stderr)

    def update(stage: str, done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()
        if done == total:
            bar.close()

    return update


def cmd_model_export(args: argparse.Namespace) -> int:
    from .model.export import build_random, export_bundle
    from .model.presets import get_preset

    preset = get_preset(args.preset)
    model, ae = build_random(preset, seed=args.seed)
    out = export_bundle(preset, model, ae, args.out, dtype=args.dtype, weights=f"random (seed {args.seed})",
                        overwrite=args.overwrite, progress=_progress("export"))  # fmt: skip
    print(f"exported {preset.name} ({args.dtype}, random weights) to {out}")
    return 0


def cmd_model_convert(args: argparse.Namespace) -> int:
    from .model.convert import convert
    from .model.presets import get_preset

    out = convert(args.checkpoint, get_preset(args.preset), args.out, autoencoder=args.autoencoder,
                  text_embedding=args.text_embedding, dtype=args.dtype, overwrite=args.overwrite,
                  progress=_progress("export"))  # fmt: skip
    print(f"converted {args.checkpoint} ({args.preset}) to {out}")
    return 0


def cmd_model_optimize(args: argparse.Namespace) -> int:
    from .model.onnx_optimize import optimize_bundle

    entry = optimize_bundle(args.bundle, int8=not args.no_int8) or {}
    print(f"{args.bundle}: CPU graphs {', '.join(entry.get('graphs', {})) or 'none'}; "
          f"int8: {', '.join(entry.get('int8', {})) or 'none'}")  # fmt: skip
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from .runtime.bundle import read_model, resolve_model

    info = read_model(resolve_model(args.bundle))  # a path, or a packaged name as `serve --model` takes
    lines = [
        f"model            {info.name} ({info.dtype}, weights: {info.weights})",
        f"frame size       {info.width}x{info.height}, {info.frames_per_block} frames per block",
        f"latents          {info.latent_channels} ch, {info.latent_frames} frames x {info.latent_height}x"
        f"{info.latent_width} per block, temporal stride {info.temporal_stride}",
        f"KV cache         {info.cache_shape}",
        f"sampler          steps {list(info.steps)}, shift {info.shift:g}, sigmas "
        + ", ".join(f"{s:.4f}" for s in info.sigmas),
    ]
    cpu = info.doc.get("cpu_graphs") or {}
    if cpu:
        int8 = ", ".join(f"{g} ({n} MatMuls)" for g, n in cpu.get("int8_nodes", {}).items()) or "none"
        lines.append(f"CPU graphs       {', '.join(cpu.get('graphs', {}))} (onnxruntime {cpu.get('onnxruntime')}); "
                     f"int8 weights: {int8}")  # fmt: skip
    print("\n".join(lines))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train.trainer import TrainConfig, Trainer

    steps = dict(TrainConfig(out=args.out).steps)
    for stage in STAGES:
        value = getattr(args, stage.replace("-", "_") + "_steps")
        if value is not None:
            steps[stage] = value
    budget = None if args.budget_minutes is None else 60.0 * args.budget_minutes
    config = TrainConfig(out=args.out, preset=args.preset, seed=args.seed, steps=steps, batch=args.batch,
                         pool=args.pool, hole_weight=args.hole_weight, device=args.device, budget_s=budget,
                         workers=args.workers, checkpoint_every=args.checkpoint_every,
                         init_autoencoder=args.init_autoencoder)  # fmt: skip
    trainer = Trainer(config)
    trainer.run(tuple(args.stage) if args.stage else STAGES)
    if args.export is not None:
        print(f"exported the student to {trainer.export(args.export)}")
    return 0


# ---------------------------------------------------------------------- bench and doctor


def cmd_bench(args: argparse.Namespace) -> int:
    # The benchmarks are not part of the installed package: they live in the source tree (bench/) next to the
    # results they are compared with, and some need the `train` extra (torch). See `bench --help`.
    rest = " ".join(args.rest) if args.rest else "[--out DIR]"
    print(
        f"error: benchmarks run from a source checkout: python bench/bench_{args.what}.py {rest} "
        "(results go to ./bench-results/ unless --out says otherwise)",
        file=sys.stderr,
    )
    return 2


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    print(report())
    return 0


# ---------------------------------------------------------------------- parser


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose flag defaults may come from a function, called once its command is parsed.

    The defaults of `fly` and `scene import` are those of the code that runs them (FlyConfig, the video
    importer), whose modules load ZeroMQ, PyAV and more: `starbridge --help` or `serve` need not.
    """

    def __init__(self, *args: Any, defaults_from: Callable[[], dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._defaults_from = defaults_from

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._defaults_from is not None:
            self.set_defaults(**self._defaults_from())
            self._defaults_from = None
        return super().parse_known_args(args, namespace)


def fly_defaults() -> dict[str, Any]:
    """`fly`'s flag defaults (by argparse dest): FlyConfig's."""
    from .client.fly import FlyConfig

    d = FlyConfig()
    return {"endpoint": d.endpoint, "scene": d.scene_id, "path": d.path, "seconds": d.seconds, "fps": d.fps,
            "width": d.width, "height": d.height, "fov": d.vertical_fov_deg, "inline": d.inline, "token": d.token,
            "out": d.out, "frames_dir": d.frames_dir}  # fmt: skip


def import_defaults() -> dict[str, Any]:
    """`scene import`'s flag defaults (by argparse dest): the importer's."""
    from .scenes import importer

    return {"max_side": importer.DEFAULT_MAX_SIDE, "max_frames": importer.DEFAULT_MAX_FRAMES,
            "fov": importer.DEFAULT_FOV_DEG}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="starbridge", description="Real-time neural backdrop for game engines.")
    p.add_argument("--version", action="version", version=f"starbridge {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--store", type=Path, default=None, help="scene store folder (default: $STARBRIDGE_HOME/scenes)")
    # `--store` is accepted after the subcommand too (starbridge serve --store DIR)
    store_opt = CommandParser(add_help=False)
    store_opt.add_argument("--store", type=Path, default=argparse.SUPPRESS, help="scene store folder")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", parents=[store_opt], help="run the backend (gRPC API + engine channel)")
    config = ServerConfig()  # the flags' defaults are the configuration's
    s.add_argument("--host", default=config.host, help="interface to bind (default %(default)s: this machine only)")
    s.add_argument("--grpc-port", type=int, default=config.grpc_port)
    s.add_argument("--engine-port", type=int, default=config.engine_port)
    s.add_argument("--scene", default=config.default_scene, help="default scene id (default: the built-in demo)")
    s.add_argument("--width", type=int, default=config.default_width, help="default frame width")
    s.add_argument("--height", type=int, default=config.default_height, help="default frame height")
    s.add_argument("--fps", type=float, default=config.default_fps, help="default frames per second")
    s.add_argument("--heartbeat-timeout", type=float, default=config.heartbeat_timeout_s,
                   help="close silent sessions after this many s")  # fmt: skip
    s.add_argument("--token", default=config.token, help="require this token in Hello")
    s.add_argument("--max-sessions", type=int, default=config.max_sessions)
    s.add_argument("--viewer-port", type=int, default=config.viewer_port,
                   help="port of the browser viewer (default %(default)s; 0: any free port)")  # fmt: skip
    s.add_argument("--no-viewer", action="store_true", help="do not serve the browser viewer")
    s.add_argument(
        "--model", default=None, help="serve a STAR model bundle: a path, or a packaged name such as star-tiny"
    )
    s.add_argument("--cpu", action="store_true", help="run the model on the CPU even when CUDA is available")
    s.add_argument("--spin", action="store_true",
                   help="ONNX Runtime's threads spin between operators (one shared pool): about 1.2x the model's "
                   "frames/s on an otherwise idle machine, much slower when other programs (a game) need the "
                   "cores")  # fmt: skip
    s.add_argument("--no-int8", action="store_true",
                   help="on the CPU, run the bundle's float32 graphs, not its int8 ones (`model info` says which "
                   "it has)")  # fmt: skip
    s.set_defaults(func=cmd_serve, flags=SERVE_FLAGS)

    # Defaults: fly_defaults(), FlyConfig's.
    f = sub.add_parser("fly", help="fly a camera through a scene as an engine would; write a video",
                       defaults_from=fly_defaults)  # fmt: skip
    f.add_argument("--endpoint", help="the backend's engine channel, tcp://HOST:PORT (default %(default)s)")
    f.add_argument("--scene", help="scene id (default: the backend's default)")
    f.add_argument("--path", choices=["tour", "orbit", "dolly", "pan"], help="camera path")
    f.add_argument("--seconds", type=float, help="flight length (default: one loop of the path)")
    f.add_argument("--fps", type=float)
    f.add_argument("--width", type=int, help="0: the backend's default")
    f.add_argument("--height", type=int)
    f.add_argument("--fov", type=float, help="vertical field of view, degrees")
    f.add_argument("--inline", action="store_true", help="frames over ZeroMQ instead of shared memory")
    f.add_argument("--token")
    f.add_argument("--out", type=Path, help="write the received frames to this video (.mp4)")
    f.add_argument("--frames-dir", type=Path, help="also save every 30th frame as PNG here")
    f.set_defaults(func=cmd_fly, flags=FLY_FLAGS)

    sc = sub.add_parser("scene", help="list, show, import or delete scenes").add_subparsers(
        dest="scene_cmd", required=True
    )
    sc.add_parser("list", parents=[store_opt], help="scenes in the store").set_defaults(func=cmd_scene_list)
    sh = sc.add_parser("show", parents=[store_opt], help="a scene and how it was captured")
    sh.add_argument("scene_id")
    sh.add_argument("--json", action="store_true", help="print scene.json (and the path and size) as JSON")
    sh.set_defaults(func=cmd_scene_show, flags=SCENE_ID_FLAGS)
    sd = sc.add_parser("delete", parents=[store_opt], help="remove a scene")
    sd.add_argument("scene_id")
    sd.set_defaults(func=cmd_scene_delete, flags=SCENE_ID_FLAGS)
    # Defaults: import_defaults(), the importer's.
    si = sc.add_parser("import", parents=[store_opt], help="make a scene from a video", defaults_from=import_defaults)
    si.add_argument("video", type=Path)
    si.add_argument("--id", default=None, help="scene id (default: from the file name)")
    si.add_argument("--depth-dir", type=Path, default=None, help="folder of per-frame depth files (.npy, 16-bit .png)")
    si.add_argument("--depth-model", type=Path, default=None, help="monocular depth ONNX model (Depth-Anything-V2)")
    si.add_argument("--max-side", type=int, help="longest side of stored frames, pixels")
    si.add_argument("--max-frames", type=int, help="keep at most this many frames (0: all)")
    si.add_argument("--fov", type=float, help="vertical field of view of the camera, degrees (default: estimated)")
    si.add_argument("--lens", type=float, default=None, metavar="MM",
                    help="instead of --fov: the lens's 35 mm-equivalent focal length, mm (a phone's main camera: "
                         "about 26; the field of view is computed for the clip's frame)")  # fmt: skip
    si.add_argument(
        "--shot",
        type=shot_arg,
        default=None,
        metavar="N|all",
        help="of a clip with several shots (cuts): the one to import, counted from 1 (default: the "
        "longest; the import lists them), or 'all': each as a scene of its own, ID-1, ID-2, ...",
    )
    si.add_argument("--overwrite", action="store_true", help="replace a scene with the same id")
    si.set_defaults(func=cmd_scene_import, flags=IMPORT_FLAGS)

    mo = sub.add_parser("model", help="export, convert and inspect STAR model bundles").add_subparsers(
        dest="model_cmd", required=True
    )
    me = mo.add_parser("export", help="export a preset with fresh (random) weights to a bundle")
    presets = f"one of {', '.join(PRESETS)}"
    me.add_argument("--preset", default="star-tiny", help=presets)
    me.add_argument("--out", type=Path, required=True)
    me.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    me.add_argument("--seed", type=int, default=0)
    me.add_argument("--overwrite", action="store_true")
    me.set_defaults(func=cmd_model_export)
    mc = mo.add_parser("convert", help="turn a published-layout checkpoint (.safetensors) into a bundle")
    mc.add_argument("checkpoint", type=Path)
    mc.add_argument("--preset", default="inspatio-1.3b", help=presets)
    mc.add_argument("--out", type=Path, required=True)
    mc.add_argument("--autoencoder", type=Path, default=None,
                    help="autoencoder weights: the published TAEHV taew2_1 (.safetensors or .pth) or our tiny "
                         "autoencoder's (.safetensors); the file's layout decides, checked key by key")  # fmt: skip
    mc.add_argument("--text-embedding", type=Path, default=None,
                    help="the caption's umt5 embedding, (n, dim) or (1, n, dim) in .npy or .safetensors, n <= the "
                         "preset's text length (zero-padded); default: zeros")  # fmt: skip
    mc.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    mc.add_argument("--overwrite", action="store_true")
    mc.set_defaults(func=cmd_model_convert)
    mp = mo.add_parser("optimize", help="(re)write a bundle's CPU graphs: optimised, bias-free step, int8 weights")
    mp.add_argument("bundle", type=Path, help="a bundle folder (rewritten in place)")
    mp.add_argument("--no-int8", action="store_true", help="float32 CPU graphs only")
    mp.set_defaults(func=cmd_model_optimize)
    mi = mo.add_parser("info", help="what a bundle holds")
    mi.add_argument("bundle", help="a bundle folder, or a packaged name such as star-tiny")
    mi.set_defaults(func=cmd_model_info)

    t = sub.add_parser("train", help="train star-tiny: autoencoder, teacher, real-data teacher, JDMD student")
    t.add_argument("--out", type=Path, required=True, help="checkpoint folder (stages resume from it)")
    t.add_argument("--preset", default="star-tiny", help=presets)
    t.add_argument("--stage", action="append", choices=STAGES,
                   help="run only these stages (default: all, in order)")  # fmt: skip
    for stage in STAGES:
        t.add_argument(f"--{stage}-steps", type=int, default=None, help=f"optimiser steps of the {stage} stage")
    t.add_argument("--batch", type=int, default=4)
    t.add_argument("--pool", type=int, default=48, help="procedural training samples kept in memory")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--hole-weight", type=float, default=0.0,
                   help="flow-matching weight of hole cells: 1 + this x hole fraction (layered presets)")  # fmt: skip
    t.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    t.add_argument("--budget-minutes", type=float, default=None,
                   help="stop every stage, checkpointed, within this wall-clock budget (shared by stage)")  # fmt: skip
    t.add_argument("--workers", type=int, default=1, help="processes rendering the training samples")
    t.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    t.add_argument("--init-autoencoder", default=None,
                   help="start the autoencoder from this bundle's (e.g. star-tiny), widened to the preset")  # fmt: skip
    t.add_argument("--export", type=Path, default=None, help="write the trained student as a model bundle here")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser(
        "bench",
        help="benchmarks: run them from a source checkout, python bench/bench_WHAT.py (this only points there)",
        description="The benchmarks live in the source tree, not in the installed package: from a checkout, run "
        "python bench/bench_transport.py | bench_render.py | bench_model.py | bench_quality.py | bench_soak.py "
        "[--out DIR].",
    )
    b.add_argument("what", choices=["transport", "render", "model", "quality", "soak"])
    b.add_argument("rest", nargs=argparse.REMAINDER, help="the script's own arguments")
    b.set_defaults(func=cmd_bench)

    d = sub.add_parser("doctor", help="versions, ONNX Runtime providers, GPU")
    d.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not args.verbose:  # the banner says where the viewer listens; the library's per-connection lines are noise
        logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except StarBridgeError as exc:
        message = flag_message(exc, getattr(args, "flags", {}))
        print(f"error: {' '.join(message.split())}", file=sys.stderr)  # one line
        return 1
    except ModuleNotFoundError as exc:
        if exc.name in ("torch", "onnx", "safetensors"):
            print(f"error: this command needs {exc.name}: pip install 'starbridge[train]'", file=sys.stderr)
            return 1
        if exc.name and not exc.name.startswith("starbridge"):
            print(f"error: the Python module {exc.name!r} is missing: this installation of starbridge is "
                  "incomplete; install it again (pip install starbridge)", file=sys.stderr)  # fmt: skip
            return 1
        raise
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
