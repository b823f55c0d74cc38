"""The mask half of the STAR condition: fraction of valid pixels per latent cell, frames -> mask channels."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.runtime.condition import pool_masks


def test_each_cell_gets_its_valid_fraction():
    masks = np.zeros((2, 16, 32), bool)
    masks[0, :8, :8] = True  # frame 0: the top-left 8x8 cell fully valid
    masks[1, 8:, 8:10] = True  # frame 1: a quarter of the cell at row 1, column 1
    out = pool_masks(masks, latent_height=2, latent_width=4, mask_channels=1)
    assert out.shape == (1, 1, 2, 2, 4) and out.dtype == np.float32
    expected = np.zeros((2, 2, 4), np.float32)
    expected[0, 0, 0] = 1.0
    expected[1, 1, 1] = 0.25
    np.testing.assert_array_equal(out[0, 0], expected)


def test_temporal_stride_makes_frames_mask_channels():
    masks = np.zeros((8, 8, 8), bool)
    for f in range(8):
        masks[f, : f + 1] = True  # frame f has f + 1 valid rows of 8
    out = pool_masks(masks, latent_height=1, latent_width=1, mask_channels=4)
    assert out.shape == (1, 4, 2, 1, 1)
    # latent frame t covers video frames 4t .. 4t + 3; channel m is frame 4t + m
    for t in range(2):
        for m in range(4):
            assert out[0, m, t, 0, 0] == pytest.approx((4 * t + m + 1) / 8)


def test_shapes_that_do_not_pool_are_refused():
    with pytest.raises(ValueError, match="do not pool"):
        pool_masks(np.zeros((2, 15, 32), bool), 2, 4, 1)
    with pytest.raises(ValueError, match="mask channel"):
        pool_masks(np.zeros((3, 16, 32), bool), 2, 4, 2)
