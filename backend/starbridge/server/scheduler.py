"""Block scheduler: when the next block of frames will be shown, and when to start making it.

The generator makes frames in blocks of `block_frames`. For each block the scheduler picks the
display times (one frame interval apart, following the previous block), so the session can
predict the camera pose at each of them and the scene time they show. It starts generating
just in time: `generation estimate + margin` before the block's first display time, so the poses
it predicts from are as fresh as possible. Frames that are ready more than a frame interval
after their display time are stale and dropped (the newest one is always delivered).

All times are monotonic seconds (time.monotonic).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SchedulerConfig:
    fps: float
    block_frames: int = 1
    #: Extra time allowed for generation beyond the running estimate, seconds.
    margin_s: float = 0.003
    #: Weight of the newest generation time in the running estimate.
    ema: float = 0.2


class BlockScheduler:
    def __init__(self, config: SchedulerConfig, now: float) -> None:
        if config.fps <= 0 or config.block_frames < 1:
            raise ValueError(f"bad scheduler config {config}")
        self.config = config
        self.frame_interval = 1.0 / config.fps
        self.generation_estimate_s = 0.0  # per block
        self._next_display = now

    def reset(self, now: float) -> None:
        """Forget the schedule (after a seek): the next block is shown as soon as it is ready."""
        self._next_display = now

    def start_time(self, now: float) -> float:
        """When generation of the next block should start (may be <= now: start at once)."""
        return self._first_display(now) - self.generation_estimate_s - self.config.margin_s

    def _first_display(self, now: float) -> float:
        earliest = now + self.generation_estimate_s + self.config.margin_s
        return max(self._next_display, earliest)

    def plan(self, now: float) -> list[float]:
        """Display times of the next block; advances the schedule."""
        first = self._first_display(now)
        times = [first + k * self.frame_interval for k in range(self.config.block_frames)]
        self._next_display = times[-1] + self.frame_interval
        return times

    def observe_generation(self, seconds: float) -> None:
        """Fold one block's measured generation time into the estimate."""
        if self.generation_estimate_s == 0.0:
            self.generation_estimate_s = seconds
        else:
            a = self.config.ema
            self.generation_estimate_s = (1 - a) * self.generation_estimate_s + a * seconds

    def is_stale(self, display_time: float, now: float) -> bool:
        """True when a frame for `display_time` is ready more than a frame interval too late."""
        return now - display_time > self.frame_interval
