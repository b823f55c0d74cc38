"""The STAR generator on ONNX Runtime: a model bundle behind the generator interface.

For each block of `frames_per_block` frames (docs/architecture.md §6):

1. render the explicit spatial constraint at each frame's pose and scene time. What it is depends on the
   bundle's preset (`condition` in model.json): "reference" (star-tiny): the same-time reference frame
   forward-splatted into the requested camera (holes black); "layered" (star-world): the explicit generator's
   full render (`LayeredCondition`: same-time frame, the scene's fused world, the session's world memory),
   holes filled as the explicit generator fills them, so that the network's job is exactly what the renderer
   cannot do;
2. encode the renders (a TAEHV bundle's encoder continues the session's stream: runtime/stream.py); the
   masks on the latent grid by the bundle's convention (runtime/condition.py) -> condition [mask | render latent];
3. context pass: [reference latents at the same times | previous block's latents] -> KV cache;
4. denoise: 4 flow-matching steps from fresh noise, each a step-graph call reading the cache; a "residual"
   bundle's clean latents are added to the render latent of the condition;
5. decode the clean latents to RGBA frames; keep them as the next block's "previous block". With
   `composite_visible` the layered render is kept where some layer covered the pixel; a session that keeps the
   world (a layered bundle, or a reference bundle that composites, such as star-tiny) writes what it showed in
   the holes into its world memory (as the explicit generator does with its fill), so turning away and back
   shows the same.

Steps 1-2 run on the session's render thread while the caller's thread runs step 3 (the context pass needs
only the reference latents and the previous block), and the layered render a compositing bundle shows is drawn
there during step 4 (`overlap=False` does the same work in turn, with the same frames). Measured on two cores
(bench/bench_model.py, "ort in turn"): no gain for a bundle that only splats its condition, whose context pass
already keeps both cores busy; the shipped star-tiny, which also draws the layered render it composites, made
23.8 frames/s against 20.8 in turn (1.14x, alternating rounds in one process).
Where a frame's latent depends on that frame alone (star-tiny's autoencoder),
reference latents are kept per frame, all of them encoded when the scene is prepared.

The cache is bound once per block engine with IO binding (an OrtValue on the execution provider's
device, written by the context graph and read by every step), so on CUDA it never leaves the GPU. A session
takes an engine from its generator's pool and gives it back when it closes (`StarGenerator.take_engine`): on
CUDA the step graph is captured once per engine, not once per client. `StarGenerator.prepare` (called by
`serve` at startup) also makes one block and throws it away, so that ONNX Runtime's first-run work is done
before a client waits for frames (what that is worth: bench/bench_model.py's `served` rows, with and without).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import onnxruntime as ort

from ..errors import InvalidArgument
from ..geometry.camera import Intrinsics
from ..geometry.fill import take_pixels
from ..geometry.kernels import composite_feathered
from ..geometry.splat import SplatResult, Splatter, SplatterCache, pixel_points
from ..scenes.bundle import SceneBundle
from ..scenes.fused import FusedWorlds
from .bundle import FULL_STEP, GRAPHS, STEP_TIME, ModelInfo, read_model
from .condition import mask_encoder
from .explicit import ExplicitSession
from .generator import FrameRequest
from .memory import MemoryConfig
from .providers import CUDA, choose_providers, open_graph
from .sampler import FlowSchedule
from .stream import GraphMemory, memory_inputs

log = logging.getLogger(__name__)

#: Reference-latent blocks kept per scene (keyed by their reference frame indices) where latents are kept per block.
REF_CACHE_BLOCKS = 256
#: Reference latents kept per scene where they are kept per frame (4096 star-tiny latents: 38 MB).
REF_CACHE_FRAMES = 4096
#: Timesteps whose step_time outputs are kept (a many-step teacher schedule has dozens; 20 x 512 bytes each).
TIME_INPUTS_KEPT = 256
#: Block engines a generator keeps for the next sessions when theirs close (`StarGenerator.take_engine`): each
#: holds a KV cache (inspatio-1.3b's: 1.7 GB of float16 on the GPU) and, on CUDA, its captured step graph.
IDLE_ENGINES = 2


def _session_options(threads: int, spin: bool = False) -> ort.SessionOptions:
    """Options of the four sessions of a bundle. Threads (measured: bench/bench_ort_threads.py,
    bench/results/ort-threads-vm.json):

    * default: each session its own intra-op pool, one thread per core, workers that sleep when idle. Spinning
      workers of per-session pools steal the cores from the session that runs next (a star-tiny block took 2x
      longer on two cores; spinning only the step graph gained nothing);
    * `spin`: one process-wide pool for the four sessions (`spinning_pool`), whose workers spin between the many
      small operators instead of sleeping: 1.20x the frames/s on an idle two-core machine for 5% more CPU, but far
      slower when other programs want the cores (a game on the same machine): opt-in (`serve --spin`)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: no provider chatter
    if spin:
        spinning_pool(threads)
        opts.use_per_session_threads = False
        return opts
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
    return opts


_spinning_pool_threads: int | None = None


def spinning_pool(threads: int = 0) -> int:
    """Make ONNX Runtime's process-wide intra-op pool (`threads`, 0: one per core; its workers spin), once per
    process and before its first session (ONNX Runtime reads it when its environment is made). Returns its size;
    asking again for another size raises InvalidArgument."""
    global _spinning_pool_threads
    size = threads or os.cpu_count() or 1
    if _spinning_pool_threads is None:
        from onnxruntime.capi import _pybind_state

        _pybind_state.set_global_thread_pool_sizes(size, 1)
        _spinning_pool_threads = size
    elif _spinning_pool_threads != size:
        raise InvalidArgument(
            f"ONNX Runtime's shared thread pool has {_spinning_pool_threads} threads in this process; "
            f"{size} cannot be had now (one pool per process)",
            field="threads",
        )
    return size


@dataclass(frozen=True)
class RenderSource:
    """What the explicit renderer splats from: (N, h, w, 3) uint8 colour, (N, h, w) depth, their camera."""

    frames: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics


class StarGraphs:
    """The four ONNX Runtime sessions of a bundle (shared, read-only, thread-safe to run)."""

    def __init__(
        self,
        info: ModelInfo,
        providers: Sequence[str],
        threads: int = 0,
        cuda_graph: bool = True,
        spin: bool = False,
        int8: bool = True,
    ) -> None:
        self.info = info
        self.providers = tuple(providers)
        opts = _session_options(threads, spin)
        self.device = "cuda" if self.providers[0] == CUDA else "cpu"
        #: On CUDA the step graph (called 4x per block) is captured as a CUDA graph, one per block engine
        #: (RunOptions gpu_graph_id; engines outlive their sessions: StarGenerator.take_engine), its inputs and
        #: outputs at fixed device addresses.
        self.cuda_graph = self.device == "cuda" and cuda_graph
        # On the CPU, the bundle's int8 copies of its graphs where it has them (model/onnx_optimize.py).
        cpu_int8 = (info.doc.get("cpu_graphs") or {}).get("int8", {}) if self.device == "cpu" and int8 else {}
        #: The graphs whose int8 copy is asked for (one that does not load falls back, with a warning).
        self.int8_graphs = tuple(g for g in (*GRAPHS, FULL_STEP) if g in cpu_int8)
        self.sessions = {}
        for name in ("encoder", "decoder", "context", "step"):
            providers_for: list[str | tuple[str, dict[str, str]]] = list(providers)
            if name == "step" and self.cuda_graph:
                providers_for = [(CUDA, {"enable_cuda_graph": "1"}), *providers[1:]]
            self.sessions[name] = open_graph(info, name, opts, providers_for, int8)
        #: The step graph without the attention bias, for calls whose whole cache is valid (CPU bundles that
        #: have it: model/onnx_cpu_variants.py); None: every call runs `step`.
        self.step_full = open_graph(info, FULL_STEP, opts, list(providers), int8) if self.device == "cpu" else None
        #: step_full's timestep branch where the bundle split it off (then step_full has no `timestep` input):
        #: run once per distinct timestep, its outputs kept (`time_inputs`).
        self.step_time = None
        if self.step_full is not None and "timestep" not in {i.name for i in self.step_full.get_inputs()}:
            self.step_time = open_graph(info, STEP_TIME, opts, list(providers), int8=False)
            if self.step_time is None:
                log.warning("%s: step_full has no timestep input but %s is missing: step_full not used", info.path,
                            STEP_TIME)  # fmt: skip
                self.step_full = None
        self._time_inputs: OrderedDict[float, list[tuple[str, ort.OrtValue]]] = OrderedDict()
        self._time_lock = threading.Lock()
        self.float_type = np.float16 if info.dtype == "float16" else np.float32
        self.text = np.load(info.path / info.doc["text"]).astype(self.float_type) if info.has_text else None
        self._graph_ids = itertools.count(1)
        #: Autoencoder graphs that carry memory from block to block (a TAEHV bundle's: runtime/stream.py).
        self.streaming = tuple(g for g in ("encoder", "decoder") if memory_inputs(self.sessions[g]))

    def time_inputs(self, timestep: float) -> list[tuple[str, ort.OrtValue]]:
        """step_full's inputs from the timestep branch (`step_time`) for `timestep`: computed once, then kept
        (the TIME_INPUTS_KEPT most recent; a few-step schedule has four)."""
        assert self.step_time is not None
        with self._time_lock:
            kept = self._time_inputs.get(timestep)
            if kept is not None:
                self._time_inputs.move_to_end(timestep)
                return kept
        values = self.step_time.run(None, {"timestep": np.array([timestep], self.float_type)})
        names = [o.name for o in self.step_time.get_outputs()]
        kept = [(n, ort.OrtValue.ortvalue_from_numpy(v)) for n, v in zip(names, values, strict=True)]
        with self._time_lock:
            self._time_inputs[timestep] = kept
            while len(self._time_inputs) > TIME_INPUTS_KEPT:
                self._time_inputs.popitem(last=False)
        return kept

    def new_graph_id(self) -> int:
        """A CUDA-graph id for a new block engine (each has its own fixed buffers)."""
        return next(self._graph_ids)

    def encode(self, frames: np.ndarray, memory: GraphMemory | None = None) -> np.ndarray:
        """uint8 (fpb, H, W, 3) -> (1, C, F, h, w); a streaming encoder continues `memory`'s stream (none:
        a stream of its own, as reference blocks are encoded)."""
        return self._run_ae("encoder", {"frames": frames}, memory)

    def decode(self, latents: np.ndarray, memory: GraphMemory | None = None) -> np.ndarray:
        """(1, C, F, h, w) -> uint8 (fpb, H, W, 4)."""
        return self._run_ae("decoder", {"latents": latents.astype(self.float_type, copy=False)}, memory)

    def _run_ae(self, name: str, feeds: dict[str, np.ndarray], memory: GraphMemory | None) -> np.ndarray:
        if name not in self.streaming:
            return self.sessions[name].run(None, feeds)[0]
        return (memory or GraphMemory(self.sessions[name], self.device)).run(feeds)


class BlockEngine(Protocol):
    """The four graph calls of a block, for one session (the cache lives inside)."""

    float_type: type

    def encode(self, frames: np.ndarray) -> np.ndarray: ...

    def decode(self, latents: np.ndarray) -> np.ndarray: ...

    def context(self, latents: np.ndarray, valid: int) -> None: ...

    def step(self, x: np.ndarray, cond: np.ndarray, timestep: float, valid: int) -> np.ndarray: ...


class OrtEngine:
    """BlockEngine on ONNX Runtime. The KV cache lives on the provider's device for the whole session:
    bound once as the context graph's outputs and as every step's inputs (IO binding), never copied.

    On CUDA every step input and output also has a fixed device buffer (updated in place), which is what
    CUDA-graph capture needs: the first step call captures, later calls replay."""

    def __init__(self, graphs: StarGraphs) -> None:
        info = graphs.info
        self.graphs = graphs
        self.float_type = f = graphs.float_type
        dev = graphs.device
        latent_shape = (1, info.latent_channels, info.latent_frames, info.latent_height, info.latent_width)
        cond_shape = (1, info.mask_channels + info.latent_channels, *latent_shape[2:])

        def buffer(shape, dtype, device=dev):
            return ort.OrtValue.ortvalue_from_shape_and_type(shape, dtype, device, 0)

        self.cache_k, self.cache_v = buffer(info.cache_shape, f), buffer(info.cache_shape, f)
        self._ctx = graphs.sessions["context"].io_binding()
        self._step = graphs.sessions["step"].io_binding()
        self._ctx.bind_ortvalue_output("cache_k", self.cache_k)
        self._ctx.bind_ortvalue_output("cache_v", self.cache_v)
        self.velocity = buffer(latent_shape, f)
        #: Every block after the first has its whole cache valid: then the step runs the bias-free step_full
        #: graph where the bundle has one (CPU; model/onnx_cpu_variants.py), bound to the same buffers.
        self._full_tokens = info.cache_shape[-2]
        self._full = graphs.step_full
        self._step_full = self._full.io_binding() if self._full is not None else None
        for binding in (self._step, self._step_full):
            if binding is not None:
                binding.bind_ortvalue_input("cache_k", self.cache_k)
                binding.bind_ortvalue_input("cache_v", self.cache_v)
                binding.bind_ortvalue_output("velocity", self.velocity)
        self._on_device = dev != "cpu"
        if self._on_device:
            self._inputs = {
                "noisy": buffer(latent_shape, f),
                "cond": buffer(cond_shape, f),
                "timestep": buffer((1,), f),
                "valid": buffer((), np.int64),
            }
            for name, value in self._inputs.items():
                self._step.bind_ortvalue_input(name, value)
        if graphs.text is not None:
            text = graphs.text
            if self._on_device:
                text_value = buffer(text.shape, f)
                text_value.update_inplace(text)
                self._ctx.bind_ortvalue_input("text", text_value)
                self._step.bind_ortvalue_input("text", text_value)
                self._text_value = text_value  # keep it alive
            else:
                for binding in (self._ctx, self._step, self._step_full):
                    if binding is not None:
                        binding.bind_cpu_input("text", text)
        self._memory = {g: GraphMemory(graphs.sessions[g], dev) for g in graphs.streaming}
        self._run_options = ort.RunOptions()
        if graphs.cuda_graph:
            self._run_options.add_run_config_entry("gpu_graph_id", str(graphs.new_graph_id()))

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return self.graphs.encode(frames, self._memory.get("encoder"))

    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self.graphs.decode(latents, self._memory.get("decoder"))

    def reset(self) -> None:
        """A new stream: a streaming autoencoder's memory starts from zeros again."""
        for memory in self._memory.values():
            memory.reset()

    def context(self, latents: np.ndarray, valid: int) -> None:
        self._ctx.bind_cpu_input("latents", latents.astype(self.float_type, copy=False))
        self._ctx.bind_cpu_input("valid", np.array(valid, np.int64))
        self.graphs.sessions["context"].run_with_iobinding(self._ctx)

    def step(self, x: np.ndarray, cond: np.ndarray, timestep: float, valid: int) -> np.ndarray:
        f = self.float_type
        values = {
            "noisy": x.astype(f, copy=False),
            "cond": cond.astype(f, copy=False),
            "timestep": np.array([timestep], f),
            "valid": np.array(valid, np.int64),
        }
        if self._on_device:
            for name, value in values.items():
                self._inputs[name].update_inplace(np.ascontiguousarray(value))
        elif self._full is not None and self._step_full is not None and valid == self._full_tokens:
            del values["valid"]  # (step_full has no `valid`: every cache key counts)
            if self.graphs.step_time is not None:  # (nor `timestep`: its branch's outputs instead)
                del values["timestep"]
                for name, kept in self.graphs.time_inputs(1.0 * timestep):
                    self._step_full.bind_ortvalue_input(name, kept)
            for name, value in values.items():
                self._step_full.bind_cpu_input(name, value)
            self._full.run_with_iobinding(self._step_full, self._run_options)
            return self.velocity.numpy()
        else:
            for name, value in values.items():
                self._step.bind_cpu_input(name, value)
        self.graphs.sessions["step"].run_with_iobinding(self._step, self._run_options)
        return self.velocity.numpy()


class StarSession:
    """Per-client state: the block engine (with its KV cache), the previous block, the renderer buffers."""

    def __init__(
        self,
        generator: StarGenerator,
        scene: SceneBundle,
        seed: int = 0,
        engine: BlockEngine | None = None,
        schedule: FlowSchedule | None = None,
        overlap: bool = True,
    ) -> None:
        self.generator = generator
        #: Whether the explicit renders run on a render thread beside the model's work (see `generate_block`);
        #: without, they run in turn on the calling thread (the same frames).
        self.overlap = overlap
        self.info = info = generator.info
        #: An engine from the generator's pool (given back on `close`), unless the caller brought its own.
        self._pooled = engine is None
        self.engine = engine or generator.take_engine()
        self.scene = scene
        self.block_frames = info.frames_per_block
        # A many-step schedule turns the same weights into a slow sampler (how the teacher is evaluated).
        self.schedule = schedule or FlowSchedule(info.steps, info.shift)
        self.rng = np.random.default_rng(seed)
        self.prev: np.ndarray | None = None
        self._source = generator.render_source(scene)
        self._splatters = SplatterCache(self._source.intrinsics)
        self._latent_shape = (1, info.latent_channels, info.latent_frames, info.latent_height, info.latent_width)
        #: The explicit generator's layered render at the model's size (same-time frame, fused world, this
        #: session's memory): a "layered" bundle's condition; for a "reference" bundle that composites (star-tiny),
        #: what is composited over its output, so that what the video saw anywhere and what this session showed
        #: before stay as they were (a revisit shows the same). Either way the output in its holes is remembered.
        self.layered = (
            LayeredCondition(
                model_scene(scene, self._source), info.width, info.height, generator.worlds, generator.memory
            )  # fmt: skip
            if generator.keeps_world
            else None
        )
        self._layered_condition = generator.layered
        self.residual = model_residual(info)
        #: The mask part of the condition, by the bundle's convention (stateful for "wan": one per stream).
        self._masks = mask_encoder(info.mask_convention, info.latent_height, info.latent_width, info.mask_channels)
        #: The render thread (made on the first block; see `generate_block`).
        self._pool: ThreadPoolExecutor | _InTurn | None = None

    # ------------------------------------------------------------------ the block loop

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        info, engine = self.info, self.engine
        if len(requests) != self.block_frames:
            raise ValueError(f"a block is {self.block_frames} frames, got {len(requests)} requests")
        indices = [self.scene.frame_index(r.scene_time_s) for r in requests]
        stream_start = self.prev is None
        # 1-2. The explicit renders and their encoding run on the session's render thread while this one runs the
        # context pass, which needs only the reference latents and the previous block; what is composited over
        # the output (a compositing reference bundle) is drawn there during the denoising steps.
        jobs = self._render_jobs(requests)
        try:
            # 3. context: reference latents at the same scene times, then the previous block
            ref = self.generator.reference_latents(self.scene, indices)
            prev = self.prev if self.prev is not None else np.zeros_like(ref)
            valid = info.block_tokens * (2 if self.prev is not None else 1)
            engine.context(np.concatenate([ref, prev], axis=2), valid)
            masks, render_latents = jobs[0].result()
            # condition: [mask pooled to the latent grid | latent of the render]
            cond = np.concatenate([self._masks(masks), render_latents], axis=1)
            # 4. few-step denoising from fresh noise; between steps x0 is re-noised with fresh noise
            x = self.rng.standard_normal(self._latent_shape, dtype=np.float32)
            last = len(self.schedule.sigmas) - 1
            for k, sigma in enumerate(self.schedule.sigmas):
                v = engine.step(x, cond, 1000.0 * sigma, valid)
                noise = None if k == last else self.rng.standard_normal(x.shape, np.float32)
                x = self.schedule.step(x, v.astype(np.float32, copy=False), k, noise)
            if self.residual:
                x = x + render_latents.astype(np.float32, copy=False)
            self.prev = x
            # 5. decode (optionally keeping the explicit render where it is valid: see `composite_visible`)
            frames = engine.decode(x)
            if stream_start and info.startup_frames:  # a causal decoder's first frames are no real frames
                frames[: info.startup_frames] = frames[info.startup_frames]
            if self.generator.composite_visible:
                shown, shown_masks = jobs[-1].result()
                composite_visible(frames, shown, shown_masks)
            if self.layered is not None:
                self.layered.remember(frames)
            return list(frames)
        finally:
            for job in jobs:  # never leave a render running into the next block (or past an error)
                job.exception()

    def _render_jobs(self, requests: Sequence[FrameRequest]) -> list[Future]:
        """Futures on the render thread: (condition masks, render latents), then for a compositing bundle what
        is composited, (renders, masks) (the condition itself when it is the layered render)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = ThreadPoolExecutor(1, thread_name_prefix="star-render") if self.overlap else _InTurn()
        shown: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def condition() -> tuple[np.ndarray, np.ndarray]:
            if self.layered is not None and self._layered_condition:
                renders, masks, _ = self.layered.render(requests)
                shown["layered"] = renders, masks
            else:
                renders, masks, _ = self._render(requests)
            return masks, self.engine.encode(renders)

        def composited() -> tuple[np.ndarray, np.ndarray]:
            if "layered" in shown:
                return shown["layered"]
            renders, masks, _ = cast(LayeredCondition, self.layered).render(requests)
            return renders, masks

        jobs = [pool.submit(condition)]
        if self.generator.composite_visible:  # (it keeps the world: self.layered is set)
            jobs.append(pool.submit(composited))
        return jobs

    def _render(self, requests: Sequence[FrameRequest]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """uint8 (fpb, H, W, 3) renders with holes black, bool (fpb, H, W) masks, reference frame indices."""
        info, scene = self.info, self.scene
        renders = np.empty((len(requests), info.height, info.width, 3), np.uint8)
        masks = np.empty((len(requests), info.height, info.width), bool)
        indices = []
        for i, req in enumerate(requests):
            j = scene.frame_index(req.scene_time_s)
            indices.append(j)
            src = self._source
            out = self._splatter(req.intrinsics)(src.frames[j], src.depth[j], scene.poses[j], req.c2w)
            renders[i], masks[i] = out.colour, out.mask
        return renders, masks, indices

    def _splatter(self, dst: Intrinsics) -> Splatter:
        if (dst.width, dst.height) != (self.info.width, self.info.height):
            dst = dst.scaled(self.info.width, self.info.height)
        return self._splatters.get(dst)

    def reset(self) -> None:
        self.prev = None  # a layered session's memory holds static content only: it survives a seek
        self._masks.reset()  # a new stream for the mask convention and a streaming autoencoder
        getattr(self.engine, "reset", lambda: None)()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._splatters.clear()
        self.prev = None
        if self.layered is not None:
            self.layered.close()
        if self._pooled:  # once: a second close gives nothing back twice
            self._pooled = False
            self.generator.give_back(cast(OrtEngine, self.engine))


class _InTurn:
    """An executor that runs each job at once on the calling thread (StarSession without `overlap`)."""

    def submit(self, fn, /, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to whoever asks for the result, as a pool would
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


def model_condition(info: ModelInfo) -> str:
    """What a bundle's condition is rendered from: "reference" (bundles before star-world) or "layered"."""
    condition = info.doc["preset"].get("condition", "reference")
    if condition not in ("reference", "layered"):
        raise InvalidArgument(f"{info.path}: unknown condition {condition!r} in model.json", field="model")
    return condition


def model_residual(info: ModelInfo) -> bool:
    """Whether a bundle's clean latents are relative to the condition's render latent."""
    return bool(info.doc["preset"].get("residual", False))


class ModelScene:
    """A scene seen at the model's resolution, for the layered condition: the colour and depth of
    `StarGenerator.render_source` (one pixel of each f x f cell, as the reference-frame condition uses) and the
    moving-object masks subsampled alike, with the rest of the scene (poses, clock, folder) as it is. The
    explicit session then splats 1 / f^2 of the points (what star-tiny's render did), and the fused world is
    fused at that resolution too (by the generator's own FusedWorlds: keyed by folder, so not shared with a
    full-resolution explicit generator)."""

    def __init__(self, scene: SceneBundle, source: RenderSource) -> None:
        self._scene = scene
        self.frames, self.depth = source.frames, source.depth
        self.meta = replace(scene.meta, intrinsics=source.intrinsics)
        f = max(1, round(scene.meta.intrinsics.width / source.intrinsics.width))
        moving = scene.moving
        self.moving = moving if moving is None or f == 1 else np.ascontiguousarray(moving[:, f // 2 :: f, f // 2 :: f])

    def __getattr__(self, name: str):
        return getattr(self._scene, name)


def model_scene(scene: SceneBundle, source: RenderSource) -> SceneBundle:
    """`ModelScene` typed as what it stands in for (ExplicitSession and FusedWorlds read only what it has)."""
    return cast(SceneBundle, ModelScene(scene, source))


class LayeredCondition:
    """The explicit generator's layered render as STAR's condition, and the session memory STAR writes.

    `render` draws each request through an `ExplicitSession` (same-time reference frame, fused world, session
    memory: `ExplicitSession.splat`) and fills what is left by push-pull: the explicit baseline's own output,
    with the mask of the pixels some layer covered. `remember` then stores what the model showed in the wide
    holes of those frames (not the one- or two-pixel cracks, as the explicit generator does) with the fill's
    depth, so the next frames splat it as content: a revisit shows what was shown. Training builds its
    conditions with the same session (train/data.py)."""

    def __init__(self, scene: SceneBundle, width: int, height: int, worlds: FusedWorlds, memory: MemoryConfig) -> None:
        self.explicit = ExplicitSession(scene, width, height, worlds, memory)
        self._pending: list[tuple[FrameRequest, np.ndarray, np.ndarray]] = []  # request, holes to remember, depths

    @property
    def memory(self):
        return self.explicit.memory

    def splat(self, request: FrameRequest) -> SplatResult:
        """The layered splat of one request (colour with holes, mask, depth): what the coverage probes read."""
        return self.explicit.splat(request)

    def render(self, requests: Sequence[FrameRequest]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """uint8 (n, H, W, 3) layered renders, filled as the explicit generator fills them; bool (n, H, W) masks;
        reference frame indices. What to remember of each is kept for `remember`."""
        scene = self.explicit.scene
        n, h, w = len(requests), self.explicit.height, self.explicit.width
        renders = np.empty((n, h, w, 3), np.uint8)
        masks = np.empty((n, h, w), bool)
        self._pending = []
        for i, req in enumerate(requests):
            result = self.explicit.splat(req)
            renders[i], at, _, depth = self.explicit.fill(req, result)  # the explicit generator's own frame
            masks[i] = result.mask
            self._pending.append((req, at, depth))
        return renders, masks, [scene.frame_index(r.scene_time_s) for r in requests]

    def remember(self, frames: np.ndarray) -> None:
        """Store the wide-hole pixels of the frames made for the last `render` ((n, H, W, >=3) uint8). The
        block's frames were splatted before any was remembered, so where an earlier frame of the block has
        just remembered a pixel, a later one shows that (in place: one answer per direction, as a revisit
        shows it) and adds only the rest."""
        for k, ((req, at, depth), frame) in enumerate(zip(self._pending, frames, strict=True)):
            if k:
                known, colour = self.explicit.memory_at(req, at)
                frame.reshape(-1, frame.shape[-1])[at[known], :3] = colour[known]
                at, depth = at[~known], depth[~known]
            points = pixel_points(at, depth, req.intrinsics, req.c2w)
            self.explicit.memory.add(points, take_pixels(np.ascontiguousarray(frame[..., :3]), at))
        self._pending = []

    def close(self) -> None:
        self._pending = []
        self.explicit.close()


def composite_visible(frames: np.ndarray, renders: np.ndarray, masks: np.ndarray) -> None:
    """In place: frames (fpb, H, W, 4) take the explicit render where its mask is valid, the generated
    pixels in the holes, with a 1-pixel feather at the seams. A small model's autoencoder cannot reproduce
    what the render already has exactly; it earns its keep in the disoccluded pixels."""
    # The weight is the 3x3 box blur of the mask (its first and last rows/columns as they are) where the mask is
    # valid, 0 in the holes: it falls to ~1/3 at a hole's rim and is 1 deep inside valid areas. One compiled
    # pass (geometry/kernels.py; tests/runtime check it against the NumPy formula).
    renders, masks = np.ascontiguousarray(renders), np.ascontiguousarray(masks, dtype=bool)
    if frames.flags.c_contiguous:
        composite_feathered(frames, renders, masks)
    else:  # (an engine's strided view: composite a contiguous copy and write it back)
        work = np.ascontiguousarray(frames)
        composite_feathered(work, renders, masks)
        frames[...] = work


class StarGenerator:
    """A model bundle served through ONNX Runtime (CUDA when it really loads, else CPU).

    `composite_visible` (default: what the bundle's model.json says) keeps the explicit render's valid
    pixels and uses the model's output in the holes (see `composite_visible`). `spin`: ONNX Runtime's
    process-wide spinning thread pool (see `_session_options`). `int8`: on the CPU, the bundle's graphs with
    int8 weights where it has them (False: its float32 graphs, e.g. to compare with CUDA's output)."""

    def __init__(
        self,
        bundle: Path | str,
        *,
        prefer_cuda: bool = True,
        threads: int = 0,
        spin: bool = False,
        cuda_graph: bool = True,
        int8: bool = True,
        composite: bool | None = None,
        worlds: FusedWorlds | None = None,
        memory: MemoryConfig = MemoryConfig(),  # noqa: B008 (frozen)
        warm_up: bool = True,
    ) -> None:
        self.info = read_model(bundle)
        #: Fused worlds and memory bounds for layered bundles (shared with an explicit generator when given).
        self.worlds = worlds or FusedWorlds()
        self.memory = memory
        self.layered = model_condition(self.info) == "layered"
        self.composite_visible = bool(self.info.doc.get("composite_visible", False)) if composite is None else composite
        #: Sessions keep the explicit layered render and a world memory: as the condition ("layered" bundles) or
        #: composited over the output (see StarSession.layered).
        self.keeps_world = self.layered or self.composite_visible
        choice = choose_providers(prefer_cuda)
        self.graphs = StarGraphs(self.info, choice.providers, threads, cuda_graph, spin, int8)
        self.name = self.info.name
        self.execution_provider = choice.name
        self._lock = threading.Lock()
        self._ref: dict[str, OrderedDict[tuple[int, ...], np.ndarray]] = {}
        #: Reference latents kept per frame, when a frame's latent depends on that frame alone.
        self._per_frame = self.info.temporal_stride == 1 and "encoder" not in self.graphs.streaming
        self._frames: dict[str, dict[int, np.ndarray]] = {}
        self._sources: dict[str, RenderSource] = {}
        #: Block engines of closed sessions, for the next ones (`take_engine`); `warm_up`: see `prepare`.
        self._idle: list[OrtEngine] = []
        self.warm_up = warm_up
        self._warm = False
        quantised = self.graphs.int8_graphs
        log.info("STAR model %s (%s weights) on %s%s", self.name, self.info.weights, self.execution_provider,
                 f"; int8 weights in {', '.join(quantised)}" if quantised else "")  # fmt: skip

    def check_size(self, width: int, height: int) -> None:
        if (width, height) != (self.info.width, self.info.height):
            raise InvalidArgument(
                f"hello.width x hello.height must be {self.info.width}x{self.info.height} for model "
                f"{self.name} (its graphs have a fixed size), got {width}x{height}; send 0 for the default",
                field="hello.width",
            )

    def prepare(self, scene: SceneBundle) -> None:
        """A bundle whose sessions keep the world fuses the scene's world now; where reference latents are kept
        per frame, every reference frame is encoded now (else per block, as needed). The first scene prepared
        also warms the generator up (`warm_up`, the default): one block made and thrown away, so that what
        ONNX Runtime does on a graph's first run (memory, kernel choices; on CUDA the step graph's capture)
        is done before a client waits for its first frames, and the engine that ran it is kept for the first
        session."""
        if self.keeps_world:
            self.worlds.get(model_scene(scene, self.render_source(scene)))  # as the sessions see it
        if self._per_frame:
            self._frame_latents(scene, range(min(scene.meta.frame_count, REF_CACHE_FRAMES)))
        if self.warm_up and not self._warm:
            self._warm = True
            session = StarSession(self, scene)
            try:
                intr = scene.meta.intrinsics.scaled(self.info.width, self.info.height)
                pose = np.asarray(scene.poses[0], np.float64)
                times = [(k / scene.meta.fps) % scene.meta.duration_s for k in range(self.info.frames_per_block)]
                session.generate_block([FrameRequest(pose, intr, t) for t in times])
            finally:
                session.close()

    def take_engine(self) -> OrtEngine:
        """A block engine for a new session: one a closed session gave back (on CUDA its step graph already
        captured: a new client does not wait for the capture, and the captured graphs, which ONNX Runtime keeps
        for the session's life, grow with the most clients served at once rather than with every client), else
        a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return OrtEngine(self.graphs)

    def give_back(self, engine: OrtEngine) -> None:
        """A closed session's engine, kept for the next session (its stream state reset; its cache and buffers
        are rewritten by every block), up to IDLE_ENGINES of them."""
        engine.reset()
        with self._lock:
            if len(self._idle) < IDLE_ENGINES:
                self._idle.append(engine)

    def open(self, scene: SceneBundle, width: int, height: int) -> StarSession:
        self.check_size(width, height)
        return StarSession(self, scene)

    def reference_latents(self, scene: SceneBundle, indices: Sequence[int]) -> np.ndarray:
        """Latents (1, C, F, h, w) of the scene's reference frames `indices`, encoded once and kept: per frame
        where every frame has a latent of its own and the encoder keeps no memory (star-tiny), else per block."""
        if self._per_frame:
            return np.stack(self._frame_latents(scene, indices), axis=1)[None]  # (1, C, F, h, w)
        key = tuple(indices)
        with self._lock:
            per_scene = self._ref.setdefault(f"{scene.path}", OrderedDict())
            hit = per_scene.get(key)
            if hit is not None:
                per_scene.move_to_end(key)
                return hit
        frames = np.stack([self._reference_frame(scene, j) for j in indices])
        latents = self.graphs.encode(frames)
        with self._lock:
            per_scene[key] = latents
            while len(per_scene) > REF_CACHE_BLOCKS:
                per_scene.popitem(last=False)
        return latents

    def _frame_latents(self, scene: SceneBundle, indices: Sequence[int]) -> list[np.ndarray]:
        """The (C, h, w) latents of reference frames `indices`; missing ones are encoded a block at a time (the
        last frame repeated to fill a block). The oldest beyond REF_CACHE_FRAMES are forgotten."""
        fpb = self.info.frames_per_block
        while True:  # (again only if another session's frames pushed one of these out meanwhile)
            with self._lock:
                per_scene = self._frames.setdefault(f"{scene.path}", {})
                missing = sorted({int(j) for j in indices} - per_scene.keys())
            encoded: dict[int, np.ndarray] = {}
            for start in range(0, len(missing), fpb):
                chunk = missing[start : start + fpb]
                frames = [self._reference_frame(scene, j) for j in chunk]
                frames += frames[-1:] * (fpb - len(chunk))
                latents = self.graphs.encode(np.stack(frames))[0]  # (C, F, h, w)
                encoded.update((j, latents[:, k].copy()) for k, j in enumerate(chunk))
            with self._lock:
                per_scene.update(encoded)
                out = [per_scene.get(j) for j in indices]
                for j in list(itertools.islice(per_scene, max(0, len(per_scene) - REF_CACHE_FRAMES))):
                    del per_scene[j]  # the oldest first (insertion order)
            if all(latent is not None for latent in out):
                return cast(list[np.ndarray], out)

    def render_source(self, scene: SceneBundle) -> RenderSource:
        """The scene's colour and depth subsampled to no less than the model's resolution, made once.

        Splatting 4x fewer points than a full-size reference is 4x faster and loses nothing the model
        sees. Colour and depth take the same pixel of each f x f cell (so they stay paired at edges);
        the intrinsics are shifted to that pixel's centre."""
        key = str(scene.path)
        with self._lock:
            hit = self._sources.get(key)
        if hit is not None:
            return hit
        intr = scene.meta.intrinsics
        f = max(1, min(intr.width // self.info.width, intr.height // self.info.height))
        if f == 1:
            source = RenderSource(np.asarray(scene.frames), np.asarray(scene.depth), intr)
        else:
            off = f // 2
            frames = np.ascontiguousarray(scene.frames[:, off::f, off::f])
            depth = np.ascontiguousarray(scene.depth[:, off::f, off::f])
            h, w = depth.shape[1:]
            cx = 0.5 - (off + 0.5 - intr.cx) / f
            cy = 0.5 - (off + 0.5 - intr.cy) / f
            source = RenderSource(frames, depth, Intrinsics(intr.fx / f, intr.fy / f, cx, cy, w, h))
        with self._lock:
            self._sources[key] = source
        return source

    def _reference_frame(self, scene: SceneBundle, j: int) -> np.ndarray:
        frame = np.asarray(scene.frames[j])
        h, w = self.info.height, self.info.width
        if frame.shape[:2] == (h, w):
            return frame
        rows = (np.arange(h) + 0.5) * frame.shape[0] / h
        cols = (np.arange(w) + 0.5) * frame.shape[1] / w
        return frame[rows.astype(int)][:, cols.astype(int)]  # nearest: a reference, not a display
