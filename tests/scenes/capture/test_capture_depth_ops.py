"""The depth stage's shared helpers (capture/depth_ops.py): the edge-aware filter's compiled recursive passes
against the NumPy loop they replaced, to the bit."""

from __future__ import annotations

import numpy as np

from starbridge.scenes.capture.depth_ops import _recursive_pass, domain_transform


def numpy_pass(img: np.ndarray, weights: np.ndarray, axis: int) -> None:
    """The NumPy version (one vectorised step per row or column), in place."""
    n = img.shape[axis]
    view = img if axis == 0 else img.swapaxes(0, 1)
    wts = (weights if axis == 0 else weights.swapaxes(0, 1))[..., None]
    for k in range(1, n):
        view[k] += wts[k - 1] * (view[k - 1] - view[k])
    for k in range(n - 2, -1, -1):
        view[k] += wts[k] * (view[k + 1] - view[k])


def test_the_compiled_passes_are_the_numpy_loop_to_the_bit() -> None:
    rng = np.random.default_rng(3)
    img = rng.normal(size=(37, 53, 4))
    for axis, shape in ((0, (36, 53)), (1, (37, 52))):
        weights = rng.uniform(0.0, 1.0, size=shape)
        ours, ref = img.copy(), img.copy()
        _recursive_pass(ours, weights, axis)
        numpy_pass(ref, weights, axis)
        assert np.array_equal(ours, ref)


def test_the_filter_smooths_within_regions_and_stops_at_edges() -> None:
    """A step in the guide keeps the two sides' values apart; a flat guide averages."""
    guide = np.zeros((20, 40, 3))
    guide[:, 20:] = 1.0
    values = np.zeros((20, 40, 1))
    values[:, 20:] = 1.0
    values[10, 5] = 5.0  # a spike inside the left region is spread over it
    out = domain_transform(values, guide, sigma_s=10.0, sigma_r=0.1)[..., 0]
    assert out[:, :18].max() < 1.0 and out[10, 5] < 5.0 * 0.5
    assert np.allclose(out[:, 22:], 1.0, atol=1e-3)  # the edge holds the right side at 1
