"""Scene clock: play, pause, seek, speed, looping; bad values refused with the field named."""

import pytest

from starbridge.errors import InvalidArgument
from starbridge.server.clock import SceneClock


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_plays_in_real_time_and_loops():
    now = FakeTime()
    clock = SceneClock(3.0, now=now)
    assert clock.scene_time() == 0.0
    now.t += 1.25
    assert clock.scene_time() == pytest.approx(1.25)
    now.t += 2.0
    assert clock.scene_time() == pytest.approx(0.25)  # looped at 3 s


def test_pause_freezes_and_play_resumes_without_jump():
    now = FakeTime()
    clock = SceneClock(10.0, now=now)
    now.t += 2.0
    clock.pause()
    now.t += 5.0
    assert clock.scene_time() == pytest.approx(2.0)
    assert not clock.state().playing
    clock.play()
    now.t += 1.0
    assert clock.scene_time() == pytest.approx(3.0)


def test_seek_and_speed():
    now = FakeTime()
    clock = SceneClock(10.0, now=now)
    clock.seek(7.5)
    assert clock.scene_time() == pytest.approx(7.5)
    clock.set_speed(2.0)
    now.t += 1.0
    assert clock.scene_time() == pytest.approx(9.5)
    clock.seek(-1.0)  # wraps into the loop
    assert clock.scene_time() == pytest.approx(9.0)


def test_scene_time_at_future_wall_time():
    now = FakeTime()
    clock = SceneClock(10.0, now=now)
    assert clock.scene_time(now.t + 0.5) == pytest.approx(0.5)


def test_no_loop_clamps():
    now = FakeTime()
    clock = SceneClock(2.0, loop=False, now=now)
    now.t += 5
    assert clock.scene_time() == 2.0


@pytest.mark.parametrize("speed", [0.0, -1.0, 9.0, float("nan")])
def test_bad_speed_names_field(speed):
    clock = SceneClock(1.0)
    with pytest.raises(InvalidArgument, match="time.speed") as info:
        clock.set_speed(speed)
    assert info.value.field == "time.speed"


def test_bad_seek_and_duration():
    with pytest.raises(InvalidArgument, match="time.time_s"):
        SceneClock(1.0).seek(float("inf"))
    with pytest.raises(InvalidArgument, match="duration"):
        SceneClock(0.0)
