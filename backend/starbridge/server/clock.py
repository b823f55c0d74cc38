"""The scene clock of one session: play, pause (a frozen instant the camera can roam in), seek, speed.

Scene time is a function of the backend's monotonic wall clock:
``scene = anchor_scene + speed * (wall - anchor_wall)`` while playing, ``anchor_scene`` while
paused; looped into [0, duration) by default. Every change re-anchors at the current instant,
so time never jumps except on seek.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from ..errors import InvalidArgument

#: Fastest playback speed accepted (scene seconds per wall second).
MAX_SPEED = 8.0


@dataclass(frozen=True)
class ClockState:
    """A snapshot, for stats."""

    scene_time_s: float
    playing: bool
    speed: float


class SceneClock:
    """Thread-safe scene clock. `now` is a monotonic time source in seconds (time.monotonic)."""

    def __init__(self, duration_s: float, *, loop: bool = True, now=time.monotonic) -> None:
        if not (math.isfinite(duration_s) and duration_s > 0):
            raise InvalidArgument(f"scene duration must be > 0 s, got {duration_s}", field="duration_s")
        self.duration_s = duration_s
        self.loop = loop
        self._now = now
        self._lock = threading.Lock()
        self._anchor_wall = now()
        self._anchor_scene = 0.0
        self._speed = 1.0
        self._playing = True

    def _wrap(self, t: float) -> float:
        if self.loop:
            return t % self.duration_s
        return min(max(t, 0.0), self.duration_s)

    def _raw(self, wall: float) -> float:
        if not self._playing:
            return self._anchor_scene
        return self._anchor_scene + self._speed * (wall - self._anchor_wall)

    def scene_time(self, wall: float | None = None) -> float:
        """Scene time in seconds at monotonic wall time `wall` (default: now), wrapped."""
        with self._lock:
            return self._wrap(self._raw(self._now() if wall is None else wall))

    def _reanchor(self) -> None:
        wall = self._now()
        self._anchor_scene = self._wrap(self._raw(wall))
        self._anchor_wall = wall

    def play(self) -> None:
        with self._lock:
            self._reanchor()
            self._playing = True

    def pause(self) -> None:
        with self._lock:
            self._reanchor()
            self._playing = False

    def seek(self, time_s: float) -> None:
        if not math.isfinite(time_s):
            raise InvalidArgument(f"time.time_s must be a finite number of seconds, got {time_s}", field="time.time_s")
        with self._lock:
            self._anchor_wall = self._now()
            self._anchor_scene = self._wrap(time_s)

    def set_speed(self, speed: float) -> None:
        if not (math.isfinite(speed) and 0.0 < speed <= MAX_SPEED):
            raise InvalidArgument(
                f"time.speed must be in (0, {MAX_SPEED:g}], got {speed} (use ACTION_PAUSE to stop the clock)",
                field="time.speed",
            )
        with self._lock:
            self._reanchor()
            self._speed = float(speed)

    def state(self) -> ClockState:
        with self._lock:
            return ClockState(self._wrap(self._raw(self._now())), self._playing, self._speed)
