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
frames then turn stale and are dropped, and under overload it does worse). A block expected later than that
moves the schedule back by its lateness beyond the bound, not by all of it (it is shown that bound late, like
a block that keeps its place): the schedule gives up only the time it must. Pushing it back by the whole
lateness threw away up to half an interval each time; with block times as measured on the two-core VM
(median 64 ms, standard deviation 10% of it) the session loop on a simulated clock showed 29.62 -> 29.81
frames/s. A generator slower than the budget on the whole (its long-run estimate, the median of the last 20
blocks: the running one follows each slow block) cannot catch up: the schedule moves back to when its blocks are ready,
so that its frames are shown when they are made, not late.

All times are monotonic seconds (time.monotonic).
"""

from __future__ import annotations

import statistics
from collections import deque
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
    #: Blocks whose median generation time is the long-run estimate (whether the budget is kept on the whole;
    #: a median, so that a session's slow first block, ten times the others, does not count for long).
    long_run_blocks: int = 20


class BlockScheduler:
    def __init__(self, config: SchedulerConfig, now: float) -> None:
        if (
            config.fps <= 0
            or config.block_frames < 1
            or not 0 <= config.catch_up_frames < 1
            or config.long_run_blocks < 1
        ):
            raise ValueError(f"bad scheduler config {config}")
        self.config = config
        self.frame_interval = 1.0 / config.fps
        self.generation_estimate_s = 0.0  # per block
        self._recent: deque[float] = deque(maxlen=config.long_run_blocks)
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
        if not self._scheduled:
            return max(self._next_display, earliest)
        bound = self.config.catch_up_frames * self.frame_interval
        if late <= bound:
            return self._next_display  # keeps its place (see the module's docstring)
        if self.long_run_estimate_s <= self.config.block_frames * self.frame_interval:
            return earliest - bound  # moved back by no more than it must (see the module's docstring)
        return earliest  # slower than the budget: frames could only come ever later; shown when ready

    def plan(self, now: float) -> list[float]:
        """Display times of the next block; advances the schedule."""
        first = self._first_display(now)
        times = [first + k * self.frame_interval for k in range(self.config.block_frames)]
        self._next_display = times[-1] + self.frame_interval
        self._scheduled = True
        return times

    def observe_generation(self, seconds: float) -> None:
        """Fold one block's measured generation time into the estimate."""
        self._recent.append(seconds)
        if self.generation_estimate_s == 0.0:
            self.generation_estimate_s = seconds
        else:
            a = self.config.ema
            self.generation_estimate_s = (1 - a) * self.generation_estimate_s + a * seconds

    @property
    def long_run_estimate_s(self) -> float:
        """The median generation time of the last `long_run_blocks` blocks (0 before the first)."""
        return statistics.median(self._recent) if self._recent else 0.0

    def is_stale(self, display_time: float, now: float) -> bool:
        """True when a frame for `display_time` is ready more than a frame interval too late."""
        return now - display_time > self.frame_interval
