"""Block scheduler: when the next block of frames will be shown, and when to start making it.

The generator makes frames in blocks of `block_frames`. For each block the scheduler picks the
display times (one frame interval apart, following the previous block), so the session can
predict the camera pose at each of them and the scene time they show. It starts generating
just in time: `generation estimate + margin` before the block's first display time, so the poses
it predicts from are as fresh as possible. Frames that are ready more than a frame interval
after their display time are stale and dropped (the newest one is always delivered).

A block that will be ready at most `catch_up_frames` frame intervals after its place in the schedule keeps
that place (it starts at once and its first frame comes a little late) instead of pushing every later
display time back: blocks that take about the frame budget, some a little more and some a little less, then
keep the requested fps, the faster ones making up for the slower. Without it each late block's delay was
never made up while the time an early block saved was spent waiting: star-tiny at 30 fps on two cores, its
blocks 65 ms at the median against a 66.7 ms budget, was served at 28.2 frames/s. Simulated with block times
of 65 +- 8 ms: 28.7 frames/s without, 29.2 with half an interval (a whole interval: 29.6, but late first
frames then turn stale and are dropped, and under overload it does worse). A generator that is slower than
the budget for good still pushes the schedule back (its lateness exceeds the bound at once).

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
    #: A block expected to be at most this many frame intervals late keeps its place in the schedule.
    catch_up_frames: float = 0.5


class BlockScheduler:
    def __init__(self, config: SchedulerConfig, now: float) -> None:
        if config.fps <= 0 or config.block_frames < 1 or not 0 <= config.catch_up_frames < 1:
            raise ValueError(f"bad scheduler config {config}")
        self.config = config
        self.frame_interval = 1.0 / config.fps
        self.generation_estimate_s = 0.0  # per block
        self._next_display = now
        self._scheduled = False  # no block planned yet: the first is shown as soon as it is ready

    def reset(self, now: float) -> None:
        """Forget the schedule (after a seek): the next block is shown as soon as it is ready."""
        self._next_display = now
        self._scheduled = False

    def start_time(self, now: float) -> float:
        """When generation of the next block should start (may be <= now: start at once)."""
        return self._first_display(now) - self.generation_estimate_s - self.config.margin_s

    def _first_display(self, now: float) -> float:
        earliest = now + self.generation_estimate_s + self.config.margin_s
        late = earliest - self._next_display
        if self._scheduled and late <= self.config.catch_up_frames * self.frame_interval:
            return self._next_display  # keeps its place (see the module's docstring)
        return max(self._next_display, earliest)

    def plan(self, now: float) -> list[float]:
        """Display times of the next block; advances the schedule."""
        first = self._first_display(now)
        times = [first + k * self.frame_interval for k in range(self.config.block_frames)]
        self._next_display = times[-1] + self.frame_interval
        self._scheduled = True
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
