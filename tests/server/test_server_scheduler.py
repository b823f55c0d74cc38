"""Block scheduler: display times follow each other, generation starts just in time, late frames are stale."""

import numpy as np
import pytest

from starbridge.server.scheduler import BlockScheduler, SchedulerConfig


def test_blocks_follow_each_other_at_the_frame_interval():
    s = BlockScheduler(SchedulerConfig(fps=25, block_frames=3, margin_s=0.0), now=0.0)
    first = s.plan(0.0)
    assert first == pytest.approx([0.0, 0.04, 0.08])
    second = s.plan(0.01)
    assert second == pytest.approx([0.12, 0.16, 0.20])


def test_just_in_time_start_uses_generation_estimate():
    s = BlockScheduler(SchedulerConfig(fps=10, block_frames=1, margin_s=0.005), now=0.0)
    s.observe_generation(0.03)
    times = s.plan(0.0)
    assert times == pytest.approx([0.035])  # ready estimate + margin
    # the next frame is due at 0.135: start generating 0.035 before it
    assert s.start_time(0.04) == pytest.approx(0.1)


def test_slow_generator_pushes_display_times_back():
    s = BlockScheduler(SchedulerConfig(fps=30, block_frames=1, margin_s=0.0), now=0.0)
    s.observe_generation(0.1)  # slower than a frame interval
    s.plan(0.0)
    later = s.plan(0.1)
    assert later[0] == pytest.approx(0.2)  # cannot be shown before it can be made


def test_estimate_is_a_moving_average():
    s = BlockScheduler(SchedulerConfig(fps=30, ema=0.5), now=0.0)
    s.observe_generation(0.02)
    s.observe_generation(0.04)
    assert s.generation_estimate_s == pytest.approx(0.03)


def test_stale_and_reset():
    s = BlockScheduler(SchedulerConfig(fps=20), now=0.0)
    assert not s.is_stale(1.0, 1.04)
    assert s.is_stale(1.0, 1.06)
    s.plan(0.0)
    s.plan(0.0)
    s.reset(5.0)
    assert s.plan(5.0)[0] == pytest.approx(5.0 + s.config.margin_s)


def test_bad_config():
    with pytest.raises(ValueError):
        BlockScheduler(SchedulerConfig(fps=0), now=0.0)


def _serve(s: BlockScheduler, block_s: list[float]) -> tuple[int, int, float, float]:
    """The session's generator and pacer loops on a simulated clock: (frames shown, frames dropped as stale,
    when the last was shown, the largest lateness of a shown frame), from the second block on (the first is
    planned before there is an estimate, and shown from time 0)."""
    now, shown, dropped, last, worst = 0.0, 0, 0, 0.0, 0.0
    for i, seconds in enumerate(block_s):
        now = max(now, s.start_time(now))
        times = s.plan(now)
        now += seconds
        s.observe_generation(seconds)
        for k, display in enumerate(times if i else ()):
            if k < len(times) - 1 and s.is_stale(display, now):
                dropped += 1
                continue
            shown, last, worst = shown + 1, max(display, now), max(worst, now - display)
    return shown, dropped, last, worst


def test_blocks_around_the_budget_keep_the_requested_fps():
    """Blocks alternately a little faster and slower than the 66.7 ms budget of two frames at 30 fps (66 ms on
    average): the faster make up for the slower, every frame is shown, at 30 frames/s."""
    times = [0.060, 0.072] * 150
    shown, dropped, last, worst = _serve(BlockScheduler(SchedulerConfig(fps=30, block_frames=2), now=0.0), times)
    assert dropped == 0 and shown == 598
    assert shown / last > 29.8
    assert worst <= 0.5 / 30 + 0.01  # first frames at most about half an interval late
    # Pushing the schedule back at every late block (as before): the time saved by the faster ones is lost.
    old = BlockScheduler(SchedulerConfig(fps=30, block_frames=2, catch_up_frames=0.0), now=0.0)
    shown, _, last, _ = _serve(old, times)
    assert shown / last < 29.0


def test_a_late_block_moves_the_schedule_back_only_by_what_it_must():
    """Block times as measured on the two-core VM (a spread of 10% of the median) at 96% of the budget: a
    block later than the bound moves the schedule back only by its lateness beyond the bound. Moving it back
    by the whole lateness (as before) gave 29.62 frames/s with these times."""
    rng = np.random.default_rng(0)
    times = list(0.064 * (1 + 0.1 * rng.standard_normal(450)))
    shown, dropped, last, worst = _serve(BlockScheduler(SchedulerConfig(fps=30, block_frames=2), now=0.0), times)
    assert dropped == 0 and shown / last > 29.75  # 29.81
    assert worst <= 0.5 / 30 + 0.01  # a first frame is at most about half an interval late, plus the spread


def test_a_slow_first_block_does_not_count_as_a_slow_generator():
    """A session's first block pays one-off costs (about a second for star-tiny); three ordinary blocks later
    the long-run estimate (a median) says the budget is kept, and late blocks move the schedule back only by
    what they must. (As an exponential average of weight 0.05 it took over 100 blocks to forget it.)"""
    s = BlockScheduler(SchedulerConfig(fps=30, block_frames=2), now=0.0)
    for seconds in (1.0, 0.064, 0.066, 0.063):
        s.observe_generation(seconds)
    assert s.long_run_estimate_s == pytest.approx(0.065)
    s.plan(0.0)
    times = s.plan(1.0)  # planned at 1.0, due at 0.0667: very late
    late = 1.0 + s.generation_estimate_s + s.config.margin_s - times[0]
    assert late == pytest.approx(0.5 / 30)  # shown half an interval late, the schedule moved back by the rest


def test_a_generator_slower_than_the_budget_still_pushes_the_schedule_back():
    s = BlockScheduler(SchedulerConfig(fps=30, block_frames=2), now=0.0)
    shown, dropped, last, worst = _serve(s, [0.080] * 100)
    assert dropped == 0 and abs(shown / last - 25.0) < 0.5  # two frames per 80 ms
    assert worst <= 0.5 / 30 + 0.01  # lateness does not pile up


def test_catch_up_must_be_under_one_interval():
    with pytest.raises(ValueError):
        BlockScheduler(SchedulerConfig(fps=30, catch_up_frames=1.0), now=0.0)
