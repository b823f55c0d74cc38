"""Rolling counters of one session: poses in, frames out, latency percentiles, delivered fps."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

#: How many recent samples percentiles and rates are computed over.
WINDOW = 256


class SessionStats:
    """Thread-safe; written by the session threads, read by the stats RPC."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.opened = time.monotonic()
        self.poses_received = 0
        self.poses_coalesced = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self._latency_ms: deque[float] = deque(maxlen=WINDOW)
        self._generation_ms: deque[float] = deque(maxlen=WINDOW)
        self._sent_at: deque[float] = deque(maxlen=WINDOW)

    def pose(self, coalesced: bool = False) -> None:
        """A pose arrived; `coalesced`: a newer one came with it, so only the newer one was used."""
        with self._lock:
            self.poses_received += 1
            self.poses_coalesced += coalesced

    def dropped(self, n: int = 1) -> None:
        with self._lock:
            self.frames_dropped += n

    def generated(self, ms_per_frame: float) -> None:
        with self._lock:
            self._generation_ms.append(ms_per_frame)

    def sent(self, latency_ms: float) -> None:
        with self._lock:
            self.frames_sent += 1
            self._latency_ms.append(latency_ms)
            self._sent_at.append(time.monotonic())

    @staticmethod
    def _pct(values: deque[float], q: float) -> float:
        return float(np.percentile(np.fromiter(values, float), q)) if values else 0.0

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._sent_at if now - t <= 2.0]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
            return {
                "poses_received": self.poses_received,
                "poses_coalesced": self.poses_coalesced,
                "frames_sent": self.frames_sent,
                "frames_dropped": self.frames_dropped,
                "fps_measured": fps,
                "latency_p50_ms": self._pct(self._latency_ms, 50),
                "latency_p95_ms": self._pct(self._latency_ms, 95),
                "generation_ms_p50": self._pct(self._generation_ms, 50),
                "uptime_s": now - self.opened,
            }
