"""Push-pull hole filling."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.fill import NEUTRAL_GREY, push_pull_fill


def random_case(h: int, w: int, hole_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.random((h, w)) >= hole_fraction


@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 9), (2, 1), (5, 5)])
def test_valid_pixels_are_kept_exactly(h: int, w: int) -> None:
    colour, mask = random_case(h, w, 0.3)
    mask.flat[0] = True
    mask.flat[-1] = False
    out = push_pull_fill(colour, mask)
    assert out.shape == colour.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[mask], colour[mask])


def test_input_is_not_modified() -> None:
    colour, mask = random_case(16, 16, 0.5)
    before = colour.copy()
    push_pull_fill(colour, mask)
    np.testing.assert_array_equal(colour, before)


def test_hole_in_uniform_region_takes_that_colour() -> None:
    colour = np.full((64, 96, 3), (30, 140, 220), np.uint8)
    colour[20:40, 30:60] = 0  # garbage under the hole must not leak
    mask = np.ones((64, 96), bool)
    mask[20:40, 30:60] = False
    out = push_pull_fill(colour, mask)
    assert (out == (30, 140, 220)).all()


def test_hole_between_two_colours_takes_the_nearer_one() -> None:
    colour = np.zeros((48, 64, 3), np.uint8)
    colour[:, :32] = (220, 0, 0)
    colour[:, 32:] = (0, 0, 220)
    mask = np.ones((48, 64), bool)
    mask[:, 24:40] = False
    out = push_pull_fill(colour, mask).astype(int)
    left, right = out[:, 24], out[:, 39]
    assert (left[:, 0] > left[:, 2]).all()  # next to red: reddish
    assert (right[:, 2] > right[:, 0]).all()  # next to blue: bluish
    assert (out[:, 24:40, 0] + out[:, 24:40, 2] > 150).all()  # a blend of the two, never black
    assert (np.diff(out[:, 24:40, 0], axis=1) <= 0).all()  # red fades monotonically across the hole


def test_scattered_pinholes_take_neighbour_colours() -> None:
    v, u = np.mgrid[0:64, 0:64]
    colour = np.stack([u * 4, v * 4, np.full_like(u, 128)], axis=-1).astype(np.uint8)  # smooth ramp
    mask = np.random.default_rng(3).random((64, 64)) > 0.1
    out = push_pull_fill(colour, mask).astype(int)
    assert np.abs(out - colour.astype(int)).max() <= 12  # a pinhole's value is close to the ramp's


def test_all_invalid_gives_neutral_grey() -> None:
    colour, _ = random_case(10, 12, 0.0)
    out = push_pull_fill(colour, np.zeros((10, 12), bool))
    assert (out == NEUTRAL_GREY).all()


def test_all_valid_is_a_copy() -> None:
    colour, _ = random_case(10, 12, 0.0)
    out = push_pull_fill(colour, np.ones((10, 12), bool))
    np.testing.assert_array_equal(out, colour)
    assert out is not colour


def test_single_valid_pixel_fills_everything_with_it() -> None:
    colour = np.zeros((9, 13, 3), np.uint8)
    colour[4, 7] = (10, 20, 30)
    mask = np.zeros((9, 13), bool)
    mask[4, 7] = True
    assert (push_pull_fill(colour, mask) == (10, 20, 30)).all()


@pytest.mark.parametrize(
    ("colour", "mask", "field"),
    [
        (np.zeros((4, 4, 4), np.uint8), np.ones((4, 4), bool), "colour"),
        (np.zeros((4, 4, 3), np.float32), np.ones((4, 4), bool), "colour"),
        (np.zeros((4, 4, 3), np.uint8), np.ones((4, 5), bool), "mask"),
        (np.zeros((4, 4, 3), np.uint8), np.ones((4, 4), np.uint8), "mask"),
    ],
)
def test_bad_input_names_the_field(colour: np.ndarray, mask: np.ndarray, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        push_pull_fill(colour, mask)
    assert info.value.field == field


def test_fill_at_the_holes_only_matches_the_full_fill() -> None:
    from starbridge.geometry.fill import push_pull_fill_holes, push_pull_fill_values

    rng = np.random.default_rng(4)
    values = rng.uniform(0.0, 1.0, (37, 53, 2)).astype(np.float32)
    mask = rng.random((37, 53)) < 0.6
    holes, filled = push_pull_fill_holes(values, mask)
    np.testing.assert_array_equal(holes, np.flatnonzero(~mask))
    np.testing.assert_array_equal(filled, push_pull_fill_values(values, mask).reshape(-1, 2)[holes])
    none, empty = push_pull_fill_holes(values, np.zeros((37, 53), bool), empty=-1.0)
    assert len(none) == 37 * 53 and (empty == -1.0).all()
    assert push_pull_fill_holes(values, np.ones((37, 53), bool))[1].shape == (0, 2)


def test_pixel_rows_put_and_taken_by_flat_index() -> None:
    from starbridge.geometry.fill import put_pixels, take_pixels

    image = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    flat = np.array([0, 5, 98, 40])
    np.testing.assert_array_equal(take_pixels(image, flat), image.reshape(-1, 3)[flat])
    rows = np.arange(12, dtype=np.uint8).reshape(4, 3)
    expected = image.copy()
    expected.reshape(-1, 3)[flat] = rows
    put_pixels(image, flat, rows)
    np.testing.assert_array_equal(image, expected)
