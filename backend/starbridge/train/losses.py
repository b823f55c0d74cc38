"""Training objectives, written out as implemented.

Notation: x0 clean latents of a block, e ~ N(0, I), s in (0, 1) a noise level, x_s = (1 - s) x0 + s e,
v = e - x0 the flow-matching velocity; a model predicts v_theta(x_s, s, cond, cache) and its clean estimate
is x0_theta = x_s - s v_theta.

* **Flow matching** (autoencoder-free part of the teacher, the critics, the real-data teacher):
  L_FM = E || v_theta(x_s) - (e - x0) ||^2, s drawn uniformly then shifted s' = k s / (1 + (k - 1) s) (k = 5:
  the schedule STAR samples with), so training covers the noise levels the sampler visits.
* **DMD** (distribution matching distillation, the student): for a student sample x0_g, noise it to x_s and
  compare the clean estimates of a frozen "real" teacher and of a "fake" critic trained online on student
  samples: g = (x0_fake - x0_real) / mean|x0_g - x0_real| (per sample); L_DMD = 1/2 || x0_g - sg(x0_g - g) ||^2,
  whose gradient w.r.t. x0_g is g: it moves student samples from where the fake critic puts them towards
  where the teacher puts them.
* **JDMD** (joint DMD): L = L_DMD(conditional teacher, fake critic with the condition)
                          + lambda * L_DMD(real-data teacher, fake critic without the condition).
  The conditional teacher knows pose pairs (explicit render + mask -> target view); the real-data teacher
  knows only what real video looks like (no poses: the condition channels are zeroed), so the second term
  pulls the student towards the real-data distribution where the paired synthetic data is thin.
"""

from __future__ import annotations

import torch

#: Noise shift of the schedule (docs/architecture.md §6).
SHIFT = 5.0


def shifted(s: torch.Tensor, shift: float = SHIFT) -> torch.Tensor:
    return shift * s / (1 + (shift - 1) * s)


def sample_sigma(batch: int, generator: torch.Generator | None = None, shift: float = SHIFT) -> torch.Tensor:
    """(B,) noise levels in (0, 1), uniform then shifted towards the noisy end."""
    s = torch.rand(batch, generator=generator).clamp(1e-3, 1 - 1e-3)
    return shifted(s, shift)


def noisy(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_s = (1 - s) x0 + s e, with s broadcast over (B, C, F, h, w)."""
    s = sigma.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise


def clean_estimate(x_s: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma.view(-1, *([1] * (x_s.dim() - 1)))
    return x_s - s * v


def flow_matching_loss(
    v_pred: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared velocity error; `weights` (broadcast to x0, e.g. (B, 1, F, h, w) hole weights) scale cells."""
    err = (v_pred - (noise - x0)) ** 2
    return torch.mean(err if weights is None else err * weights)


def dmd_loss(x0_gen: torch.Tensor, x0_real: torch.Tensor, x0_fake: torch.Tensor) -> torch.Tensor:
    """1/2 || x0_gen - sg(x0_gen - g) ||^2 with g = (x0_fake - x0_real) / mean|x0_gen - x0_real| per sample."""
    dims = tuple(range(1, x0_gen.dim()))
    with torch.no_grad():
        scale = (x0_gen - x0_real).abs().mean(dim=dims, keepdim=True).clamp_min(1e-5)
        grad = (x0_fake - x0_real) / scale
        target = x0_gen - grad
    return 0.5 * torch.mean((x0_gen - target) ** 2)
