"""Frame hand-off benchmark: shared-memory ring, ZeroMQ inline and gRPC stream (docs/architecture.md §7).

    python bench/bench_transport.py [--seconds S] [--out DIR]     # from a source checkout

Every transport moves one 1280x720 RGBA8 frame (3,686,400 bytes) from a sender to a receiver in
ANOTHER PROCESS (multiprocessing, "spawn": grpc and zmq dislike fork). The reference is a plain
memcpy of the same frame (`np.copyto` between two preallocated arrays) measured in the same run.

Timing across processes uses `time.perf_counter_ns()` (CLOCK_MONOTONIC on Linux, one clock for all
processes): the sender stamps its start time into the frame's metadata, the receiver takes the
difference once it has the frame. In this benchmark `FrameReady.engine_time_us` (and the ring slot's
`engine_time_us` field) carries that send-start stamp in nanoseconds; it is not a pose echo here.

Measurements (p50 / p95 / mean, ms):

* memcpy: `np.copyto(dst, src)`, back to back; once at the start (the reference for ratios and the
  ring target) and once at the end (drift check). Also "paced": one copy every SEND_PERIOD_S, the
  cadence of the ring and zmq senders; copies after an idle gap are slower than back to back.
* ring write / ring read: the in-process cost split of `FrameRingWriter.write` and
  `FrameRingReader.read_slot` (back to back, no other process).
* ring hand-off: `writer.write(...)` in this process -> a reader process busy-polling the header's
  latest frame sequence has a seqlock-checked copy of the frame in its own preallocated buffer.
  Also split into write (in the sender), notice (write returned -> reader saw it) and read.
* zmq inline hand-off: ROUTER (this process) `send_multipart([identity, envelope, pixels], copy=False)`
  -> a DEALER in another process has the whole multipart message (`recv_multipart(copy=False)`);
  the envelope is a real serialized `BackendMessage{FrameReady}` and its serialization is included.
  Zero-copy: ZeroMQ sends from the array itself, so a buffer is reused only once its MessageTracker
  says ZeroMQ let go of it (waited for before the clock starts).
  Also reported "+ copy": until the pixels are copied into the receiver's preallocated buffer, which
  is what the ring hand-off includes.
* grpc stream: a real grpc server (this process, a minimal `Bridge/Stream` servicer answering each
  pose with a `StreamResponse{FrameReady, pixels}`) and a client in another process. Hand-off:
  servicer builds the response -> client has it; round trip: client sends a pose -> has the frame.

Every frame carries its sequence number at its start, middle and end (`stamp_frame`); receivers check
all three against the sequence in the metadata (`frame_intact`) and count the frames that disagree
(`corrupt_frames`, always 0 unless something overwrote a frame in flight).

Ring and zmq frames are sent at a bounded rate (one every SEND_PERIOD_S) so the receiver keeps up;
the first WARMUP_FRAMES frames of each run are not counted. Each measurement runs for about
`seconds` and at least MIN_FRAMES frames. Benchmarks are not tests: nothing here fails on a slow
machine; the table says PASS/FAIL against the docs/architecture.md §7 targets.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import os
import platform
import queue
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/bench_transport.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(REPO_ROOT))

from bench._machine import add_out_argument, host_tag, machine_info, out_dir  # noqa: E402

if TYPE_CHECKING:
    from starbridge.transport.frame import FrameMeta

WIDTH = 1280
HEIGHT = 720
FRAME_SHAPE = (HEIGHT, WIDTH, 4)
FRAME_BYTES = WIDTH * HEIGHT * 4  # 3,686,400
#: Each measurement takes at least this many frames, however short `seconds` is.
MIN_FRAMES = 200
#: Frames not counted at the start of each cross-process run (page faults, connection set-up).
WARMUP_FRAMES = 10
#: Ring and zmq senders send one frame per this many seconds (receiver keeps up, no queueing).
SEND_PERIOD_S = 0.005
#: Frame buffers the zmq sender rotates through (each reused once ZeroMQ has let go of it).
ZMQ_BUFFERS = 3
#: grpc message size limits (a frame is 3.5 MiB; grpc's default receive limit is 4 MiB).
GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
]
#: How long to wait for a child process to start, answer or finish before giving up, seconds.
CHILD_TIMEOUT_S = 60.0
#: docs/architecture.md §7.
RING_TARGET_FACTOR = 3.0
ZMQ_TARGET_MS = 2.0

ROWS = [
    # (key, label)
    ("memcpy", "memcpy np.copyto (reference)"),
    ("memcpy_end", "memcpy np.copyto (end of run)"),
    ("memcpy_paced", "memcpy np.copyto, paced like senders"),
    ("ring_write_inproc", "ring write alone (in-process)"),
    ("ring_read_inproc", "ring read alone (in-process)"),
    ("ring_handoff", "ring hand-off (cross-process)"),
    ("zmq_inline_handoff", "zmq inline hand-off"),
    ("zmq_inline_handoff_copy", "zmq inline hand-off + copy"),
    ("grpc_stream_handoff", "grpc stream hand-off"),
    ("grpc_stream_handoff_copy", "grpc stream hand-off + copy"),
    ("grpc_stream_roundtrip", "grpc stream pose->frame round trip"),
]


# ---------------------------------------------------------------------- helpers


def _stats(samples_ns: list[int] | np.ndarray, description: str, **extra: Any) -> dict[str, Any]:
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        raise RuntimeError(f"no samples for {description!r}")
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "n": int(a.size),
        "description": description,
        **extra,
    }


def _make_frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=FRAME_SHAPE, dtype=np.uint8)


def _stamp_offsets(nbytes: int) -> tuple[int, int, int]:
    return 0, (nbytes // 2) // 8 * 8, nbytes - 8


def stamp_frame(frame: np.ndarray, seq: int) -> None:
    """Write `seq` (8 bytes, little-endian) at the start, the middle and the end of a contiguous frame."""
    flat = frame.reshape(-1)  # a view: the frame is contiguous
    stamp = np.frombuffer(int(seq).to_bytes(8, "little"), dtype=np.uint8)
    for offset in _stamp_offsets(flat.size):
        flat[offset : offset + 8] = stamp


def frame_intact(pixels: np.ndarray, seq: int) -> bool:
    """Whether all three stamps of a received frame say `seq` (a reused or torn buffer says otherwise)."""
    flat = pixels.reshape(-1)
    return all(int.from_bytes(flat[o : o + 8].tobytes(), "little") == seq for o in _stamp_offsets(flat.size))


def _frame_count(seconds: float, period_s: float) -> int:
    return max(MIN_FRAMES, int(round(seconds / period_s)))


def _sleep_until(deadline_ns: int) -> None:
    """Sleep to about `deadline_ns` (perf_counter_ns), spinning the last fraction of a millisecond."""
    while True:
        left = deadline_ns - time.perf_counter_ns()
        if left <= 0:
            return
        if left > 300_000:
            time.sleep((left - 200_000) / 1e9)


def _timed_loop(fn: Callable[[int], Any], seconds: float) -> list[int]:
    """Call fn(i) back to back for `seconds` (and at least MIN_FRAMES times); per-call durations, ns."""
    for i in range(5):  # warm-up
        fn(i)
    samples: list[int] = []
    end = time.perf_counter_ns() + int(seconds * 1e9)
    i = 0
    while len(samples) < MIN_FRAMES or time.perf_counter_ns() < end:
        t0 = time.perf_counter_ns()
        fn(i)
        samples.append(time.perf_counter_ns() - t0)
        i += 1
    return samples


class _Child:
    """A spawned child process (or, as a fallback, a thread) running `target(conn, *args)`."""

    def __init__(self, target: Callable[..., None], *args: Any, use_thread: bool = False) -> None:
        self.kind = "thread" if use_thread else "process"
        if use_thread:
            self.conn, child_conn = mp.Pipe()
            self.worker: Any = threading.Thread(target=target, args=(child_conn, *args), daemon=True)
        else:
            ctx = mp.get_context("spawn")
            self.conn, child_conn = ctx.Pipe()
            self.worker = ctx.Process(target=target, args=(child_conn, *args), daemon=True)
        self.worker.start()
        if not use_thread:
            child_conn.close()  # the child holds its own end; ours would hide its death from recv()

    def recv(self, timeout: float = CHILD_TIMEOUT_S) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"benchmark {self.kind} did not answer within {timeout:.0f} s")
        msg = self.conn.recv()
        if isinstance(msg, dict) and "error" in msg:
            raise RuntimeError(f"benchmark {self.kind} failed:\n{msg['error']}")
        return msg

    def close(self) -> None:
        self.worker.join(timeout=10)
        if self.kind == "process" and self.worker.is_alive():
            self.worker.terminate()
            self.worker.join(timeout=5)
        self.conn.close()


def _report_errors(conn: Any, body: Callable[[], None]) -> None:
    """Run a child's body; send its traceback to the parent instead of dying silently."""
    try:
        body()
    except BaseException:
        try:
            conn.send({"error": traceback.format_exc()})
        except OSError:
            pass
    finally:
        conn.close()


# ---------------------------------------------------------------------- memcpy


def bench_memcpy(seconds: float, src: np.ndarray, description: str) -> dict[str, Any]:
    dst = np.empty_like(src)
    dst.fill(0)  # fault the pages in before timing
    return _stats(_timed_loop(lambda _i: np.copyto(dst, src), seconds), description)


def bench_memcpy_paced(seconds: float, src: np.ndarray) -> dict[str, Any]:
    """memcpy at the ring and zmq senders' cadence (one copy per SEND_PERIOD_S, sleeping in between).

    Copies after an idle gap are slower than back to back (caches and clocks cool down), so this is
    the memcpy that matches the conditions of the paced cross-process hand-offs.
    """
    dst = np.empty_like(src)
    dst.fill(0)
    samples: list[int] = []
    period_ns = int(SEND_PERIOD_S * 1e9)
    tick = time.perf_counter_ns()
    for i in range(WARMUP_FRAMES + _frame_count(seconds, SEND_PERIOD_S)):
        t0 = time.perf_counter_ns()
        np.copyto(dst, src)
        if i >= WARMUP_FRAMES:
            samples.append(time.perf_counter_ns() - t0)
        tick += period_ns
        _sleep_until(tick)
    return _stats(samples, f"as memcpy, one copy every {SEND_PERIOD_S * 1e3:g} ms (the ring and zmq senders' pace)")


# ---------------------------------------------------------------------- shared-memory ring


def _ring_meta(seq: int, start_ns: int) -> FrameMeta:
    """What the ring benchmarks write with frame `seq` (the import is here: the children import starbridge late)."""
    from starbridge.transport.frame import FrameMeta

    return FrameMeta(
        frame_sequence=seq,
        slot=0,
        pose_sequence=seq,
        engine_time_us=start_ns,  # bench: the sender's perf_counter_ns at send start
        scene_time_s=seq / 30.0,
        position=(0.0, 1.6, -2.0),
        rotation=(0.0, 0.0, 0.0, 1.0),
        vertical_fov_deg=60.0,
        aspect=WIDTH / HEIGHT,
        generation_latency_ms=1.0,
        width=WIDTH,
        height=HEIGHT,
    )


def bench_ring_inproc(seconds: float, src: np.ndarray) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cost split in one process: write alone, then read_slot alone (back to back)."""
    from starbridge.transport.ring import FrameRingReader, FrameRingWriter, ring_path

    path = ring_path(f"bench-transport-{os.getpid()}-inproc")
    writer = FrameRingWriter(path, WIDTH, HEIGHT, slot_count=3)
    reader = None
    try:
        seq = [0]

        def write(_i: int) -> None:
            seq[0] += 1
            writer.write(src, _ring_meta(seq[0], time.perf_counter_ns()))

        write_ns = _timed_loop(write, seconds)
        reader = FrameRingReader(path)
        out = reader.new_buffer()
        out.fill(0)
        slots = reader.layout().slot_count
        torn = [0]

        def read(i: int) -> None:
            if reader.read_slot(i % slots, out) is None:
                torn[0] += 1

        read_ns = _timed_loop(read, seconds)
    finally:
        if reader is not None:
            reader.close()
        writer.close()
    return (
        _stats(write_ns, "FrameRingWriter.write of one frame, back to back, no reader"),
        _stats(read_ns, "FrameRingReader.read_slot into a preallocated buffer, back to back", failed_reads=torn[0]),
    )


def _ring_reader_main(conn: Any, path: str) -> None:
    """Child: busy-poll the ring header, copy each new frame out, time send-start -> copy done."""

    def body() -> None:
        from starbridge.transport.ring import FrameRingReader

        reader = FrameRingReader(path)
        out = reader.new_buffer()
        out.fill(0)
        # Per counted frame: (frame_sequence, send start, saw the new sequence, copy done), perf_counter_ns.
        records: list[tuple[int, int, int, int]] = []
        last = 0
        failed = skipped = corrupt = 0
        conn.send("ready")
        try:
            while True:
                if reader.latest_frame_sequence > last:
                    seen = time.perf_counter_ns()
                    info = reader.read_latest(out, newer_than=last)
                    t1 = time.perf_counter_ns()
                    if info is None:  # torn or in progress every attempt: poll again
                        failed += 1
                        continue
                    seq = info.meta.frame_sequence
                    skipped += seq - last - 1
                    last = seq
                    if not frame_intact(out, seq):
                        corrupt += 1
                    if seq > WARMUP_FRAMES:
                        records.append((seq, info.meta.engine_time_us, seen, t1))
                elif reader.writer_closed:
                    break
        finally:
            reader.close()
        conn.send({"records": records, "failed_reads": failed, "skipped": skipped, "corrupt": corrupt})

    _report_errors(conn, body)


def bench_ring_handoff(seconds: float, src: np.ndarray) -> dict[str, Any]:
    from starbridge.transport.ring import FrameRingWriter, ring_path

    path = ring_path(f"bench-transport-{os.getpid()}")
    writer = FrameRingWriter(path, WIDTH, HEIGHT, slot_count=3)
    child = None
    try:
        frame = src.copy()  # write() copies it into the ring: reusing it at once is safe
        child = _Child(_ring_reader_main, str(path))
        child.recv()  # "ready": the reader has mapped the ring
        total = WARMUP_FRAMES + _frame_count(seconds, SEND_PERIOD_S)
        period_ns = int(SEND_PERIOD_S * 1e9)
        tick = time.perf_counter_ns()
        write_end = {}
        for seq in range(1, total + 1):
            stamp_frame(frame, seq)
            t0 = time.perf_counter_ns()
            writer.write(frame, _ring_meta(seq, t0))
            write_end[seq] = time.perf_counter_ns()
            tick += period_ns
            _sleep_until(tick)
        _sleep_until(time.perf_counter_ns() + 20_000_000)  # let the reader take the last frame
        writer.close()  # marks the ring closed (the reader's stop signal) and removes the file
        result = child.recv()
    finally:
        writer.close()
        if child is not None:
            child.close()
    records = result["records"]
    split = {
        "write": _stats([write_end[q] - t0 for q, t0, _, _ in records], "writer.write, in the sender"),
        "notice": _stats(
            [max(seen - write_end[q], 0) for q, _, seen, _ in records],
            "write returned -> reader saw the new latest_frame_sequence (0 if it saw it before write returned)",
        ),
        "read": _stats([t1 - seen for _, _, seen, t1 in records], "read_latest into the reader's buffer"),
    }
    return _stats(
        [t1 - t0 for _, t0, _, t1 in records],
        "writer.write in this process -> reader process has a seqlock-checked copy in its own buffer "
        "(busy-polling the header's latest frame sequence)",
        sent=total - WARMUP_FRAMES,
        skipped_frames=result["skipped"],
        failed_reads=result["failed_reads"],
        corrupt_frames=result["corrupt"],
        split={k: {f: v[f] for f in ("p50_ms", "p95_ms", "mean_ms", "n", "description")} for k, v in split.items()},
    )


# ---------------------------------------------------------------------- ZeroMQ inline


def _frame_ready(seq: int, start_ns: int) -> Any:
    from starbridge.protocol import engine_pb2

    return engine_pb2.FrameReady(
        frame_sequence=seq,
        slot=0,
        pose_sequence=seq,
        engine_time_us=start_ns,  # bench: the sender's perf_counter_ns at send start
        pose=engine_pb2.Pose(
            position=engine_pb2.Vec3(x=0.0, y=1.6, z=-2.0), rotation=engine_pb2.Quat(x=0.0, y=0.0, z=0.0, w=1.0)
        ),
        vertical_fov_deg=60.0,
        aspect=WIDTH / HEIGHT,
        scene_time_s=seq / 30.0,
        generation_latency_ms=1.0,
        width=WIDTH,
        height=HEIGHT,
    )


def _zmq_dealer_main(conn: Any, start_delay_s: float = 0.0) -> None:
    """Child: a DEALER that says hello, then receives inline frames until an empty message.

    `start_delay_s`: wait this long after Hello before receiving (frames queue up meanwhile: a test of
    the sender's buffer reuse)."""

    def body() -> None:
        import zmq

        from starbridge.protocol import engine_pb2
        from starbridge.transport.convert import protocol_version

        endpoint = conn.recv()
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        try:
            hello = engine_pb2.EngineMessage(
                hello=engine_pb2.Hello(
                    protocol=protocol_version(),
                    engine_name="bench_transport",
                    width=WIDTH,
                    height=HEIGHT,
                    fps=1.0 / SEND_PERIOD_S,
                    transport=engine_pb2.FRAME_TRANSPORT_INLINE,
                )
            )
            sock.send(hello.SerializeToString())
            if start_delay_s > 0:
                time.sleep(start_delay_s)
            out = np.empty(FRAME_SHAPE, np.uint8)
            out.fill(0)
            envelope = engine_pb2.BackendMessage()
            handoff: list[int] = []
            with_copy: list[int] = []
            last = 0
            skipped = corrupt = checked = 0
            while True:
                parts = sock.recv_multipart(copy=False)
                t1 = time.perf_counter_ns()
                if len(parts) == 1:  # stop
                    break
                envelope.ParseFromString(parts[0].bytes)
                frame = envelope.frame
                pixels = np.frombuffer(parts[1].buffer, dtype=np.uint8)
                if pixels.size != frame.width * frame.height * 4:
                    corrupt += 1
                    continue
                np.copyto(out, pixels.reshape(frame.height, frame.width, 4))
                t2 = time.perf_counter_ns()
                seq = frame.frame_sequence
                skipped += seq - last - 1
                last = seq
                checked += 1
                if not frame_intact(out, seq):
                    corrupt += 1
                if seq > WARMUP_FRAMES:
                    handoff.append(t1 - frame.engine_time_us)
                    with_copy.append(t2 - frame.engine_time_us)
        finally:
            sock.close(linger=0)
            ctx.term()
        conn.send({"handoff_ns": handoff, "copy_ns": with_copy, "skipped": skipped, "corrupt": corrupt,
                   "checked": checked})  # fmt: skip

    _report_errors(conn, body)


def bench_zmq_inline(
    seconds: float, src: np.ndarray, receiver_delay_s: float = 0.0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """ROUTER here -> DEALER in another process, zero-copy. `receiver_delay_s`: the receiver starts reading
    that late (frames queue in ZeroMQ meanwhile; see `_zmq_dealer_main`)."""
    import zmq

    from starbridge.protocol import engine_pb2

    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    child = None
    try:
        router.bind("tcp://127.0.0.1:*")
        endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        child = _Child(_zmq_dealer_main, receiver_delay_s)
        child.conn.send(endpoint)
        if not router.poll(int(CHILD_TIMEOUT_S * 1000), zmq.POLLIN):
            raise TimeoutError("the zmq DEALER process never said hello")
        identity, hello_bytes = router.recv_multipart()
        hello = engine_pb2.EngineMessage.FromString(hello_bytes)
        if not hello.HasField("hello"):
            raise RuntimeError(f"expected Hello from the DEALER, got {hello}")
        # Zero-copy sends hand ZeroMQ the array itself, and ZeroMQ reads it until the last byte is on the
        # wire, which may be long after send_multipart returned (a slow or busy receiver). So each buffer's
        # MessageTracker is waited for before the buffer is written again; rotating through a few buffers
        # keeps that wait off the clock unless the receiver really falls behind.
        frames = [src.copy() for _ in range(ZMQ_BUFFERS)]
        trackers: list[zmq.MessageTracker | None] = [None] * ZMQ_BUFFERS
        total = WARMUP_FRAMES + _frame_count(seconds, SEND_PERIOD_S)
        period_ns = int(SEND_PERIOD_S * 1e9)
        tick = time.perf_counter_ns()
        for seq in range(1, total + 1):
            i = seq % ZMQ_BUFFERS
            in_flight = trackers[i]
            if in_flight is not None:
                try:
                    in_flight.wait(CHILD_TIMEOUT_S)
                except zmq.NotDone:
                    late = seq - ZMQ_BUFFERS
                    raise TimeoutError(f"frame {late} still in flight after {CHILD_TIMEOUT_S:g} s") from None
            frame = frames[i]
            stamp_frame(frame, seq)
            t0 = time.perf_counter_ns()
            envelope = engine_pb2.BackendMessage(frame=_frame_ready(seq, t0)).SerializeToString()
            trackers[i] = router.send_multipart([identity, envelope, frame], copy=False, track=True)
            tick += period_ns
            _sleep_until(tick)
        router.send_multipart([identity, b""])
        result = child.recv()
    finally:
        router.close(linger=0)
        ctx.term()
        if child is not None:
            child.close()
    extra = dict(sent=total - WARMUP_FRAMES, skipped_frames=result["skipped"], corrupt_frames=result["corrupt"],
                 checked_frames=result["checked"])  # fmt: skip
    return (
        _stats(
            result["handoff_ns"],
            "ROUTER send_multipart([identity, BackendMessage{FrameReady}, pixels], copy=False), envelope "
            "serialization included -> DEALER in another process has the message (recv_multipart copy=False)",
            **extra,
        ),
        _stats(result["copy_ns"], "as zmq_inline_handoff, until the pixels are copied into a preallocated buffer"),
    )


# ---------------------------------------------------------------------- gRPC stream


def _grpc_client_main(conn: Any, seconds: float) -> None:
    """Child: stream poses to Bridge/Stream one at a time, time each frame's arrival."""

    def body() -> None:
        import grpc

        from starbridge.protocol import bridge_pb2_grpc, engine_pb2

        target = conn.recv()
        channel = grpc.insecure_channel(target, options=GRPC_OPTIONS)
        try:
            grpc.channel_ready_future(channel).result(timeout=CHILD_TIMEOUT_S)
            stub = bridge_pb2_grpc.BridgeStub(channel)
            requests: queue.Queue[Any] = queue.Queue()
            responses = stub.Stream(iter(requests.get, None))
            out = np.empty(FRAME_SHAPE, np.uint8)
            out.fill(0)
            handoff: list[int] = []
            with_copy: list[int] = []
            roundtrip: list[int] = []
            corrupt = 0
            end = None
            seq = 0
            while end is None or len(roundtrip) < MIN_FRAMES or time.perf_counter_ns() < end:
                seq += 1
                t0 = time.perf_counter_ns()
                pose = engine_pb2.CameraPose(
                    sequence=seq,
                    engine_time_us=t0 // 1000,
                    pose=engine_pb2.Pose(
                        position=engine_pb2.Vec3(x=0.0, y=1.6, z=-2.0),
                        rotation=engine_pb2.Quat(x=0.0, y=0.0, z=0.0, w=1.0),
                    ),
                    vertical_fov_deg=60.0,
                    aspect=WIDTH / HEIGHT,
                )
                requests.put(engine_pb2.EngineMessage(pose=pose))
                response = next(responses)
                t1 = time.perf_counter_ns()
                frame = response.message.frame
                pixels = np.frombuffer(response.pixels, dtype=np.uint8)
                if frame.pose_sequence != seq or pixels.size != FRAME_BYTES:
                    corrupt += 1
                    continue
                np.copyto(out, pixels.reshape(FRAME_SHAPE))
                t2 = time.perf_counter_ns()
                if seq > WARMUP_FRAMES:
                    handoff.append(t1 - frame.engine_time_us)
                    with_copy.append(t2 - frame.engine_time_us)
                    roundtrip.append(t1 - t0)
                elif seq == WARMUP_FRAMES:
                    end = time.perf_counter_ns() + int(seconds * 1e9)
            requests.put(None)  # ends the request stream; the servicer returns
            for _ in responses:
                pass
        finally:
            channel.close()
        conn.send({"handoff_ns": handoff, "copy_ns": with_copy, "roundtrip_ns": roundtrip, "corrupt": corrupt})

    _report_errors(conn, body)


def _grpc_servicer(frame_bytes: bytes) -> Any:
    from starbridge.protocol import bridge_pb2, bridge_pb2_grpc, engine_pb2

    class BenchBridge(bridge_pb2_grpc.BridgeServicer):
        """Only Stream: one frame (the same pixels) for every pose received."""

        def Stream(self, request_iterator, context):  # noqa: N802 (grpc's name)
            for request in request_iterator:
                if not request.HasField("pose"):
                    continue
                t0 = time.perf_counter_ns()
                frame = _frame_ready(request.pose.sequence, t0)
                yield bridge_pb2.StreamResponse(message=engine_pb2.BackendMessage(frame=frame), pixels=frame_bytes)

    return BenchBridge()


def _run_grpc(seconds: float, frame_bytes: bytes, use_thread: bool) -> dict[str, Any]:
    from concurrent import futures

    import grpc

    from starbridge.protocol import bridge_pb2_grpc

    child = _Child(_grpc_client_main, seconds, use_thread=use_thread)  # started before grpc threads exist
    pool = futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="bench-grpc")
    server = grpc.server(pool, options=GRPC_OPTIONS)
    try:
        bridge_pb2_grpc.add_BridgeServicer_to_server(_grpc_servicer(frame_bytes), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        child.conn.send(f"127.0.0.1:{port}")
        return child.recv(timeout=CHILD_TIMEOUT_S + 2 * seconds + 60)
    finally:
        server.stop(grace=1.0).wait(timeout=5)
        child.close()


def bench_grpc_stream(seconds: float, src: np.ndarray) -> tuple[dict[str, Any], ...]:
    frame_bytes = src.tobytes()
    client = "separate process (multiprocessing spawn)"
    try:
        result = _run_grpc(seconds, frame_bytes, use_thread=False)
    except (RuntimeError, TimeoutError, OSError, EOFError) as exc:
        print(f"grpc client process failed ({exc}); measuring with the client in a thread", file=sys.stderr)
        client = f"thread in the server's process (the process client failed: {exc})"
        result = _run_grpc(seconds, frame_bytes, use_thread=True)
    extra = dict(client=client, corrupt_frames=result["corrupt"])
    return (
        _stats(
            result["handoff_ns"],
            "servicer builds StreamResponse{BackendMessage{FrameReady}, pixels} -> client in another process "
            "has the response (next() on the response stream)",
            **extra,
        ),
        _stats(result["copy_ns"], "as grpc_stream_handoff, until the pixels are copied into a preallocated buffer"),
        _stats(result["roundtrip_ns"], "client sends a CameraPose -> has the frame for it (lockstep)", **extra),
    )


# ---------------------------------------------------------------------- report


def _versions() -> dict[str, str]:
    import google.protobuf
    import grpc
    import zmq
    from google.protobuf.internal import api_implementation

    import starbridge

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "protobuf_implementation": api_implementation.Type(),
        "starbridge": getattr(starbridge, "__version__", "unknown"),
    }


def _machine() -> dict[str, Any]:
    try:
        return dict(machine_info())
    except Exception as exc:  # never lose a run to the machine description
        fallback = _fallback_machine()
        fallback["machine_info_error"] = repr(exc)
        return fallback


def _fallback_machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "source": "bench_transport fallback (bench._machine.machine_info failed)",
    }


def _targets(m: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    memcpy = m["memcpy"]["p50_ms"]
    ring_limit = RING_TARGET_FACTOR * memcpy
    ring = m["ring_handoff"]["p50_ms"]
    paced = m["memcpy_paced"]["p50_ms"]
    zmq_p50 = m["zmq_inline_handoff"]["p50_ms"]
    return {
        "ring_handoff": {
            "design": "frame hand-off, shared memory, 1280x720 RGBA: p50 within 3x of a plain memcpy of the frame",
            "rule": f"p50 <= {RING_TARGET_FACTOR:g} x memcpy p50",
            "limit_ms": ring_limit,
            "p50_ms": ring,
            "pass": bool(ring <= ring_limit),
            "note": "pass/fail against the back-to-back memcpy (the reference); the hand-off is paced, see below",
            "ratio_to_memcpy_paced": ring / paced,
            "pass_vs_memcpy_paced": bool(ring <= RING_TARGET_FACTOR * paced),
        },
        "zmq_inline_handoff": {
            "design": "frame hand-off, ZMQ inline: p50 <= 2 ms on loopback",
            "rule": f"p50 <= {ZMQ_TARGET_MS:g} ms",
            "limit_ms": ZMQ_TARGET_MS,
            "p50_ms": zmq_p50,
            "pass": bool(zmq_p50 <= ZMQ_TARGET_MS),
        },
        "grpc_stream_handoff": {
            "design": "none (reported as a ratio to memcpy)",
            "rule": None,
            "limit_ms": None,
            "p50_ms": m["grpc_stream_handoff"]["p50_ms"],
            "pass": None,
        },
    }


def _table(report: dict[str, Any]) -> str:
    m, ratios, targets = report["measurements"], report["ratios"], report["targets"]
    head = f"{'measurement':<36} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'n':>6} {'x memcpy':>9}  "
    head += f"{'target':<31} result"
    lines = [head, "-" * len(head)]
    for key, label in ROWS:
        if key not in m:
            continue
        s = m[key]
        t = targets.get(key)
        if t is None:
            target, result = "", ""
        elif t["rule"] is None:
            target, result = "(none in docs/architecture.md)", "-"
        else:
            target = f"{t['rule']} ({t['limit_ms']:.3f})" if key == "ring_handoff" else t["rule"]
            result = "PASS" if t["pass"] else "FAIL"
        lines.append(
            f"{label:<36} {s['p50_ms']:>8.3f} {s['p95_ms']:>8.3f} {s['mean_ms']:>8.3f} {s['n']:>6} "
            f"{ratios[key]:>8.2f}x  {target:<31} {result}".rstrip()
        )
    return "\n".join(lines)


def run(out_dir: Path, seconds: float = 3.0) -> dict[str, Any]:
    """Run every measurement, print the table, write out_dir/transport-<hostname>.json; returns the report."""
    out_dir = Path(out_dir)
    seconds = float(seconds)
    started = time.perf_counter()
    src = _make_frame()
    m: dict[str, dict[str, Any]] = {}

    def step(name: str) -> None:
        print(f"  {name} ...", file=sys.stderr, flush=True)

    step("memcpy")
    m["memcpy"] = bench_memcpy(seconds, src, "np.copyto between two preallocated 1280x720x4 uint8 arrays")
    step("ring, in-process split")
    m["ring_write_inproc"], m["ring_read_inproc"] = bench_ring_inproc(seconds, src)
    step("ring, cross-process")
    m["ring_handoff"] = bench_ring_handoff(seconds, src)
    step("zmq inline")
    m["zmq_inline_handoff"], m["zmq_inline_handoff_copy"] = bench_zmq_inline(seconds, src)
    step("grpc stream")
    (m["grpc_stream_handoff"], m["grpc_stream_handoff_copy"], m["grpc_stream_roundtrip"]) = bench_grpc_stream(
        seconds, src
    )
    step("memcpy, paced")
    m["memcpy_paced"] = bench_memcpy_paced(seconds, src)
    step("memcpy again")
    m["memcpy_end"] = bench_memcpy(seconds, src, "as memcpy, measured again at the end of the run (drift check)")

    memcpy_p50 = m["memcpy"]["p50_ms"]
    report: dict[str, Any] = {
        "benchmark": "transport",
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "frame": {"width": WIDTH, "height": HEIGHT, "format": "RGBA8", "bytes": FRAME_BYTES},
        "settings": {
            "seconds": seconds,
            "min_frames": MIN_FRAMES,
            "warmup_frames": WARMUP_FRAMES,
            "send_period_ms": SEND_PERIOD_S * 1e3,
            "multiprocessing_start_method": "spawn",
            "clock": "time.perf_counter_ns (CLOCK_MONOTONIC, shared by all processes on Linux)",
            "grpc_client": m["grpc_stream_handoff"]["client"],
            "grpc_max_message_bytes": GRPC_MAX_MESSAGE_BYTES,
        },
        "machine": _machine(),
        "versions": _versions(),
        "measurements": m,
        "ratios": {k: v["p50_ms"] / memcpy_p50 for k, v in m.items()},
        "ratio_basis": "p50 of the measurement / p50 of memcpy (the reference, measured at the start of this run)",
        "targets": _targets(m),
        "wall_s": round(time.perf_counter() - started, 2),
    }

    print()
    print(
        f"StarBridge transport benchmark: {WIDTH}x{HEIGHT} RGBA8 frame ({FRAME_BYTES:,} bytes), "
        f"~{seconds:g} s per measurement"
    )
    mach = report["machine"]
    v = report["versions"]
    print(
        f"host {mach.get('hostname', socket.gethostname())}, {os.cpu_count()} CPUs; numpy {v['numpy']}, "
        f"pyzmq {v['pyzmq']} (libzmq {v['libzmq']}), grpcio {v['grpcio']}, protobuf {v['protobuf']} "
        f"({v['protobuf_implementation']})"
    )
    print()
    print(_table(report))
    split = m["ring_handoff"]["split"]
    ring_t = report["targets"]["ring_handoff"]
    print()
    print(
        f"ring hand-off vs memcpy paced like the senders: {ring_t['ratio_to_memcpy_paced']:.2f}x "
        f"({'PASS' if ring_t['pass_vs_memcpy_paced'] else 'FAIL'} against 3x of that)"
    )
    print(
        "ring hand-off split (p50 ms): "
        + ", ".join(f"{k} {v['p50_ms']:.3f}" for k, v in split.items())
        + " (write and read as seen inside the cross-process run)"
    )
    print(f"grpc client: {report['settings']['grpc_client']}")

    out_dir.mkdir(parents=True, exist_ok=True)
    host = host_tag()
    path = out_dir / f"transport-{host}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3)")
    add_out_argument(p)
    args = p.parse_args(argv)
    run(out_dir=out_dir(args.out), seconds=args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
