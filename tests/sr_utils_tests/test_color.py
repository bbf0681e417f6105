"""Colour conversion: MATLAB rgb2ycbcr luma, round trips, tensor conventions, image loading."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sr_utils.color import (IMAGENET_MEAN, IMAGENET_STD, convert_image, load_rgb, pil_to_tensor, rgb_to_y,
                            rgb_to_ycbcr, tensor_to_pil, to_uint8, ycbcr_to_rgb)


def test_rgb_to_y_uint8_range_and_known_values():
    img = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)
    y = rgb_to_y(img)
    assert y.dtype == np.float64 and y.shape == (1, 5)
    np.testing.assert_allclose(y[0], [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966], atol=1e-12)
    assert np.any(y != np.round(y)), "rgb_to_y must not round"


def test_rgb_to_y_float_and_torch_agree_with_uint8():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    y8 = rgb_to_y(img)
    np.testing.assert_allclose(rgb_to_y(img / 255.0) * 255, y8, atol=1e-10)
    t = torch.from_numpy(img).permute(2, 0, 1).double().unsqueeze(0) / 255
    yt = rgb_to_y(t)
    assert yt.shape == (1, 7, 9)
    np.testing.assert_allclose(yt[0].numpy() * 255, y8, atol=1e-10)


def test_ycbcr_round_trip():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    ycc = rgb_to_ycbcr(img)
    np.testing.assert_allclose(ycc[..., 0], rgb_to_y(img))
    assert ycc[..., 1:].min() >= 16 and ycc[..., 1:].max() <= 240
    np.testing.assert_array_equal(ycbcr_to_rgb(ycc, dtype=np.uint8), img)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(img / 255.0)), img / 255.0, atol=1e-12)


def test_to_uint8_rounds_half_away_from_zero_and_clips():
    np.testing.assert_array_equal(to_uint8(np.array([0.5, 1.5, 2.5, 2.4999, -3.0, 300.0, 254.5])),
                                  [1, 2, 3, 2, 0, 255, 255])


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="\\(H, W, 3\\)"):
        rgb_to_y(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="\\(..., 3, H, W\\)"):
        rgb_to_y(torch.zeros(1, 4, 4, 3))
    with pytest.raises(TypeError, match="uint8"):
        rgb_to_y(np.zeros((4, 4, 3), np.int64))


def test_convert_image_conventions():
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    pil = Image.fromarray(arr)
    x01 = convert_image(pil, "pil", "[0, 1]")
    assert x01.shape == (3, 6, 5) and x01.dtype == torch.float32 and 0 <= x01.min() and x01.max() <= 1
    m11 = convert_image(pil, "pil", "[-1, 1]")
    torch.testing.assert_close(m11, x01 * 2 - 1)
    back = convert_image(m11, "[-1, 1]", "pil")
    np.testing.assert_array_equal(np.asarray(back), arr)
    batch = torch.stack([x01, x01])
    norm = convert_image(batch, "[0, 1]", "imagenet-norm")
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(norm, (batch - mean) / std)
    y = convert_image(batch, "[0, 1]", "y-channel")
    assert y.shape == (2, 6, 5)
    np.testing.assert_allclose(y[0].double().numpy(), rgb_to_y(arr), atol=1e-3)
    # tanh outputs slightly beyond [-1, 1] are clamped, not wrapped
    over = convert_image(torch.full((3, 2, 2), 1.2), "[-1, 1]", "[0, 1]")
    assert over.max() == 1.0
    with pytest.raises(ValueError, match="source"):
        convert_image(x01, "[0, 255]", "pil")
    with pytest.raises(ValueError, match="float tensor"):
        convert_image(arr, "[0, 1]", "pil")


def test_pil_round_trip_and_modes(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    assert np.array_equal(np.asarray(tensor_to_pil(pil_to_tensor(Image.fromarray(arr)))), arr)
    grey = Image.fromarray(arr[..., 0])
    grey.save(tmp_path / "g.png")
    g = load_rgb(tmp_path / "g.png")
    assert g.shape == (4, 6, 3) and np.array_equal(g[..., 1], arr[..., 0])
    Image.fromarray(np.dstack([arr, np.full((4, 6), 7, np.uint8)])).save(tmp_path / "a.png")
    assert np.array_equal(load_rgb(tmp_path / "a.png"), arr), "alpha must be dropped, not composited"
    Image.fromarray(arr).convert("P").save(tmp_path / "p.png")
    assert load_rgb(tmp_path / "p.png").shape == (4, 6, 3)


def test_load_rgb_names_the_file_at_fault(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_rgb(tmp_path / "nope.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t.png"):
        load_rgb(tmp_path / "t.png")
