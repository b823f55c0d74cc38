"""Few-step flow-matching sampler (docs/architecture.md §6): the schedule STAR is distilled for.

Flow matching: x_t = (1 - s) x0 + s * noise, and the model predicts v = noise - x0, so
x0 = x_t - s * v. Training uses 1000 steps with shifted sigmas s' = shift * s / (1 + (shift - 1) s).
The few-step list [1000, 750, 500, 250] is "warped" onto that shifted schedule: step k uses
s = step_k / 1000 shifted (1, 0.9375, 0.8333, 0.625 for shift 5); the model sees t = 1000 s'.
Between steps x0 is re-noised to the next sigma with fresh noise; the last step returns x0.

Usage::

    schedule = FlowSchedule()
    x = rng.standard_normal(shape)
    for k, sigma in enumerate(schedule.sigmas):
        v = model(x, timestep=1000 * sigma)
        x = schedule.step(x, v, k, rng)      # the last step returns x0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FlowSchedule:
    #: Denoising steps on the 1000-step training scale, noisiest first.
    steps: tuple[int, ...] = (1000, 750, 500, 250)
    shift: float = 5.0
    train_steps: int = 1000
    sigmas: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.steps or any(not 0 < s <= self.train_steps for s in self.steps):
            raise ValueError(f"steps must be in (0, {self.train_steps}], got {self.steps}")
        if list(self.steps) != sorted(self.steps, reverse=True):
            raise ValueError(f"steps must be noisiest first, got {self.steps}")
        sig = [s / self.train_steps for s in self.steps]
        object.__setattr__(self, "sigmas", tuple(self.shift * s / (1 + (self.shift - 1) * s) for s in sig))

    @property
    def timesteps(self) -> tuple[float, ...]:
        """What the model is conditioned on: 1000 * shifted sigma."""
        return tuple(self.train_steps * s for s in self.sigmas)

    def step(self, x: np.ndarray, v: np.ndarray, k: int, noise: np.ndarray | None = None) -> np.ndarray:
        """One sampler step from x_t at step k: x0 = x_t - s_k v; re-noised to s_{k+1} unless k is last.

        `noise` (same shape as x) is the fresh noise for the re-noising; required unless k is last."""
        sigma = self.sigmas[k]
        x0 = x - np.float32(sigma) * v
        if k == len(self.sigmas) - 1:
            return x0
        if noise is None:
            raise ValueError("re-noising needs fresh noise")
        nxt = np.float32(self.sigmas[k + 1])
        return (np.float32(1.0) - nxt) * x0 + nxt * noise
