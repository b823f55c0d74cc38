"""The few-step flow-matching schedule: shifted sigmas, x0 recovery, re-noising, bad schedules refused."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.runtime.sampler import FlowSchedule


def test_the_published_four_step_schedule():
    s = FlowSchedule()
    assert s.sigmas == pytest.approx((1.0, 0.9375, 0.8333333, 0.625))
    assert s.timesteps == pytest.approx((1000.0, 937.5, 833.3333, 625.0), rel=1e-6)


def test_shift_one_is_the_plain_schedule():
    assert FlowSchedule(steps=(1000, 500), shift=1.0).sigmas == pytest.approx((1.0, 0.5))


def test_an_exact_velocity_recovers_x0_in_one_step_and_renoises_to_the_next_sigma():
    rng = np.random.default_rng(0)
    s = FlowSchedule()
    x0 = rng.standard_normal((2, 3)).astype(np.float32)
    noise = rng.standard_normal((2, 3)).astype(np.float32)
    fresh = rng.standard_normal((2, 3)).astype(np.float32)
    k = 1
    x_t = (1 - s.sigmas[k]) * x0 + s.sigmas[k] * noise
    v = noise - x0  # what a perfect model predicts
    out = s.step(x_t, v, k, fresh)
    nxt = s.sigmas[k + 1]
    np.testing.assert_allclose(out, (1 - nxt) * x0 + nxt * fresh, atol=1e-6)
    np.testing.assert_allclose(s.step(x_t, v, len(s.sigmas) - 1), x_t - s.sigmas[-1] * v, atol=1e-6)


def test_renoising_needs_noise():
    with pytest.raises(ValueError, match="fresh noise"):
        FlowSchedule().step(np.zeros(2, np.float32), np.zeros(2, np.float32), 0)


@pytest.mark.parametrize("steps", [(), (0,), (1001,), (250, 500)])
def test_bad_steps_are_refused(steps):
    with pytest.raises(ValueError, match="steps"):
        FlowSchedule(steps=steps)
