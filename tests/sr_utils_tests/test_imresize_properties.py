"""Properties of imresize on synthetic images: shapes, constants, uint8 vs float, torch vs numpy, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sr_utils.imresize import contributions, imresize

SCALES = [1 / 2, 1 / 3, 1 / 4, 2, 3, 4, 0.3, 1.7]
SIZES = [(37, 53), (16, 17), (5, 9)]


def _rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_output_shape_is_ceil_scale_size(scale, hw, channels):
    shape = hw if channels is None else (*hw, channels)
    img = _rng().integers(0, 256, shape, dtype=np.uint8)
    out = imresize(img, scale)
    expected = (math.ceil(scale * hw[0]), math.ceil(scale * hw[1]))
    assert out.shape[:2] == expected and out.shape[2:] == shape[2:] and out.dtype == np.uint8


@pytest.mark.parametrize("out_hw", [(10, 20), (100, 7), (37, 53)])
def test_output_shape_argument(out_hw):
    img = _rng().random((37, 53, 3))
    out = imresize(img, output_shape=out_hw)
    assert out.shape == (*out_hw, 3) and out.dtype == np.float64


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("edge", ["symmetric", "replicate"])
@pytest.mark.parametrize("method", ["bicubic", "bilinear"])
def test_constant_images_stay_constant(scale, edge, method):
    u8 = np.full((23, 31, 3), 173, np.uint8)
    assert np.all(imresize(u8, scale, edge=edge, method=method) == 173)
    f = np.full((23, 31), -2.5)
    np.testing.assert_allclose(imresize(f, scale, edge=edge, method=method), -2.5, atol=1e-12)


def _matlab_round_clip(x):
    r = np.floor(x)
    return np.clip(r + ((x - r) >= 0.5), 0, 255)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("edge", ["symmetric", "replicate"])
def test_uint8_path_is_float_path_with_rounding_after_each_pass(scale, channels, edge):
    shape = (37, 53) if channels is None else (37, 53, channels)
    img = _rng(1).integers(0, 256, shape, dtype=np.uint8)
    # a scale of 1 on the other axis is an exact identity pass, so each call below is one 1-D pass
    first = _matlab_round_clip(imresize(img.astype(np.float64), (scale, 1.0), edge=edge))
    second = _matlab_round_clip(imresize(first, (1.0, scale), edge=edge))
    out = imresize(img, scale, edge=edge)
    np.testing.assert_array_equal(out, second.astype(np.uint8))
    # ...and rounding between passes matters: without it some pixels differ
    if scale not in (2, 3, 4):
        once = _matlab_round_clip(imresize(img.astype(np.float64), scale, edge=edge))
        assert np.any(once != out) or img.size < 100


def _reference_resize_1d(x: np.ndarray, out_len: int, scale: float, edge: str) -> np.ndarray:
    """Literal transcription of MATLAB's imresize for one axis (axis 0), a loop per output sample."""
    n = x.shape[0]
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros((out_len, *x.shape[1:]))
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + k for k in range(int(math.ceil(width)) + 2)]
        def cubic(t):
            t = abs(t)
            return (1.5 * t**3 - 2.5 * t**2 + 1) if t <= 1 else ((-0.5 * t**3 + 2.5 * t**2 - 4 * t + 2) if t <= 2 else 0.0)
        w = np.array([scale * cubic(scale * (u - j)) if scale < 1 else cubic(u - j) for j in taps])
        w = w / w.sum()
        for wk, j in zip(w, taps):
            if edge == "replicate":
                j = min(max(j, 1), n)
            else:
                j = (j - 1) % (2 * n)
                j = j + 1 if j < n else 2 * n - j
            out[i - 1] += wk * x[j - 1]
    return out


@pytest.mark.parametrize("scale", [0.3, 1 / 3, 1.7, 3])
@pytest.mark.parametrize("edge", ["symmetric", "replicate"])
def test_float_path_matches_a_literal_transcription(scale, edge):
    img = _rng(2).random((13, 11)) * 255
    ref = _reference_resize_1d(img, math.ceil(scale * 13), scale, edge)
    ref = _reference_resize_1d(ref.T, math.ceil(scale * 11), scale, edge).T
    np.testing.assert_allclose(imresize(img, scale, edge=edge), ref, rtol=0, atol=1e-9)


def test_contributions_rows_sum_to_one_and_indices_in_range():
    for n_in, scale in [(7, 0.25), (7, 4), (1, 3), (2, 0.5), (100, 0.3)]:
        w, idx = contributions(n_in, math.ceil(n_in * scale), scale)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
        assert idx.min() >= 0 and idx.max() < n_in


def test_smaller_scale_is_resized_first():
    """MATLAB sorts the scales: with (2, 0.5) the width (0.5) pass runs first, which changes uint8 results."""
    img = _rng(3).integers(0, 256, (20, 24), dtype=np.uint8)
    out = imresize(img, (2.0, 0.5))
    first = _matlab_round_clip(imresize(img.astype(np.float64), (1.0, 0.5)))
    expected = _matlab_round_clip(imresize(first, (2.0, 1.0))).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("scale", [1 / 4, 0.3, 1.7, 3])
@pytest.mark.parametrize("edge", ["symmetric", "replicate"])
def test_torch_equals_numpy_float(scale, edge):
    img = _rng(4).random((2, 3, 29, 34))
    t = torch.from_numpy(img).float()
    out = imresize(t, scale, edge=edge)
    assert out.dtype == torch.float32 and out.shape[:2] == (2, 3)
    for n in range(2):
        ref = imresize(img[n].transpose(1, 2, 0), scale, edge=edge).transpose(2, 0, 1)
        np.testing.assert_allclose(out[n].numpy(), ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(imresize(t[n], scale, edge=edge).numpy(), ref, rtol=0, atol=1e-6)
    out64 = imresize(torch.from_numpy(img), scale, edge=edge)
    assert out64.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_torch_cuda_equals_cpu():
    t = torch.rand(2, 3, 40, 50)
    np.testing.assert_allclose(imresize(t.cuda(), 0.25).cpu().numpy(), imresize(t, 0.25).numpy(), atol=1e-6)


def test_tiny_scale_gives_one_pixel_not_an_empty_image():
    assert imresize(np.zeros((20, 30, 3), np.uint8), 0.001).shape == (1, 1, 3)


def test_float_input_is_not_rounded_or_clipped():
    img = np.linspace(-50, 300, 24 * 24).reshape(24, 24).astype(np.float32)
    out = imresize(img, 2)
    assert out.dtype == np.float32
    assert out.min() < 0 and out.max() > 255
    assert np.any(out != np.round(out))


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(scale=None), ValueError, "exactly one of"),
    (dict(scale=0.5, output_shape=(4, 4)), ValueError, "exactly one of"),
    (dict(scale=-1), ValueError, "positive"),
    (dict(scale=float("nan")), ValueError, "positive"),
    (dict(output_shape=(0, 5)), ValueError, "empty output"),
    (dict(output_shape=(5,)), ValueError, "\\(height, width\\)"),
    (dict(scale=0.5, method="lanczos3"), ValueError, "method"),
    (dict(scale=0.5, edge="circular"), ValueError, "edge"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        imresize(np.zeros((20, 20, 3), np.uint8), **kwargs)


@pytest.mark.parametrize("image,error,match", [
    (np.zeros((8, 8), np.int32), TypeError, "dtype int32"),
    (np.zeros((8, 8), bool), TypeError, "dtype bool"),
    (np.zeros((3, 64, 64), np.uint8), ValueError, "looks like \\(C, H, W\\)"),
    (np.zeros((8, 8, 3, 1), np.uint8), ValueError, "\\(H, W\\) or \\(H, W, C\\)"),
    (np.zeros((0, 8, 3), np.uint8), ValueError, "empty"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), TypeError, "floating tensor"),
    (torch.zeros(1, 8, 8, 3), ValueError, "permute"),
    (torch.zeros(8, 8), ValueError, "\\(C, H, W\\) or \\(N, C, H, W\\)"),
    ([[1, 2], [3, 4]], TypeError, "numpy array or a torch tensor"),
])
def test_bad_images_raise_clear_errors(image, error, match):
    with pytest.raises(error, match=match):
        imresize(image, 0.5)
