"""Block scheduler: display times follow each other, generation starts just in time, late frames are stale."""

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
