"""Soak benchmark: many engine sessions against one real `starbridge serve` for minutes.

    python bench/bench_soak.py [--sessions 16] [--seconds 180] [--out DIR]    # from the repository root

It starts the backend as its own process (default 512x288 @ 30 fps, the explicit generator, a scene
store in a temporary folder) and connects `--sessions` engine clients over the real engine channel
(shared-memory frames), each flying the "tour" path at 30 poses/s from one client thread, as engines
on the same machine would. With more sessions than the cores can serve, the backend must stay fair and
bounded: every session keeps getting frames (a fair share of the machine), pose-to-frame latency stays
bounded, no session is lost to a heartbeat timeout, and the backend's memory and open files stay flat.

Reported: per-session delivered frames/s and pose-to-frame latency p50/p95 (engine clock) over the
measured window (after a warm-up), the errors each session saw, and the backend's RSS, open file
descriptors and threads sampled through the run (first and last sample after the warm-up). Checks
(PASS/FAIL in the table, nothing raises): no session lost, fps spread (min/max) >= 0.5, p95 latency
<= 1000 ms, RSS growth <= 2 % over the last two thirds of the run (sessions allocate their work buffers
during the first minute), and the fd count unchanged between the first and last sample.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import socket
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

from bench._machine import add_out_argument, host_tag, machine_info, out_dir  # noqa: E402
from starbridge.client.engine import EngineClient  # noqa: E402
from starbridge.client.paths import camera_pose, path_period  # noqa: E402
from starbridge.errors import StarBridgeError  # noqa: E402

POSE_HZ = 30.0
FOV_DEG = 60.0
WARMUP_S = 10.0
SAMPLE_EVERY_S = 5.0
#: Pass bounds of the checks.
MIN_FPS_SPREAD = 0.5
MAX_P95_MS = 1000.0
MAX_RSS_GROWTH = 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_sample(pid: int) -> dict[str, float]:
    """RSS (MiB), open fds and threads of a process, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


class _Flight:
    """One engine session: its client, the frames it got and the errors it saw."""

    def __init__(self, endpoint: str, index: int, count: int) -> None:
        self.client = EngineClient(endpoint)
        self.offset = index * path_period("tour") / count  # spread the cameras along the path
        self.sequence = 0
        self.frames: list[tuple[float, float]] = []  # (receive time, latency ms)
        self.errors: list[str] = []
        self.lost = ""

    def hello(self) -> None:
        self.client.hello(transport="shm", engine_name="bench-soak", timeout_s=60.0)

    def tick(self, t: float) -> None:
        if self.lost:
            return
        self.sequence += 1
        position, rotation = camera_pose("tour", t + self.offset)
        try:
            self.client.send_pose(self.sequence, position, rotation, FOV_DEG)
            frame = self.client.receive(timeout_s=0.0, newest=True)
        except StarBridgeError as exc:  # fatal: the session is gone
            self.lost = exc.message
            return
        if self.client.error_count > len(self.errors) and self.client.last_error is not None:
            self.errors.append(self.client.last_error.message)
        if frame is not None:
            self.frames.append((time.monotonic(), (frame.received_time_us - frame.meta.engine_time_us) / 1000.0))


def run(out_dir: Path, seconds: float = 180.0, sessions: int = 16) -> dict[str, Any]:
    """Run the soak, print the table, write out_dir/soak-<hostname>.json; returns the report."""
    logging.getLogger("starbridge").setLevel(logging.ERROR)  # each session's overload notice goes in the JSON
    grpc_port, engine_port = _free_port(), _free_port()
    endpoint = f"tcp://127.0.0.1:{engine_port}"
    with tempfile.TemporaryDirectory(prefix="starbridge-soak-") as store:
        cmd = [sys.executable, "-m", "starbridge.cli", "serve", "--store", store, "--grpc-port", str(grpc_port),
               "--engine-port", str(engine_port), "--no-viewer", "--max-sessions", str(sessions)]  # fmt: skip
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "backend"))
        backend = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            report = _soak(backend, endpoint, seconds, sessions)
        finally:
            backend.terminate()
            try:
                _, err = backend.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                backend.kill()
                _, err = backend.communicate()
        report["backend_exit_code"] = backend.returncode
        report["backend_log_tail"] = err.splitlines()[-5:]
    _print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    host = host_tag()
    path = out_dir / f"soak-{host}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return report


def _soak(backend: subprocess.Popen, endpoint: str, seconds: float, count: int) -> dict[str, Any]:
    flights = [_Flight(endpoint, k, count) for k in range(count)]
    for f in flights:
        f.hello()  # the first one waits while the backend builds the demo scene
    start = time.monotonic()
    measured_from = start + WARMUP_S
    end = measured_from + seconds
    samples: list[dict[str, float]] = []
    next_sample = measured_from
    next_tick = start
    while (now := time.monotonic()) < end:
        if backend.poll() is not None:
            raise RuntimeError(f"the backend exited with code {backend.returncode} during the soak")
        for f in flights:
            f.tick(now - start)
        if now >= next_sample:
            samples.append({"t_s": round(now - measured_from, 1), **_proc_sample(backend.pid)})
            next_sample += SAMPLE_EVERY_S
        next_tick += 1.0 / POSE_HZ
        time.sleep(max(0.0, next_tick - time.monotonic()))
    samples.append({"t_s": round(time.monotonic() - measured_from, 1), **_proc_sample(backend.pid)})
    per_session = []
    for k, f in enumerate(flights):
        window = [lat for t, lat in f.frames if t >= measured_from]
        per_session.append({
            "session": k,
            "fps": len(window) / seconds,
            "latency_p50_ms": float(np.percentile(window, 50)) if window else None,
            "latency_p95_ms": float(np.percentile(window, 95)) if window else None,
            "errors": f.errors,
            "lost": f.lost,
        })  # fmt: skip
        f.client.close()
    fps = [s["fps"] for s in per_session]
    p95 = [s["latency_p95_ms"] for s in per_session if s["latency_p95_ms"] is not None]
    # Memory: sessions allocate their work buffers over the first minute (each renders only a few frames
    # a second), so flat means no growth over the last two thirds of the run.
    first, last = samples[0], samples[-1]
    steady = samples[len(samples) // 3]
    checks = {
        "no_session_lost": not any(s["lost"] for s in per_session) and len(p95) == count,
        "fair_share": min(fps) >= MIN_FPS_SPREAD * max(fps) if max(fps) > 0 else False,
        "bounded_latency": bool(p95) and max(p95) <= MAX_P95_MS,
        "rss_flat": last["rss_mib"] <= steady["rss_mib"] * (1 + MAX_RSS_GROWTH),
        "fds_flat": last["fds"] == first["fds"],
    }
    return {
        "benchmark": "soak",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {
            "sessions": count,
            "seconds": seconds,
            "warmup_s": WARMUP_S,
            "pose_hz": POSE_HZ,
            "size": "512x288 (serve default)",
            "fps": "30 (serve default)",
            "generator": "explicit-fill",
            "transport": "shared memory",
        },  # fmt: skip
        "summary": {
            "fps_min": min(fps),
            "fps_mean": float(np.mean(fps)),
            "fps_max": max(fps),
            "latency_p95_ms_worst": max(p95) if p95 else None,
            "latency_p50_ms_median": float(
                np.median([s["latency_p50_ms"] for s in per_session if s["latency_p50_ms"] is not None] or [np.nan])
            ),
            "sessions_lost": sum(bool(s["lost"]) for s in per_session),
            "rss_mib_first": first["rss_mib"],
            "rss_mib_steady": steady["rss_mib"],
            "rss_mib_last": last["rss_mib"],
            "rss_steady_from_s": steady["t_s"],
            "fds_first": first["fds"],
            "fds_last": last["fds"],
            "threads_first": first["threads"],
            "threads_last": last["threads"],
        },  # fmt: skip
        "checks": checks,
        "sessions": per_session,
        "samples": samples,
    }


def _print(report: dict[str, Any]) -> None:
    s, st = report["summary"], report["settings"]
    print(f"\nStarBridge soak: {st['sessions']} sessions x {st['seconds']:g} s, {st['size']} @ {st['fps']}, "
          f"{st['generator']}, {st['transport']}")  # fmt: skip
    rows = [
        ("frames/s per session (min / mean / max)", f"{s['fps_min']:.1f} / {s['fps_mean']:.1f} / {s['fps_max']:.1f}"),
        ("pose-to-frame latency p95, worst session", f"{s['latency_p95_ms_worst']:.0f} ms"),
        ("pose-to-frame latency p50, median session", f"{s['latency_p50_ms_median']:.0f} ms"),
        ("sessions lost", str(s["sessions_lost"])),
        (
            "backend RSS first / at {:g} s / last".format(s["rss_steady_from_s"]),
            f"{s['rss_mib_first']:.0f} / {s['rss_mib_steady']:.0f} / {s['rss_mib_last']:.0f} MiB",
        ),
        ("backend open fds first / last", f"{s['fds_first']} / {s['fds_last']}"),
        ("backend threads first / last", f"{s['threads_first']} / {s['threads_last']}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    for name, ok in report["checks"].items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    errors = sorted({e for sess in report["sessions"] for e in sess["errors"]})
    if errors:
        print("  non-fatal errors seen: " + " | ".join(errors[:3]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--sessions", type=int, default=16, help="engine sessions at once (default 16)")
    p.add_argument("--seconds", type=float, default=180.0, help="measured time after a 10 s warm-up (default 180)")
    add_out_argument(p)
    args = p.parse_args(argv)
    run(out_dir=out_dir(args.out), seconds=args.seconds, sessions=args.sessions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
